//! `herald value`: the value delivered in a week or month, by label.
#![allow(clippy::print_stdout)] // printing is this module's job

use herald_proto::v1::{
    GetValueSummaryRequest, ValueLabel, ValueSummary, spotlight_client::SpotlightClient,
};
use serde_json::json;

use crate::{
    client::{Api, SpotlightAddress, status_error},
    format::money,
    period::PeriodChoice,
};

/// The value delivered in a week or month, by label.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    period: PeriodChoice,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    address: SpotlightAddress,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let target = args.address.target();
    let mut client = SpotlightClient::new(target.connect().await?);
    let summary = client
        .get_value_summary(GetValueSummaryRequest {
            period: Some(args.period.period()?),
        })
        .await
        .map_err(|s| status_error(Api::Spotlight, s))?
        .into_inner();
    print(&summary, args.json);
    Ok(())
}

fn print(summary: &ValueSummary, as_json: bool) {
    let labels: Vec<(&str, f64)> = summary
        .by_label
        .iter()
        .map(|l| {
            (
                ValueLabel::try_from(l.label)
                    .map(|l| l.token())
                    .unwrap_or("unspecified"),
                l.amount,
            )
        })
        .collect();
    if as_json {
        println!(
            "{}",
            json!({"period_start": summary.period_start, "period_end": summary.period_end, "currency": summary.currency,
                   "total_value": summary.total_value, "hours_given_back": summary.hours_given_back,
                   "users_unblocked": summary.users_unblocked, "wins": summary.wins,
                   "by_label": labels.iter().map(|(l, a)| json!({"label": l, "amount": a})).collect::<Vec<_>>()})
        );
        return;
    }
    println!(
        "{} to {} (end exclusive): {} wins",
        summary.period_start, summary.period_end, summary.wins
    );
    println!(
        "  total value        {}",
        money(&summary.currency, summary.total_value)
    );
    for (label, amount) in labels {
        println!("    {label:<16} {}", money(&summary.currency, amount));
    }
    println!("  hours given back   {:>16.1}", summary.hours_given_back);
    println!("  people unblocked   {:>16.0}", summary.users_unblocked);
}
