//! Herald ingest: receives what ITSM tools send (webhooks, CloudEvents, gRPC), verifies it,
//! normalises it into the canonical `ItsmEvent` and publishes it to `herald.events.<source>.<kind>`.
//! A delivery is answered 202 only after JetStream stored the event: an accepted event is never lost.

pub mod accept;
pub mod config;
pub mod grpc;
pub mod http;
pub mod poller;
pub mod rejections;
pub mod sign;
pub mod sources;
pub mod verify;

use std::sync::Arc;

use herald_events::ConsumerSpec;
use herald_proto::v1::{Source, ingest_server::IngestServer};
use herald_runtime::{
    ConfigLoader, Listeners, SharedConfig,
    component::{Component, Deps},
    config::ConfigError,
    db::Migrations,
    service::Service,
};
use tokio_util::sync::CancellationToken;

pub use config::IngestConfig;

/// Ingest as a service: `POST /v1/events/{source}` and `herald.v1.Ingest` in, events onto the bus.
pub struct Ingest;

impl Service for Ingest {
    type Config = IngestConfig;
    const NAME: &'static str = "ingest";

    fn load(loader: &ConfigLoader) -> Result<IngestConfig, ConfigError> {
        IngestConfig::load(loader)
    }

    fn shared(config: &IngestConfig) -> &SharedConfig {
        &config.shared
    }

    fn addrs(config: &IngestConfig) -> (std::net::SocketAddr, std::net::SocketAddr) {
        (config.ingest.http_addr, config.ingest.grpc_addr)
    }

    fn consumers(_: &IngestConfig) -> Vec<ConsumerSpec> {
        Vec::new()
    }

    fn migrations() -> Migrations {
        herald_runtime::migrations!()
    }

    async fn build(
        config: IngestConfig,
        deps: Deps,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Component> {
        let sources = config.sources.clone();
        let catalog = herald_catalog::CatalogHandle::new(config.shared.catalog.clone());
        let ingestor = Arc::new(accept::Ingestor::new(
            sources::handlers(&config.sources),
            |source: Source| {
                sources
                    .get(source.token())
                    .map(|s| s.keys())
                    .unwrap_or_default()
            },
            catalog.clone(),
            deps.bus.clone(),
        ));
        for open in ingestor.open_sources() {
            tracing::warn!(
                source = open,
                "allow_unsigned is set and no secret or token is configured: this source accepts deliveries from anyone who can reach it"
            );
        }
        let closed = ingestor.unconfigured_sources();
        if !closed.is_empty() {
            tracing::info!(
                sources = %closed.join(","),
                "sources without a secret or token refuse every delivery until one is configured ([sources.<name>] secret or token)"
            );
        }
        let state = Arc::new(http::HttpState {
            max_body_bytes: config.ingest.max_body_bytes,
            ingestor: ingestor.clone(),
            rejections: rejections::RejectionLog::spawn(deps.db.pool.clone()),
        });
        let api = IngestServer::new(grpc::IngestApi {
            ingestor,
            max_body_bytes: config.ingest.max_body_bytes,
        })
        .max_decoding_message_size(config.ingest.max_body_bytes + 64 * 1024);
        let component = Component::new()
            .routes(http::router(state.clone()))
            .grpc(api)
            .grpc(herald_runtime::dead_letters::server(deps.bus))
            .task(
                "catalog",
                catalog.watch(herald_catalog::RELOAD_EVERY, shutdown.clone()),
            );
        poller::attach(
            component,
            config.ingest.servicenow_poll,
            deps.db.pool,
            state.ingestor.clone(),
            shutdown,
        )
    }
}

/// Runs ingest on its own listeners until `shutdown` is cancelled.
pub async fn run(
    config: IngestConfig,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    herald_runtime::service::run::<Ingest>(config, listeners, shutdown).await
}
