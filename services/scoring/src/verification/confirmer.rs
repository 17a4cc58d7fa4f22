//! Confirms provisional wins once their hold-back has passed, and publishes whatever status change
//! is still waiting in the outbox. One replica at a time holds the lease; nothing lives only in
//! memory, so a restart or another replica picks up where a dead one stopped.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use herald_events::Bus;
use tokio_util::sync::CancellationToken;

use crate::{
    publish,
    store::{Lease, Store},
};

pub async fn run(store: Store, bus: Arc<dyn Bus>, every: Duration, shutdown: CancellationToken) {
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
        match pass(&store, bus.as_ref(), &lease).await {
            Ok(0) => {}
            Ok(published) => tracing::info!(published, "confirmed wins published"),
            Err(e) => tracing::warn!(error = %e, "confirming due wins failed; will try again"),
        }
    }
    tracing::info!("confirmer stopped");
}

/// One pass: confirm everything due, then empty the outbox. Returns how many wins were published.
pub async fn pass(store: &Store, bus: &dyn Bus, lease: &Lease) -> anyhow::Result<usize> {
    if !store.hold(lease, Utc::now()).await? {
        return Ok(0);
    }
    loop {
        let confirmed = store.confirm_due(Utc::now()).await?;
        if !confirmed.is_empty() {
            tracing::debug!(confirmed = confirmed.len(), "hold-back passed");
        }
        if confirmed.len() < 500 {
            break;
        }
    }
    let mut published = 0;
    loop {
        let pending = store.unpublished().await?;
        if pending.is_empty() {
            break;
        }
        publish::wins(bus, &pending).await?;
        store.mark_published(&pending).await?;
        published += pending.len();
    }
    Ok(published)
}
