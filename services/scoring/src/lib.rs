//! Herald scoring: turns each event into a win (what happened, for which business service, the
//! value in business terms with its formula, inputs and label, and the credit for each contributor)
//! and publishes it on `herald.wins.<kind>`.

pub mod config;
pub mod credit;
pub mod explain;
pub mod format;
pub mod grpc;
pub mod handler;
pub mod score;
pub mod store;
pub mod value;

use std::sync::Arc;

use herald_events::{ConsumerSpec, worker};
use herald_proto::v1::scoring_server::ScoringServer;
use herald_runtime::{Listeners, boot::Boot};
use tokio_util::sync::CancellationToken;

pub use config::ScoringConfig;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Runs scoring on the given listeners until `shutdown` is cancelled.
pub async fn run(
    config: ScoringConfig,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut boot = Boot::start("scoring", listeners.http, axum::Router::new(), &shutdown);
    if config.shared.catalog.services().is_empty() {
        tracing::warn!("the catalog has no business services: no win will carry a value");
    }
    let consumer = config.scoring.consumer.consumer(ConsumerSpec::scoring());
    let Some((bus, pool)) = boot
        .connect(
            &config.shared,
            std::slice::from_ref(&consumer),
            "scoring",
            &MIGRATOR,
        )
        .await
    else {
        return boot.wait().await;
    };
    let store = store::Store::new(pool);
    let catalog = Arc::new(config.shared.catalog.clone());
    let handler = Arc::new(handler::ScoringHandler {
        store: store.clone(),
        bus: bus.clone(),
        catalog: catalog.clone(),
        settings: config.scoring.clone(),
    });
    let options = config.scoring.consumer.worker_options("scoring");
    let worker = worker::run(bus, consumer, handler, options, shutdown.clone());
    boot.spawn_loop("worker", worker);
    boot.spawn_grpc(
        listeners.grpc,
        ScoringServer::new(grpc::ScoringApi { store, catalog }),
    );
    boot.ready();
    boot.wait().await
}

herald_runtime::service!(Scoring, ScoringConfig, "herald-scoring", scoring);
