//! The scoring stage: one event in, at most one win out.

use std::sync::Arc;

use async_trait::async_trait;
use herald_catalog::Catalog;
use herald_events::{
    Bus, IncomingMessage, OutgoingMessage, subjects,
    worker::{self, HandleError, Handler},
};
use herald_proto::v1::{EventKind, ItsmEvent, Win};
use prost::Message;

use crate::{
    config::ScoringSettings,
    score,
    store::{Recorded, Store},
};

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
            .record(&event, &result)
            .await
            .map_err(HandleError::from)?;
        let win = match recorded {
            Recorded::New(win) => win,
            Recorded::Seen(win) => {
                tracing::debug!(event = %event.id, "event seen before; publishing its win again");
                win
            }
        };
        if let Some(win) = win {
            self.publish(&win).await?;
            let amount = win.value.as_ref().map(|v| v.amount).unwrap_or(0.0);
            tracing::info!(event = %event.id, win = %win.id, amount, "win");
            metrics::counter!("herald_scoring_wins_total", "kind" => subjects_kind(&win))
                .increment(1);
        }
        Ok(())
    }
}

fn subjects_kind(win: &Win) -> &'static str {
    EventKind::try_from(win.kind)
        .map(|k| k.token())
        .unwrap_or("unspecified")
}

impl ScoringHandler {
    async fn publish(&self, win: &Win) -> Result<(), HandleError> {
        let kind = EventKind::try_from(win.kind).unwrap_or(EventKind::Unspecified);
        let message =
            OutgoingMessage::new(subjects::win(kind), win.id.clone(), win.encode_to_vec())
                .with_ordering_key(win.id.clone())
                .with_trace_context();
        self.bus.publish(message).await?;
        Ok(())
    }
}
