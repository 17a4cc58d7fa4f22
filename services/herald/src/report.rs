//! `herald report --month 2026-10 --format pdf --output FILE`: the monthly value report, from
//! `herald.v1.Scoring` (served by scoring and by `herald up`).
#![allow(clippy::print_stdout)] // printing is this module's job

use std::{io::Write, path::PathBuf};

use anyhow::Context;
use herald_proto::v1::{MonthlyReportRequest, scoring_client::ScoringClient};

use crate::client::{Api, ScoringAddress, status_error};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Html,
    Md,
    Pdf,
}

impl Format {
    fn token(self) -> &'static str {
        match self {
            Format::Html => "html",
            Format::Md => "md",
            Format::Pdf => "pdf",
        }
    }
}

/// The monthly value report: KPIs against the 90-day plan, value per label, five stories,
/// problems solved, lessons learned and an elevator pitch.
#[derive(clap::Args)]
pub struct Args {
    /// The month, `2026-10` (in the organisation's time zone). Default: last month.
    #[arg(long)]
    month: Option<String>,
    #[arg(long, value_enum, default_value = "html")]
    format: Format,
    /// Where to write it; `-` for standard output. Default: the report's own file name in the
    /// current directory.
    #[arg(long, short)]
    output: Option<PathBuf>,
    #[command(flatten)]
    address: ScoringAddress,
}

fn last_month() -> String {
    use chrono::Datelike;
    let today = chrono::Utc::now().date_naive();
    let first = today.with_day(1).unwrap_or(today);
    (first - chrono::Days::new(1)).format("%Y-%m").to_string()
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let target = args.address.target();
    let mut client = ScoringClient::new(target.connect().await?);
    let month = args.month.unwrap_or_else(last_month);
    let document = client
        .get_monthly_report(MonthlyReportRequest {
            month: month.clone(),
            format: args.format.token().to_string(),
        })
        .await
        .map_err(|s| status_error(Api::Scoring, s))?
        .into_inner();
    let output = args
        .output
        .unwrap_or_else(|| PathBuf::from(&document.file_name));
    if output.as_os_str() == "-" {
        std::io::stdout()
            .write_all(&document.content)
            .context("cannot write the report to standard output")?;
        return Ok(());
    }
    std::fs::write(&output, &document.content)
        .with_context(|| format!("cannot write {}", output.display()))?;
    println!(
        "wrote the {month} report to {} ({} bytes)\n\n{}",
        output.display(),
        document.content.len(),
        document.pitch
    );
    Ok(())
}
