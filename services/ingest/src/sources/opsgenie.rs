//! Opsgenie's Webhook integration. It cannot sign, so it sends a bearer token as a custom header.
//!
//! `createdAt` is epoch milliseconds while `updatedAt` is nanoseconds: units are told by digit
//! count, never by field name.

use chrono::{DateTime, Utc};
use herald_proto::{
    time::to_timestamp,
    v1::{EventKind, Record, Source},
};
use herald_runtime::ApiError;
use http::HeaderMap;
use serde_json::Value;

use super::{
    Context, Normalised, SourceHandler,
    fields::{Directory, epoch, p_priority, required, text},
    parse_json, unusable,
};
use crate::verify::{Keys, verify_bearer};

pub struct Opsgenie;

impl SourceHandler for Opsgenie {
    fn source(&self) -> Source {
        Source::Opsgenie
    }

    fn verify(
        &self,
        headers: &HeaderMap,
        _body: &[u8],
        keys: &Keys,
        _now: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        verify_bearer(headers, keys)
    }

    fn normalise(
        &self,
        ctx: &Context<'_>,
        _headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Normalised, ApiError> {
        normalise_value(ctx, &parse_json(body)?)
    }
}

fn normalise_value(ctx: &Context<'_>, body: &Value) -> Result<Normalised, ApiError> {
    let action = required(body, &["action"])?;
    let alert = body
        .get("alert")
        .filter(|a| a.is_object())
        .ok_or_else(|| unusable("alert is required (an Opsgenie webhook body)"))?;
    let alert_id = required(alert, &["alertId"])?;
    // The id names the action at the instant it happened: updatedAt as the integer sent.
    let updated_raw =
        text(alert, &["updatedAt"]).ok_or_else(|| unusable("alert.updatedAt is required"))?;
    let updated_at =
        epoch(alert, &["updatedAt"])?.ok_or_else(|| unusable("alert.updatedAt is required"))?;
    let id = format!("opsgenie:{alert_id}:{action}:{updated_raw}");
    let kind = match action.as_str() {
        "Create" => EventKind::PageTriggered,
        "Acknowledge" => EventKind::PageAcknowledged,
        "Close" => EventKind::PageResolved,
        other => {
            return Ok(Normalised::Ignored {
                id: Some(id),
                note: format!("Opsgenie action {other:?} is not one Herald uses"),
            });
        }
    };

    let dir = Directory {
        catalog: ctx.catalog,
        source: "opsgenie",
    };
    let user_id = text(alert, &["userId"]);
    let username = text(alert, &["username"]);
    let automated = [&user_id, &username]
        .into_iter()
        .flatten()
        .any(|u| dir.is_system(u));
    let actor = if automated || kind == EventKind::PageTriggered {
        None
    } else {
        [&user_id, &username]
            .into_iter()
            .flatten()
            .find_map(|u| dir.person(u))
    };
    let tags: Vec<String> = alert
        .get("tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    let entity = text(alert, &["entity"]);
    let team = alert
        .get("teams")
        .and_then(Value::as_array)
        .and_then(|t| t.first())
        .and_then(|t| {
            t.as_str()
                .map(str::to_string)
                .or_else(|| text(t, &["name"]))
        });
    let moment = Some(to_timestamp(updated_at));
    let record = Record {
        number: text(alert, &["tinyId"]).unwrap_or_else(|| alert_id.clone()),
        title: text(alert, &["message"]),
        priority: p_priority(text(alert, &["priority"]).as_deref()),
        business_service: dir.service(entity.iter().chain(tags.iter()).map(String::as_str)),
        assignment_group: team.as_deref().and_then(|t| dir.team([t])),
        assignee: actor.clone(),
        contributors: actor.iter().cloned().collect(),
        resolved_by: (kind == EventKind::PageResolved)
            .then(|| actor.clone())
            .flatten(),
        opened_at: epoch(alert, &["createdAt"])?.map(to_timestamp),
        acknowledged_at: (kind == EventKind::PageAcknowledged)
            .then_some(moment)
            .flatten(),
        resolved_at: (kind == EventKind::PageResolved)
            .then_some(moment)
            .flatten(),
        automated: Some(automated),
        ..Default::default()
    };
    Ok(Normalised::event(
        Source::Opsgenie,
        kind,
        id,
        updated_at,
        record,
        format!("opsgenie:{alert_id}"),
    ))
}
