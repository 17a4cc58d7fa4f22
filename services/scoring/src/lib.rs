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
use herald_runtime::{Listeners, Readiness, health, startup};
use tokio_util::sync::CancellationToken;

pub use config::ScoringConfig;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Runs scoring on the given listeners until `shutdown` is cancelled.
pub async fn run(
    config: ScoringConfig,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let readiness = Readiness::new("scoring");
    tracing::info!(http = %listeners.http_addr()?, grpc = %listeners.grpc_addr()?, "scoring listening");
    let http_task = tokio::spawn(startup::serve_http(
        listeners.http,
        health::router(readiness.clone()),
        shutdown.clone(),
    ));
    if config.shared.catalog.services().is_empty() {
        tracing::warn!("the catalog has no business services: no win will carry a value");
    }
    let consumer = config.scoring.consumer.consumer(ConsumerSpec::scoring());
    let Some(bus) = startup::connect_bus(
        &config.shared,
        "herald-scoring",
        std::slice::from_ref(&consumer),
        &readiness,
        &shutdown,
    )
    .await
    else {
        http_task.await??;
        return Ok(());
    };
    let Some(pool) =
        startup::connect_database(&config.shared, "scoring", &MIGRATOR, &readiness, &shutdown)
            .await
    else {
        http_task.await??;
        return Ok(());
    };
    let store = store::Store::new(pool.clone());
    let catalog = Arc::new(config.shared.catalog.clone());

    let handler = Arc::new(handler::ScoringHandler {
        store: store.clone(),
        bus: bus.clone(),
        catalog: catalog.clone(),
        settings: config.scoring.clone(),
    });
    let options = config.scoring.consumer.worker_options("scoring");
    let worker_task = tokio::spawn(worker::run(
        bus.clone(),
        consumer,
        handler,
        options,
        shutdown.clone(),
    ));

    let api = ScoringServer::new(grpc::ScoringApi { store, catalog });
    let grpc_task = tokio::spawn(herald_runtime::grpc::serve(
        listeners.grpc,
        api,
        shutdown.clone(),
    ));
    readiness.started();
    tracing::info!("scoring ready");

    shutdown.cancelled().await;
    let (worker, http, grpc) = tokio::join!(worker_task, http_task, grpc_task);
    worker?;
    http??;
    grpc??;
    pool.close().await;
    tracing::info!("scoring stopped");
    Ok(())
}

/// Scoring as its binary runs it.
pub struct Scoring;

impl herald_runtime::service::Service for Scoring {
    type Config = ScoringConfig;
    const NAME: &'static str = "herald-scoring";

    fn load(
        loader: &herald_runtime::ConfigLoader,
    ) -> Result<ScoringConfig, herald_runtime::config::ConfigError> {
        ScoringConfig::load(loader)
    }

    fn shared(config: &ScoringConfig) -> &herald_runtime::SharedConfig {
        &config.shared
    }

    fn addrs(config: &ScoringConfig) -> (std::net::SocketAddr, std::net::SocketAddr) {
        (config.scoring.http_addr, config.scoring.grpc_addr)
    }

    fn run(
        config: ScoringConfig,
        listeners: Listeners,
        shutdown: CancellationToken,
    ) -> impl std::future::Future<Output = anyhow::Result<()>> + Send {
        run(config, listeners, shutdown)
    }
}
