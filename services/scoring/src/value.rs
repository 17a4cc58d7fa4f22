//! The value models: how a verified outcome becomes a number a sceptical finance person accepts.
//!
//! Every figure comes from the organisation's own catalog and the event itself, carries its formula,
//! each input with where it came from, and a label saying how to read it. When an input is missing
//! the model claims nothing rather than guess.

use chrono::{DateTime, Utc};
use herald_catalog::{BusinessService, Catalog};
use herald_proto::{
    time::opt_from_timestamp,
    v1::{EventKind, ItsmEvent, Record, Value, ValueInput, ValueLabel},
};

use crate::{config::ScoringSettings, format};

/// The value of an outcome and the one sentence that tells its story.
#[derive(Debug, Clone, PartialEq)]
pub struct Valuation {
    pub value: Value,
    pub headline: String,
}

/// Why an outcome earns nothing. Recorded with the event, so "why no win?" has an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoValue(pub String);

fn no_value<T>(reason: impl Into<String>) -> Result<T, NoValue> {
    Err(NoValue(reason.into()))
}

fn input(name: &str, value: f64, unit: &str, source: impl Into<String>) -> ValueInput {
    ValueInput {
        name: name.to_string(),
        value,
        unit: unit.to_string(),
        source: source.into(),
    }
}

/// Saved wall-clock hours as working hours: whole days count `per_day` hours each, and the rest at
/// most `per_day`. An outage cut short by two days did not cost anyone 48 working hours.
pub fn working_hours(wall_hours: f64, per_day: f64) -> f64 {
    if wall_hours <= 0.0 {
        return 0.0;
    }
    let days = (wall_hours / 24.0).floor();
    let rest = wall_hours - days * 24.0;
    days * per_day + rest.min(per_day)
}

/// Values an event, or says why it earns nothing.
pub fn value(
    event: &ItsmEvent,
    catalog: &Catalog,
    settings: &ScoringSettings,
) -> Result<Valuation, NoValue> {
    let record = event.record.clone().unwrap_or_default();
    if record.automated == Some(true) {
        return no_value("performed by a system account: automatic outcomes earn no credit");
    }
    match EventKind::try_from(event.kind).unwrap_or(EventKind::Unspecified) {
        EventKind::IncidentResolved => incident_resolved(&record, catalog, settings),
        EventKind::RequestFulfilled => request_fulfilled(event, &record, catalog, settings),
        EventKind::AutomationRun => automation_run(&record, catalog, settings),
        other => no_value(format!(
            "Herald has no value model for {} yet; it is recorded, not scored",
            other.token()
        )),
    }
}

fn service<'a>(record: &Record, catalog: &'a Catalog) -> Option<&'a BusinessService> {
    record
        .business_service
        .as_deref()
        .and_then(|id| catalog.service(id))
}

/// The hourly rate to price time at: the service's, else the configured default.
fn hourly_rate(
    service: Option<&BusinessService>,
    settings: &ScoringSettings,
) -> Option<(f64, String)> {
    match (service, settings.default_hourly_rate) {
        (Some(s), _) => Some((
            s.loaded_hourly_rate,
            format!("catalog: {} loaded hourly rate", s.name),
        )),
        (None, Some(rate)) => Some((
            rate,
            "configuration: scoring.default_hourly_rate".to_string(),
        )),
        (None, None) => None,
    }
}

/// Incident resolved: the outage was shortened.
///
/// people affected × blocked share × working hours saved × loaded hourly rate, where the hours saved
/// are the baseline restore time (the service's typical time for that priority, else the SLA
/// target) minus the actual restore time.
fn incident_resolved(
    record: &Record,
    catalog: &Catalog,
    settings: &ScoringSettings,
) -> Result<Valuation, NoValue> {
    let Some(service) = service(record, catalog) else {
        return no_value(
            "no business service from the catalog: Herald claims no value without one",
        );
    };
    let (Some(opened), Some(resolved)) = (
        opt_from_timestamp(record.opened_at.as_ref()),
        opt_from_timestamp(record.resolved_at.as_ref()),
    ) else {
        return no_value("opened and resolved times are both needed to measure the restore time");
    };
    if record.sla_breached == Some(true) {
        return no_value("its SLA was breached: not a win to celebrate");
    }
    let actual_minutes = minutes_between(opened, resolved);
    if actual_minutes < 0.0 {
        return no_value("resolved before it was opened: the times are inconsistent");
    }
    let priority = record.priority.unwrap_or(0);
    let typical = service
        .typical_restore_minutes
        .as_ref()
        .and_then(|t| t.minutes(priority));
    let sla =
        opt_from_timestamp(record.sla_due_at.as_ref()).map(|due| minutes_between(opened, due));
    let (baseline_minutes, baseline_source) = match (typical, sla) {
        (Some(minutes), _) => (
            minutes,
            format!(
                "catalog: {} typical restore time for P{priority}",
                service.name
            ),
        ),
        (None, Some(minutes)) if minutes > 0.0 => (
            minutes,
            "event: SLA target (sla_due_at − opened_at)".to_string(),
        ),
        _ => {
            return no_value(
                "no typical restore time in the catalog and no SLA target to measure against",
            );
        }
    };
    let saved_wall_hours = (baseline_minutes - actual_minutes) / 60.0;
    if saved_wall_hours <= 0.0 {
        return no_value(format!(
            "restored in {}, not inside the {} baseline: no time saved",
            format::duration(actual_minutes),
            format::duration(baseline_minutes)
        ));
    }
    let saved = working_hours(saved_wall_hours, settings.working_hours_per_day);
    let outage = settings.outage_priorities.contains(&priority);
    let (people, people_input) = if outage {
        (
            f64::from(service.users),
            input(
                "people who depend on the service",
                f64::from(service.users),
                "people",
                format!("catalog: {} users (P{priority} is an outage)", service.name),
            ),
        )
    } else {
        (
            1.0,
            input(
                "people affected",
                1.0,
                "people",
                format!("event: P{priority} affects the person who reported it"),
            ),
        )
    };
    let affected = people * service.blocked_share;
    let hours = affected * saved;
    let amount = hours * service.loaded_hourly_rate;
    let currency = &catalog.organisation().currency;
    let money = catalog.organisation().money(amount);

    let headline = if outage {
        format!(
            "{} restored in {}, {} inside its {} target: {} people back at work",
            service.name,
            format::duration(actual_minutes),
            format::duration(saved_wall_hours * 60.0),
            format::duration(baseline_minutes),
            format::count(affected),
        )
    } else {
        format!(
            "{} fixed in {}, {} inside its {} target",
            record.title.as_deref().unwrap_or(&service.name),
            format::duration(actual_minutes),
            format::duration(saved_wall_hours * 60.0),
            format::duration(baseline_minutes),
        )
    };
    Ok(Valuation {
        value: Value {
            label: ValueLabel::Avoided as i32,
            amount,
            currency: currency.clone(),
            hours,
            users: affected,
            formula: "people affected × blocked share × working hours saved × loaded hourly rate; \
                      working hours saved = baseline restore time − actual restore time, at most \
                      working_hours_per_day per 24 h"
                .to_string(),
            inputs: vec![
                people_input,
                input(
                    "blocked share",
                    service.blocked_share,
                    "share",
                    format!("catalog: {} blocked_share", service.name),
                ),
                input(
                    "baseline restore time",
                    baseline_minutes,
                    "minutes",
                    baseline_source,
                ),
                input(
                    "actual restore time",
                    actual_minutes,
                    "minutes",
                    "event: resolved_at − opened_at",
                ),
                input(
                    "working hours saved",
                    saved,
                    "hours",
                    format!(
                        "at most {} working hours a day",
                        settings.working_hours_per_day
                    ),
                ),
                input(
                    "loaded hourly rate",
                    service.loaded_hourly_rate,
                    currency,
                    format!("catalog: {} loaded_hourly_rate", service.name),
                ),
            ],
            summary: format!(
                "{money} of lost work avoided ({} working hours given back)",
                format::count(hours)
            ),
        },
        headline,
    })
}

/// Request fulfilled on time: the requester could work as planned.
///
/// working hours ahead of the due date (at most one working day) × loaded hourly rate, for the one
/// person who asked.
fn request_fulfilled(
    event: &ItsmEvent,
    record: &Record,
    catalog: &Catalog,
    settings: &ScoringSettings,
) -> Result<Valuation, NoValue> {
    let Some(due) = opt_from_timestamp(record.sla_due_at.as_ref()) else {
        return no_value("no due date to be on time against");
    };
    let Some(fulfilled) = opt_from_timestamp(record.resolved_at.as_ref())
        .or_else(|| opt_from_timestamp(event.occurred_at.as_ref()))
    else {
        return no_value("no fulfilment time");
    };
    if record.sla_breached == Some(true) || fulfilled > due {
        return no_value("fulfilled after its due date");
    }
    let service = service(record, catalog);
    let Some((rate, rate_source)) = hourly_rate(service, settings) else {
        return no_value(
            "no business service and no scoring.default_hourly_rate: no rate to price time at",
        );
    };
    let early_wall_hours = minutes_between(fulfilled, due) / 60.0;
    let per_day = settings.working_hours_per_day;
    let hours = working_hours(early_wall_hours, per_day).min(per_day);
    if hours <= 0.0 {
        return no_value("fulfilled exactly at its due date: nothing ahead of time to count");
    }
    let amount = hours * rate;
    let currency = &catalog.organisation().currency;
    let money = catalog.organisation().money(amount);
    Ok(Valuation {
        value: Value {
            label: ValueLabel::Capacity as i32,
            amount,
            currency: currency.clone(),
            hours,
            users: 1.0,
            formula: "working hours ahead of the due date (at most one working day) × loaded hourly rate, for the requester"
                .to_string(),
            inputs: vec![
                input("due date lead", early_wall_hours, "hours", "event: sla_due_at − resolved_at"),
                input("working hours protected", hours, "hours", format!("at most one working day of {per_day} hours")),
                input("loaded hourly rate", rate, currency, rate_source),
            ],
            summary: format!("{money} of working time protected ({} hours)", format::count(hours)),
        },
        headline: format!(
            "{} delivered {} ahead of its due date",
            record.title.as_deref().unwrap_or("A request"),
            format::duration(early_wall_hours * 60.0)
        ),
    })
}

/// Automation run: the minutes of manual work the automation reports it saved.
fn automation_run(
    record: &Record,
    catalog: &Catalog,
    settings: &ScoringSettings,
) -> Result<Valuation, NoValue> {
    if record.status.as_deref() == Some("failed") {
        return no_value("the run failed: it saved nothing");
    }
    let minutes = record.minutes_saved.unwrap_or(0);
    if minutes <= 0 {
        return no_value("the run reports no minutes saved");
    }
    let service = service(record, catalog);
    let Some((rate, rate_source)) = hourly_rate(service, settings) else {
        return no_value(
            "no business service and no scoring.default_hourly_rate: no rate to price time at",
        );
    };
    // Minutes are whole numbers from the event; far below f64's exact range.
    let hours = minutes as f64 / 60.0;
    let amount = hours * rate;
    let currency = &catalog.organisation().currency;
    let money = catalog.organisation().money(amount);
    Ok(Valuation {
        value: Value {
            label: ValueLabel::Capacity as i32,
            amount,
            currency: currency.clone(),
            hours,
            users: 0.0,
            formula: "minutes of manual work saved ÷ 60 × loaded hourly rate".to_string(),
            inputs: vec![
                input(
                    "manual work saved",
                    minutes as f64,
                    "minutes",
                    "event: data.minutes_saved reported by the automation",
                ),
                input("loaded hourly rate", rate, currency, rate_source),
            ],
            summary: format!(
                "{money} of manual work released ({} hours)",
                format::count(hours)
            ),
        },
        headline: format!(
            "{} saved {} of manual work",
            record.title.as_deref().unwrap_or("An automation"),
            format::duration(minutes as f64)
        ),
    })
}

fn minutes_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    // Millisecond precision is plenty; the cast cannot lose anything that matters at these sizes.
    (to - from).num_milliseconds() as f64 / 60_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn working_hours_count_at_most_a_working_day_per_day() {
        assert_eq!(working_hours(2.5, 8.0), 2.5);
        assert_eq!(working_hours(12.0, 8.0), 8.0);
        assert_eq!(working_hours(24.0, 8.0), 8.0);
        assert_eq!(working_hours(50.0, 8.0), 18.0);
        assert_eq!(working_hours(-1.0, 8.0), 0.0);
    }
}
