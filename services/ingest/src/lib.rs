//! Herald ingest: receives what ITSM tools send (webhooks, CloudEvents, gRPC), verifies it,
//! normalises it into the canonical `ItsmEvent` and publishes it to `herald.events.<source>.<kind>`.
//! A delivery is answered 202 only after JetStream stored the event: an accepted event is never lost.

pub mod accept;
pub mod config;
pub mod grpc;
pub mod http;
pub mod rejections;
pub mod sources;
pub mod verify;

use std::sync::{Arc, OnceLock};

use herald_proto::v1::{Source, ingest_server::IngestServer};
use herald_runtime::{Listeners, Readiness, health, startup};
use tokio_util::sync::CancellationToken;

pub use config::IngestConfig;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Runs ingest on the given listeners until `shutdown` is cancelled.
pub async fn run(
    config: IngestConfig,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let readiness = Readiness::new("ingest");
    let handlers = sources::handlers();
    let state = Arc::new(http::HttpState {
        max_body_bytes: config.ingest.max_body_bytes,
        source_names: handlers.iter().map(|h| h.source().token()).collect(),
        ready: OnceLock::new(),
    });
    let router = http::router(state.clone()).merge(health::router(readiness.clone()));
    tracing::info!(http = %listeners.http_addr()?, grpc = %listeners.grpc_addr()?, "ingest listening");
    let http_task = tokio::spawn(startup::serve_http(
        listeners.http,
        router,
        shutdown.clone(),
    ));

    let Some(bus) =
        startup::connect_bus(&config.shared, "herald-ingest", &[], &readiness, &shutdown).await
    else {
        return finish(http_task).await;
    };
    let Some(pool) =
        startup::connect_database(&config.shared, "ingest", &MIGRATOR, &readiness, &shutdown).await
    else {
        return finish(http_task).await;
    };

    let sources = config.sources.clone();
    let ingestor = Arc::new(accept::Ingestor::new(
        handlers,
        |source: Source| {
            sources
                .get(source.token())
                .map(|s| s.keys())
                .unwrap_or_default()
        },
        Arc::new(config.shared.catalog.clone()),
        bus.clone(),
    ));
    for open in ingestor.open_sources() {
        tracing::warn!(
            source = open,
            "source has no secret or token configured: it accepts unsigned deliveries"
        );
    }
    let _ = state.ready.set(http::Ready {
        ingestor: ingestor.clone(),
        rejections: rejections::RejectionLog::spawn(pool.clone()),
    });

    let api = IngestServer::new(grpc::IngestApi {
        ingestor,
        max_body_bytes: config.ingest.max_body_bytes,
    })
    .max_decoding_message_size(config.ingest.max_body_bytes + 64 * 1024);
    let grpc_task = tokio::spawn(herald_runtime::grpc::serve(
        listeners.grpc,
        api,
        shutdown.clone(),
    ));
    readiness.started();
    tracing::info!("ingest ready");

    shutdown.cancelled().await;
    let (http, grpc) = tokio::join!(http_task, grpc_task);
    http??;
    grpc??;
    bus.flush().await.ok();
    pool.close().await;
    tracing::info!("ingest stopped");
    Ok(())
}

async fn finish(http_task: tokio::task::JoinHandle<std::io::Result<()>>) -> anyhow::Result<()> {
    http_task.await??;
    Ok(())
}

/// Ingest as its binary runs it.
pub struct Ingest;

impl herald_runtime::service::Service for Ingest {
    type Config = IngestConfig;
    const NAME: &'static str = "herald-ingest";

    fn load(
        loader: &herald_runtime::ConfigLoader,
    ) -> Result<IngestConfig, herald_runtime::config::ConfigError> {
        IngestConfig::load(loader)
    }

    fn shared(config: &IngestConfig) -> &herald_runtime::SharedConfig {
        &config.shared
    }

    fn addrs(config: &IngestConfig) -> (std::net::SocketAddr, std::net::SocketAddr) {
        (config.ingest.http_addr, config.ingest.grpc_addr)
    }

    fn run(
        config: IngestConfig,
        listeners: Listeners,
        shutdown: CancellationToken,
    ) -> impl std::future::Future<Output = anyhow::Result<()>> + Send {
        run(config, listeners, shutdown)
    }
}
