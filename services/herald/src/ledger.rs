//! `herald ledger rebuild`: recompute spotlight's leaderboards and totals from its ledger (the
//! wins it counted and those it took out again) and compare them with the live figures
//! (`--check`), or repair them.
#![allow(clippy::print_stdout)] // printing is this module's job

use std::collections::BTreeSet;

use herald_proto::v1::{
    RebuildLedgerRequest, RebuildLedgerResponse, spotlight_client::SpotlightClient,
};
use serde_json::json;

use crate::client::{Api, SpotlightAddress, status_error};

/// Spotlight's ledger: the wins its figures come from, each counted or taken out again.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Recompute every rollup and total from the ledger and replace the live figures by them.
    ///
    /// Exit status: 0 when the figures agree (or were repaired); with --check, 1 when they differ.
    Rebuild(RebuildArgs),
}

#[derive(clap::Args)]
struct RebuildArgs {
    /// Compare only: list the differences and exit 1 when there are any; change nothing.
    #[arg(long)]
    check: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    address: SpotlightAddress,
}

impl Args {
    /// `herald --json ledger …`.
    pub fn set_json(&mut self, json: bool) {
        match &mut self.command {
            Command::Rebuild(args) => args.json |= json,
        }
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let Command::Rebuild(args) = args.command;
    let target = args.address.target();
    let mut client = SpotlightClient::new(target.connect().await?);
    let report = client
        .rebuild_ledger(RebuildLedgerRequest {
            repair: !args.check,
        })
        .await
        .map_err(|s| status_error(Api::Spotlight, s))?
        .into_inner();
    let rows = differing_rows(&report);
    if args.json {
        print_json(&report, rows);
    } else {
        print_text(&report, rows, args.check);
    }
    if args.check && !report.differences.is_empty() {
        anyhow::bail!(
            "the live figures differ from the ledger in {rows} rows; `herald ledger rebuild` \
             (without --check) replaces them"
        );
    }
    Ok(())
}

/// Rows (a rollup or a total) with at least one differing figure.
fn differing_rows(report: &RebuildLedgerResponse) -> usize {
    report
        .differences
        .iter()
        .map(|d| d.row.as_str())
        .collect::<BTreeSet<_>>()
        .len()
}

fn print_json(report: &RebuildLedgerResponse, rows: usize) {
    println!(
        "{}",
        json!({
            "entries": report.entries,
            "rows_checked": report.rows_checked,
            "rows_differing": rows,
            "repaired": report.repaired,
            "differences": report.differences.iter().map(|d| json!({
                "row": d.row, "field": d.field, "live": d.live, "rebuilt": d.rebuilt,
            })).collect::<Vec<_>>(),
        })
    );
}

fn print_text(report: &RebuildLedgerResponse, rows: usize, check: bool) {
    println!(
        "{} ledger entries checked, {} rows compared",
        report.entries, report.rows_checked
    );
    if report.differences.is_empty() {
        println!("the live figures match the ledger");
        return;
    }
    println!(
        "{} differences in {rows} rows (live → from the ledger):",
        report.differences.len()
    );
    for d in &report.differences {
        println!("  {}  {}: {} → {}", d.row, d.field, d.live, d.rebuilt);
    }
    if report.repaired {
        println!("{rows} rows replaced by the figures rebuilt from the ledger");
    } else if check {
        println!("nothing changed (--check)");
    }
}
