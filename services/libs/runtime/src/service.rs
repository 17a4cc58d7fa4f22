//! The one `main` every service binary shares: parse `--config`, load the configuration, set up
//! telemetry, bind the listeners, run until SIGTERM/SIGINT, flush telemetry.

use std::{future::Future, net::SocketAddr, path::PathBuf};

use clap::Parser;
use tokio_util::sync::CancellationToken;

use crate::{ConfigLoader, Listeners, SharedConfig, config::ConfigError, shutdown, telemetry};

/// A Herald service, as its binary runs it.
pub trait Service {
    type Config: Send + 'static;
    /// The binary's name, e.g. `herald-scoring`; also the telemetry service name.
    const NAME: &'static str;

    fn load(loader: &ConfigLoader) -> Result<Self::Config, ConfigError>;
    fn shared(config: &Self::Config) -> &SharedConfig;
    /// HTTP and gRPC listen addresses.
    fn addrs(config: &Self::Config) -> (SocketAddr, SocketAddr);
    fn run(
        config: Self::Config,
        listeners: Listeners,
        shutdown: CancellationToken,
    ) -> impl Future<Output = anyhow::Result<()>> + Send + 'static;
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
    let telemetry = telemetry::init(S::NAME, &S::shared(&config).telemetry)?;
    if let Some(file) = loader.file() {
        tracing::info!(config = %file.display(), "configuration loaded");
    }
    let (http, grpc) = S::addrs(&config);
    let listeners = Listeners::bind(http, grpc).await?;
    let result = S::run(config, listeners, shutdown::on_signals()).await;
    if let Err(e) = &result {
        tracing::error!(error = %format!("{e:#}"), "{} failed", S::NAME);
    }
    telemetry.shutdown();
    result
}

/// Implements [`Service`] for a service crate: its marker type, configuration type, binary name and
/// configuration section (which holds `http_addr` and `grpc_addr`).
#[macro_export]
macro_rules! service {
    ($service:ident, $config:ty, $name:literal, $section:ident) => {
        /// The service as its binary runs it.
        pub struct $service;

        impl $crate::service::Service for $service {
            type Config = $config;
            const NAME: &'static str = $name;

            fn load(loader: &$crate::ConfigLoader) -> Result<$config, $crate::config::ConfigError> {
                <$config>::load(loader)
            }

            fn shared(config: &$config) -> &$crate::SharedConfig {
                &config.shared
            }

            fn addrs(config: &$config) -> (std::net::SocketAddr, std::net::SocketAddr) {
                (config.$section.http_addr, config.$section.grpc_addr)
            }

            fn run(
                config: $config,
                listeners: $crate::Listeners,
                shutdown: tokio_util::sync::CancellationToken,
            ) -> impl std::future::Future<Output = anyhow::Result<()>> + Send + 'static {
                run(config, listeners, shutdown)
            }
        }
    };
}
