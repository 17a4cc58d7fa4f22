//! When a digest is due: a weekday (weekly) or a day of the month (monthly) at a wall-clock time in
//! an IANA zone. Pure functions of the instant they are given, so any clock tests them.

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, NaiveTime, Utc, Weekday};
use chrono_tz::Tz;

use crate::periods::{Period, PeriodKind, local_instant as instant};

/// Which day of its period a digest goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Day {
    Weekday(Weekday),
    /// 1–28, so every month has it.
    OfMonth(u32),
}

/// One digest's schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub name: String,
    pub period: PeriodKind,
    pub day: Day,
    pub at: NaiveTime,
    pub tz: Tz,
}

/// `"08:00"` or `"08:00:30"`.
pub fn parse_time(text: &str) -> Result<NaiveTime, String> {
    NaiveTime::parse_from_str(text, "%H:%M")
        .or_else(|_| NaiveTime::parse_from_str(text, "%H:%M:%S"))
        .map_err(|_| format!("{text:?} is not a time of day like \"08:00\""))
}

/// `"mon"` … `"sun"`.
pub fn parse_weekday(text: &str) -> Result<Weekday, String> {
    text.parse::<Weekday>()
        .map_err(|_| format!("{text:?} is not a day like \"mon\""))
}

impl Schedule {
    /// The digest's send time on the local date `date`, if it is a sending day.
    fn on(&self, date: NaiveDate) -> Option<DateTime<Utc>> {
        let sends = match self.day {
            Day::Weekday(day) => date.weekday() == day,
            Day::OfMonth(day) => date.day() == day,
        };
        sends.then(|| instant(self.tz, date, self.at))
    }

    /// The latest send time at or before `now`.
    pub fn latest(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let today = now.with_timezone(&self.tz).date_naive();
        // A month back covers both kinds: a weekly day comes every 7 days, a monthly one every
        // 28 to 31.
        (0..=31)
            .filter_map(|back| today.checked_sub_days(Days::new(back)))
            .filter_map(|date| self.on(date))
            .find(|at| *at <= now)
    }

    /// What a digest sent at `sent` covers: the period containing the day before it, so a Monday
    /// digest tells last week and a Friday one the week so far; a digest on the 1st tells last
    /// month.
    pub fn covers(&self, sent: DateTime<Utc>) -> Period {
        let local = sent.with_timezone(&self.tz).date_naive();
        let day_before = local.checked_sub_days(Days::new(1)).unwrap_or(local);
        let noon = instant(self.tz, day_before, NaiveTime::MIN) + chrono::Duration::hours(12);
        Period::containing(self.period, noon, self.tz)
    }

    /// The next send time after `now`, for the log line that says when to expect it.
    pub fn next(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let today = now.with_timezone(&self.tz).date_naive();
        let horizon = today.checked_add_months(Months::new(2)).unwrap_or(today);
        today
            .iter_days()
            .take_while(|d| *d <= horizon)
            .filter_map(|date| self.on(date))
            .find(|at| *at > now)
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

    fn weekly() -> Schedule {
        Schedule {
            name: "weekly".into(),
            period: PeriodKind::Week,
            day: Day::Weekday(Weekday::Mon),
            at: parse_time("08:00").expect("time"),
            tz: "Europe/Oslo".parse().expect("zone"),
        }
    }

    #[test]
    fn a_weekly_digest_is_due_monday_at_eight_local_and_tells_last_week() {
        let s = weekly();
        // Monday 30 Nov 2026, 07:59 Oslo (06:59 UTC): not yet; the latest was a week before.
        assert_eq!(
            s.latest(at("2026-11-30T06:59:00Z")),
            Some(at("2026-11-23T07:00:00Z"))
        );
        assert_eq!(
            s.latest(at("2026-11-30T07:00:00Z")),
            Some(at("2026-11-30T07:00:00Z"))
        );
        assert_eq!(
            s.next(at("2026-11-30T06:59:00Z")),
            Some(at("2026-11-30T07:00:00Z"))
        );
        let p = s.covers(at("2026-11-30T07:00:00Z"));
        assert_eq!(
            (p.start.to_string(), p.end.to_string()),
            ("2026-11-23".into(), "2026-11-30".into())
        );
    }

    #[test]
    fn a_monthly_digest_on_the_first_tells_last_month_across_a_clock_change() {
        let s = Schedule {
            name: "monthly".into(),
            period: PeriodKind::Month,
            day: Day::OfMonth(1),
            at: parse_time("08:00:30").expect("time"),
            tz: "Europe/Oslo".parse().expect("zone"),
        };
        // 1 Nov 2026 08:00:30 in Oslo is winter time (UTC+1).
        let sent = s.latest(at("2026-11-15T12:00:00Z")).expect("due");
        assert_eq!(sent, at("2026-11-01T07:00:30Z"));
        let p = s.covers(sent);
        assert_eq!(
            (p.start.to_string(), p.end.to_string()),
            ("2026-10-01".into(), "2026-11-01".into())
        );
    }

    #[test]
    fn a_friday_digest_tells_the_week_so_far() {
        let s = Schedule {
            day: Day::Weekday(Weekday::Fri),
            ..weekly()
        };
        let sent = s.latest(at("2026-11-27T12:00:00Z")).expect("due");
        assert_eq!(s.covers(sent).start.to_string(), "2026-11-23");
    }
}
