//! Weeks (Monday to Sunday) and months, cut in the organisation's time zone.

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, Utc};
use chrono_tz::Tz;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodKind {
    Week,
    Month,
}

impl PeriodKind {
    pub const ALL: [PeriodKind; 2] = [PeriodKind::Week, PeriodKind::Month];

    pub fn token(self) -> &'static str {
        match self {
            PeriodKind::Week => "week",
            PeriodKind::Month => "month",
        }
    }
}

/// A period as local dates: start inclusive, end exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub kind: PeriodKind,
    pub start: NaiveDate,
    pub end: NaiveDate,
}

impl Period {
    /// The period of `kind` that contains the instant `at`.
    pub fn containing(kind: PeriodKind, at: DateTime<Utc>, tz: Tz) -> Period {
        let local = at.with_timezone(&tz).date_naive();
        match kind {
            PeriodKind::Week => {
                let start = local - Days::new(u64::from(local.weekday().num_days_from_monday()));
                Period {
                    kind,
                    start,
                    end: start + Days::new(7),
                }
            }
            PeriodKind::Month => {
                let start = local.with_day(1).unwrap_or(local);
                let end = start.checked_add_months(Months::new(1)).unwrap_or(start);
                Period { kind, start, end }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn weeks_start_on_monday_in_the_organisation_zone() {
        let tz: Tz = "Europe/Amsterdam".parse().expect("zone");
        // Tuesday 11 March 2025.
        let p = Period::containing(PeriodKind::Week, at("2025-03-11T08:04:37Z"), tz);
        assert_eq!(p.start.to_string(), "2025-03-10");
        assert_eq!(p.end.to_string(), "2025-03-17");
        // Sunday 23:30 UTC is already Monday in Amsterdam.
        let p = Period::containing(PeriodKind::Week, at("2025-03-16T23:30:00Z"), tz);
        assert_eq!(p.start.to_string(), "2025-03-17");
    }

    #[test]
    fn months_are_calendar_months() {
        let tz: Tz = "Europe/Amsterdam".parse().expect("zone");
        let p = Period::containing(PeriodKind::Month, at("2025-03-31T22:30:00Z"), tz);
        assert_eq!(
            p.start.to_string(),
            "2025-04-01",
            "already April in Amsterdam"
        );
        let p = Period::containing(PeriodKind::Month, at("2025-12-15T12:00:00Z"), tz);
        assert_eq!(
            (p.start.to_string(), p.end.to_string()),
            ("2025-12-01".into(), "2026-01-01".into())
        );
    }
}
