//! The scoring stage: one event in; at most one win recorded (provisional, or confirmed at once when
//! its hold-back is zero), and any win the event withdraws.

use std::sync::Arc;

use async_trait::async_trait;
use herald_catalog::Catalog;
use herald_events::{
    Bus, IncomingMessage,
    worker::{self, HandleError, Handler},
};
use herald_proto::v1::{EventKind, ItsmEvent, Win, WinStatus};

use crate::{config::ScoringSettings, publish, score, store::Store};

pub struct ScoringHandler {
    pub store: Store,
    pub bus: Arc<dyn Bus>,
    pub catalog: Arc<Catalog>,
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
        let result = score::score(&event, &self.catalog, &self.settings);
        if let Err(reason) = &result {
            tracing::info!(event = %event.id, reason = %reason.0, "no win");
        }
        let recorded = self
            .store
            .record_event(
                &event,
                &result,
                &self.settings.verification,
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
