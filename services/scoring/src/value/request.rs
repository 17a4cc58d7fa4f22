//! Request on time: a request fulfilled before its due date. Counted for digests only.

use herald_catalog::Catalog;
use herald_proto::{
    time::opt_from_timestamp,
    v1::{ItsmEvent, Record, Value, ValueLabel},
};

use super::{
    NoValue, Valuation, WinKind, hourly_rate, input, minutes_between, no_value, service,
    working_hours,
};
use crate::{config::ScoringSettings, format};

/// Request on time: the requester could work as planned.
///
/// working hours ahead of the due date (at most one working day) × loaded hourly rate, for the one
/// person who asked.
pub(super) fn on_time(
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
        kind: WinKind::RequestOnTime,
        // One digest line per team and period, never one headline per ticket.
        digest_only: true,
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
