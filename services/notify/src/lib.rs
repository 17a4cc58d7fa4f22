//! Herald notify: routes announcements to channels, renders the card for each channel within its
//! limits, delivers with retries and pacing, logs every attempt, and never creates two deliveries
//! of one announcement for one route and channel.

pub mod attempt;
pub mod config;
pub mod dispatcher;
pub mod egress;
pub mod grpc;
pub mod handler;
pub mod local;
pub mod mail;
pub mod merge;
pub mod render;
pub mod routing;
pub mod schedule;
pub mod send;
pub mod signing;
pub mod store;
pub mod unpaced;
pub mod unsubscribe;

use std::sync::Arc;

use herald_events::{ConsumerSpec, worker};
use herald_proto::v1::notify_server::NotifyServer;
use herald_runtime::{
    ConfigLoader, Listeners, SharedConfig,
    component::{Component, Deps},
    config::ConfigError,
    db::Migrations,
    service::Service,
};
use tokio_util::sync::CancellationToken;

pub use config::NotifyConfig;

/// Notify as a service: consumes HERALD_ANNOUNCEMENTS, delivers to channels, answers
/// `herald.v1.Notify`.
pub struct Notify;

impl Service for Notify {
    type Config = NotifyConfig;
    const NAME: &'static str = "notify";

    fn load(loader: &ConfigLoader) -> Result<NotifyConfig, ConfigError> {
        NotifyConfig::load(loader)
    }

    fn shared(config: &NotifyConfig) -> &SharedConfig {
        &config.shared
    }

    fn addrs(config: &NotifyConfig) -> (std::net::SocketAddr, std::net::SocketAddr) {
        (config.notify.http_addr, config.notify.grpc_addr)
    }

    fn consumers(config: &NotifyConfig) -> Vec<ConsumerSpec> {
        vec![config.notify.consumer.consumer(ConsumerSpec::notify())]
    }

    fn migrations() -> Migrations {
        herald_runtime::migrations!()
    }

    async fn build(
        config: NotifyConfig,
        deps: Deps,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Component> {
        if config.notify.routes.is_empty() {
            tracing::warn!(
                "no [[notify.routes]] configured: announcements will not be delivered anywhere"
            );
        }
        let store = store::Store::new(deps.db);
        let wake = Arc::new(tokio::sync::Notify::new());
        let catalog = herald_catalog::CatalogHandle::new(config.shared.catalog.clone());
        let unsubscribe = unsubscribe::Links::of(&config.notify);
        let sender = Arc::new(
            send::Sender::new(
                config.notify.allow_private_networks,
                config.notify.request_timeout,
            )?
            .with_addressing(mail::Addressing {
                catalog: catalog.clone(),
                store: store.clone(),
                links: unsubscribe.clone(),
            }),
        );
        let (streams, inlets) = unpaced::Streams::of(&config.notify);
        let handler = Arc::new(handler::NotifyHandler::new(
            store.clone(),
            config.notify.clone(),
            catalog.clone(),
            wake.clone(),
            streams.clone(),
        ));
        let consumer = config.notify.consumer.consumer(ConsumerSpec::notify());
        let options = config.notify.consumer.worker_options("notify");
        let dispatcher = dispatcher::Dispatcher {
            store: store.clone(),
            sender: sender.clone(),
            settings: config.notify.clone(),
            wake: wake.clone(),
            streams,
            inlets,
        };
        Ok(Component::new()
            .task(
                "catalog",
                catalog.watch(herald_catalog::RELOAD_EVERY, shutdown.clone()),
            )
            .task(
                "worker",
                worker::run(deps.bus, consumer, handler, options, shutdown.clone()),
            )
            .task("dispatcher", dispatcher.run(shutdown))
            .routes(unsubscribe::router(store.clone(), unsubscribe))
            .grpc(NotifyServer::new(grpc::NotifyApi {
                store,
                channels: config.notify.channels.clone(),
                sender,
                wake,
            })))
    }
}

/// Runs notify on its own listeners until `shutdown` is cancelled.
pub async fn run(
    config: NotifyConfig,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    herald_runtime::service::run::<Notify>(config, listeners, shutdown).await
}
