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
use herald_runtime::{Listeners, Readiness, health, startup};
use tokio_util::sync::CancellationToken;

pub use config::NotifyConfig;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Runs notify on the given listeners until `shutdown` is cancelled.
pub async fn run(
    config: NotifyConfig,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let readiness = Readiness::new("notify");
    tracing::info!(http = %listeners.http_addr()?, grpc = %listeners.grpc_addr()?, "notify listening");
    let http_task = tokio::spawn(startup::serve_http(
        listeners.http,
        health::router(readiness.clone()),
        shutdown.clone(),
    ));
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
    let Some(bus) = startup::connect_bus(
        &config.shared,
        "herald-notify",
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
        startup::connect_database(&config.shared, "notify", &MIGRATOR, &readiness, &shutdown).await
    else {
        http_task.await??;
        return Ok(());
    };
    let store = store::Store::new(pool.clone());
    let wake = Arc::new(tokio::sync::Notify::new());

    let handler = Arc::new(handler::NotifyHandler {
        store: store.clone(),
        settings: config.notify.clone(),
        wake: wake.clone(),
    });
    let worker_task = tokio::spawn(worker::run(
        bus.clone(),
        consumer,
        handler,
        config.notify.consumer.worker_options("notify"),
        shutdown.clone(),
    ));
    let dispatcher = dispatcher::Dispatcher {
        store: store.clone(),
        sender,
        settings: config.notify.clone(),
        wake,
    };
    let dispatch_task = tokio::spawn(dispatcher.run(shutdown.clone()));

    let grpc_task = tokio::spawn(herald_runtime::grpc::serve(
        listeners.grpc,
        NotifyServer::new(grpc::NotifyApi { store }),
        shutdown.clone(),
    ));
    readiness.started();
    tracing::info!("notify ready");

    shutdown.cancelled().await;
    let (worker, dispatch, http, grpc) =
        tokio::join!(worker_task, dispatch_task, http_task, grpc_task);
    worker?;
    dispatch?;
    http??;
    grpc??;
    pool.close().await;
    tracing::info!("notify stopped");
    Ok(())
}

/// Notify as its binary runs it.
pub struct Notify;

impl herald_runtime::service::Service for Notify {
    type Config = NotifyConfig;
    const NAME: &'static str = "herald-notify";

    fn load(
        loader: &herald_runtime::ConfigLoader,
    ) -> Result<NotifyConfig, herald_runtime::config::ConfigError> {
        NotifyConfig::load(loader)
    }

    fn shared(config: &NotifyConfig) -> &herald_runtime::SharedConfig {
        &config.shared
    }

    fn addrs(config: &NotifyConfig) -> (std::net::SocketAddr, std::net::SocketAddr) {
        (config.notify.http_addr, config.notify.grpc_addr)
    }

    fn run(
        config: NotifyConfig,
        listeners: Listeners,
        shutdown: CancellationToken,
    ) -> impl std::future::Future<Output = anyhow::Result<()>> + Send {
        run(config, listeners, shutdown)
    }
}
