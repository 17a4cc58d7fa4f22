use std::path::PathBuf;

use clap::Parser;
use herald_ingest::IngestConfig;
use herald_runtime::{ConfigLoader, Listeners, shutdown, telemetry};

/// Herald ingest: webhooks and gRPC in, canonical events onto NATS JetStream.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// The herald.toml to read (default: $HERALD_CONFIG, then ./herald.toml, then built-in defaults).
    #[arg(long, short)]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let loader = ConfigLoader::load(args.config.as_deref())?;
    let config = IngestConfig::load(&loader)?;
    let telemetry = telemetry::init("herald-ingest", &config.shared.telemetry)?;
    let listeners = Listeners::bind(config.ingest.http_addr, config.ingest.grpc_addr).await?;
    let result = herald_ingest::run(config, listeners, shutdown::on_signals()).await;
    telemetry.shutdown();
    result
}
