//! Problem eliminated: a root cause removed, valued by the related incidents that stopped.
//!
//! (related incidents in the window before the fix − related incidents in as long a window after)
//! × the service's cost per incident. Related means the same business service or configuration
//! item; counting them is the caller's (it holds the incidents), at the end of the observation
//! window. Only the drop is counted, never annualised or extrapolated.

use herald_catalog::{BusinessService, Catalog};
use herald_proto::v1::{EventKind, ItsmEvent, Record, Value, ValueLabel};

use super::{NoValue, Valuation, WinKind, input, no_value, service};
use crate::{config::ScoringSettings, credit, format};

const FORMULA: &str = "(related incidents in the observation window before the fix − related \
                       incidents in as long a window after it) × cost per incident; related = \
                       same business service or configuration item";

fn priced_service<'a>(
    record: &Record,
    catalog: &'a Catalog,
) -> Result<(&'a BusinessService, f64), NoValue> {
    let Some(service) = service(record, catalog) else {
        return no_value(
            "no business service from the catalog: no cost per incident to price the drop at",
        );
    };
    let Some(cost) = service.cost_per_incident else {
        return no_value(format!(
            "the catalog gives {} no cost_per_incident to price the incidents avoided at",
            service.name
        ));
    };
    Ok((service, cost))
}

fn title(record: &Record) -> &str {
    record.title.as_deref().unwrap_or("A recurring problem")
}

/// What `value()` returns when a problem closes: a provisional win with no money yet, whose
/// inputs are the incidents linked to the problem and the price each will be counted at. The
/// money comes from [`problem_eliminated`] when the observation window ends.
pub(super) fn provisional(record: &Record, catalog: &Catalog) -> Result<Valuation, NoValue> {
    let (service, cost) = priced_service(record, catalog)?;
    let currency = catalog.organisation().currency.clone();
    let mut inputs = Vec::new();
    if let Some(linked) = record.linked_incidents {
        inputs.push(input(
            "incidents linked to the problem",
            f64::from(linked),
            "incidents",
            "event: related incident count",
        ));
    }
    inputs.push(input(
        "cost per incident",
        cost,
        &currency,
        format!("catalog: {} cost_per_incident", service.name),
    ));
    Ok(Valuation {
        kind: WinKind::ProblemEliminated,
        digest_only: false,
        value: Value {
            label: ValueLabel::Avoided as i32,
            amount: 0.0,
            currency,
            hours: 0.0,
            users: 0.0,
            formula: format!("{FORMULA}; valued when the observation window ends"),
            inputs,
            summary: "valued when its observation window ends, from the drop in related incidents"
                .to_string(),
        },
        headline: format!("{}: root cause removed on {}", title(record), service.name),
    })
}

/// The value of a closed problem at the end of its observation window, from the related incidents
/// counted in the `window_days` before the fix (`before`) and after it (`after`).
pub fn problem_eliminated(
    event: &ItsmEvent,
    catalog: &Catalog,
    settings: &ScoringSettings,
    before: u32,
    after: u32,
    window_days: u32,
) -> Result<Valuation, NoValue> {
    if EventKind::try_from(event.kind) != Ok(EventKind::ProblemClosed) {
        return no_value("only a closed problem is valued by the incidents it eliminated");
    }
    let record = event.record.clone().unwrap_or_default();
    if record.automated == Some(true) {
        return no_value("performed by a system account: automatic outcomes earn no credit");
    }
    if let Some(reason) = credit::trivial_closure(&record, &settings.credit) {
        return no_value(reason);
    }
    let (service, cost) = priced_service(&record, catalog)?;
    if window_days == 0 {
        return no_value("an observation window of 0 days shows nothing");
    }
    if before == 0 {
        return no_value(format!(
            "no related incidents in the {window_days} days before the fix: nothing to eliminate"
        ));
    }
    if after >= before {
        return no_value(format!(
            "related incidents did not drop ({before} in the {window_days} days before the fix, \
             {after} after)"
        ));
    }
    let avoided = f64::from(before - after);
    let amount = avoided * cost;
    let organisation = catalog.organisation();
    let currency = organisation.currency.clone();
    let window = format!("{window_days}-day windows before and after the fix");
    Ok(Valuation {
        kind: WinKind::ProblemEliminated,
        digest_only: false,
        value: Value {
            label: ValueLabel::Avoided as i32,
            amount,
            currency: currency.clone(),
            hours: 0.0,
            users: 0.0,
            formula: FORMULA.to_string(),
            inputs: vec![
                input(
                    "related incidents before",
                    f64::from(before),
                    "incidents",
                    format!("incident history: {window}, same service or configuration item"),
                ),
                input(
                    "related incidents after",
                    f64::from(after),
                    "incidents",
                    format!("incident history: {window}, same service or configuration item"),
                ),
                input(
                    "cost per incident",
                    cost,
                    &currency,
                    format!("catalog: {} cost_per_incident", service.name),
                ),
            ],
            summary: format!(
                "{} of incident cost avoided: {} fewer incidents × {}",
                organisation.money(amount),
                format::count(avoided),
                organisation.money(cost)
            ),
        },
        headline: format!(
            "{}: {} fewer incidents on {} in the {window_days} days after the fix ({before} → \
             {after})",
            title(&record),
            format::count(avoided),
            service.name
        ),
    })
}
