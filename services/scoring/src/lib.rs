//! Herald scoring: turns each event into a win (what happened, for which business service, the
//! value in business terms with its formula, inputs and label, and the credit for each contributor),
//! holds it until its outcome is verified, and publishes it on `herald.wins.<kind>` once confirmed,
//! and again if a confirmed win is withdrawn.

pub mod config;
pub mod credit;
pub mod explain;
pub mod format;
pub mod grpc;
pub mod handler;
pub mod marks;
pub mod publish;
pub mod report;
pub mod rescore;
pub mod score;
pub mod store;
pub mod value;
pub mod verification;

use std::sync::Arc;

use herald_events::{ConsumerSpec, worker};
use herald_proto::v1::scoring_server::ScoringServer;
use herald_runtime::{
    ConfigLoader, Listeners, SharedConfig,
    component::{Component, Deps},
    config::ConfigError,
    db::Migrations,
    service::Service,
};
use tokio_util::sync::CancellationToken;

pub use config::ScoringConfig;

/// Scoring as a service: consumes HERALD_EVENTS, publishes wins, answers `herald.v1.Scoring`.
pub struct Scoring;

impl Service for Scoring {
    type Config = ScoringConfig;
    const NAME: &'static str = "scoring";

    fn load(loader: &ConfigLoader) -> Result<ScoringConfig, ConfigError> {
        ScoringConfig::load(loader)
    }

    fn shared(config: &ScoringConfig) -> &SharedConfig {
        &config.shared
    }

    fn addrs(config: &ScoringConfig) -> (std::net::SocketAddr, std::net::SocketAddr) {
        (config.scoring.http_addr, config.scoring.grpc_addr)
    }

    fn consumers(config: &ScoringConfig) -> Vec<ConsumerSpec> {
        vec![config.scoring.consumer.consumer(ConsumerSpec::scoring())]
    }

    fn migrations() -> Migrations {
        herald_runtime::migrations!()
    }

    async fn build(
        config: ScoringConfig,
        deps: Deps,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Component> {
        if config.shared.catalog.services().is_empty() {
            tracing::warn!("the catalog has no business services: no win will carry a value");
        }
        let store = store::Store::new(deps.db.pool);
        let catalogs = herald_catalog::CatalogHandle::new(config.shared.catalog.clone());
        let marks = Arc::new(marks::PendingMarks::default());
        let handler = Arc::new(handler::ScoringHandler {
            store: store.clone(),
            bus: deps.bus.clone(),
            catalog: catalogs.clone(),
            settings: config.scoring.clone(),
            marks: marks.clone(),
        });
        let consumer = config.scoring.consumer.consumer(ConsumerSpec::scoring());
        let options = config.scoring.consumer.worker_options("scoring");
        let confirmer = verification::confirmer::run(
            store.clone(),
            deps.bus.clone(),
            verification::confirmer::Valuer {
                catalog: catalogs.clone(),
                settings: config.scoring.clone(),
            },
            config.scoring.verification.confirm_every,
            shutdown.clone(),
        );
        Ok(Component::new()
            .task(
                "catalog",
                catalogs
                    .clone()
                    .watch(herald_catalog::RELOAD_EVERY, shutdown.clone()),
            )
            .task(
                "outbox marks",
                marks::flush(marks, store.clone(), shutdown.clone()),
            )
            .task(
                "worker",
                worker::run(deps.bus, consumer, handler, options, shutdown),
            )
            .task("confirmer", confirmer)
            .routes(report::web::router(report::web::PlanState {
                store: store.clone(),
                catalog: catalogs.clone(),
                settings: config.scoring.clone(),
            }))
            .grpc(ScoringServer::new(grpc::ScoringApi {
                store,
                catalog: catalogs,
                settings: config.scoring.clone(),
            })))
    }
}

/// Runs scoring on its own listeners until `shutdown` is cancelled.
pub async fn run(
    config: ScoringConfig,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    herald_runtime::service::run::<Scoring>(config, listeners, shutdown).await
}
