//! `herald-faults` (run it with `scripts/faults`): Herald under a steady stream of signed incidents
//! with one fault in the middle (a service killed with -9, nats-server restarted, PostgreSQL
//! stopped, a receiver that hangs, `herald up` killed), then a table of what was sent, accepted,
//! delivered, lost and doubled. Exits non-zero when anything was lost or doubled.
#![allow(clippy::print_stdout)] // printing the table is this program's job

use std::{path::PathBuf, time::Duration};

use clap::Parser;
use herald_bench::faults::{self, Plan, Scenario};

#[derive(Parser)]
struct Args {
    /// Events per scenario.
    #[arg(long, default_value_t = 5_000)]
    events: u64,
    /// Events per second.
    #[arg(long, default_value_t = 200.0)]
    rate: f64,
    /// Seconds PostgreSQL stays stopped.
    #[arg(long, default_value_t = 30)]
    outage_seconds: u64,
    /// Which scenarios to run (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    scenarios: Option<Vec<Scenario>>,
    /// Keep-alive connections the driver uses.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// How long to wait for the last deliveries after the last POST.
    #[arg(long, default_value_t = 300)]
    drain_seconds: u64,
    /// Where the JSON and Markdown results go.
    #[arg(long, default_value = "target/faults")]
    out: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    herald_runtime::install_tls_provider();
    let plan = Plan {
        events: args.events,
        rate: args.rate,
        connections: args.connections,
        outage: Duration::from_secs(args.outage_seconds),
        drain: Duration::from_secs(args.drain_seconds),
    };
    let scenarios = args.scenarios.unwrap_or_else(|| Scenario::ALL.to_vec());
    let started = chrono::Utc::now();
    let mut rows = Vec::new();
    for scenario in scenarios {
        println!("{scenario:?}: {} events at {}/s", plan.events, plan.rate);
        let row = faults::run(scenario, &plan).await?;
        println!(
            "{}: {} accepted, {} delivered, {} lost, {} duplicates",
            row.scenario, row.accepted, row.delivered, row.lost, row.duplicates
        );
        if let Some(logs) = &row.logs {
            println!("the processes' last lines:\n{logs}");
        }
        rows.push(row);
    }
    let table = faults::markdown(&rows);
    std::fs::create_dir_all(&args.out)?;
    let stamp = started.format("%Y%m%dT%H%M%SZ");
    let json = args.out.join(format!("faults-{stamp}.json"));
    std::fs::write(&json, serde_json::to_vec_pretty(&rows)?)?;
    let md = args.out.join(format!("faults-{stamp}.md"));
    std::fs::write(&md, &table)?;
    println!(
        "\n{table}\nwritten: {} and {}",
        json.display(),
        md.display()
    );
    let bad = rows
        .iter()
        .filter(|r| r.lost > 0 || r.duplicates > 0 || r.accepted < r.sent)
        .count();
    anyhow::ensure!(
        bad == 0,
        "{bad} scenario(s) lost, doubled or refused events"
    );
    Ok(())
}
