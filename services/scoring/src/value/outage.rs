//! Outage shortened: an incident or a page restored inside the service's baseline restore time.

use herald_catalog::Catalog;
use herald_proto::{
    time::opt_from_timestamp,
    v1::{Record, Value, ValueLabel},
};

use super::{
    NoValue, Valuation, WinKind, input, minutes_between, no_value, service, working_hours,
};
use crate::{config::ScoringSettings, format};

/// Incident resolved: the outage was shortened.
pub(super) fn incident_resolved(
    record: &Record,
    catalog: &Catalog,
    settings: &ScoringSettings,
) -> Result<Valuation, NoValue> {
    shortened(record, catalog, settings, Outage::Incident)
}

/// A page resolved by a person: the same outage model, against the service's typical restore time
/// (pages carry no SLA target). A page nobody acknowledged or resolved resolved itself.
pub(super) fn page_resolved(
    record: &Record,
    catalog: &Catalog,
    settings: &ScoringSettings,
) -> Result<Valuation, NoValue> {
    let someone = record.resolved_by.is_some()
        || record.assignee.is_some()
        || !record.contributors.is_empty();
    if !someone {
        return no_value(
            "the page resolved itself (no person acknowledged or resolved it): automatic \
             outcomes earn no credit",
        );
    }
    shortened(record, catalog, settings, Outage::Page)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Outage {
    Incident,
    Page,
}

/// people affected × blocked share × working hours saved × loaded hourly rate, where the hours saved
/// are the baseline restore time (the service's typical time for that priority, else the SLA
/// target) minus the actual restore time.
fn shortened(
    record: &Record,
    catalog: &Catalog,
    settings: &ScoringSettings,
    outage_kind: Outage,
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
        _ if outage_kind == Outage::Page => {
            return no_value(format!(
                "the catalog gives {} no typical restore time for P{priority}, and a page has no \
                 SLA target to measure against",
                service.name
            ));
        }
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
        kind: WinKind::OutageShortened,
        digest_only: false,
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
