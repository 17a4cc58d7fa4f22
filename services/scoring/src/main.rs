use std::path::PathBuf;

use clap::Parser;
use herald_runtime::{ConfigLoader, Listeners, shutdown, telemetry};
use herald_scoring::ScoringConfig;

/// Herald scoring: events into wins with a defensible value and fair credit.
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
    let config = ScoringConfig::load(&loader)?;
    let telemetry = telemetry::init("herald-scoring", &config.shared.telemetry)?;
    let listeners = Listeners::bind(config.scoring.http_addr, config.scoring.grpc_addr).await?;
    let result = herald_scoring::run(config, listeners, shutdown::on_signals()).await;
    telemetry.shutdown();
    result
}
