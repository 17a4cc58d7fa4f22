//! Toil automated: runs × manual minutes one run replaces × the service's hourly rate.

use herald_catalog::Catalog;
use herald_proto::v1::{Record, Value, ValueLabel};

use super::{NoValue, Valuation, WinKind, hourly_rate, input, no_value, service};
use crate::{config::ScoringSettings, format};

/// How many runs count and the manual minutes each replaces, with where the numbers came from.
/// Events from before the run count existed carry only `minutes_saved`: one run of that length.
fn runs(record: &Record) -> (f64, f64, &'static str) {
    match (record.runs, record.minutes_per_run) {
        (Some(runs), Some(per_run)) => (
            f64::from(runs),
            per_run,
            "event: data.runs and data.minutes_per_run reported by the automation",
        ),
        _ => (
            1.0,
            // Whole minutes from the event; far below f64's exact range.
            record.minutes_saved.unwrap_or(0) as f64,
            "event: data.minutes_saved reported by the automation, counted as one run",
        ),
    }
}

pub(super) fn automated(
    record: &Record,
    catalog: &Catalog,
    settings: &ScoringSettings,
) -> Result<Valuation, NoValue> {
    if record.status.as_deref() == Some("failed") {
        return no_value("the run failed: it saved nothing");
    }
    let (runs, per_run, runs_source) = runs(record);
    if !(runs > 0.0 && per_run > 0.0 && per_run.is_finite()) {
        return no_value("the automation reports no successful run with minutes saved");
    }
    let service = service(record, catalog);
    let Some((rate, rate_source)) = hourly_rate(service, settings) else {
        return no_value(
            "no business service and no scoring.default_hourly_rate: no rate to price time at",
        );
    };
    let minutes = runs * per_run;
    let hours = minutes / 60.0;
    let amount = hours * rate;
    let organisation = catalog.organisation();
    let currency = &organisation.currency;
    let money = organisation.money(amount);
    let run_word = if runs == 1.0 { "run" } else { "runs" };
    // The inputs themselves, so a card can show how the figure was reached.
    let workings = format!(
        "{} {run_word} × {} = {} × {}/h",
        format::count(runs),
        format::duration(per_run),
        format::hours(hours),
        organisation.money(rate),
    );
    let failed = record.failed_runs.filter(|n| *n > 0);
    let mut inputs = vec![
        input("successful runs", runs, "runs", runs_source),
        input(
            "manual work one run replaces",
            per_run,
            "minutes",
            runs_source,
        ),
        input("loaded hourly rate", rate, currency, rate_source),
    ];
    if let Some(failed) = failed {
        inputs.push(input(
            "failed runs (not counted)",
            f64::from(failed),
            "runs",
            "event: data.failed_runs",
        ));
    }
    Ok(Valuation {
        kind: WinKind::ToilAutomated,
        digest_only: false,
        value: Value {
            label: ValueLabel::Capacity as i32,
            amount,
            currency: currency.clone(),
            hours,
            users: 0.0,
            formula: "successful runs × minutes of manual work one run replaces ÷ 60 × loaded \
                      hourly rate; failed runs count for nothing"
                .to_string(),
            inputs,
            summary: format!("{money} of manual work released: {workings}"),
        },
        headline: format!(
            "{} saved {} of manual work",
            record.title.as_deref().unwrap_or("An automation"),
            format::duration(minutes)
        ),
    })
}
