//! The spotlight stage: count each win into the rollups once, and announce the headline ones.

use std::sync::Arc;

use async_trait::async_trait;
use herald_catalog::Catalog;
use herald_events::{
    Bus, IncomingMessage, OutgoingMessage, subjects,
    worker::{self, HandleError, Handler},
};
use herald_proto::{
    time::{opt_from_timestamp, to_timestamp},
    v1::{Announcement, AnnouncementKind, Win},
};
use prost::Message;
use sha2::{Digest, Sha256};

use crate::{card, config::SpotlightSettings, store::Store};

pub struct SpotlightHandler {
    pub store: Store,
    pub bus: Arc<dyn Bus>,
    pub catalog: Arc<Catalog>,
    pub settings: SpotlightSettings,
}

/// Deterministic, so a redelivered win can never yield a second announcement.
pub fn announcement_id(win_id: &str) -> String {
    let digest = Sha256::digest(format!("headline:{win_id}").as_bytes());
    format!("a-{}", hex::encode(&digest[..8]))
}

#[async_trait]
impl Handler for SpotlightHandler {
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
        let value = win.value.clone().unwrap_or_default();
        let announcement =
            (value.amount >= self.settings.headline_min_value).then(|| Announcement {
                id: announcement_id(&win.id),
                kind: AnnouncementKind::HeadlineWin as i32,
                created_at: Some(to_timestamp(chrono::Utc::now())),
                card: Some(card::headline_card(&win, &self.catalog)),
                win_id: win.id.clone(),
                event_kind: win.kind,
                business_service: win.business_service.clone(),
                team: win.team.clone(),
                value_amount: value.amount,
                currency: value.currency.clone(),
            });
        let stored = self
            .store
            .count_win(
                &win,
                occurred_at,
                self.catalog.organisation().tz(),
                announcement.as_ref(),
            )
            .await
            .map_err(HandleError::from)?;
        if let Some(announcement) = stored {
            let message = OutgoingMessage::new(
                subjects::announcement(AnnouncementKind::HeadlineWin),
                announcement.id.clone(),
                announcement.encode_to_vec(),
            )
            .with_ordering_key(announcement.id.clone())
            .with_trace_context();
            self.bus.publish(message).await?;
            tracing::info!(win = %win.id, announcement = %announcement.id, "headline announced");
            metrics::counter!("herald_spotlight_announcements_total").increment(1);
        }
        Ok(())
    }
}
