//! `herald-floor`: Herald's shape with none of Herald's work, only what its guarantees cost (a
//! signed webhook stored before its 202, three stages that keep each pull in PostgreSQL and pass it
//! on without doubling, a delivery recorded before and after it is sent). `herald-bench --modes
//! floor` starts it on throwaway servers and measures it as it measures Herald.

use std::net::SocketAddr;

use clap::Parser;
use herald_bench::floor::{self, Settings};

#[derive(Parser)]
struct Args {
    /// The nats-server to store the streams on.
    #[arg(long)]
    nats: String,
    /// The PostgreSQL database to keep the stages' rows in.
    #[arg(long)]
    database: String,
    /// Where every delivery is sent.
    #[arg(long)]
    webhook: String,
    /// Where the webhook (`POST /v1/events/servicenow`) and `GET /readyz` listen.
    #[arg(long, default_value = "127.0.0.1:8480")]
    listen: SocketAddr,
    /// Keep every message's body in each stage's row as well, not only its key.
    #[arg(long)]
    keep_bodies: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    herald_runtime::install_tls_provider();
    floor::run(Settings {
        nats_url: args.nats,
        database_url: args.database,
        webhook: args.webhook,
        listen: args.listen,
        keep_bodies: args.keep_bodies,
    })
    .await
}
