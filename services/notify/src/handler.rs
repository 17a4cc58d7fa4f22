//! The notify stage: an announcement in, one delivery per (matching route, channel) queued, held
//! until the route's sending window opens; a correction to every route that carried what it
//! corrects, in that route's window.

use std::{collections::HashMap, sync::Arc};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use herald_catalog::CatalogHandle;
use herald_events::{
    IncomingMessage,
    worker::{self, HandleError, Handler},
};
use herald_proto::v1::{Announcement, AnnouncementKind};
use prost::Message;
use tokio::sync::Notify;

use crate::{
    config::NotifySettings,
    dispatcher, routing,
    schedule::Window,
    store::{Enqueue, Planned, Queued, Store},
    unpaced::Streams,
};

pub struct NotifyHandler {
    pub store: Store,
    pub settings: NotifySettings,
    pub catalog: CatalogHandle,
    pub wake: Arc<Notify>,
    /// The unpaced channels' streams: a delivery due now to one of them is handed over claimed.
    streams: Streams,
    /// Each route's sending window, by route name (`None`: always open).
    windows: Vec<(String, Option<Window>)>,
}

impl NotifyHandler {
    pub fn new(
        store: Store,
        settings: NotifySettings,
        catalog: impl Into<CatalogHandle>,
        wake: Arc<Notify>,
        streams: Streams,
    ) -> Self {
        // Validated when the configuration was loaded; a route that still fails has no window.
        let windows = settings
            .routes
            .iter()
            .map(|r| (r.name.clone(), Window::of_route(r).ok().flatten()))
            .collect();
        Self {
            store,
            settings,
            catalog: catalog.into(),
            wake,
            streams,
            windows,
        }
    }

    /// When a delivery queued `now` on `route` may first be sent: now, or when its window opens.
    fn not_before(&self, route: &str, now: DateTime<Utc>) -> DateTime<Utc> {
        self.windows
            .iter()
            .find(|(name, _)| name == route)
            .and_then(|(_, w)| w.as_ref())
            .map_or(now, |w| w.next_open(now))
    }
}

#[async_trait]
impl Handler for NotifyHandler {
    fn batches(&self) -> bool {
        true
    }

    /// Runs of new announcements are queued in one transaction each; a correction (or a message
    /// that does not decode) is handled alone, in its place.
    async fn handle_batch(&self, batch: &[IncomingMessage]) -> Vec<Result<(), HandleError>> {
        let mut out = Vec::with_capacity(batch.len());
        let mut run: Vec<(Announcement, Option<String>)> = Vec::new();
        for delivery in batch {
            match queueable(delivery) {
                Some(announcement) => run.push(traced(announcement, delivery)),
                None => {
                    out.extend(self.queue(std::mem::take(&mut run)).await);
                    out.push(self.handle(delivery).await);
                }
            }
        }
        out.extend(self.queue(run).await);
        out
    }

    async fn handle(&self, delivery: &IncomingMessage) -> Result<(), HandleError> {
        let announcement: Announcement = worker::decode(delivery)?;
        if announcement.id.is_empty() {
            return Err(HandleError::reject("announcement has no id"));
        }
        let now = Utc::now();
        if announcement.kind == AnnouncementKind::Correction as i32 {
            // A correction goes wherever the original went, whatever the routes say today.
            let created = self
                .store
                .enqueue_correction_held(&announcement, |route| self.not_before(route, now))
                .await
                .map_err(HandleError::from)?;
            tracing::info!(announcement = %announcement.id, corrects = %announcement.corrects, new = created, "corrections queued");
            if created > 0 {
                self.wake.notify_one();
            }
            return Ok(());
        }
        self.queue(vec![traced(announcement, delivery)])
            .await
            .pop()
            .unwrap_or(Ok(()))
    }
}

/// An announcement with the trace context its deliveries keep: a `notify.queue` span in the trace
/// of the message that brought it, whether it came alone or in a batch.
fn traced(
    announcement: Announcement,
    delivery: &IncomingMessage,
) -> (Announcement, Option<String>) {
    let span = tracing::info_span!("notify.queue", announcement = %announcement.id);
    herald_events::trace::set_parent_from(&span, &delivery.headers);
    let traceparent = span.in_scope(herald_events::trace::current_traceparent);
    (announcement, traceparent)
}

/// An announcement the batch path queues: decoded, with an id, not a correction.
fn queueable(delivery: &IncomingMessage) -> Option<Announcement> {
    let announcement = Announcement::decode(delivery.payload.as_ref()).ok()?;
    (!announcement.id.is_empty() && announcement.kind != AnnouncementKind::Correction as i32)
        .then_some(announcement)
}

impl NotifyHandler {
    /// One delivery per (matching route, channel), each due when its route's window opens.
    fn plan(&self, announcement: &Announcement, now: DateTime<Utc>) -> Vec<Planned> {
        let catalog = self.catalog.current();
        routing::select(&self.settings.routes, announcement, &catalog)
            .into_iter()
            .flat_map(|route| {
                let not_before = self.not_before(&route.name, now);
                route
                    .channel_names()
                    .into_iter()
                    .map(move |channel| Planned {
                        route: route.name.clone(),
                        channel: channel.to_string(),
                        not_before,
                    })
            })
            .collect()
    }

    /// Queues a run of announcements' deliveries (each under its trace) in one transaction;
    /// answers for each announcement.
    async fn queue(
        &self,
        run: Vec<(Announcement, Option<String>)>,
    ) -> Vec<Result<(), HandleError>> {
        if run.is_empty() {
            return Vec::new();
        }
        let now = Utc::now();
        let plans: Vec<Vec<Planned>> = run.iter().map(|(a, _)| self.plan(a, now)).collect();
        let items: Vec<Enqueue<'_>> = run
            .iter()
            .zip(&plans)
            .filter(|(_, planned)| !planned.is_empty())
            .map(|((announcement, traceparent), planned)| Enqueue {
                announcement,
                planned,
                traceparent: traceparent.clone(),
            })
            .collect();
        // A delivery due now to a stream that takes it claimed is queued claimed, in the same
        // statement, and handed to the stream after the commit: no claim of the dispatcher's, no
        // wait for its turn. Places are reserved first, so nothing claimed is left without one.
        let mut due_now: HashMap<&str, usize> = HashMap::new();
        for p in items.iter().flat_map(|item| item.planned) {
            if p.not_before <= now {
                *due_now.entry(p.channel.as_str()).or_default() += 1;
            }
        }
        let mut places: HashMap<&str, _> = due_now
            .into_iter()
            .filter_map(|(channel, n)| Some((channel, self.streams.reserve_claimed(channel, n)?)))
            .collect();
        let queued = if items.is_empty() {
            Ok(Queued::default())
        } else {
            self.store
                .enqueue_claiming(
                    &items,
                    |p| p.not_before <= now && places.contains_key(p.channel.as_str()),
                    dispatcher::lease(&self.settings),
                )
                .await
        };
        match queued {
            Ok(queued) => {
                for ((announcement, _), planned) in run.iter().zip(&plans) {
                    if planned.is_empty() {
                        tracing::info!(announcement = %announcement.id, "no route matches; nothing to deliver");
                    } else {
                        let held = planned.iter().filter(|p| p.not_before > now).count();
                        tracing::info!(announcement = %announcement.id, deliveries = planned.len(), held, "deliveries queued");
                    }
                }
                let mut pending = queued.created - queued.claimed.len() as u64;
                let mut placeless = Vec::new();
                for claimed in queued.claimed {
                    match places
                        .get_mut(claimed.channel.as_str())
                        .and_then(Iterator::next)
                    {
                        Some(place) => place.send(claimed),
                        None => placeless.push(claimed),
                    }
                }
                // Cannot happen (a place was reserved for every row claimed); if it did, the
                // dispatcher takes them once they are pending again.
                if !placeless.is_empty() {
                    pending += placeless.len() as u64;
                    if let Err(e) = self.store.release(&placeless).await {
                        tracing::warn!(error = %e, deliveries = placeless.len(), "cannot give claimed deliveries back; they are sent when their claim runs out");
                    }
                }
                if pending > 0 {
                    self.wake.notify_one();
                }
                run.iter().map(|_| Ok(())).collect()
            }
            Err(e) => {
                let failed = HandleError::from(e);
                run.iter().map(|_| Err(failed.for_each_message())).collect()
            }
        }
    }
}
