//! Weeks (Monday to Sunday), months, quarters and seasons, cut in the organisation's time zone.
//! Weeks and months are rolled up as wins are counted; a quarter or a season is the sum of its
//! months, so adding one costs no write on the hot path.

use chrono::{
    DateTime, Datelike, Days, LocalResult, Months, NaiveDate, NaiveDateTime, NaiveTime, TimeZone,
    Utc,
};
use chrono_tz::Tz;

/// The instant a local date and time first happens in `tz`; a time skipped by a clock change
/// becomes the hour after it.
pub fn local_instant(tz: Tz, date: NaiveDate, at: NaiveTime) -> DateTime<Utc> {
    let local = NaiveDateTime::new(date, at);
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.with_timezone(&Utc),
        LocalResult::None => tz
            .from_local_datetime(&(local + chrono::Duration::hours(1)))
            .earliest()
            .map_or_else(|| local.and_utc(), |t| t.with_timezone(&Utc)),
    }
}

/// Midnight at the start of a local date.
pub fn start_of(date: NaiveDate, tz: Tz) -> DateTime<Utc> {
    local_instant(tz, date, NaiveTime::MIN)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodKind {
    Week,
    Month,
    /// January–March, April–June, …
    Quarter,
    /// `months` long (dividing the year: 1, 2, 3, 4, 6 or 12), the first starting in January.
    Season {
        months: u32,
    },
}

impl PeriodKind {
    /// The kinds kept as rollups while wins are counted.
    pub const ROLLED_UP: [PeriodKind; 2] = [PeriodKind::Week, PeriodKind::Month];

    pub fn token(self) -> &'static str {
        match self {
            PeriodKind::Week => "week",
            PeriodKind::Month => "month",
            PeriodKind::Quarter => "quarter",
            PeriodKind::Season { .. } => "season",
        }
    }

    /// The rollup a period of this kind is read from: itself, or the months it spans.
    pub fn rolled_up_as(self) -> PeriodKind {
        match self {
            PeriodKind::Week | PeriodKind::Month => self,
            PeriodKind::Quarter | PeriodKind::Season { .. } => PeriodKind::Month,
        }
    }
}

/// The first day of the run of `months` months (dividing the year) that holds `date`.
fn months_start(date: NaiveDate, months: u32) -> NaiveDate {
    let months = months.clamp(1, 12);
    let month0 = (date.month0() / months) * months;
    NaiveDate::from_ymd_opt(date.year(), month0 + 1, 1).unwrap_or(date)
}

/// A period as local dates: start inclusive, end exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub kind: PeriodKind,
    pub start: NaiveDate,
    pub end: NaiveDate,
}

impl Period {
    /// Its first and its end instant (exclusive) in `tz`.
    pub fn instants(&self, tz: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
        (start_of(self.start, tz), start_of(self.end, tz))
    }

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
            PeriodKind::Month => Self::of_months(kind, local, 1),
            PeriodKind::Quarter => Self::of_months(kind, local, 3),
            PeriodKind::Season { months } => Self::of_months(kind, local, months),
        }
    }

    fn of_months(kind: PeriodKind, local: NaiveDate, months: u32) -> Period {
        let start = months_start(local, months);
        let end = start
            .checked_add_months(Months::new(months.clamp(1, 12)))
            .unwrap_or(start);
        Period { kind, start, end }
    }

    /// The period of the same kind just before this one.
    pub fn previous(&self) -> Period {
        match self.kind {
            PeriodKind::Week => Period {
                kind: self.kind,
                start: self.start - Days::new(7),
                end: self.start,
            },
            _ => {
                let months = match self.kind {
                    PeriodKind::Quarter => 3,
                    PeriodKind::Season { months } => months.clamp(1, 12),
                    _ => 1,
                };
                Period {
                    kind: self.kind,
                    start: self
                        .start
                        .checked_sub_months(Months::new(months))
                        .unwrap_or(self.start),
                    end: self.start,
                }
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
    fn quarters_and_seasons_are_runs_of_months_from_january() {
        let tz: Tz = "Europe/Oslo".parse().expect("zone");
        let q = Period::containing(PeriodKind::Quarter, at("2026-11-30T12:00:00Z"), tz);
        assert_eq!(
            (q.start.to_string(), q.end.to_string()),
            ("2026-10-01".into(), "2027-01-01".into())
        );
        let s = Period::containing(
            PeriodKind::Season { months: 4 },
            at("2026-08-31T22:30:00Z"),
            tz,
        );
        assert_eq!(
            (s.start.to_string(), s.end.to_string()),
            ("2026-09-01".into(), "2027-01-01".into()),
            "already September in Oslo: the third four-month season"
        );
        let before = s.previous();
        assert_eq!(
            (before.start.to_string(), before.end.to_string()),
            ("2026-05-01".into(), "2026-09-01".into())
        );
        let w = Period::containing(PeriodKind::Week, at("2026-11-30T12:00:00Z"), tz).previous();
        assert_eq!(
            (w.start.to_string(), w.end.to_string()),
            ("2026-11-23".into(), "2026-11-30".into())
        );
        let m = Period::containing(PeriodKind::Month, at("2026-01-15T12:00:00Z"), tz).previous();
        assert_eq!(m.start.to_string(), "2025-12-01");
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
