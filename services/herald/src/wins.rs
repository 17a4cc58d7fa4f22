//! `herald wins`: wins by verification status, for operators. `herald wins pending` lists the
//! provisional ones (pending verification: counted nowhere public until their hold-back passes).
#![allow(clippy::print_stdout)] // printing is this module's job

use herald_proto::{
    time::opt_from_timestamp,
    v1::{
        EventKind, ListWinsRequest, ListWinsResponse, ValueLabel, Win, WinStatus,
        scoring_client::ScoringClient,
    },
};
use serde_json::json;

use crate::client::{Api, ScoringAddress, status_error};

/// Wins by verification status: pending verification, confirmed or revoked.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Wins pending verification (provisional): when each confirms unless a reopen, rollback or
    /// related incident withdraws it first.
    Pending(Options),
    /// Wins of one status (every status without --status).
    List(ListArgs),
}

#[derive(clap::Args)]
struct ListArgs {
    #[arg(long, value_enum)]
    status: Option<StatusArg>,
    #[command(flatten)]
    options: Options,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum StatusArg {
    /// Pending verification: inside the hold-back window.
    Provisional,
    /// The window passed: counted, and announced if it is news.
    Confirmed,
    /// Withdrawn by a reopen, a rollback or a related incident.
    Revoked,
}

#[derive(clap::Args)]
struct Options {
    /// At most this many (the server caps it at 1,000).
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// Print JSON instead of a list.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    address: ScoringAddress,
}

impl Args {
    /// `herald --json wins …`.
    pub fn set_json(&mut self, json: bool) {
        match &mut self.command {
            Command::Pending(options) => options.json |= json,
            Command::List(list) => list.options.json |= json,
        }
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let (status, options) = match args.command {
        Command::Pending(options) => (Some(StatusArg::Provisional), options),
        Command::List(list) => (list.status, list.options),
    };
    let status = match status {
        None => WinStatus::Unspecified,
        Some(StatusArg::Provisional) => WinStatus::Provisional,
        Some(StatusArg::Confirmed) => WinStatus::Confirmed,
        Some(StatusArg::Revoked) => WinStatus::Revoked,
    };
    let target = options.address.target();
    let mut client = ScoringClient::new(target.connect().await?);
    let list = client
        .list_wins(ListWinsRequest {
            status: status as i32,
            limit: options.limit,
        })
        .await
        .map_err(|s| status_error(Api::Scoring, s))?
        .into_inner();
    if options.json {
        print_json(&list);
    } else {
        print_text(status, &list);
    }
    Ok(())
}

/// How a status reads in this list: provisional wins are "pending verification".
fn status_words(status: i32) -> &'static str {
    match WinStatus::try_from(status).unwrap_or(WinStatus::Unspecified) {
        WinStatus::Provisional => "pending verification",
        WinStatus::Confirmed | WinStatus::Unspecified => "confirmed",
        WinStatus::Revoked => "revoked",
    }
}

fn status_token(status: i32) -> &'static str {
    match WinStatus::try_from(status).unwrap_or(WinStatus::Unspecified) {
        WinStatus::Provisional => "provisional",
        WinStatus::Confirmed | WinStatus::Unspecified => "confirmed",
        WinStatus::Revoked => "revoked",
    }
}

fn kind(win: &Win) -> &'static str {
    EventKind::try_from(win.kind)
        .map(|k| k.token())
        .unwrap_or("unspecified")
}

fn label(win: &Win) -> &'static str {
    win.value
        .as_ref()
        .and_then(|v| ValueLabel::try_from(v.label).ok())
        .map(|l| l.token())
        .unwrap_or("none")
}

fn time(at: Option<chrono::DateTime<chrono::Utc>>) -> Option<String> {
    at.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
}

/// What happens next to a win, or what happened: when it confirms, when it was confirmed, why it
/// was revoked.
fn status_line(win: &Win) -> String {
    match WinStatus::try_from(win.status).unwrap_or(WinStatus::Unspecified) {
        WinStatus::Provisional => match time(opt_from_timestamp(win.confirm_at.as_ref())) {
            Some(at) => format!("pending verification: confirms {at} unless withdrawn first"),
            None => "pending verification".to_string(),
        },
        WinStatus::Confirmed | WinStatus::Unspecified => {
            match time(opt_from_timestamp(win.status_at.as_ref())) {
                Some(at) => format!("confirmed {at}"),
                None => "confirmed".to_string(),
            }
        }
        WinStatus::Revoked => {
            let why = if win.status_reason.is_empty() {
                "no reason recorded"
            } else {
                win.status_reason.as_str()
            };
            match time(opt_from_timestamp(win.status_at.as_ref())) {
                Some(at) => format!("revoked {at}: {why}"),
                None => format!("revoked: {why}"),
            }
        }
    }
}

fn amount(win: &Win) -> String {
    match &win.value {
        Some(v) => format!("{} {:.2}", v.currency, v.amount),
        None => "no value".to_string(),
    }
}

fn print_json(list: &ListWinsResponse) {
    let wins: Vec<_> = list
        .wins
        .iter()
        .map(|w| {
            json!({
                "id": w.id,
                "record_number": w.record_number,
                "kind": kind(w),
                "status": status_token(w.status),
                "amount": w.value.as_ref().map(|v| v.amount),
                "currency": w.value.as_ref().map(|v| v.currency.clone()),
                "label": label(w),
                "headline": w.headline,
                "confirm_at": opt_from_timestamp(w.confirm_at.as_ref()).map(|t| t.to_rfc3339()),
                "status_at": opt_from_timestamp(w.status_at.as_ref()).map(|t| t.to_rfc3339()),
                "status_reason": (!w.status_reason.is_empty()).then_some(&w.status_reason),
            })
        })
        .collect();
    println!("{}", json!({ "total": list.total, "wins": wins }));
}

fn print_text(status: WinStatus, list: &ListWinsResponse) {
    let what = match status {
        WinStatus::Unspecified => "wins".to_string(),
        status => format!("wins {}", status_words(status as i32)),
    };
    if list.wins.is_empty() {
        println!("no {what}");
        return;
    }
    let shown = list.wins.len() as u64;
    if shown < list.total {
        println!("{} {what} (showing {shown}; --limit for more)", list.total);
    } else {
        println!("{} {what}", list.total);
    }
    for win in &list.wins {
        println!(
            "{}  {:<12} {:<22} {:>18}  [{}]",
            win.id,
            win.record_number,
            kind(win),
            amount(win),
            label(win)
        );
        if !win.headline.is_empty() {
            println!("    {}", win.headline);
        }
        println!("    {}", status_line(win));
    }
}
