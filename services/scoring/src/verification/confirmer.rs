//! Confirms provisional wins once their hold-back has passed, and publishes whatever status change
//! is still waiting in the outbox. One replica at a time holds the lease; nothing lives only in
//! memory, so a restart or another replica picks up where a dead one stopped.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use herald_events::Bus;
use tokio_util::sync::CancellationToken;

use herald_catalog::CatalogHandle;
use herald_proto::v1::{EventKind, ItsmEvent, Record, Win};

use crate::{
    config::ScoringSettings,
    publish,
    store::{Lease, ProblemCounts, Store},
    value,
};

/// What the confirmer needs to value a closed problem when its observation window ends.
#[derive(Clone)]
pub struct Valuer {
    pub catalog: CatalogHandle,
    pub settings: ScoringSettings,
}

impl Valuer {
    /// The problem's value from the related incidents before and after it, with the credit split
    /// as it was and scaled to the new amount; `Err` with the reason when the drop earned nothing.
    pub fn problem(&self, win: &Win, counts: ProblemCounts) -> Result<Win, String> {
        let event = ItsmEvent {
            id: win.event_id.clone(),
            source: win.source,
            kind: EventKind::ProblemClosed as i32,
            occurred_at: win.occurred_at,
            record: Some(Record {
                number: win.record_number.clone(),
                title: win.record_title.clone(),
                business_service: win.business_service.clone(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let valuation = value::problem_eliminated(
            &event,
            &self.catalog.current(),
            &self.settings,
            counts.before,
            counts.after,
            counts.window_days,
        )
        .map_err(|reason| reason.0)?;
        let mut valued = win.clone();
        let amount = valuation.value.amount;
        valued.value = Some(valuation.value);
        valued.headline = valuation.headline;
        for credit in &mut valued.credits {
            credit.amount = amount * credit.share;
        }
        Ok(valued)
    }
}

pub async fn run(
    store: Store,
    bus: Arc<dyn Bus>,
    valuer: Valuer,
    every: Duration,
    shutdown: CancellationToken,
) {
    let lease = Lease {
        name: "confirm",
        holder: uuid::Uuid::new_v4().to_string(),
        // Long enough to survive a slow pass, short enough that another replica takes over soon.
        ttl: chrono::Duration::from_std(every * 3 + Duration::from_secs(10))
            .unwrap_or(chrono::Duration::seconds(30)),
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        match pass(&store, bus.as_ref(), &valuer, &lease).await {
            Ok(0) => {}
            Ok(published) => tracing::info!(published, "confirmed wins published"),
            Err(e) => tracing::warn!(error = %e, "confirming due wins failed; will try again"),
        }
    }
    tracing::info!("confirmer stopped");
}

/// One pass: confirm everything due, then empty the outbox. Returns how many wins were published.
pub async fn pass(
    store: &Store,
    bus: &dyn Bus,
    valuer: &Valuer,
    lease: &Lease,
) -> anyhow::Result<usize> {
    if !store.hold(lease, Utc::now()).await? {
        return Ok(0);
    }
    let revalue = |win: &Win, counts: ProblemCounts| valuer.problem(win, counts);
    let mut published = 0;
    loop {
        let confirmed = store.confirm_due_with(Utc::now(), &revalue).await?;
        if !confirmed.is_empty() {
            tracing::debug!(confirmed = confirmed.len(), "hold-back passed");
            publish::wins(bus, &confirmed).await?;
            store.mark_published(&confirmed).await?;
            published += confirmed.len();
        }
        if confirmed.len() < 500 {
            break;
        }
    }
    // The outbox holds the changes a lane committed but did not get to publish (it stopped, or
    // the bus was away): withdrawals and lessons (a win confirmed on arrival is not there: its
    // event's redelivery publishes it). A lane publishes its changes right after its commit and
    // clears their marks with its next batch, so the outbox leaves a change alone until that has
    // had time to happen: under load it had been publishing again, and marking, nearly every
    // change the lanes had just published themselves.
    loop {
        let pending = store.unpublished(Utc::now() - LANES_PUBLISH_WITHIN).await?;
        if pending.is_empty() {
            break;
        }
        publish::wins(bus, &pending).await?;
        store.mark_published(&pending).await?;
        published += pending.len();
    }
    Ok(published)
}

/// How long a lane has to publish what it committed and clear its marks before the outbox takes
/// them over.
const LANES_PUBLISH_WITHIN: chrono::Duration = chrono::Duration::seconds(3);
