//! The scoring stage: one event in; at most one win recorded (provisional, or confirmed at once when
//! its hold-back is zero), and any win the event withdraws.

use std::sync::Arc;

use async_trait::async_trait;
use herald_catalog::CatalogHandle;
use herald_events::{
    Bus, IncomingMessage,
    worker::{self, HandleError, Handler},
};
use herald_proto::v1::{EventKind, ItsmEvent, Win, WinStatus};

use crate::{config::ScoringSettings, publish, score, store::Store};

pub struct ScoringHandler {
    pub store: Store,
    pub bus: Arc<dyn Bus>,
    pub catalog: CatalogHandle,
    pub settings: ScoringSettings,
}

#[async_trait]
impl Handler for ScoringHandler {
    async fn handle(&self, delivery: &IncomingMessage) -> Result<(), HandleError> {
        let event: ItsmEvent = worker::decode(delivery)?;
        if event.id.is_empty() {
            return Err(HandleError::reject("event has no id"));
        }
        if EventKind::try_from(event.kind).unwrap_or(EventKind::Unspecified)
            == EventKind::Unspecified
        {
            return Err(HandleError::reject(format!(
                "event {} has a kind this scoring does not know ({}); upgrade scoring, then replay it",
                event.id, event.kind
            )));
        }
        // One catalog for the whole message, even if a reload lands meanwhile.
        let catalog = self.catalog.current();
        let mut outcome = score::outcome(&event, &catalog, &self.settings);
        if let Err(reason) = &outcome.result {
            tracing::info!(event = %event.id, reason = %reason.0, "no win");
        }
        let version = catalog.version().to_string();
        if let Ok(scored) = outcome.result.as_mut() {
            scored.win.catalog_version = version.clone();
        }
        if let Some(lesson) = outcome.lesson.as_mut() {
            lesson.win.catalog_version = version;
        }
        let recorded = self
            .store
            .record_outcome(
                &event,
                &outcome,
                &self.settings,
                catalog.organisation().tz(),
                chrono::Utc::now(),
            )
            .await
            .map_err(HandleError::from)?;
        if !recorded.new {
            tracing::debug!(event = %event.id, "event seen before");
        }
        if let Some(win) = recorded.win.as_ref().filter(|_| recorded.new) {
            let amount = win.value.as_ref().map(|v| v.amount).unwrap_or(0.0);
            let status = WinStatus::try_from(win.status)
                .map(|s| s.token())
                .unwrap_or("unspecified");
            tracing::info!(event = %event.id, win = %win.id, amount, status, "win");
            metrics::counter!("herald_scoring_wins_total", "kind" => subjects_kind(win), "status" => status)
                .increment(1);
        }
        if !recorded.publish.is_empty() {
            publish::wins(self.bus.as_ref(), &recorded.publish).await?;
            self.store
                .mark_published(&recorded.publish)
                .await
                .map_err(HandleError::from)?;
        }
        Ok(())
    }
}

fn subjects_kind(win: &Win) -> &'static str {
    EventKind::try_from(win.kind)
        .map(|k| k.token())
        .unwrap_or("unspecified")
}
