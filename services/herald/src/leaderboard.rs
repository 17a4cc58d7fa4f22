//! `herald leaderboard`: top people, teams or business services by value in a week or month.
#![allow(clippy::print_stdout)] // printing is this module's job

use herald_proto::v1::{
    GetLeaderboardRequest, Leaderboard, Scope, spotlight_client::SpotlightClient,
};
use serde_json::json;

use crate::{
    client::{Api, Target, status_error},
    format::money,
    period::{PeriodArg, period},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScopeArg {
    Person,
    Team,
    Service,
}

/// Top people, teams or business services by value in a week or month.
#[derive(clap::Args)]
pub struct Args {
    #[arg(long, value_enum, default_value = "week")]
    period: PeriodArg,
    /// A day inside the period (YYYY-MM-DD or RFC 3339); today when absent.
    #[arg(long)]
    at: Option<String>,
    #[arg(long, value_enum, default_value = "person")]
    scope: ScopeArg,
    #[arg(long, default_value_t = 10)]
    limit: u32,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// One gRPC address for every API (what `herald up` serves); overrides --spotlight.
    #[arg(long, env = "HERALD_URL")]
    url: Option<String>,
    /// Spotlight's gRPC address.
    #[arg(
        long,
        env = "HERALD_SPOTLIGHT_URL",
        default_value = "http://127.0.0.1:9092"
    )]
    spotlight: String,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let target = Target::new(Api::Spotlight, args.url, args.spotlight);
    let mut client = SpotlightClient::new(target.connect().await?);
    let scope = match args.scope {
        ScopeArg::Person => Scope::Person,
        ScopeArg::Team => Scope::Team,
        ScopeArg::Service => Scope::Service,
    };
    let board = client
        .get_leaderboard(GetLeaderboardRequest {
            period: Some(period(args.period, args.at.as_deref())?),
            scope: scope as i32,
            limit: args.limit,
        })
        .await
        .map_err(|s| status_error(Api::Spotlight, s))?
        .into_inner();
    print(&board, args.json);
    Ok(())
}

fn print(board: &Leaderboard, as_json: bool) {
    if as_json {
        let entries: Vec<_> = board
            .entries
            .iter()
            .map(|e| json!({"rank": e.rank, "id": e.id, "name": e.display_name, "value": e.value, "hours": e.hours, "wins": e.wins}))
            .collect();
        println!(
            "{}",
            json!({"period_start": board.period_start, "period_end": board.period_end, "currency": board.currency, "entries": entries})
        );
        return;
    }
    println!(
        "{} to {} (end exclusive)",
        board.period_start, board.period_end
    );
    if board.entries.is_empty() {
        println!("no wins in this period");
    }
    for e in &board.entries {
        println!(
            "{:>3}. {:<36} {}  {:>8.1} h  {:>3} wins",
            e.rank,
            e.display_name,
            money(&board.currency, e.value),
            e.hours,
            e.wins
        );
    }
}
