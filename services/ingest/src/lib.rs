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
use herald_runtime::{Listeners, boot::Boot};
use tokio_util::sync::CancellationToken;

pub use config::IngestConfig;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Runs ingest on the given listeners until `shutdown` is cancelled.
pub async fn run(
    config: IngestConfig,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let handlers = sources::handlers();
    let state = Arc::new(http::HttpState {
        max_body_bytes: config.ingest.max_body_bytes,
        source_names: handlers.iter().map(|h| h.source().token()).collect(),
        ready: OnceLock::new(),
    });
    let mut boot = Boot::start(
        "ingest",
        listeners.http,
        http::router(state.clone()),
        &shutdown,
    );
    let Some((bus, pool)) = boot.connect(&config.shared, &[], "ingest", &MIGRATOR).await else {
        return boot.wait().await;
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
        bus,
    ));
    for open in ingestor.open_sources() {
        tracing::warn!(
            source = open,
            "source has no secret or token configured: it accepts unsigned deliveries"
        );
    }
    let _ = state.ready.set(http::Ready {
        ingestor: ingestor.clone(),
        rejections: rejections::RejectionLog::spawn(pool),
    });
    let api = IngestServer::new(grpc::IngestApi {
        ingestor,
        max_body_bytes: config.ingest.max_body_bytes,
    })
    .max_decoding_message_size(config.ingest.max_body_bytes + 64 * 1024);
    boot.spawn_grpc(listeners.grpc, api);
    boot.ready();
    boot.wait().await
}

herald_runtime::service!(Ingest, IngestConfig, "herald-ingest", ingest);
