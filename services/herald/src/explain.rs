//! `herald explain`: how a win's number was computed, found by win id, event id or ticket number.
#![allow(clippy::print_stdout)] // printing is this module's job

use herald_proto::{
    time::opt_from_timestamp,
    v1::{ExplainMatch, ExplainRequest, Explanation, Win, scoring_client::ScoringClient},
};
use serde_json::json;

use crate::client::{Api, ScoringAddress, status_error};

/// How a win's number was computed: formula, inputs with their sources, label and credit.
#[derive(clap::Args)]
pub struct Args {
    /// A win id (w-…), the id of the event it came from, or a record number (a ticket such as
    /// INC0050105, a Jira key): for a record, its newest win, listing the others.
    id: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    address: ScoringAddress,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let target = args.address.target();
    let mut client = ScoringClient::new(target.connect().await?);
    let explanation = client
        .explain(ExplainRequest {
            id: args.id.clone(),
        })
        .await
        .map_err(|s| status_error(Api::Scoring, s))?
        .into_inner();
    if args.json {
        print_json(&explanation);
    } else {
        print_text(&args.id, &explanation);
    }
    Ok(())
}

fn matched(explanation: &Explanation) -> &'static str {
    match ExplainMatch::try_from(explanation.matched).unwrap_or(ExplainMatch::Unspecified) {
        ExplainMatch::Win => "win",
        ExplainMatch::Event => "event",
        ExplainMatch::Record => "record",
        ExplainMatch::Unspecified => "unknown",
    }
}

fn summary(win: &Win) -> serde_json::Value {
    json!({
        "id": win.id,
        "event_id": win.event_id,
        "record_number": win.record_number,
        "headline": win.headline,
        "occurred_at": opt_from_timestamp(win.occurred_at.as_ref()).map(|t| t.to_rfc3339()),
    })
}

fn print_json(explanation: &Explanation) {
    println!(
        "{}",
        json!({
            "win_id": explanation.win.as_ref().map(|w| w.id.clone()),
            "matched": matched(explanation),
            "record_wins": explanation.record_wins.iter().map(summary).collect::<Vec<_>>(),
            "text": explanation.text,
        })
    );
}

fn print_text(id: &str, explanation: &Explanation) {
    if let (Some(newest), false) = (&explanation.win, explanation.record_wins.is_empty()) {
        println!(
            "{id} has {} wins; explaining the newest, {}. The others:",
            explanation.record_wins.len(),
            newest.id
        );
        for win in explanation.record_wins.iter().skip(1) {
            let at = opt_from_timestamp(win.occurred_at.as_ref())
                .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_default();
            println!("  {}  {at}  {}", win.id, win.headline);
        }
        println!("(`herald explain <win id>` for one of them)\n");
    }
    print!("{}", explanation.text);
}
