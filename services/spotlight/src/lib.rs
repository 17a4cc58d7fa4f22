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
use herald_runtime::{Listeners, Readiness, health, startup};
use tokio_util::sync::CancellationToken;

pub use config::SpotlightConfig;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Runs spotlight on the given listeners until `shutdown` is cancelled.
pub async fn run(
    config: SpotlightConfig,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let readiness = Readiness::new("spotlight");
    tracing::info!(http = %listeners.http_addr()?, grpc = %listeners.grpc_addr()?, "spotlight listening");
    let http_task = tokio::spawn(startup::serve_http(
        listeners.http,
        health::router(readiness.clone()),
        shutdown.clone(),
    ));
    let consumer = config
        .spotlight
        .consumer
        .consumer(ConsumerSpec::spotlight());
    let Some(bus) = startup::connect_bus(
        &config.shared,
        "herald-spotlight",
        std::slice::from_ref(&consumer),
        &readiness,
        &shutdown,
    )
    .await
    else {
        http_task.await??;
        return Ok(());
    };
    let Some(pool) = startup::connect_database(
        &config.shared,
        "spotlight",
        &MIGRATOR,
        &readiness,
        &shutdown,
    )
    .await
    else {
        http_task.await??;
        return Ok(());
    };
    let store = store::Store::new(pool.clone());
    let catalog = Arc::new(config.shared.catalog.clone());
    let handler = Arc::new(handler::SpotlightHandler {
        store: store.clone(),
        bus: bus.clone(),
        catalog: catalog.clone(),
        settings: config.spotlight.clone(),
    });
    let options = config.spotlight.consumer.worker_options("spotlight");
    let worker_task = tokio::spawn(worker::run(
        bus.clone(),
        consumer,
        handler,
        options,
        shutdown.clone(),
    ));

    let api = SpotlightServer::new(grpc::SpotlightApi { store, catalog });
    let grpc_task = tokio::spawn(herald_runtime::grpc::serve(
        listeners.grpc,
        api,
        shutdown.clone(),
    ));
    readiness.started();
    tracing::info!("spotlight ready");

    shutdown.cancelled().await;
    let (worker, http, grpc) = tokio::join!(worker_task, http_task, grpc_task);
    worker?;
    http??;
    grpc??;
    pool.close().await;
    tracing::info!("spotlight stopped");
    Ok(())
}

/// Spotlight as its binary runs it.
pub struct Spotlight;

impl herald_runtime::service::Service for Spotlight {
    type Config = SpotlightConfig;
    const NAME: &'static str = "herald-spotlight";

    fn load(
        loader: &herald_runtime::ConfigLoader,
    ) -> Result<SpotlightConfig, herald_runtime::config::ConfigError> {
        SpotlightConfig::load(loader)
    }

    fn shared(config: &SpotlightConfig) -> &herald_runtime::SharedConfig {
        &config.shared
    }

    fn addrs(config: &SpotlightConfig) -> (std::net::SocketAddr, std::net::SocketAddr) {
        (config.spotlight.http_addr, config.spotlight.grpc_addr)
    }

    fn run(
        config: SpotlightConfig,
        listeners: Listeners,
        shutdown: CancellationToken,
    ) -> impl std::future::Future<Output = anyhow::Result<()>> + Send {
        run(config, listeners, shutdown)
    }
}
