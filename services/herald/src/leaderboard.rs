//! `herald leaderboard`: top people, teams or business services in a week, month, quarter or
//! season; with `--me <person>`, that person's own position, privately.
#![allow(clippy::print_stdout)] // printing is this module's job

use herald_proto::v1::{
    GetLeaderboardRequest, GetMyPositionRequest, Leaderboard, MyPosition, Scope,
    spotlight_client::SpotlightClient,
};
use serde_json::json;

use crate::{
    client::{Api, SpotlightAddress, status_error},
    format::money,
    period::{PeriodArg, period},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScopeArg {
    Person,
    Team,
    Service,
}

/// Top people, teams or business services in a week, month, quarter or season. People are listed
/// to the top few only; `--me <person-id>` shows one person's own position.
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
    /// A person's catalog id: their own rank, wins and hours in the period, and whether they are
    /// in the spotlight.
    #[arg(long, value_name = "PERSON_ID", conflicts_with = "scope")]
    me: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    address: SpotlightAddress,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let target = args.address.target();
    let mut client = SpotlightClient::new(target.connect().await?);
    if let Some(person) = args.me {
        let position = client
            .get_my_position(GetMyPositionRequest {
                period: Some(period(args.period, args.at.as_deref())?),
                person_id: person,
            })
            .await
            .map_err(|s| status_error(Api::Spotlight, s))?
            .into_inner();
        print_position(&position, args.json);
        return Ok(());
    }
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
            .map(|e| {
                let value = (!e.value_withheld).then_some(e.value);
                json!({"rank": e.rank, "id": e.id, "name": e.display_name, "value": value, "hours": e.hours, "wins": e.wins})
            })
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
        // People are celebrated for what they did: money per person only where configured.
        let value = if e.value_withheld {
            String::new()
        } else {
            format!("{}  ", money(&board.currency, e.value))
        };
        println!(
            "{:>3}. {:<36} {value}{:>8.1} h  {:>3} win{}",
            e.rank,
            e.display_name,
            e.hours,
            e.wins,
            if e.wins == 1 { "" } else { "s" }
        );
    }
}

fn print_position(p: &MyPosition, as_json: bool) {
    if as_json {
        println!(
            "{}",
            json!({"period_start": p.period_start, "period_end": p.period_end, "name": p.display_name,
                   "credited": p.credited, "rank": p.rank, "of": p.of, "wins": p.wins, "hours": p.hours,
                   "value": p.value, "currency": p.currency, "in_spotlight": p.in_spotlight})
        );
        return;
    }
    println!(
        "{} to {} (end exclusive), for {} only",
        p.period_start, p.period_end, p.display_name
    );
    if !p.credited {
        println!("no verified win credited in this period yet");
        return;
    }
    println!(
        "#{} of {} people credited · {} win{} · {:.1} working hours given back · {}",
        p.rank,
        p.of,
        p.wins,
        if p.wins == 1 { "" } else { "s" },
        p.hours,
        money(&p.currency, p.value)
    );
    if p.in_spotlight {
        println!("in the spotlight this period");
    }
}
