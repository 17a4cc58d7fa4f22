//! PagerDuty v3 webhooks: one event per delivery, `X-PagerDuty-Signature` with one or more `v1=`
//! values.
//!
//! v3 incident data has no `resolved_at` or `acknowledged_at`: the event's `occurred_at` is the
//! moment, so time to acknowledge and to resolve are `occurred_at` minus `created_at`.

use std::collections::BTreeSet;

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
    fields::{Directory, instant, p_priority, required, text},
    parse_json, unusable,
};
use crate::verify::{Keys, verify_pagerduty};

pub struct PagerDuty;

impl SourceHandler for PagerDuty {
    fn source(&self) -> Source {
        Source::Pagerduty
    }

    fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        keys: &Keys,
        _now: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        verify_pagerduty(headers, body, keys)
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
    let event = body
        .get("event")
        .filter(|e| e.is_object())
        .ok_or_else(|| unusable("event is required (a PagerDuty v3 webhook envelope)"))?;
    let event_id = required(event, &["id"])?;
    let event_type = required(event, &["event_type"])?;
    let id = format!("pagerduty:{event_id}");
    let kind = match event_type.as_str() {
        "incident.triggered" => EventKind::PageTriggered,
        "incident.acknowledged" => EventKind::PageAcknowledged,
        "incident.resolved" => EventKind::PageResolved,
        "incident.reopened" => EventKind::PageReopened,
        other => {
            return Ok(Normalised::Ignored {
                id: Some(id),
                note: format!("PagerDuty event type {other:?} is not one Herald uses"),
            });
        }
    };
    let data = event
        .get("data")
        .filter(|d| d.is_object())
        .ok_or_else(|| unusable("event.data is required for incident events"))?;
    let incident_id = required(data, &["id"])?;
    let occurred_at = instant(event, &["occurred_at"])?
        .ok_or_else(|| unusable("event.occurred_at is required"))?;

    let dir = Directory {
        catalog: ctx.catalog,
        source: "pagerduty",
    };
    let agent = event.get("agent").filter(|a| !a.is_null());
    let agent_user = agent
        .filter(|a| a.get("type").and_then(Value::as_str) == Some("user_reference"))
        .and_then(|a| text(a, &["id"]));
    let automated = agent_user.as_deref().is_none_or(|u| dir.is_system(u));
    let agent_person = agent_user.as_deref().and_then(|u| dir.person(u));

    let assignees: Vec<String> = data
        .get("assignees")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| text(a, &["id"]))
        .collect();
    // PagerDuty empties `assignees` once an incident is resolved; the agent is then the one who
    // worked it.
    let assignee = match assignees.first() {
        Some(first) => dir.person(first),
        None => agent_person.clone(),
    };
    let mut contributors: BTreeSet<String> =
        assignees.iter().filter_map(|a| dir.person(a)).collect();
    contributors.extend(agent_person.clone());

    let service = [
        text(data, &["service", "summary"]),
        text(data, &["service", "id"]),
    ];
    let first_team = data
        .get("teams")
        .and_then(Value::as_array)
        .and_then(|t| t.first());
    let team = first_team
        .map(|t| [text(t, &["summary"]), text(t, &["id"])])
        .unwrap_or_default();
    let moment = Some(to_timestamp(occurred_at));
    let record = Record {
        number: text(data, &["number"]).unwrap_or_else(|| incident_id.clone()),
        title: text(data, &["title"]),
        url: text(data, &["html_url"]),
        priority: p_priority(text(data, &["priority", "summary"]).as_deref()),
        business_service: dir.service(service.iter().flatten().map(String::as_str)),
        assignment_group: dir.team(team.iter().flatten().map(String::as_str)),
        assignee,
        contributors: contributors.into_iter().collect(),
        resolved_by: (kind == EventKind::PageResolved)
            .then_some(agent_person)
            .flatten(),
        opened_at: instant(data, &["created_at"])?.map(to_timestamp),
        acknowledged_at: (kind == EventKind::PageAcknowledged)
            .then_some(moment)
            .flatten(),
        resolved_at: (kind == EventKind::PageResolved)
            .then_some(moment)
            .flatten(),
        close_code: text(data, &["resolve_reason"])
            .or_else(|| text(data, &["resolve_reason", "type"])),
        automated: Some(automated),
        ..Default::default()
    };
    Ok(Normalised::event(
        Source::Pagerduty,
        kind,
        id,
        occurred_at,
        record,
        format!("pagerduty:{incident_id}"),
    ))
}
