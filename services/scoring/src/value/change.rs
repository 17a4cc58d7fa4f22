//! Quiet change: a change implemented without disrupting the people who depend on the service.
//!
//! The headline is the users who kept working. Money only where the catalog gives the service a
//! baseline change-failure rate (and a typical outage to price a failure at), then labelled
//! `estimate`: baseline failure rate × cost of a failed change, where a failed change costs one
//! typical outage (the service's typical P1 restore time, else P2) for its users × blocked share ×
//! loaded hourly rate. Scoring holds the win for the quiet-change window and revokes it if a
//! related incident appears; this module only values it.

use herald_catalog::Catalog;
use herald_proto::v1::{Record, Value, ValueLabel};

use super::{NoValue, Valuation, WinKind, input, no_value, service, working_hours};
use crate::{config::ScoringSettings, format};

const FORMULA: &str = "baseline change-failure rate × cost of a failed change; a failed change \
                       costs one typical outage: users × blocked share × typical restore time in \
                       working hours × loaded hourly rate";

pub(super) fn quiet_change(
    record: &Record,
    catalog: &Catalog,
    settings: &ScoringSettings,
) -> Result<Valuation, NoValue> {
    let Some(service) = service(record, catalog) else {
        return no_value("no business service from the catalog: nobody to count as kept working");
    };
    if let Some(caused) = record.incidents_caused.filter(|n| *n > 0) {
        return no_value(format!(
            "the change caused {caused} incident(s): not a quiet change"
        ));
    }
    let code = record
        .close_code
        .as_deref()
        .unwrap_or_default()
        .to_lowercase();
    if code.contains("issues") || code.contains("unsuccessful") {
        return no_value(format!(
            "closed as {:?}: not a change that went in quietly",
            record.close_code.as_deref().unwrap_or_default()
        ));
    }
    let users = f64::from(service.users);
    let title = record.title.as_deref().unwrap_or("A change");
    let headline = format!(
        "{title} went in quietly: {} people who depend on {} kept working",
        format::count(users),
        service.name
    );
    let users_input = input(
        "people who kept working",
        users,
        "people",
        format!("catalog: {} users", service.name),
    );
    let organisation = catalog.organisation();
    let currency = organisation.currency.clone();

    let priced = service
        .change_failure_rate
        .zip(service.typical_outage_minutes());
    let Some((failure_rate, (priority, outage_minutes))) = priced else {
        let why = if service.change_failure_rate.is_none() {
            format!(
                "the catalog gives {} no baseline change-failure rate",
                service.name
            )
        } else {
            format!(
                "the catalog gives {} no typical P1 or P2 restore time to price a failure at",
                service.name
            )
        };
        return Ok(Valuation {
            kind: WinKind::QuietChange,
            digest_only: false,
            value: Value {
                label: ValueLabel::Estimate as i32,
                amount: 0.0,
                currency,
                hours: 0.0,
                users,
                formula: format!("users unaffected; no money is claimed because {why}"),
                inputs: vec![users_input],
                summary: format!(
                    "{} people kept working through the change (no money claimed: {why})",
                    format::count(users)
                ),
            },
            headline,
        });
    };

    let per_day = settings.working_hours_per_day;
    let outage_hours = working_hours(outage_minutes / 60.0, per_day);
    let affected = users * service.blocked_share;
    let failed_change_cost = affected * outage_hours * service.loaded_hourly_rate;
    let amount = failure_rate * failed_change_cost;
    let hours = failure_rate * affected * outage_hours;
    Ok(Valuation {
        kind: WinKind::QuietChange,
        digest_only: false,
        value: Value {
            label: ValueLabel::Estimate as i32,
            amount,
            currency: currency.clone(),
            hours,
            users,
            formula: FORMULA.to_string(),
            inputs: vec![
                users_input,
                input(
                    "baseline change-failure rate",
                    failure_rate,
                    "share",
                    format!("catalog: {} change_failure_rate", service.name),
                ),
                input(
                    "blocked share",
                    service.blocked_share,
                    "share",
                    format!("catalog: {} blocked_share", service.name),
                ),
                input(
                    "typical outage",
                    outage_minutes,
                    "minutes",
                    format!(
                        "catalog: {} typical restore time for P{priority}",
                        service.name
                    ),
                ),
                input(
                    "loaded hourly rate",
                    service.loaded_hourly_rate,
                    &currency,
                    format!("catalog: {} loaded_hourly_rate", service.name),
                ),
                input(
                    "cost of a failed change",
                    failed_change_cost,
                    &currency,
                    "users × blocked share × typical outage in working hours × rate",
                ),
            ],
            summary: format!(
                "{} people kept working; {} of expected disruption avoided ({} % × {} for a \
                 failed change)",
                format::count(users),
                organisation.money(amount),
                format::count(failure_rate * 100.0),
                organisation.money(failed_change_cost),
            ),
        },
        headline,
    })
}
