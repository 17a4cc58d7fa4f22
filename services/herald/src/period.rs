//! Periods as the spotlight commands take them: `--period week|month|quarter|season` and
//! `--at <day>`. A leaf.

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use herald_proto::{
    time::to_timestamp,
    v1::{Period, PeriodKind},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PeriodArg {
    Week,
    Month,
    Quarter,
    /// `[spotlight.recognition] season_months` long (six unless configured).
    Season,
}

/// `--period` (a month unless given) and `--at`, for the commands that read one period's figures.
#[derive(clap::Args)]
pub struct PeriodChoice {
    #[arg(long, value_enum, default_value = "month")]
    period: PeriodArg,
    /// A day inside the period (YYYY-MM-DD or RFC 3339); today when absent.
    #[arg(long)]
    at: Option<String>,
}

impl PeriodChoice {
    /// The chosen period, as the spotlight API takes it.
    pub fn period(&self) -> anyhow::Result<Period> {
        period(self.period, self.at.as_deref())
    }
}

/// The period of `kind` holding `at` (today when absent).
pub fn period(kind: PeriodArg, at: Option<&str>) -> anyhow::Result<Period> {
    let at = at.map(parse_at).transpose()?.map(to_timestamp);
    let kind = match kind {
        PeriodArg::Week => PeriodKind::Week,
        PeriodArg::Month => PeriodKind::Month,
        PeriodArg::Quarter => PeriodKind::Quarter,
        PeriodArg::Season => PeriodKind::Season,
    };
    Ok(Period {
        kind: kind as i32,
        at,
    })
}

fn parse_at(text: &str) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d").with_context(|| {
        format!("--at {text:?} must be a date (2025-03-11) or an RFC 3339 time")
    })?;
    // Noon keeps the day the same in every organisation time zone.
    Ok(day.and_hms_opt(12, 0, 0).unwrap_or_default().and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_takes_dates_and_times() {
        assert_eq!(
            parse_at("2025-03-11").expect("date").to_rfc3339(),
            "2025-03-11T12:00:00+00:00"
        );
        assert_eq!(
            parse_at("2025-03-11T08:04:37Z").expect("time").to_rfc3339(),
            "2025-03-11T08:04:37+00:00"
        );
        assert!(parse_at("last week").is_err());
    }
}
