//! The monthly value report, the workshop pack for a business review: the month's KPIs (with the
//! 90-day plan's baseline → goal → current where one is set), value per label, five stories,
//! problems solved that could help elsewhere, lessons learned, and an elevator pitch written from
//! the month's own numbers. Rendered as Markdown, HTML (with charts) or PDF.

pub mod kpis;
pub mod mttr;
pub mod pdf;
pub mod plan;
pub mod render;
pub mod web;

use chrono::{Datelike, NaiveDate, TimeZone, Utc};
use herald_catalog::{Catalog, Organisation};
use herald_proto::v1::{EventKind, Source, ValueLabel, Win};

use crate::{config::ScoringSettings, format, store::Store, store::StoreError};

use kpis::Kpis;

/// One KPI row: its name, the month's value in words, and where the plan has it.
#[derive(Debug, Clone, PartialEq)]
pub struct KpiLine {
    pub name: String,
    pub current: String,
    pub plan: Option<PlanLine>,
    /// How it was measured, in one line.
    pub how: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlanLine {
    pub baseline: String,
    pub goal: String,
    /// 0–1 from baseline to goal; may run past either end.
    pub progress: f64,
    pub by: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Story {
    pub headline: String,
    pub value: String,
    pub label: String,
    pub win_id: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProblemSolved {
    pub headline: String,
    pub service: String,
    /// Other services of the same capability or team, where the same fix may help.
    pub could_help: Vec<String>,
}

/// The month, ready to render.
#[derive(Debug, Clone, PartialEq)]
pub struct MonthlyReport {
    pub organisation: String,
    pub month: String,
    pub kpis: Kpis,
    pub lines: Vec<KpiLine>,
    pub value: Vec<(String, String, String)>,
    pub stories: Vec<Story>,
    pub problems: Vec<ProblemSolved>,
    pub lessons: Vec<String>,
    pub pitch: String,
    /// Wins per week of the month, for the chart: (week start, wins).
    pub weeks: Vec<(String, usize)>,
}

/// Why a report cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{0:?} is not a month like 2026-10")]
    BadMonth(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `2026-10` as its first day.
pub fn parse_month(text: &str) -> Result<NaiveDate, ReportError> {
    NaiveDate::parse_from_str(&format!("{}-01", text.trim()), "%Y-%m-%d")
        .map_err(|_| ReportError::BadMonth(text.to_string()))
}

fn percent(organisation: &Organisation, r: Option<f64>) -> String {
    r.map_or("not measured this month".into(), |r| {
        format!("{} %", organisation.number(r * 100.0, 1))
    })
}

fn minutes_text(m: Option<f64>) -> String {
    m.map_or("no incident resolved".into(), format::duration)
}

fn plan_value(kpi: plan::PlanKpi, value: f64, organisation: &Organisation) -> String {
    use plan::PlanKpi::*;
    match kpi {
        MttrMedianMinutes | MttrP90Minutes => format::duration(value),
        SlaAttainment | ChangeSuccessRate | Csat => format!("{} %", organisation.number(value, 1)),
        OutageMinutes => format!("{} min", organisation.number(value, 0)),
        CapacityHours => format!("{} h", organisation.number(value, 0)),
        CostAvoided => organisation.money(value),
        Deployments => organisation.number(value, 0),
    }
}

/// Builds the report of the month starting `first` from the store.
pub async fn build(
    store: &Store,
    catalog: &Catalog,
    settings: &ScoringSettings,
    first: NaiveDate,
) -> Result<MonthlyReport, ReportError> {
    let organisation = catalog.organisation();
    let tz = organisation.tz();
    let next = first
        .checked_add_months(chrono::Months::new(1))
        .unwrap_or(first);
    let at = |d: NaiveDate| {
        tz.from_local_datetime(&d.and_time(chrono::NaiveTime::MIN))
            .earliest()
            .map_or_else(
                || d.and_time(chrono::NaiveTime::MIN).and_utc(),
                |t| t.with_timezone(&Utc),
            )
    };
    let events = store.events_between(at(first), at(next)).await?;
    let wins = store.confirmed_wins_between(at(first), at(next)).await?;
    let github = events.iter().any(|e| e.source == Source::Github as i32);
    let kpis = kpis::compute(
        &events,
        &wins,
        &settings.outage_priorities,
        github,
        crate::value::praise::is_good_rating,
    );
    Ok(assemble(
        organisation,
        catalog,
        settings,
        first,
        kpis,
        &wins,
    ))
}

/// The report from the month's figures and wins: everything but the reading.
pub fn assemble(
    organisation: &Organisation,
    catalog: &Catalog,
    settings: &ScoringSettings,
    first: NaiveDate,
    kpis: Kpis,
    wins: &[Win],
) -> MonthlyReport {
    let month = organisation.month_name(first.year(), first.month());
    let planned = |kpi: plan::PlanKpi| {
        settings
            .plan
            .iter()
            .find(|g| g.kpi == kpi)
            .map(|g| PlanLine {
                baseline: plan_value(kpi, g.baseline, organisation),
                goal: plan_value(kpi, g.goal, organisation),
                progress: plan::PlanKpi::value(kpi, &kpis).map_or(0.0, |v| g.progress(v)),
                by: organisation.date(g.end),
            })
    };
    use plan::PlanKpi::*;
    let mut lines = vec![
        KpiLine {
            name: "MTTR (median)".into(),
            current: minutes_text(kpis.mttr_median_minutes),
            plan: planned(MttrMedianMinutes),
            how: format!("opened → resolved, {} resolutions", kpis.incidents_resolved),
        },
        KpiLine {
            name: "MTTR (P90)".into(),
            current: minutes_text(kpis.mttr_p90_minutes),
            plan: planned(MttrP90Minutes),
            how: "nine in ten resolutions took at most this".into(),
        },
        KpiLine {
            name: "SLA attainment".into(),
            current: percent(organisation, kpis.sla_attainment),
            plan: planned(SlaAttainment),
            how: format!(
                "{} of {} resolution cycles in time; every breach counts, reopened ones too",
                kpis.sla_cycles - kpis.sla_breaches,
                kpis.sla_cycles
            ),
        },
        KpiLine {
            name: "Change success rate".into(),
            current: percent(organisation, kpis.change_success_rate),
            plan: planned(ChangeSuccessRate),
            how: format!(
                "{} implemented, {} failed",
                kpis.changes_implemented, kpis.changes_failed
            ),
        },
        KpiLine {
            name: "Customer satisfaction".into(),
            current: percent(organisation, kpis.csat),
            plan: planned(Csat),
            how: format!("{} good of {} ratings", kpis.good_ratings, kpis.ratings),
        },
        KpiLine {
            name: "Outage minutes".into(),
            current: format!("{} min", organisation.number(kpis.outage_minutes, 0)),
            plan: planned(OutageMinutes),
            how: format!(
                "opened → resolved of P{} incidents",
                settings
                    .outage_priorities
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join("/P")
            ),
        },
    ];
    if let Some(deployments) = kpis.deployments {
        lines.push(KpiLine {
            name: "Production deployments".into(),
            current: organisation.number(deployments as f64, 0),
            plan: planned(Deployments),
            how: "successful deployments to production (GitHub)".into(),
        });
    }
    let value: Vec<(String, String, String)> = kpis
        .by_label
        .iter()
        .map(|s| {
            (
                s.label.token().to_string(),
                format!(
                    "{} · {} working hours · {} win{}",
                    organisation.money(s.amount),
                    organisation.number(s.hours, 0),
                    s.wins,
                    if s.wins == 1 { "" } else { "s" }
                ),
                s.label.meaning().to_string(),
            )
        })
        .collect();
    for (kpi, label) in [
        (CapacityHours, ValueLabel::Capacity),
        (CostAvoided, ValueLabel::Avoided),
    ] {
        if let Some(p) = planned(kpi) {
            let current = kpis
                .by_label
                .iter()
                .find(|s| s.label == label)
                .map_or(0.0, |s| {
                    if kpi == CapacityHours {
                        s.hours
                    } else {
                        s.amount
                    }
                });
            lines.push(KpiLine {
                name: kpi.name().into(),
                current: plan_value(kpi, current, organisation),
                plan: Some(p),
                how: format!("the month's confirmed {} wins", label.token()),
            });
        }
    }
    let valued: Vec<&Win> = wins
        .iter()
        .filter(|w| w.lesson.is_none() && w.value.as_ref().is_some_and(|v| v.amount > 0.0))
        .collect();
    let stories = valued
        .iter()
        .take(5)
        .map(|w| {
            let v = w.value.clone().unwrap_or_default();
            Story {
                headline: w.headline.clone(),
                value: organisation.money(v.amount),
                label: ValueLabel::try_from(v.label)
                    .unwrap_or(ValueLabel::Unspecified)
                    .token()
                    .to_string(),
                win_id: w.id.clone(),
            }
        })
        .collect();
    let problems = wins
        .iter()
        .filter(|w| w.kind == EventKind::ProblemClosed as i32 && w.lesson.is_none())
        .map(|w| {
            let service = w
                .business_service
                .as_deref()
                .and_then(|s| catalog.service(s));
            let could_help = service
                .map(|s| {
                    catalog
                        .services()
                        .iter()
                        .filter(|o| {
                            o.id != s.id
                                && ((o.capability.is_some() && o.capability == s.capability)
                                    || (o.team.is_some() && o.team == s.team))
                        })
                        .map(|o| o.name.clone())
                        .collect()
                })
                .unwrap_or_default();
            ProblemSolved {
                headline: w.headline.clone(),
                service: service.map(|s| s.name.clone()).unwrap_or_default(),
                could_help,
            }
        })
        .collect();
    let lessons = wins
        .iter()
        .filter_map(|w| w.lesson.as_ref())
        .filter(|l| l.public)
        .map(|l| l.title.clone())
        .collect();
    let weeks = weekly_counts(first, wins, organisation.tz());
    let pitch = pitch(organisation, &month, &kpis);
    MonthlyReport {
        organisation: organisation.name.clone(),
        month,
        kpis,
        lines,
        value,
        stories,
        problems,
        lessons,
        pitch,
        weeks,
    }
}

/// Wins per week (weeks starting Monday) of the month.
fn weekly_counts(first: NaiveDate, wins: &[Win], tz: chrono_tz::Tz) -> Vec<(String, usize)> {
    let mut weeks: Vec<(NaiveDate, usize)> = Vec::new();
    let mut day = first;
    while day.month() == first.month() {
        let monday = day - chrono::Days::new(u64::from(day.weekday().num_days_from_monday()));
        if weeks.last().is_none_or(|(w, _)| *w != monday) {
            weeks.push((monday, 0));
        }
        day = day + chrono::Days::new(1);
    }
    for win in wins.iter().filter(|w| w.lesson.is_none()) {
        if let Some(at) = herald_proto::time::opt_from_timestamp(win.occurred_at.as_ref()) {
            let local = at.with_timezone(&tz).date_naive();
            let monday =
                local - chrono::Days::new(u64::from(local.weekday().num_days_from_monday()));
            if let Some(week) = weeks.iter_mut().find(|(w, _)| *w == monday) {
                week.1 += 1;
            }
        }
    }
    weeks
        .into_iter()
        .map(|(w, n)| (w.format("%-d %b").to_string(), n))
        .collect()
}

/// The month in one paragraph of business language, from its own numbers only.
pub fn pitch(organisation: &Organisation, month: &str, k: &Kpis) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(median) = k.mttr_median_minutes {
        parts.push(format!(
            "restored service {} times, with half of them back within {}",
            k.incidents_resolved,
            format::duration(median)
        ));
    }
    let label = |l: ValueLabel| k.by_label.iter().find(|s| s.label == l);
    if let Some(capacity) = label(ValueLabel::Capacity) {
        parts.push(format!(
            "released {} working hours for other work (capacity worth {})",
            organisation.number(capacity.hours, 0),
            organisation.money(capacity.amount)
        ));
    }
    if let Some(avoided) = label(ValueLabel::Avoided) {
        parts.push(format!(
            "avoided an estimated {} of lost work",
            organisation.money(avoided.amount)
        ));
    }
    if let Some(cash) = label(ValueLabel::Cash) {
        parts.push(format!("saved {} in cash", organisation.money(cash.amount)));
    }
    let mut pitch = if parts.is_empty() {
        format!("In {month}, IT has no verified outcome to report yet.")
    } else {
        let last = parts.pop().unwrap_or_default();
        let list = if parts.is_empty() {
            last
        } else {
            format!("{} and {last}", parts.join(", "))
        };
        format!("In {month}, IT {list}.")
    };
    if let Some(rate) = k.change_success_rate {
        pitch.push_str(&format!(
            " {} % of changes went in without trouble",
            organisation.number(rate * 100.0, 0)
        ));
        match k.csat {
            Some(csat) => pitch.push_str(&format!(
                ", and {} % of the people who rated their service called it good.",
                organisation.number(csat * 100.0, 0)
            )),
            None => pitch.push('.'),
        }
    } else if let Some(csat) = k.csat {
        pitch.push_str(&format!(
            " {} % of the people who rated their service called it good.",
            organisation.number(csat * 100.0, 0)
        ));
    }
    pitch.push_str(" Each figure is labelled and explained; estimates are never added to cash.");
    pitch
}
