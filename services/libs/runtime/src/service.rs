//! A Herald service as a type: how to load its configuration, which consumers and database it
//! needs, and how to build its component from dependencies. From that the runtime derives the
//! service's own process ([`run`], [`main`]) and `herald up` runs all four in one.

use std::{future::Future, net::SocketAddr, path::PathBuf};

use clap::Parser;
use herald_events::ConsumerSpec;
use tokio_util::sync::CancellationToken;

use crate::{
    ConfigLoader, Listeners, SharedConfig,
    boot::Boot,
    component::{Component, Deps},
    config::ConfigError,
    db::Migrations,
    shutdown, telemetry,
};

pub trait Service: 'static {
    type Config: Clone + Send + Sync + 'static;
    /// Short name: `scoring`. The binary is `herald-<name>`; the PostgreSQL schema and SQLite file
    /// are named after it too.
    const NAME: &'static str;

    fn load(loader: &ConfigLoader) -> Result<Self::Config, ConfigError>;
    fn shared(config: &Self::Config) -> &SharedConfig;
    /// HTTP and gRPC listen addresses of the service's own process.
    fn addrs(config: &Self::Config) -> (SocketAddr, SocketAddr);
    /// The durable consumers it reads from.
    fn consumers(config: &Self::Config) -> Vec<ConsumerSpec>;
    fn migrations() -> Migrations;
    /// Its routes, gRPC API and tasks, on the given dependencies.
    fn build(
        config: Self::Config,
        deps: Deps,
        shutdown: CancellationToken,
    ) -> impl Future<Output = anyhow::Result<Component>> + Send;
}

/// Runs service `S` on its own listeners against JetStream and its database until `shutdown`.
pub async fn run<S: Service>(
    config: S::Config,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let auth = crate::Auth::from_config(
        &S::shared(&config).auth,
        listeners.http_addr()?,
        listeners.grpc_addr()?,
    )?;
    let mut boot = Boot::start(S::NAME, listeners, auth, &shutdown);
    let consumers = S::consumers(&config);
    let Some(deps) = boot
        .connect(S::shared(&config), &consumers, S::NAME, &S::migrations())
        .await
    else {
        return boot.wait().await;
    };
    let component = S::build(config, deps, shutdown.clone()).await?;
    boot.serve(vec![component]).await
}

/// Command-line arguments every service binary takes.
#[derive(Debug, Parser)]
#[command(version)]
pub struct ServiceArgs {
    /// The herald.toml to read (default: $HERALD_CONFIG, then ./herald.toml, then built-in defaults).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
}

/// Runs service `S` as a process's `main`.
pub async fn main<S: Service>() -> anyhow::Result<()> {
    let args = ServiceArgs::parse();
    let loader = ConfigLoader::load(args.config.as_deref())?;
    let config = S::load(&loader)?;
    let binary = format!("herald-{}", S::NAME);
    let telemetry = telemetry::init(&binary, &S::shared(&config).telemetry)?;
    if let Some(file) = loader.file() {
        tracing::info!(config = %file.display(), "configuration loaded");
    }
    let (http, grpc) = S::addrs(&config);
    let listeners = Listeners::bind(http, grpc)
        .await?
        .with_tls(crate::tls::Tls::from_config(&S::shared(&config).tls)?);
    let result = run::<S>(config, listeners, shutdown::on_signals()).await;
    if let Err(e) = &result {
        tracing::error!(error = %format!("{e:#}"), "{binary} failed");
    }
    telemetry.shutdown();
    result
}
