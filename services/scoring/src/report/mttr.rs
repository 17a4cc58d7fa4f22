//! The time to restore service, week by week: the median and the 90th percentile of every incident
//! resolution cycle (opened → resolved) in each of the last twelve weeks, counted the same way as
//! the monthly report's MTTR. Drawn server-side for the wall-screen dashboard (`/mttr.svg`), and
//! served as figures (`/api/mttr`).

use std::fmt::Write;

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use chrono_tz::Tz;
use herald_catalog::Organisation;
use herald_proto::v1::{EventKind, ItsmEvent};
use serde::Serialize;

use super::{
    kpis::{median, percentile, resolved_at, restore_minutes},
    render::esc,
};

/// How many weeks the trend shows, this one last.
pub const WEEKS: u64 = 12;

/// One week's restore times.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WeekMttr {
    /// The Monday the week starts on, in the organisation's time zone.
    pub week: NaiveDate,
    pub incidents: usize,
    pub median_minutes: Option<f64>,
    pub p90_minutes: Option<f64>,
}

/// The Monday of the week holding `date`.
fn monday(date: NaiveDate) -> NaiveDate {
    date - Days::new(u64::from(date.weekday().num_days_from_monday()))
}

/// The first Monday of the trend that ends with the week holding `now`.
pub fn first_week(now: DateTime<Utc>, tz: Tz) -> NaiveDate {
    let this = monday(now.with_timezone(&tz).date_naive());
    this - Days::new((WEEKS - 1) * 7)
}

/// Each of the twelve weeks from `first`, with the restore times of the incidents resolved in it
/// (other events are ignored, so a caller may pass everything it read).
pub fn weekly(events: &[ItsmEvent], first: NaiveDate, tz: Tz) -> Vec<WeekMttr> {
    let mut minutes: Vec<Vec<f64>> = vec![Vec::new(); WEEKS as usize];
    for event in events {
        if EventKind::try_from(event.kind) != Ok(EventKind::IncidentResolved) {
            continue;
        }
        let (Some(resolved), Some(took)) = (resolved_at(event), restore_minutes(event)) else {
            continue;
        };
        let week = monday(resolved.with_timezone(&tz).date_naive());
        let Ok(index) = usize::try_from((week - first).num_days() / 7) else {
            continue;
        };
        if week >= first
            && let Some(bucket) = minutes.get_mut(index)
        {
            bucket.push(took);
        }
    }
    minutes
        .into_iter()
        .enumerate()
        .map(|(i, mut m)| {
            m.sort_by(f64::total_cmp);
            WeekMttr {
                week: first + Days::new(i as u64 * 7),
                incidents: m.len(),
                median_minutes: median(&m),
                p90_minutes: percentile(&m, 90.0),
            }
        })
        .collect()
}

/// Hours with one decimal below ten, whole hours above: "0.8 h", "14 h".
fn hours(minutes: f64, organisation: &Organisation) -> String {
    let h = minutes / 60.0;
    let decimals = if h < 10.0 { 1 } else { 0 };
    format!("{} h", organisation.number(h, decimals))
}

/// A bar per week for the median, a tick above it for the 90th percentile, each on one scale
/// from zero; a week without resolved incidents is left empty rather than drawn as zero.
pub fn draw(weeks: &[WeekMttr], organisation: &Organisation) -> String {
    const W: f64 = 600.0;
    const H: f64 = 150.0;
    const TOP: f64 = 22.0;
    const BOTTOM: f64 = 20.0;
    let max = weeks
        .iter()
        .filter_map(|w| w.p90_minutes.or(w.median_minutes))
        .fold(0.0_f64, f64::max);
    let scale = |m: f64| {
        if max > 0.0 {
            m / max * (H - TOP - BOTTOM)
        } else {
            0.0
        }
    };
    let slot = W / weeks.len().max(1) as f64;
    let width = slot * 0.7;
    let mut svg = String::with_capacity(4096);
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\" font-family=\"system-ui,sans-serif\" \
         role=\"img\" aria-label=\"Time to restore service per week, last {} weeks\">\
         <text x=\"0\" y=\"14\" fill=\"#cbd5e1\" font-size=\"13\" font-weight=\"600\">Time to restore service \
         <tspan fill=\"#64748b\" font-weight=\"400\">median per week · </tspan><tspan fill=\"#f59e0b\" font-weight=\"400\">▬ 90th percentile</tspan></text>",
        weeks.len()
    );
    if let Some(latest) = weeks.iter().rev().find_map(|w| w.median_minutes) {
        let _ = write!(
            svg,
            "<text x=\"{W}\" y=\"14\" text-anchor=\"end\" fill=\"#cbd5e1\" font-size=\"13\" font-weight=\"600\">latest median {}</text>",
            esc(&hours(latest, organisation))
        );
    }
    for (i, week) in weeks.iter().enumerate() {
        let x = i as f64 * slot + (slot - width) / 2.0;
        let label = organisation.date(week.week);
        if let Some(median) = week.median_minutes {
            let h = scale(median);
            let _ = write!(
                svg,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{width:.1}\" height=\"{h:.1}\" fill=\"{}\" \
                 data-week=\"{}\" data-median-minutes=\"{median:.1}\" data-incidents=\"{}\"><title>week of {}: median {}, {} incident{}</title></rect>",
                H - BOTTOM - h,
                if i + 1 == weeks.len() {
                    "#38bdf8"
                } else {
                    "#334155"
                },
                week.week,
                week.incidents,
                esc(&label),
                esc(&hours(median, organisation)),
                week.incidents,
                if week.incidents == 1 { "" } else { "s" },
            );
        }
        if let Some(p90) = week.p90_minutes {
            let y = H - BOTTOM - scale(p90);
            let _ = write!(
                svg,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{width:.1}\" height=\"3\" fill=\"#f59e0b\" data-week=\"{}\" data-p90-minutes=\"{p90:.1}\"><title>week of {}: 90th percentile {}</title></rect>",
                (y - 1.5).max(TOP),
                week.week,
                esc(&label),
                esc(&hours(p90, organisation)),
            );
        }
        if i == 0 || i + 1 == weeks.len() || i % 4 == 0 {
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\" fill=\"#64748b\" font-size=\"11\">{}</text>",
                x + width / 2.0,
                H - 5.0,
                esc(&week.week.format("%-d %b").to_string())
            );
        }
    }
    if max <= 0.0 {
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#64748b\" font-size=\"13\">No incidents resolved in these weeks</text>",
            W / 2.0,
            H / 2.0
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use herald_proto::{
        time::to_timestamp,
        v1::{ItsmEvent, Record},
    };

    use super::*;

    fn resolved(opened: &str, minutes: i64) -> ItsmEvent {
        let opened: DateTime<Utc> = opened.parse().expect("instant");
        ItsmEvent {
            kind: EventKind::IncidentResolved as i32,
            record: Some(Record {
                opened_at: Some(to_timestamp(opened)),
                resolved_at: Some(to_timestamp(opened + chrono::Duration::minutes(minutes))),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn each_week_has_the_median_and_p90_of_the_incidents_resolved_in_it() {
        let now: DateTime<Utc> = "2026-11-30T12:00:00Z".parse().expect("instant");
        let tz = chrono_tz::Europe::Oslo;
        let first = first_week(now, tz);
        assert_eq!(first, NaiveDate::from_ymd_opt(2026, 9, 14).expect("date"));
        let mut events: Vec<ItsmEvent> = [10, 20, 30, 40, 600]
            .iter()
            .map(|m| resolved("2026-11-30T08:00:00Z", *m))
            .collect();
        // Resolved 00:30 on Monday 23 November in Oslo, still Sunday 22 in UTC: Oslo's week.
        events.push(resolved("2026-11-22T22:00:00Z", 90));
        // Before the twelve weeks, and not an incident resolution: both left out.
        events.push(resolved("2026-09-01T08:00:00Z", 5));
        let mut change = resolved("2026-11-30T08:00:00Z", 1);
        change.kind = EventKind::ChangeImplemented as i32;
        events.push(change);

        let weeks = weekly(&events, first, tz);
        assert_eq!(weeks.len(), 12);
        let last = &weeks[11];
        assert_eq!(
            last.week,
            NaiveDate::from_ymd_opt(2026, 11, 30).expect("date")
        );
        assert_eq!(
            (last.incidents, last.median_minutes, last.p90_minutes),
            (5, Some(30.0), Some(600.0))
        );
        assert_eq!(
            (weeks[10].incidents, weeks[10].median_minutes),
            (1, Some(90.0))
        );
        assert_eq!(weeks.iter().map(|w| w.incidents).sum::<usize>(), 6);

        let svg = draw(&weeks, &Organisation::default());
        assert!(svg.contains("data-median-minutes=\"30.0\""), "{svg}");
        assert!(svg.contains("data-p90-minutes=\"600.0\""), "{svg}");
        assert!(svg.contains("latest median 0.5 h"), "{svg}");
        assert_eq!(
            svg.matches("data-median-minutes").count(),
            2,
            "empty weeks draw no bar"
        );
    }

    #[test]
    fn weeks_without_incidents_say_so() {
        let first = NaiveDate::from_ymd_opt(2026, 9, 14).expect("date");
        let weeks = weekly(&[], first, chrono_tz::UTC);
        let svg = draw(&weeks, &Organisation::default());
        assert!(svg.contains("No incidents resolved"), "{svg}");
        assert!(!svg.contains("data-median-minutes"));
    }
}
