//! Herald notify: routes announcements to channels, renders the card for each channel within its
//! limits, delivers with retries and pacing, logs every attempt, and never creates two deliveries
//! of one announcement for one route.

pub mod config;
pub mod dispatcher;
pub mod egress;
pub mod grpc;
pub mod handler;
pub mod local;
pub mod render;
pub mod routing;
pub mod send;
pub mod signing;
pub mod store;

use std::sync::Arc;

use herald_events::{ConsumerSpec, worker};
use herald_proto::v1::notify_server::NotifyServer;
use herald_runtime::{Listeners, boot::Boot};
use tokio_util::sync::CancellationToken;

pub use config::NotifyConfig;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Runs notify on the given listeners until `shutdown` is cancelled.
pub async fn run(
    config: NotifyConfig,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut boot = Boot::start("notify", listeners.http, axum::Router::new(), &shutdown);
    if config.notify.routes.is_empty() {
        tracing::warn!(
            "no [[notify.routes]] configured: announcements will not be delivered anywhere"
        );
    }
    let sender = send::Sender::new(
        config.notify.allow_private_networks,
        config.notify.request_timeout,
    )?;
    let consumer = config.notify.consumer.consumer(ConsumerSpec::notify());
    let Some((bus, pool)) = boot
        .connect(
            &config.shared,
            std::slice::from_ref(&consumer),
            "notify",
            &MIGRATOR,
        )
        .await
    else {
        return boot.wait().await;
    };
    let store = store::Store::new(pool);
    let wake = Arc::new(tokio::sync::Notify::new());
    let handler = Arc::new(handler::NotifyHandler {
        store: store.clone(),
        settings: config.notify.clone(),
        wake: wake.clone(),
    });
    let options = config.notify.consumer.worker_options("notify");
    let worker = worker::run(bus, consumer, handler, options, shutdown.clone());
    boot.spawn_loop("worker", worker);
    let dispatcher = dispatcher::Dispatcher {
        store: store.clone(),
        sender,
        settings: config.notify.clone(),
        wake,
    };
    let dispatch = dispatcher.run(shutdown.clone());
    boot.spawn_loop("dispatcher", dispatch);
    boot.spawn_grpc(listeners.grpc, NotifyServer::new(grpc::NotifyApi { store }));
    boot.ready();
    boot.wait().await
}

herald_runtime::service!(Notify, NotifyConfig, "herald-notify", notify);
