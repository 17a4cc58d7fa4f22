//! The value models: how a verified outcome becomes a number a sceptical finance person accepts.
//!
//! Every figure comes from the organisation's own catalog and the event itself, carries its formula,
//! each input with where it came from, and a label saying how to read it. When an input is missing
//! the model claims nothing rather than guess. One file per kind of win; docs/value-model.md says the
//! same in plain language, with a worked example per kind that the tests compute.
//!
//! | kind | events | label | module |
//! |---|---|---|---|
//! | outage shortened | `incident_resolved`, `page_resolved` | `avoided` | [`outage`] |
//! | quiet change | `change_implemented` | `estimate` | [`change`] |
//! | problem eliminated | `problem_closed` (valued after its observation window) | `avoided` | [`problem`] |
//! | request on time | `request_fulfilled` (digest only) | `capacity` | [`request`] |
//! | toil automated | `automation_run` | `capacity` | [`toil`] |
//!
//! No value of their own: requester praise ([`praise()`]), lessons learned ([`lesson()`]) and
//! deployments and merges ([`delivery_metric()`]), which are context for delivery metrics.

mod change;
mod delivery;
mod lesson;
mod outage;
pub mod praise;
mod problem;
mod request;
mod toil;

use chrono::{DateTime, Utc};
use herald_catalog::{BusinessService, Catalog};
use herald_proto::v1::{EventKind, ItsmEvent, Record, Value, ValueInput};
use serde::Deserialize;

use crate::{config::ScoringSettings, credit};

pub use delivery::{DeliveryKind, DeliveryMetric, delivery_metric};
pub use lesson::{Audience, Lesson, lesson};
pub use praise::{Praise, is_good_rating, praise};
pub use problem::problem_eliminated;

/// The kind of win an outcome is, in the words docs/value-model.md uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WinKind {
    OutageShortened,
    QuietChange,
    /// Provisional until the observation window ends; [`problem_eliminated`] gives the value.
    ProblemEliminated,
    RequestOnTime,
    ToilAutomated,
}

impl WinKind {
    pub fn name(self) -> &'static str {
        match self {
            WinKind::OutageShortened => "outage shortened",
            WinKind::QuietChange => "quiet change",
            WinKind::ProblemEliminated => "problem eliminated",
            WinKind::RequestOnTime => "request on time",
            WinKind::ToilAutomated => "toil automated",
        }
    }
}

/// The value of an outcome and the one sentence that tells its story.
#[derive(Debug, Clone, PartialEq)]
pub struct Valuation {
    pub value: Value,
    pub headline: String,
    pub kind: WinKind,
    /// Counted in rollups, leaderboards and digests, never a headline of its own (requests on
    /// time: one digest line per team and period, not one announcement per ticket).
    pub digest_only: bool,
}

/// Why an outcome earns nothing. Recorded with the event, so "why no win?" has an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoValue(pub String);

fn no_value<T>(reason: impl Into<String>) -> Result<T, NoValue> {
    Err(NoValue(reason.into()))
}

/// `[scoring.stories]`: stories that carry no value of their own (requester praise, lessons).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorySettings {
    /// Whether a praise quote names the requester. Off: "the requester".
    pub praise_names_requester: bool,
    /// A longer comment is cut at a word boundary to this many characters.
    pub praise_max_chars: usize,
    /// Incident priorities that count as major incidents: with a postmortem they become a lesson.
    pub lesson_priorities: Vec<u32>,
}

impl Default for StorySettings {
    fn default() -> Self {
        Self {
            praise_names_requester: false,
            praise_max_chars: 280,
            lesson_priorities: vec![1],
        }
    }
}

impl StorySettings {
    pub fn validate(&self) -> Result<(), String> {
        if self.praise_max_chars < 20 {
            return Err("[scoring.stories] praise_max_chars must be at least 20".into());
        }
        Ok(())
    }
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
///
/// For `problem_closed` this is the provisional valuation recorded when the problem closes (no
/// money yet, the related incidents before the fix as its input); the lead calls
/// [`problem_eliminated`] with the counts when the observation window ends.
pub fn value(
    event: &ItsmEvent,
    catalog: &Catalog,
    settings: &ScoringSettings,
) -> Result<Valuation, NoValue> {
    let record = event.record.clone().unwrap_or_default();
    if record.automated == Some(true) {
        return no_value("performed by a system account: automatic outcomes earn no credit");
    }
    if let Some(reason) = credit::trivial_closure(&record, &settings.credit) {
        return no_value(reason);
    }
    match EventKind::try_from(event.kind).unwrap_or(EventKind::Unspecified) {
        EventKind::IncidentResolved => outage::incident_resolved(&record, catalog, settings),
        EventKind::PageResolved => outage::page_resolved(&record, catalog, settings),
        EventKind::ChangeImplemented => change::quiet_change(&record, catalog, settings),
        EventKind::ProblemClosed => problem::provisional(&record, catalog),
        EventKind::RequestFulfilled => request::on_time(event, &record, catalog, settings),
        EventKind::AutomationRun => toil::automated(&record, catalog, settings),
        EventKind::ChangeFailed => no_value(
            "a failed change earns no value; with a postmortem it becomes a blameless \
             lesson-learned story instead",
        ),
        EventKind::SurveySubmitted => no_value(
            "a satisfaction rating has no value of its own: a good one with a comment is quoted \
             on the win of the ticket it rates",
        ),
        EventKind::DeploymentSucceeded | EventKind::PullRequestMerged => no_value(
            "context: counted for delivery metrics (deployment frequency, change failure rate), \
             no win of its own",
        ),
        EventKind::IncidentReopened | EventKind::RequestReopened | EventKind::PageReopened => {
            no_value("a reopen undoes an outcome: it revokes the earlier win, it is not one")
        }
        other => no_value(format!(
            "{} is not an outcome: it is recorded, not scored",
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
