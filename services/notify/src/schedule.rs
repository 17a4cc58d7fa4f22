//! When a route may send: quiet hours and business days in the route's own time zone. Pure
//! functions of the time they are given, so they are tested with any clock.

use chrono::{
    DateTime, Datelike, Days, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc,
    Weekday,
};
use chrono_tz::Tz;

use crate::config::RouteConfig;

/// A route's sending window: never inside `quiet` (from..to, which may span midnight), and only on
/// `days` (every day when empty), both read on the wall clock of `tz`.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub quiet: Option<(NaiveTime, NaiveTime)>,
    pub days: Vec<Weekday>,
    pub tz: Tz,
}

/// `"18:00"` (or `"18:00:30"`) as a time of day.
pub fn parse_time(text: &str) -> Result<NaiveTime, String> {
    NaiveTime::parse_from_str(text, "%H:%M")
        .or_else(|_| NaiveTime::parse_from_str(text, "%H:%M:%S"))
        .map_err(|_| format!("{text:?} is not a time of day like \"18:00\""))
}

/// `"mon"` … `"sun"` as a weekday.
pub fn parse_day(text: &str) -> Result<Weekday, String> {
    const DAYS: [(&str, Weekday); 7] = [
        ("mon", Weekday::Mon),
        ("tue", Weekday::Tue),
        ("wed", Weekday::Wed),
        ("thu", Weekday::Thu),
        ("fri", Weekday::Fri),
        ("sat", Weekday::Sat),
        ("sun", Weekday::Sun),
    ];
    DAYS.iter()
        .find(|(name, _)| *name == text)
        .map(|(_, day)| *day)
        .ok_or_else(|| {
            format!("business day {text:?} is not one of mon, tue, wed, thu, fri, sat, sun")
        })
}

impl Window {
    /// The route's window, `None` when it may always send; an error names what is wrong.
    pub fn of_route(route: &RouteConfig) -> Result<Option<Window>, String> {
        if route.quiet_hours.is_none() && route.business_days.is_empty() {
            if route.timezone.is_some() {
                return Err("timezone needs quiet_hours or business_days".into());
            }
            return Ok(None);
        }
        let tz =
            match &route.timezone {
                Some(name) => name.parse::<Tz>().map_err(|_| {
                    format!("timezone {name:?} is not an IANA time zone like \"Europe/Oslo\"")
                })?,
                None => return Err(
                    "quiet_hours and business_days need a timezone (IANA, like \"Europe/Oslo\")"
                        .into(),
                ),
            };
        let quiet = match &route.quiet_hours {
            Some(q) => {
                let (from, to) = (parse_time(&q.from)?, parse_time(&q.to)?);
                if from == to {
                    return Err("quiet_hours from and to are the same time".into());
                }
                Some((from, to))
            }
            None => None,
        };
        let days = route
            .business_days
            .iter()
            .map(|d| parse_day(d))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(Window { quiet, days, tz }))
    }

    /// Whether a message may go out at `at`.
    pub fn allows(&self, at: DateTime<Utc>) -> bool {
        let local = at.with_timezone(&self.tz);
        if !self.days.is_empty() && !self.days.contains(&local.weekday()) {
            return false;
        }
        match self.quiet {
            None => true,
            Some((from, to)) => {
                let t = local.time();
                let quiet = if from < to {
                    from <= t && t < to
                } else {
                    t >= from || t < to
                };
                !quiet
            }
        }
    }

    /// `now` when the window is open, else the start of the next open window. Every window opens
    /// either when quiet hours end or when a business day begins, so those are the candidates.
    pub fn next_open(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        if self.allows(now) {
            return now;
        }
        let today = now.with_timezone(&self.tz).date_naive();
        let mut starts: Vec<NaiveTime> = vec![NaiveTime::MIN];
        if let Some((_, to)) = self.quiet {
            starts.push(to);
        }
        for offset in 0..=8 {
            let Some(date) = today.checked_add_days(Days::new(offset)) else {
                break;
            };
            let mut candidates: Vec<DateTime<Utc>> = starts
                .iter()
                .map(|t| self.instant(date, *t))
                .filter(|at| *at > now)
                .collect();
            candidates.sort();
            if let Some(open) = candidates.into_iter().find(|at| self.allows(*at)) {
                return open;
            }
        }
        // Unreachable with at least one business day and a non-empty quiet window; never drop.
        now
    }

    /// The first instant whose wall-clock time in the zone is `time` on `date`, or the end of the gap
    /// when the clocks skip that time (spring forward).
    fn instant(&self, date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
        let mut local = NaiveDateTime::new(date, time);
        for _ in 0..=24 * 60 {
            match self.tz.from_local_datetime(&local) {
                LocalResult::Single(at) | LocalResult::Ambiguous(at, _) => {
                    return at.with_timezone(&Utc);
                }
                LocalResult::None => local += chrono::Duration::minutes(1),
            }
        }
        Utc.from_utc_datetime(&NaiveDateTime::new(date, time))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(quiet: Option<(&str, &str)>, days: &[&str], tz: &str) -> Window {
        Window {
            quiet: quiet.map(|(f, t)| (parse_time(f).expect("from"), parse_time(t).expect("to"))),
            days: days.iter().map(|d| parse_day(d).expect("day")).collect(),
            tz: tz.parse().expect("tz"),
        }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("rfc3339")
            .with_timezone(&Utc)
    }

    const WEEKDAYS: [&str; 5] = ["mon", "tue", "wed", "thu", "fri"];

    #[test]
    fn inside_the_window_sends_now() {
        let w = window(Some(("18:00", "08:00")), &WEEKDAYS, "Europe/Oslo");
        // Tuesday 2026-12-01 12:00 in Oslo (UTC+1).
        let now = utc("2026-12-01T11:00:00Z");
        assert_eq!(w.next_open(now), now);
    }

    #[test]
    fn a_midnight_spanning_quiet_window_holds_until_the_morning() {
        let w = window(Some(("18:00", "08:00")), &[], "Europe/Oslo");
        // Tuesday 20:00 Oslo: held until Wednesday 08:00 Oslo (07:00 UTC).
        assert_eq!(
            w.next_open(utc("2026-12-01T19:00:00Z")),
            utc("2026-12-02T07:00:00Z")
        );
        // Wednesday 03:00 Oslo, after midnight: the same morning.
        assert_eq!(
            w.next_open(utc("2026-12-02T02:00:00Z")),
            utc("2026-12-02T07:00:00Z")
        );
        // Exactly at the end of quiet hours it may send; exactly at the start it may not.
        assert!(w.allows(utc("2026-12-02T07:00:00Z")));
        assert!(!w.allows(utc("2026-12-02T17:00:00Z")));
        // Seconds may be given too.
        let precise = window(Some(("18:00", "08:00:30")), &[], "UTC");
        assert_eq!(
            precise.next_open(utc("2026-12-02T08:00:00Z")),
            utc("2026-12-02T08:00:30Z")
        );
    }

    #[test]
    fn a_daytime_quiet_window_holds_until_its_end() {
        let w = window(Some(("12:00", "13:00")), &[], "UTC");
        assert_eq!(
            w.next_open(utc("2026-12-01T12:30:00Z")),
            utc("2026-12-01T13:00:00Z")
        );
        assert_eq!(
            w.next_open(utc("2026-12-01T11:59:00Z")),
            utc("2026-12-01T11:59:00Z")
        );
    }

    #[test]
    fn the_weekend_waits_for_monday() {
        let w = window(Some(("18:00", "08:00")), &WEEKDAYS, "Europe/Oslo");
        // Friday 2026-12-04 19:00 Oslo → Monday 2026-12-07 08:00 Oslo.
        assert_eq!(
            w.next_open(utc("2026-12-04T18:00:00Z")),
            utc("2026-12-07T07:00:00Z")
        );
        // Saturday noon → Monday 08:00 (Monday 00:00–08:00 is still quiet).
        assert_eq!(
            w.next_open(utc("2026-12-05T11:00:00Z")),
            utc("2026-12-07T07:00:00Z")
        );
        // Business days only, no quiet hours: Saturday → Monday 00:00 Oslo.
        let days_only = window(None, &WEEKDAYS, "Europe/Oslo");
        assert_eq!(
            days_only.next_open(utc("2026-12-05T11:00:00Z")),
            utc("2026-12-06T23:00:00Z")
        );
    }

    #[test]
    fn spring_forward_and_fall_back_keep_the_wall_clock() {
        // Europe/Oslo goes from UTC+1 to UTC+2 on Sunday 2026-03-29 at 02:00 local.
        let w = window(Some(("18:00", "08:00")), &[], "Europe/Oslo");
        // Saturday 23:00 local (22:00 UTC) → Sunday 08:00 local, now UTC+2: 06:00 UTC.
        assert_eq!(
            w.next_open(utc("2026-03-28T22:00:00Z")),
            utc("2026-03-29T06:00:00Z")
        );
        // And back to UTC+1 on Sunday 2026-10-25 at 03:00 local: 08:00 local is 07:00 UTC.
        assert_eq!(
            w.next_open(utc("2026-10-24T22:00:00Z")),
            utc("2026-10-25T07:00:00Z")
        );
        // A window ending in the skipped hour opens when the clocks jump, 03:00 local (01:00 UTC).
        let gap = window(Some(("22:00", "02:30")), &[], "Europe/Oslo");
        assert_eq!(
            gap.next_open(utc("2026-03-28T23:00:00Z")),
            utc("2026-03-29T01:00:00Z")
        );
        // A window ending in the repeated hour opens at its first occurrence (02:30 at UTC+2).
        let twice = window(Some(("22:00", "02:30")), &[], "Europe/Oslo");
        assert_eq!(
            twice.next_open(utc("2026-10-24T22:00:00Z")),
            utc("2026-10-25T00:30:00Z")
        );
    }

    #[test]
    fn other_zones_use_their_own_clock() {
        let w = window(Some(("18:00", "08:00")), &WEEKDAYS, "America/New_York");
        // Monday 2026-12-07 06:00 New York (11:00 UTC) → 08:00 New York, 13:00 UTC.
        assert_eq!(
            w.next_open(utc("2026-12-07T11:00:00Z")),
            utc("2026-12-07T13:00:00Z")
        );
    }
}
