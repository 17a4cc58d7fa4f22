//! The scoring stage: one event in; at most one win recorded (provisional, or confirmed at once when
//! its hold-back is zero), and any win the event withdraws.

use std::sync::Arc;

use async_trait::async_trait;
use herald_catalog::{Catalog, CatalogHandle};
use herald_events::{
    Bus, Headers, IncomingMessage,
    worker::{self, HandleError, Handler},
};
use herald_proto::v1::{EventKind, ItsmEvent, Win, WinStatus};

use crate::{
    config::ScoringSettings,
    marks::PendingMarks,
    publish::{self, Backing},
    score::{self, Outcome},
    store::{Recorded, Store},
};

pub struct ScoringHandler {
    pub store: Store,
    pub bus: Arc<dyn Bus>,
    pub catalog: CatalogHandle,
    pub settings: ScoringSettings,
    /// Published wins whose outbox mark the next batch's transaction clears.
    pub marks: Arc<PendingMarks>,
}

/// An event decoded and scored, ready to record.
struct Prepared {
    event: ItsmEvent,
    outcome: Outcome,
    /// The event message's headers: its trace context goes on with the wins it releases.
    headers: Headers,
}

impl ScoringHandler {
    /// Decodes and scores one message against `catalog`; an error answers the message.
    fn prepare(
        &self,
        delivery: &IncomingMessage,
        catalog: &Catalog,
    ) -> Result<Prepared, HandleError> {
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
        let mut outcome = score::outcome(&event, catalog, &self.settings);
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
        Ok(Prepared {
            event,
            outcome,
            headers: delivery.headers.clone(),
        })
    }

    /// Records prepared events in one transaction, then publishes every win they release at once.
    /// The events are acked only after that publish, which is what lets an event's own win skip
    /// the outbox.
    async fn record(&self, prepared: &[Prepared], catalog: &Catalog) -> Result<(), HandleError> {
        let batch: Vec<(&ItsmEvent, &Outcome)> =
            prepared.iter().map(|p| (&p.event, &p.outcome)).collect();
        let published = self.marks.take();
        let mut recorded = match self
            .store
            .record_outcomes(
                &batch,
                &self.settings,
                catalog.organisation().tz(),
                chrono::Utc::now(),
                &published,
            )
            .await
        {
            Ok(recorded) => recorded,
            Err(e) => {
                self.marks.add(published);
                return Err(HandleError::from(e));
            }
        };
        // Each event's own win, then the wins waiting in the outbox, which alone get a mark to clear.
        let mut marked = Vec::new();
        for (p, recorded) in prepared.iter().zip(&mut recorded) {
            note(&p.event, recorded);
            marked.extend(recorded.publish.drain(..).map(|win| (win, &p.headers)));
        }
        let own: Vec<(&Win, &_)> = prepared
            .iter()
            .zip(&recorded)
            .filter_map(|(p, recorded)| recorded.publish_own().map(|win| (win, &p.headers)))
            .collect();
        if !own.is_empty() || !marked.is_empty() {
            // An error here leaves every event of the batch unacked: a redelivery publishes its
            // win again, and the outbox keeps the rest.
            let own_wins = own
                .iter()
                .map(|(win, headers)| (*win, Some(*headers), Backing::Redelivery));
            let outbox = marked
                .iter()
                .map(|(win, headers)| (win, Some(*headers), Backing::Outbox));
            publish::traced_wins(self.bus.as_ref(), own_wins.chain(outbox)).await?;
            if !marked.is_empty() {
                self.marks
                    .add(marked.into_iter().map(|(win, _)| win).collect());
            }
        }
        // The commit reaches the disk only now, while spotlight already counts the wins: the
        // events are acked after this, so a power cut before it loses the commit and keeps the
        // events, which are scored again into the same wins.
        self.store.sync().await?;
        Ok(())
    }
}

/// Logs and counts what recording an event did.
fn note(event: &ItsmEvent, recorded: &Recorded) {
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
}

#[async_trait]
impl Handler for ScoringHandler {
    async fn handle(&self, delivery: &IncomingMessage) -> Result<(), HandleError> {
        // One catalog for the whole message, even if a reload lands meanwhile.
        let catalog = self.catalog.current();
        let prepared = self.prepare(delivery, &catalog)?;
        self.record(std::slice::from_ref(&prepared), &catalog).await
    }

    fn batches(&self) -> bool {
        true
    }

    /// A lane's waiting events in one transaction and one commit (one per event capped scoring
    /// near 150 events a second). If the batch fails as a whole for a reason other than the
    /// database or bus being away, each event is tried again on its own, so one bad event costs
    /// only itself.
    async fn handle_batch(&self, batch: &[IncomingMessage]) -> Vec<Result<(), HandleError>> {
        let catalog = self.catalog.current();
        let mut answers: Vec<Option<Result<(), HandleError>>> = Vec::with_capacity(batch.len());
        let mut prepared = Vec::new();
        let mut indexes = Vec::new();
        for (i, delivery) in batch.iter().enumerate() {
            match self.prepare(delivery, &catalog) {
                Ok(p) => {
                    prepared.push(p);
                    indexes.push(i);
                    answers.push(None);
                }
                Err(e) => answers.push(Some(Err(e))),
            }
        }
        match self.record(&prepared, &catalog).await {
            Ok(()) => {
                for i in &indexes {
                    answers[*i] = Some(Ok(()));
                }
            }
            Err(e) if prepared.len() > 1 && !matches!(e, HandleError::Unavailable(_)) => {
                tracing::warn!(events = prepared.len(), error = %e.reason(), "a batch failed; recording its events one by one");
                for (p, i) in prepared.iter().zip(&indexes) {
                    answers[*i] = Some(self.record(std::slice::from_ref(p), &catalog).await);
                }
            }
            Err(e) => {
                for i in &indexes {
                    answers[*i] = Some(Err(e.for_each_message()));
                }
            }
        }
        answers
            .into_iter()
            .map(|a| a.unwrap_or_else(|| Err(HandleError::retry("no answer for this event"))))
            .collect()
    }
}

fn subjects_kind(win: &Win) -> &'static str {
    EventKind::try_from(win.kind)
        .map(|k| k.token())
        .unwrap_or("unspecified")
}
