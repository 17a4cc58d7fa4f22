//! Herald spotlight: keeps leaderboards and value rollups per person, team and business service,
//! announces headline wins on `herald.announcements.headline_win`, and answers gRPC queries.

pub mod card;
pub mod config;
pub mod grpc;
pub mod handler;
pub mod periods;
pub mod store;

use std::sync::Arc;

use herald_events::{ConsumerSpec, worker};
use herald_proto::v1::spotlight_server::SpotlightServer;
use herald_runtime::{Listeners, boot::Boot};
use tokio_util::sync::CancellationToken;

pub use config::SpotlightConfig;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Runs spotlight on the given listeners until `shutdown` is cancelled.
pub async fn run(
    config: SpotlightConfig,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut boot = Boot::start("spotlight", listeners.http, axum::Router::new(), &shutdown);
    let consumer = config
        .spotlight
        .consumer
        .consumer(ConsumerSpec::spotlight());
    let Some((bus, pool)) = boot
        .connect(
            &config.shared,
            std::slice::from_ref(&consumer),
            "spotlight",
            &MIGRATOR,
        )
        .await
    else {
        return boot.wait().await;
    };
    let store = store::Store::new(pool);
    let catalog = Arc::new(config.shared.catalog.clone());
    let handler = Arc::new(handler::SpotlightHandler {
        store: store.clone(),
        bus: bus.clone(),
        catalog: catalog.clone(),
        settings: config.spotlight.clone(),
    });
    let options = config.spotlight.consumer.worker_options("spotlight");
    let worker = worker::run(bus, consumer, handler, options, shutdown.clone());
    boot.spawn_loop("worker", worker);
    boot.spawn_grpc(
        listeners.grpc,
        SpotlightServer::new(grpc::SpotlightApi { store, catalog }),
    );
    boot.ready();
    boot.wait().await
}

herald_runtime::service!(Spotlight, SpotlightConfig, "herald-spotlight", spotlight);
