//! Herald spotlight: keeps leaderboards and value rollups per person, team and business service,
//! announces headline wins on `herald.announcements.headline_win`, and answers gRPC queries.

pub mod card;
pub mod config;
pub mod dashboard;
pub mod digest;
pub mod grpc;
pub mod handler;
pub mod periods;
pub mod recognition;
pub mod selection;
pub mod store;

use std::sync::Arc;

use herald_events::{ConsumerSpec, worker};
use herald_proto::v1::spotlight_server::SpotlightServer;
use herald_runtime::{
    ConfigLoader, Listeners, SharedConfig,
    component::{Component, Deps},
    config::ConfigError,
    db::Migrations,
    service::Service,
};
use tokio_util::sync::CancellationToken;

pub use config::SpotlightConfig;

/// Spotlight as a service: consumes HERALD_WINS, publishes announcements, answers
/// `herald.v1.Spotlight`.
pub struct Spotlight;

impl Service for Spotlight {
    type Config = SpotlightConfig;
    const NAME: &'static str = "spotlight";

    fn load(loader: &ConfigLoader) -> Result<SpotlightConfig, ConfigError> {
        SpotlightConfig::load(loader)
    }

    fn shared(config: &SpotlightConfig) -> &SharedConfig {
        &config.shared
    }

    fn addrs(config: &SpotlightConfig) -> (std::net::SocketAddr, std::net::SocketAddr) {
        (config.spotlight.http_addr, config.spotlight.grpc_addr)
    }

    fn consumers(config: &SpotlightConfig) -> Vec<ConsumerSpec> {
        vec![
            config
                .spotlight
                .consumer
                .consumer(ConsumerSpec::spotlight()),
        ]
    }

    fn migrations() -> Migrations {
        herald_runtime::migrations!()
    }

    async fn build(
        config: SpotlightConfig,
        deps: Deps,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Component> {
        let store = store::Store::new(deps.db.pool);
        let catalogs = herald_catalog::CatalogHandle::new(config.shared.catalog.clone());
        let handler = Arc::new(handler::SpotlightHandler {
            store: store.clone(),
            bus: deps.bus.clone(),
            catalog: catalogs.clone(),
            settings: config.spotlight.clone(),
        });
        let consumer = config
            .spotlight
            .consumer
            .consumer(ConsumerSpec::spotlight());
        let options = config.spotlight.consumer.worker_options("spotlight");
        let digests = digest::Digests {
            store: store.clone(),
            bus: deps.bus.clone(),
            catalog: catalogs.clone(),
            settings: config.spotlight.clone(),
            owner: format!(
                "{}-{}",
                std::process::id(),
                chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
            ),
        };
        let dashboard = dashboard::router(dashboard::DashboardState {
            store: store.clone(),
            catalog: catalogs.clone(),
            refresh_seconds: config.spotlight.dashboard_refresh_seconds,
            recognition: config.spotlight.recognition.clone(),
            charts: dashboard::ChartLinks {
                plan: Some(config.spotlight.plan_chart_url.clone()).filter(|u| !u.is_empty()),
                mttr: Some(config.spotlight.mttr_chart_url.clone()).filter(|u| !u.is_empty()),
            },
            cache: dashboard::ViewCache::default(),
        });
        Ok(Component::new()
            .task(
                "catalog",
                catalogs
                    .clone()
                    .watch(herald_catalog::RELOAD_EVERY, shutdown.clone()),
            )
            .task("digests", digests.run(shutdown.clone()))
            .task("fold", store.clone().fold_continuously(shutdown.clone()))
            .task(
                "worker",
                worker::run(deps.bus, consumer, handler, options, shutdown),
            )
            .routes(dashboard)
            .grpc(SpotlightServer::new(grpc::SpotlightApi {
                store,
                catalog: catalogs,
                recognition: config.spotlight.recognition.clone(),
            })))
    }
}

/// Runs spotlight on its own listeners until `shutdown` is cancelled.
pub async fn run(
    config: SpotlightConfig,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    herald_runtime::service::run::<Spotlight>(config, listeners, shutdown).await
}
