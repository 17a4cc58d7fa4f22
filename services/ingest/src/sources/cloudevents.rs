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
    let minutes = data.get("minutes_saved");
    if minutes.is_none() {
        missing.push("minutes_saved");
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
    let minutes_saved = minutes
        .and_then(Value::as_i64)
        .filter(|m| *m >= 0)
        .ok_or_else(|| {
            unusable("data.minutes_saved must be a whole number of minutes, zero or more")
        })?;
    // A failed run saved nothing, whatever it reports.
    let minutes_saved = if status == "failed" { 0 } else { minutes_saved };

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

/// An owner or contributor: a catalog person id, or an e-mail address.
fn person(catalog: &Catalog, value: &str) -> Option<String> {
    catalog
        .person(value)
        .or_else(|| catalog.match_person("cloudevents", value))
        .map(|p| p.id.clone())
}
