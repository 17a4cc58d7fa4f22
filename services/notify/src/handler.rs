//! The notify stage: an announcement in, one delivery per (matching route, channel) queued, held
//! until the route's sending window opens; a correction to every route that carried what it
//! corrects, in that route's window.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use herald_catalog::CatalogHandle;
use herald_events::{
    IncomingMessage,
    worker::{self, HandleError, Handler},
};
use herald_proto::v1::{Announcement, AnnouncementKind};
use tokio::sync::Notify;

use crate::{
    config::NotifySettings,
    routing,
    schedule::Window,
    store::{Planned, Store},
};

pub struct NotifyHandler {
    pub store: Store,
    pub settings: NotifySettings,
    pub catalog: CatalogHandle,
    pub wake: Arc<Notify>,
    /// Each route's sending window, by route name (`None`: always open).
    windows: Vec<(String, Option<Window>)>,
}

impl NotifyHandler {
    pub fn new(
        store: Store,
        settings: NotifySettings,
        catalog: impl Into<CatalogHandle>,
        wake: Arc<Notify>,
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
        let catalog = self.catalog.current();
        let planned: Vec<Planned> = routing::select(&self.settings.routes, &announcement, &catalog)
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
            .collect();
        if planned.is_empty() {
            tracing::info!(announcement = %announcement.id, "no route matches; nothing to deliver");
            return Ok(());
        }
        let held = planned.iter().filter(|p| p.not_before > now).count();
        let created = self
            .store
            .enqueue_planned(&announcement, &planned)
            .await
            .map_err(HandleError::from)?;
        tracing::info!(announcement = %announcement.id, deliveries = planned.len(), held, new = created, "deliveries queued");
        if created > 0 {
            self.wake.notify_one();
        }
        Ok(())
    }
}
