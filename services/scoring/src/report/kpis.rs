//! The month's key figures, computed from the events and wins of the month: pure functions of what
//! they are given, so a hand-computed set of events checks them.
//!
//! - MTTR: opened → resolved of each incident resolution in the month (a reopened incident that is
//!   resolved again is a second cycle), median and 90th percentile (nearest rank).
//! - SLA attainment: of the resolution cycles with an SLA (a due time or a breached flag), the
//!   share resolved in time; every breached cycle counts, including each cycle of a reopened one.
//! - Change success rate: changes implemented against implemented plus failed.
//! - CSAT: the share of satisfaction ratings that are good, as each tool defines good.
//! - Outage minutes: opened → resolved of incidents of the outage priorities (P1 and P2).
//! - Value per label from the confirmed wins of the month; never added across labels.
//! - Deployment frequency: successful production deployments (GitHub), when connected.

use chrono::{DateTime, Utc};
use herald_proto::{
    time::opt_from_timestamp,
    v1::{EventKind, ItsmEvent, Source, ValueLabel, Win},
};

/// One value label's month.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelSum {
    pub label: ValueLabel,
    pub amount: f64,
    pub hours: f64,
    pub wins: usize,
}

/// The month's figures. `None` where the month had nothing to measure it by.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Kpis {
    pub incidents_resolved: usize,
    pub mttr_median_minutes: Option<f64>,
    pub mttr_p90_minutes: Option<f64>,
    pub sla_cycles: usize,
    pub sla_breaches: usize,
    pub sla_attainment: Option<f64>,
    pub changes_implemented: usize,
    pub changes_failed: usize,
    pub change_success_rate: Option<f64>,
    pub ratings: usize,
    pub good_ratings: usize,
    pub csat: Option<f64>,
    pub outage_minutes: f64,
    pub deployments: Option<usize>,
    pub by_label: Vec<LabelSum>,
}

/// The nearest-rank percentile `p` (0–100) of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted.get(rank.min(sorted.len()) - 1).copied()
}

/// The median: the middle value, or the mean of the two middle ones.
pub fn median(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// When an event's record was resolved: its own resolution time, else when the event happened.
pub fn resolved_at(event: &ItsmEvent) -> Option<DateTime<Utc>> {
    let record = event.record.as_ref()?;
    opt_from_timestamp(record.resolved_at.as_ref())
        .or_else(|| opt_from_timestamp(event.occurred_at.as_ref()))
}

/// Minutes from opening to resolution of one resolution cycle; none when either is unknown or
/// the clock went backwards.
pub fn restore_minutes(event: &ItsmEvent) -> Option<f64> {
    let opened = opt_from_timestamp(event.record.as_ref()?.opened_at.as_ref())?;
    let m = (resolved_at(event)? - opened).num_seconds() as f64 / 60.0;
    (m >= 0.0).then_some(m)
}

fn ratio(part: usize, whole: usize) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// The figures of a month's `events` and confirmed `wins`; `github_connected` says whether
/// deployment frequency can be told.
pub fn compute(
    events: &[ItsmEvent],
    wins: &[Win],
    outage_priorities: &[u32],
    github_connected: bool,
    is_good: impl Fn(Source, &str) -> bool,
) -> Kpis {
    let mut k = Kpis::default();
    let mut restore: Vec<f64> = Vec::new();
    let mut deployments = 0;
    for event in events {
        let record = event.record.clone().unwrap_or_default();
        let resolved = resolved_at(event);
        match EventKind::try_from(event.kind).unwrap_or(EventKind::Unspecified) {
            EventKind::IncidentResolved => {
                k.incidents_resolved += 1;
                let took = restore_minutes(event);
                if let Some(m) = took {
                    restore.push(m);
                    if record
                        .priority
                        .is_some_and(|p| outage_priorities.contains(&p))
                    {
                        k.outage_minutes += m;
                    }
                }
                let due = opt_from_timestamp(record.sla_due_at.as_ref());
                let breached = match (record.sla_breached, due, resolved) {
                    (Some(true), _, _) => Some(true),
                    (_, Some(due), Some(resolved)) => Some(resolved > due),
                    (Some(false), _, _) => Some(false),
                    _ => None,
                };
                if let Some(breached) = breached {
                    k.sla_cycles += 1;
                    if breached {
                        k.sla_breaches += 1;
                    }
                }
            }
            EventKind::ChangeImplemented => k.changes_implemented += 1,
            EventKind::ChangeFailed => k.changes_failed += 1,
            EventKind::SurveySubmitted => {
                let score = record
                    .satisfaction
                    .as_ref()
                    .map(|s| s.score.as_str())
                    .unwrap_or("");
                if !score.is_empty() {
                    k.ratings += 1;
                    let source = Source::try_from(event.source).unwrap_or(Source::Unspecified);
                    if is_good(source, score) {
                        k.good_ratings += 1;
                    }
                }
            }
            EventKind::DeploymentSucceeded
                if record.environment.as_deref().is_some_and(|e| {
                    e.eq_ignore_ascii_case("production") || e.eq_ignore_ascii_case("prod")
                }) =>
            {
                deployments += 1;
            }
            _ => {}
        }
    }
    restore.sort_by(f64::total_cmp);
    k.mttr_median_minutes = median(&restore);
    k.mttr_p90_minutes = percentile(&restore, 90.0);
    k.sla_attainment = ratio(k.sla_cycles - k.sla_breaches, k.sla_cycles);
    k.change_success_rate = ratio(
        k.changes_implemented,
        k.changes_implemented + k.changes_failed,
    );
    k.csat = ratio(k.good_ratings, k.ratings);
    k.deployments = github_connected.then_some(deployments);
    for label in [
        ValueLabel::Cash,
        ValueLabel::Capacity,
        ValueLabel::Avoided,
        ValueLabel::Estimate,
    ] {
        let of_label: Vec<&Win> = wins
            .iter()
            .filter(|w| w.value.as_ref().is_some_and(|v| v.label == label as i32))
            .collect();
        if of_label.is_empty() {
            continue;
        }
        k.by_label.push(LabelSum {
            label,
            amount: of_label
                .iter()
                .filter_map(|w| w.value.as_ref())
                .map(|v| v.amount)
                .sum(),
            hours: of_label
                .iter()
                .filter_map(|w| w.value.as_ref())
                .map(|v| v.hours)
                .sum(),
            wins: of_label.len(),
        });
    }
    k
}

#[cfg(test)]
mod tests {
    use herald_proto::{
        time::to_timestamp,
        v1::{Record, Satisfaction, Value},
    };

    use super::*;

    fn at(minute: i64) -> Option<prost_types::Timestamp> {
        let base = DateTime::parse_from_rfc3339("2026-10-05T08:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        Some(to_timestamp(base + chrono::Duration::minutes(minute)))
    }

    fn incident(opened: i64, resolved: i64, priority: u32, due: Option<i64>) -> ItsmEvent {
        ItsmEvent {
            kind: EventKind::IncidentResolved as i32,
            source: Source::Servicenow as i32,
            occurred_at: at(resolved),
            record: Some(Record {
                opened_at: at(opened),
                resolved_at: at(resolved),
                priority: Some(priority),
                sla_due_at: due.and_then(at),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn event(kind: EventKind) -> ItsmEvent {
        ItsmEvent {
            kind: kind as i32,
            source: Source::Servicenow as i32,
            ..Default::default()
        }
    }

    #[test]
    fn the_months_figures_are_the_hand_computed_ones() {
        // Restore times 30, 60, 90, 120, 600 minutes: median 90, P90 the 5th of 5 = 600.
        let mut events = vec![
            incident(0, 30, 1, Some(60)),
            incident(0, 60, 2, Some(60)),
            incident(0, 90, 3, Some(60)),
            incident(0, 120, 4, None),
            incident(0, 600, 3, Some(480)),
        ];
        events.extend([
            event(EventKind::ChangeImplemented),
            event(EventKind::ChangeImplemented),
            event(EventKind::ChangeImplemented),
            event(EventKind::ChangeFailed),
        ]);
        for score in ["good", "good", "bad"] {
            let mut survey = event(EventKind::SurveySubmitted);
            survey.record = Some(Record {
                satisfaction: Some(Satisfaction {
                    score: score.into(),
                    comment: None,
                }),
                ..Default::default()
            });
            events.push(survey);
        }
        let win = |label: ValueLabel, amount: f64, hours: f64| Win {
            value: Some(Value {
                label: label as i32,
                amount,
                hours,
                ..Default::default()
            }),
            ..Default::default()
        };
        let wins = vec![
            win(ValueLabel::Avoided, 1000.0, 10.0),
            win(ValueLabel::Avoided, 500.0, 5.0),
            win(ValueLabel::Capacity, 200.0, 4.0),
        ];
        let k = compute(&events, &wins, &[1, 2], false, |_, s| s == "good");
        assert_eq!(k.incidents_resolved, 5);
        assert_eq!(k.mttr_median_minutes, Some(90.0));
        assert_eq!(k.mttr_p90_minutes, Some(600.0));
        // SLA: four cycles with a due time; 90 > 60 and 600 > 480 breached: 2 of 4 met.
        assert_eq!((k.sla_cycles, k.sla_breaches), (4, 2));
        assert_eq!(k.sla_attainment, Some(0.5));
        assert_eq!(k.change_success_rate, Some(0.75));
        assert_eq!(k.csat.map(|c| (c * 1000.0).round()), Some(667.0));
        // P1 and P2 only: 30 + 60.
        assert_eq!(k.outage_minutes, 90.0);
        assert_eq!(k.deployments, None, "GitHub not connected");
        assert_eq!(k.by_label.len(), 2, "one line per label");
        assert_eq!(k.by_label[0].label, ValueLabel::Capacity);
        assert_eq!(k.by_label[1].amount, 1500.0);
        assert_eq!(k.by_label[1].hours, 15.0);
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&v, 90.0), Some(9.0));
        assert_eq!(median(&v), Some(5.5));
        assert_eq!(percentile(&[], 90.0), None);
    }
}
