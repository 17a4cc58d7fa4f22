//! `herald recognition`: how widely recognition reached in a period, per team and per role, and
//! who in each team has gone the configured number of weeks without a credited win (for leads).
#![allow(clippy::print_stdout)] // printing is this module's job

use herald_proto::v1::{
    GetRecognitionSpreadRequest, RecognitionSpread, spotlight_client::SpotlightClient,
};
use serde_json::json;

use crate::{
    client::{Api, SpotlightAddress, status_error},
    period::PeriodChoice,
};

/// Per team and role: how many people were credited in the period; per team, who has had no
/// credited win for `[spotlight.recognition] unrecognised_weeks` weeks.
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
    let spread = client
        .get_recognition_spread(GetRecognitionSpreadRequest {
            period: Some(args.period.period()?),
        })
        .await
        .map_err(|s| status_error(Api::Spotlight, s))?
        .into_inner();
    print(&spread, args.json);
    Ok(())
}

fn share(recognised: u32, people: u32) -> String {
    if people == 0 {
        "no people in the catalog".into()
    } else {
        format!(
            "{recognised} of {people} recognised ({:.0} %)",
            f64::from(recognised) * 100.0 / f64::from(people)
        )
    }
}

fn print(spread: &RecognitionSpread, as_json: bool) {
    let rows = |rows: &[herald_proto::v1::SpreadRow]| -> Vec<serde_json::Value> {
        rows.iter()
            .map(|r| json!({"id": r.id, "name": r.name, "people": r.people, "recognised": r.recognised, "unrecognised": r.unrecognised}))
            .collect()
    };
    if as_json {
        println!(
            "{}",
            json!({"period_start": spread.period_start, "period_end": spread.period_end,
                   "unrecognised_weeks": spread.unrecognised_weeks,
                   "teams": rows(&spread.teams), "roles": rows(&spread.roles)})
        );
        return;
    }
    println!(
        "{} to {} (end exclusive): people with at least one verified win",
        spread.period_start, spread.period_end
    );
    println!("\nby team");
    for t in &spread.teams {
        println!("  {:<32} {}", t.name, share(t.recognised, t.people));
        if !t.unrecognised.is_empty() {
            println!(
                "  {:<32} no win for {} weeks: {}",
                "",
                spread.unrecognised_weeks,
                t.unrecognised.join(", ")
            );
        }
    }
    println!("\nby role");
    for r in &spread.roles {
        println!("  {:<32} {}", r.name, share(r.recognised, r.people));
    }
}
