//! The spotlight stage: count each confirmed win into the rollups once and announce the headline
//! ones; take a withdrawn win out of every figure again and correct its announcement.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use herald_catalog::CatalogHandle;
use herald_events::{
    Bus, IncomingMessage, OutgoingMessage, subjects,
    worker::{self, HandleError, Handler},
};
use herald_proto::{
    time::{opt_from_timestamp, to_timestamp},
    v1::{Announcement, AnnouncementKind, LessonStory, Origin, Win, WinStatus},
};
use prost::Message;
use sha2::{Digest, Sha256};

use crate::{
    card,
    config::SpotlightSettings,
    store::{Store, StoreError},
};

pub struct SpotlightHandler {
    pub store: Store,
    pub bus: Arc<dyn Bus>,
    /// Read once per message: a reload takes effect from the next one.
    pub catalog: CatalogHandle,
    pub settings: SpotlightSettings,
}

/// Deterministic, so a redelivered win can never yield a second announcement.
pub fn announcement_id(win_id: &str) -> String {
    let digest = Sha256::digest(format!("headline:{win_id}").as_bytes());
    format!("a-{}", hex::encode(&digest[..8]))
}

/// The correction of an announcement: deterministic too.
pub fn correction_id(announcement_id: &str) -> String {
    let digest = Sha256::digest(format!("correction:{announcement_id}").as_bytes());
    format!("c-{}", hex::encode(&digest[..8]))
}

#[async_trait]
impl Handler for SpotlightHandler {
    fn batches(&self) -> bool {
        true
    }

    /// Runs of confirmed wins are counted in one transaction each; anything else (a lesson, a
    /// withdrawal, a message that does not decode) is handled alone, in its place, so the order
    /// of a win's confirmation and withdrawal is kept.
    async fn handle_batch(&self, batch: &[IncomingMessage]) -> Vec<Result<(), HandleError>> {
        let mut out: Vec<Result<(), HandleError>> = Vec::with_capacity(batch.len());
        let mut run: Vec<(usize, Win, DateTime<Utc>)> = Vec::new();
        for (i, delivery) in batch.iter().enumerate() {
            match countable(delivery) {
                Some((win, occurred_at)) => run.push((i, win, occurred_at)),
                None => {
                    self.count_run(std::mem::take(&mut run), batch, &mut out)
                        .await;
                    out.push(self.handle(delivery).await);
                }
            }
        }
        self.count_run(run, batch, &mut out).await;
        out
    }

    async fn handle(&self, delivery: &IncomingMessage) -> Result<(), HandleError> {
        let win: Win = worker::decode(delivery)?;
        if win.id.is_empty() {
            return Err(HandleError::reject("win has no id"));
        }
        let Some(occurred_at) = opt_from_timestamp(win.occurred_at.as_ref()) else {
            return Err(HandleError::reject(format!(
                "win {} has no occurred_at",
                win.id
            )));
        };
        if let Some(lesson) = &win.lesson {
            return self.lesson(&win, lesson, occurred_at).await;
        }
        match WinStatus::try_from(win.status) {
            Ok(WinStatus::Confirmed | WinStatus::Unspecified) => {
                // The batch path's, for a batch of one: the same statements and the same spans.
                let mut out = Vec::with_capacity(1);
                self.count_run(
                    vec![(0, win, occurred_at)],
                    std::slice::from_ref(delivery),
                    &mut out,
                )
                .await;
                out.pop().unwrap_or_else(|| {
                    Err(HandleError::retry(
                        "the win was not answered for; try again",
                    ))
                })
            }
            Ok(WinStatus::Revoked) => self.revoke(&win, occurred_at).await,
            Ok(WinStatus::Provisional) => {
                // Never in public figures: scoring does not publish these; one that arrives anyway
                // waits for its confirmation.
                tracing::warn!(win = %win.id, "provisional win on the bus ignored");
                Ok(())
            }
            Err(_) => Err(HandleError::reject(format!(
                "win {} has a status this spotlight does not know ({}); upgrade spotlight, then replay it",
                win.id, win.status
            ))),
        }
    }
}

/// A confirmed win to count (not a lesson, not a withdrawal), as the batch path takes it.
fn countable(delivery: &IncomingMessage) -> Option<(Win, DateTime<Utc>)> {
    let win: Win = Win::decode(delivery.payload.as_ref()).ok()?;
    let occurred_at = opt_from_timestamp(win.occurred_at.as_ref())?;
    let confirmed = matches!(
        WinStatus::try_from(win.status),
        Ok(WinStatus::Confirmed | WinStatus::Unspecified)
    );
    (confirmed && !win.id.is_empty() && win.lesson.is_none()).then_some((win, occurred_at))
}

impl SpotlightHandler {
    /// Counts a run of confirmed wins in one transaction and publishes their announcements, each
    /// under its own message's trace; pushes one outcome per win onto `out`.
    async fn count_run(
        &self,
        run: Vec<(usize, Win, DateTime<Utc>)>,
        batch: &[IncomingMessage],
        out: &mut Vec<Result<(), HandleError>>,
    ) {
        if run.is_empty() {
            return;
        }
        let tz = self.catalog.current().organisation().tz();
        let items: Vec<(Win, DateTime<Utc>, Option<Announcement>)> = run
            .iter()
            .map(|(_, win, at)| (win.clone(), *at, self.headline(win, *at)))
            .collect();
        // Every win of the run answered with the same error.
        let fail_all = |out: &mut Vec<Result<(), HandleError>>, e: StoreError| {
            let failed = HandleError::from(e);
            out.extend(run.iter().map(|_| Err(failed.for_each_message())));
        };
        let stored = match self.store.count_wins(&items, tz).await {
            Ok(stored) => stored,
            Err(e) => return fail_all(out, e),
        };
        // Every announcement of the run in flight at once, each under its own message's trace.
        let mut announced = Vec::new();
        let mut messages = Vec::new();
        for ((i, win, _), announcement) in run.iter().zip(stored) {
            let Some(announcement) = announcement else {
                announced.push(None);
                continue;
            };
            let span = tracing::info_span!("announce", win = %win.id);
            if let Some(delivery) = batch.get(*i) {
                herald_events::trace::set_parent_from(&span, &delivery.headers);
            }
            messages.push(span.in_scope(|| headline_message(&announcement)));
            announced.push(Some((win.id.as_str(), announcement.id)));
        }
        let mut published = self.bus.publish_in_order(messages).await.into_iter();
        // The count reaches the disk only now, while notify already has the announcements: the
        // wins are acked after this, so a power cut before it loses the count and keeps the wins,
        // which are counted again into the same figures and announcements.
        if let Err(e) = self.store.sync().await {
            return fail_all(out, e);
        }
        for announced in announced {
            let Some((win, announcement)) = announced else {
                out.push(Ok(()));
                continue;
            };
            match published.next() {
                Some(Ok(_)) => {
                    tracing::info!(%win, %announcement, "headline announced");
                    metrics::counter!("herald_spotlight_announcements_total", "kind" => "headline_win")
                        .increment(1);
                    out.push(Ok(()));
                }
                Some(Err(e)) => out.push(Err(e.into())),
                None => out.push(Err(HandleError::retry(format!(
                    "announcement {announcement} of win {win} got no answer from the bus"
                )))),
            }
        }
    }

    /// The headline announcement `win` earns, if it is worth one and is news.
    fn headline(&self, win: &Win, occurred_at: DateTime<Utc>) -> Option<Announcement> {
        let value = win.value.clone().unwrap_or_default();
        // Requests on time are told in digests, one line per team, never one headline a ticket.
        let headline = value.amount >= self.settings.headline_min_value && !win.digest_only;
        let news = self.is_news(win, occurred_at);
        if headline && !news {
            tracing::info!(win = %win.id, "history, not news: counted without a headline");
        }
        (headline && news).then(|| Announcement {
            id: announcement_id(&win.id),
            kind: AnnouncementKind::HeadlineWin as i32,
            created_at: Some(to_timestamp(Utc::now())),
            card: Some(card::headline_card(win, &self.catalog.current())),
            win_id: win.id.clone(),
            event_kind: win.kind,
            business_service: win.business_service.clone(),
            team: win.team.clone(),
            value_amount: value.amount,
            currency: value.currency.clone(),
            corrects: String::new(),
            digest: String::new(),
        })
    }

    /// History is not news: backfilled or caught-up outcomes, and outcomes confirmed long after
    /// they happened, count in their period but are never announced as live headlines.
    fn is_news(&self, win: &Win, occurred_at: DateTime<Utc>) -> bool {
        let origin = Origin::try_from(win.origin).unwrap_or(Origin::Unspecified);
        if matches!(origin, Origin::Backfill | Origin::CatchUp) {
            return false;
        }
        let age = Utc::now() - occurred_at;
        age.to_std()
            .map(|age| age <= self.settings.announce_max_age)
            .unwrap_or(true)
    }

    /// A lesson learned is announced (when its team shares lessons and it is news) and counted
    /// nowhere: it has no value and changes nobody's totals.
    async fn lesson(
        &self,
        win: &Win,
        lesson: &LessonStory,
        occurred_at: DateTime<Utc>,
    ) -> Result<(), HandleError> {
        if !lesson.public || !self.is_news(win, occurred_at) {
            tracing::info!(win = %win.id, public = lesson.public, "lesson kept out of public announcements");
            return Ok(());
        }
        let announcement = Announcement {
            id: announcement_id(&win.id),
            kind: AnnouncementKind::Lesson as i32,
            created_at: Some(to_timestamp(Utc::now())),
            card: Some(card::lesson_card(win, lesson, &self.catalog.current())),
            win_id: win.id.clone(),
            event_kind: win.kind,
            business_service: win.business_service.clone(),
            team: win.team.clone(),
            value_amount: 0.0,
            currency: String::new(),
            corrects: String::new(),
            digest: String::new(),
        };
        let stored = self
            .store
            .keep_announcement(&announcement, "lesson")
            .await
            .map_err(HandleError::from)?;
        self.publish(&stored, AnnouncementKind::Lesson).await?;
        tracing::info!(win = %win.id, announcement = %stored.id, "lesson announced");
        metrics::counter!("herald_spotlight_announcements_total", "kind" => "lesson").increment(1);
        Ok(())
    }

    async fn revoke(&self, win: &Win, occurred_at: DateTime<Utc>) -> Result<(), HandleError> {
        let current = self.catalog.current();
        let catalog = current.as_ref();
        let correction = self
            .store
            .revoke_win(win, occurred_at, catalog.organisation().tz(), |original| {
                Announcement {
                    id: correction_id(&original.id),
                    kind: AnnouncementKind::Correction as i32,
                    created_at: Some(to_timestamp(Utc::now())),
                    card: Some(card::correction_card(win, original, catalog)),
                    win_id: win.id.clone(),
                    event_kind: win.kind,
                    business_service: win.business_service.clone(),
                    team: win.team.clone(),
                    value_amount: 0.0,
                    currency: original.currency.clone(),
                    corrects: original.id.clone(),
                    digest: String::new(),
                }
            })
            .await
            .map_err(HandleError::from)?;
        tracing::info!(win = %win.id, reason = %win.status_reason, "win withdrawn from every figure");
        if let Some(correction) = correction {
            self.publish(&correction, AnnouncementKind::Correction)
                .await?;
            tracing::info!(win = %win.id, correction = %correction.id, corrects = %correction.corrects, "correction announced");
            metrics::counter!("herald_spotlight_announcements_total", "kind" => "correction")
                .increment(1);
        }
        Ok(())
    }

    async fn publish(
        &self,
        announcement: &Announcement,
        kind: AnnouncementKind,
    ) -> Result<(), HandleError> {
        self.bus
            .publish(announcement_message(announcement, kind))
            .await?;
        Ok(())
    }
}

/// A headline announcement. `count_wins` hands back the stored announcement when a win is
/// delivered again, and the win is acknowledged only after this publish, so a publish lost in a
/// power cut is made again: the embedded bus need not wait for the disk.
fn headline_message(announcement: &Announcement) -> OutgoingMessage {
    announcement_message(announcement, AnnouncementKind::HeadlineWin).republished_on_redelivery()
}

/// An announcement on its kind's subject, under the current span's trace.
fn announcement_message(announcement: &Announcement, kind: AnnouncementKind) -> OutgoingMessage {
    OutgoingMessage::new(
        subjects::announcement(kind),
        announcement.id.clone(),
        announcement.encode_to_vec(),
    )
    .with_ordering_key(announcement.id.clone())
    .with_trace_context()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_headline_is_left_to_its_win_s_redelivery() {
        let announcement = Announcement {
            id: "a-1".into(),
            ..Announcement::default()
        };
        assert!(headline_message(&announcement).republished_on_redelivery);
        for kind in [AnnouncementKind::Lesson, AnnouncementKind::Correction] {
            assert!(!announcement_message(&announcement, kind).republished_on_redelivery);
        }
    }
}
