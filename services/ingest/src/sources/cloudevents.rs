//! CloudEvents 1.0 over HTTP, structured (`application/cloudevents+json`) and binary (`ce-` headers)
//! modes, with Herald's own event type `dev.herald.automation.run`.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use herald_catalog::Catalog;
use herald_proto::{
    time::to_timestamp,
    v1::{EventKind, ItsmEvent, Record, Source},
};
use herald_runtime::{ApiError, ErrorKind};
use http::HeaderMap;
use serde_json::Value;

use super::{Context, Normalised, SourceHandler, parse_json, unusable};
use crate::verify::{Keys, verify_herald_signature};

pub const AUTOMATION_RUN: &str = "dev.herald.automation.run";
const TYPES: [&str; 1] = [AUTOMATION_RUN];

pub struct CloudEvents;

impl SourceHandler for CloudEvents {
    fn source(&self) -> Source {
        Source::Cloudevents
    }

    fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        keys: &Keys,
        _now: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        verify_herald_signature(headers, body, keys)
    }

    fn normalise(
        &self,
        ctx: &Context<'_>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Normalised, ApiError> {
        let content_type = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let media = content_type.split(';').next().unwrap_or("").trim();
        let envelope = if media == "application/cloudevents-batch+json" {
            return normalise_batch(ctx, body);
        } else if media == "application/cloudevents+json" {
            Envelope::structured(parse_json(body)?)?
        } else if headers.contains_key("ce-specversion") {
            Envelope::binary(headers, parse_json(body)?)?
        } else {
            return Err(ApiError::new(
                ErrorKind::UnsupportedMediaType,
                "not_a_cloudevent",
                "send Content-Type: application/cloudevents+json (structured mode) or the ce-specversion, \
                 ce-id, ce-source and ce-type headers (binary mode)",
            ));
        };
        normalise_envelope(ctx, envelope)
    }
}

/// Most events one batched delivery may carry; the body limit bounds it too.
pub const MAX_BATCH: usize = 1000;

/// Batched mode: a JSON array of structured events. Every item is checked before anything is
/// published, so a bad item refuses the whole delivery (422 naming it) and nothing is half-stored.
fn normalise_batch(ctx: &Context<'_>, body: &[u8]) -> Result<Normalised, ApiError> {
    let Value::Array(items) = parse_json(body)? else {
        return Err(unusable(
            "a batch (application/cloudevents-batch+json) must be a JSON array of structured events",
        ));
    };
    if items.len() > MAX_BATCH {
        return Err(unusable(format!(
            "a batch carries at most {MAX_BATCH} events; this one has {}",
            items.len()
        )));
    }
    let mut normalised = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let raw = serde_json::to_vec(&item).unwrap_or_default();
        let event = Envelope::structured(item)
            .and_then(|envelope| normalise_envelope(ctx, envelope))
            .map_err(|e| unusable(format!("batch item {index}: {}", e.message)))?;
        normalised.push((event, raw));
    }
    Ok(Normalised::Batch(normalised))
}

/// The context attributes and data of one event, whichever mode carried it.
#[derive(Debug)]
struct Envelope {
    id: String,
    source: String,
    kind: String,
    time: Option<String>,
    data: Value,
}

fn required_attr(value: Option<&str>, name: &str, mode: &str) -> Result<String, ApiError> {
    value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .ok_or_else(|| {
            unusable(format!(
                "the CloudEvents attribute {name} is required ({mode})"
            ))
        })
}

fn check_specversion(version: Option<&str>, mode: &str) -> Result<(), ApiError> {
    match version {
        Some("1.0") => Ok(()),
        Some(other) => Err(unusable(format!(
            "specversion {other:?} is not supported; send \"1.0\""
        ))),
        None => Err(unusable(format!(
            "the CloudEvents attribute specversion is required ({mode})"
        ))),
    }
}

impl Envelope {
    fn structured(body: Value) -> Result<Self, ApiError> {
        let obj = body
            .as_object()
            .ok_or_else(|| unusable("a structured CloudEvent must be a JSON object"))?;
        let attr = |name: &str| obj.get(name).and_then(Value::as_str);
        const MODE: &str = "structured mode";
        check_specversion(attr("specversion"), MODE)?;
        Ok(Self {
            id: required_attr(attr("id"), "id", MODE)?,
            source: required_attr(attr("source"), "source", MODE)?,
            kind: required_attr(attr("type"), "type", MODE)?,
            time: attr("time").map(str::to_string),
            data: obj.get("data").cloned().unwrap_or(Value::Null),
        })
    }

    fn binary(headers: &HeaderMap, data: Value) -> Result<Self, ApiError> {
        let attr = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        const MODE: &str = "binary mode: the ce- header";
        check_specversion(attr("ce-specversion"), MODE)?;
        Ok(Self {
            id: required_attr(attr("ce-id"), "ce-id", MODE)?,
            source: required_attr(attr("ce-source"), "ce-source", MODE)?,
            kind: required_attr(attr("ce-type"), "ce-type", MODE)?,
            time: attr("ce-time").map(str::to_string),
            data,
        })
    }
}

fn parse_time(field: &str, s: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|_| unusable(format!("{field} must be an RFC 3339 time, got {s:?}")))
}

fn normalise_envelope(ctx: &Context<'_>, envelope: Envelope) -> Result<Normalised, ApiError> {
    if !TYPES.contains(&envelope.kind.as_str()) {
        return Err(unusable(format!(
            "CloudEvents type {:?} is not one Herald reads; send one of {}",
            envelope.kind,
            TYPES.join(", ")
        )));
    }
    let data = envelope
        .data
        .as_object()
        .ok_or_else(|| unusable("data must be a JSON object for dev.herald.automation.run"))?;
    let text = |k: &str| {
        data.get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };

    let mut missing = Vec::new();
    let automation = text("automation");
    if automation.is_none() {
        missing.push("automation");
    }
    let status = text("status");
    if status.is_none() {
        missing.push("status");
    }
    let work = run_counts(data)?;
    let minutes = data.get("minutes_saved");
    if minutes.is_none() && work.is_none() {
        missing.push("minutes_saved (or runs and minutes_per_run)");
    }
    if !missing.is_empty() {
        return Err(unusable(format!("data is missing {}", missing.join(", "))));
    }
    let status = status.unwrap_or_default();
    if !matches!(status, "succeeded" | "failed" | "partial") {
        return Err(unusable(format!(
            "data.status {status:?} must be one of succeeded, failed, partial"
        )));
    }
    let minutes_saved = match (minutes, work) {
        (Some(minutes), _) => minutes.as_i64().filter(|m| *m >= 0).ok_or_else(|| {
            unusable("data.minutes_saved must be a whole number of minutes, zero or more")
        })?,
        // Whole minutes of a product of two checked, finite, non-negative numbers.
        (None, Some(work)) => (f64::from(work.runs) * work.minutes_per_run).round() as i64,
        (None, None) => 0,
    };
    // A failed run saved nothing, whatever it reports.
    let failed = status == "failed";
    let minutes_saved = if failed { 0 } else { minutes_saved };
    let failed_runs = optional_count(data, "failed_runs")?;

    let catalog = ctx.catalog;
    let owner = text("owner").and_then(|o| person(catalog, o));
    let mut contributors: BTreeSet<String> = owner.iter().cloned().collect();
    for c in data
        .get("contributors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(p) = c.as_str().and_then(|c| person(catalog, c)) {
            contributors.insert(p);
        }
    }
    let occurred_at = match &envelope.time {
        Some(t) => parse_time("time", t)?,
        None => ctx.received_at,
    };
    let record = Record {
        number: text("run_id")
            .map(str::to_string)
            .unwrap_or_else(|| envelope.id.clone()),
        title: automation.map(str::to_string),
        url: text("url").map(str::to_string),
        business_service: text("business_service")
            .and_then(|s| catalog.match_service([s]))
            .map(|s| s.id.clone()),
        assignment_group: text("team")
            .and_then(|t| catalog.match_team(t))
            .map(|t| t.id.clone()),
        assignee: owner,
        contributors: contributors.into_iter().collect(),
        opened_at: text("started_at")
            .map(|t| parse_time("data.started_at", t))
            .transpose()?
            .map(to_timestamp),
        resolved_at: text("finished_at")
            .map(|t| parse_time("data.finished_at", t))
            .transpose()?
            .map(to_timestamp),
        status: Some(status.to_string()),
        minutes_saved: Some(minutes_saved),
        runs: work.map(|w| if failed { 0 } else { w.runs }),
        minutes_per_run: work.map(|w| w.minutes_per_run),
        failed_runs,
        ..Default::default()
    };
    let id = format!("cloudevents:{}:{}", envelope.source, envelope.id);
    let event = ItsmEvent {
        id: id.clone(),
        source: Source::Cloudevents as i32,
        kind: EventKind::AutomationRun as i32,
        occurred_at: Some(to_timestamp(occurred_at)),
        record: Some(record),
        ..Default::default()
    };
    Ok(Normalised::Event {
        event: Box::new(event),
        ordering_key: format!("cloudevents:{}", envelope.source),
    })
}

/// The successful runs of a report and the manual minutes one run replaces.
#[derive(Debug, Clone, Copy, PartialEq)]
struct RunCounts {
    runs: u32,
    minutes_per_run: f64,
}

/// `runs` and `minutes_per_run` when the automation sends them; else `items` with
/// `manual_minutes_per_item` − `automated_minutes_per_item` (each item a run of the manual task);
/// else `None`, and scoring counts `minutes_saved` as one run.
fn run_counts(data: &serde_json::Map<String, Value>) -> Result<Option<RunCounts>, ApiError> {
    let minutes = |k: &str| -> Result<Option<f64>, ApiError> {
        match data.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_f64()
                .filter(|m| m.is_finite() && *m >= 0.0)
                .map(Some)
                .ok_or_else(|| {
                    unusable(format!(
                        "data.{k} must be a number of minutes, zero or more"
                    ))
                }),
        }
    };
    if let (Some(runs), Some(per_run)) =
        (optional_count(data, "runs")?, minutes("minutes_per_run")?)
    {
        return Ok(Some(RunCounts {
            runs,
            minutes_per_run: per_run,
        }));
    }
    let items = optional_count(data, "items")?;
    let manual = minutes("manual_minutes_per_item")?;
    let automated = minutes("automated_minutes_per_item")?.unwrap_or(0.0);
    Ok(match (items, manual) {
        (Some(items), Some(manual)) => Some(RunCounts {
            runs: items,
            minutes_per_run: (manual - automated).max(0.0),
        }),
        _ => None,
    })
}

fn optional_count(
    data: &serde_json::Map<String, Value>,
    key: &str,
) -> Result<Option<u32>, ApiError> {
    match data.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| unusable(format!("data.{key} must be a whole number, zero or more"))),
    }
}

/// An owner or contributor: a catalog person id, or an e-mail address.
fn person(catalog: &Catalog, value: &str) -> Option<String> {
    catalog
        .person(value)
        .or_else(|| catalog.match_person("cloudevents", value))
        .map(|p| p.id.clone())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn record(data: Value) -> Result<Record, ApiError> {
        let catalog = Catalog::default();
        let ctx = Context {
            catalog: &catalog,
            received_at: Utc::now(),
        };
        let envelope = Envelope {
            id: "run-1".into(),
            source: "https://automation.example/runbooks/x".into(),
            kind: AUTOMATION_RUN.into(),
            time: None,
            data,
        };
        match normalise_envelope(&ctx, envelope)? {
            Normalised::Event { event, .. } => Ok(event.record.unwrap_or_default()),
            _ => panic!("one event"),
        }
    }

    #[test]
    fn runs_and_minutes_per_run_travel_separately() {
        let r = record(
            json!({"automation": "Patch", "status": "partial", "runs": 95,
            "minutes_per_run": 12, "failed_runs": 3}),
        )
        .expect("usable");
        assert_eq!(
            (r.runs, r.minutes_per_run, r.failed_runs, r.minutes_saved),
            (Some(95), Some(12.0), Some(3), Some(1140))
        );
    }

    #[test]
    fn items_with_per_item_minutes_are_runs_and_minutes_saved_alone_is_one_run() {
        let r = record(
            json!({"automation": "Re-image", "status": "succeeded", "items": 64,
            "manual_minutes_per_item": 25, "automated_minutes_per_item": 3, "minutes_saved": 1408}),
        )
        .expect("usable");
        assert_eq!(
            (r.runs, r.minutes_per_run, r.minutes_saved),
            (Some(64), Some(22.0), Some(1408))
        );
        let r =
            record(json!({"automation": "Reclaim", "status": "succeeded", "minutes_saved": 30}))
                .expect("usable");
        assert_eq!(
            (r.runs, r.minutes_per_run, r.minutes_saved),
            (None, None, Some(30))
        );
    }

    #[test]
    fn a_failed_run_counts_no_runs_and_bad_counts_are_named() {
        let r = record(json!({"automation": "Patch", "status": "failed", "runs": 4,
            "minutes_per_run": 12}))
        .expect("usable");
        assert_eq!((r.runs, r.minutes_saved), (Some(0), Some(0)));
        let err = record(
            json!({"automation": "Patch", "status": "succeeded", "runs": -1,
            "minutes_per_run": 12}),
        )
        .expect_err("negative runs");
        assert!(err.message.contains("data.runs"), "{}", err.message);
        let err = record(json!({"automation": "Patch", "status": "succeeded"}))
            .expect_err("nothing saved");
        assert!(err.message.contains("minutes_saved"), "{}", err.message);
    }
}
