//! Zendesk: event-subscription webhooks (`ticket.created`, `ticket.status_changed`) and Herald's
//! documented satisfaction trigger body, both signed over timestamp + body with a replay window.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use herald_proto::{
    time::to_timestamp,
    v1::{EventKind, Record, Satisfaction, Source},
};
use herald_runtime::ApiError;
use http::HeaderMap;
use serde_json::Value;

use super::{
    Context, Normalised, SourceHandler,
    fields::{Directory, instant, required, text},
    parse_json, unusable,
};
use crate::verify::{Keys, verify_zendesk};

pub struct Zendesk;

impl SourceHandler for Zendesk {
    fn source(&self) -> Source {
        Source::Zendesk
    }

    fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        keys: &Keys,
        now: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        verify_zendesk(headers, body, keys, now)
    }

    fn normalise(
        &self,
        ctx: &Context<'_>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Normalised, ApiError> {
        let value = parse_json(body)?;
        if value.get("herald_event").is_some() {
            satisfaction(ctx, headers, &value)
        } else {
            ticket_event(ctx, &value)
        }
    }
}

/// Upper-case codes in events (`HIGH`), words in rendered templates (`High`).
fn priority(value: Option<&str>) -> Option<u32> {
    match value?.to_ascii_uppercase().as_str() {
        "URGENT" => Some(1),
        "HIGH" => Some(2),
        "NORMAL" => Some(3),
        "LOW" => Some(4),
        _ => None,
    }
}

fn directory<'a>(ctx: &Context<'a>) -> Directory<'a> {
    Directory {
        catalog: ctx.catalog,
        source: "zendesk",
    }
}

fn ticket_event(ctx: &Context<'_>, body: &Value) -> Result<Normalised, ApiError> {
    if !body.is_object() {
        return Err(unusable("a Zendesk webhook body is a JSON object"));
    }
    let event_type = required(body, &["type"])?;
    let event_id = required(body, &["id"])?;
    let id = format!("zendesk:{event_id}");
    let detail = body
        .get("detail")
        .filter(|d| d.is_object())
        .ok_or_else(|| unusable("detail (the ticket) is required"))?;
    let ticket_type = text(detail, &["type"]).unwrap_or_default();
    let is_incident = ticket_type == "INCIDENT";
    let closed = |s: &str| matches!(s, "SOLVED" | "CLOSED");
    let kind = match event_type.as_str() {
        "zen:event-type:ticket.created" => Some(if is_incident {
            EventKind::IncidentOpened
        } else {
            EventKind::RequestOpened
        }),
        "zen:event-type:ticket.status_changed" => {
            let current = text(body, &["event", "current"])
                .or_else(|| text(detail, &["status"]))
                .unwrap_or_default();
            let previous = text(body, &["event", "previous"]).unwrap_or_default();
            if closed(&current) && !closed(&previous) {
                Some(match ticket_type.as_str() {
                    "INCIDENT" => EventKind::IncidentResolved,
                    "PROBLEM" => EventKind::ProblemClosed,
                    _ => EventKind::RequestFulfilled,
                })
            } else if previous == "SOLVED"
                && matches!(current.as_str(), "NEW" | "OPEN" | "PENDING" | "HOLD")
            {
                Some(if is_incident {
                    EventKind::IncidentReopened
                } else {
                    EventKind::RequestReopened
                })
            } else {
                None
            }
        }
        _ => None,
    };
    let Some(kind) = kind else {
        return Ok(Normalised::Ignored {
            id: Some(id),
            note: format!("Zendesk event {event_type:?} is not an outcome Herald uses"),
        });
    };
    let ticket_id = required(detail, &["id"])?;
    let occurred_at = instant(body, &["time"])?.ok_or_else(|| unusable("time is required"))?;

    let dir = directory(ctx);
    let resolution = matches!(
        kind,
        EventKind::IncidentResolved | EventKind::ProblemClosed | EventKind::RequestFulfilled
    );
    let actor = text(detail, &["actor_id"]);
    let requester = text(detail, &["requester_id"]);
    let assignee = text(detail, &["assignee_id"]).and_then(|a| dir.person(&a));
    let mut contributors: BTreeSet<String> = assignee.iter().cloned().collect();
    if actor.is_some() && actor != requester {
        contributors.extend(actor.as_deref().and_then(|a| dir.person(a)));
    }
    let tags = string_list(detail.get("tags"));
    let record = Record {
        number: ticket_id.clone(),
        title: text(detail, &["subject"]),
        priority: priority(text(detail, &["priority"]).as_deref()),
        business_service: dir.service(tags.iter().map(String::as_str)),
        assignee,
        assignment_group: text(detail, &["group_id"]).and_then(|g| dir.team([g.as_str()])),
        contributors: contributors.into_iter().collect(),
        requester: requester.as_deref().and_then(|r| dir.person(r)),
        resolved_by: if resolution {
            actor.as_deref().and_then(|a| dir.person(a))
        } else {
            None
        },
        opened_at: instant(detail, &["created_at"])?.map(to_timestamp),
        resolved_at: resolution.then(|| to_timestamp(occurred_at)),
        automated: resolution.then(|| actor.as_deref().is_some_and(|a| dir.is_system(a))),
        ..Default::default()
    };
    Ok(Normalised::event(
        Source::Zendesk,
        kind,
        id,
        occurred_at,
        record,
        format!("zendesk:ticket:{ticket_id}"),
    ))
}

/// Tags arrive as an array in events and as one space-separated string in rendered templates.
fn string_list(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        Some(Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

/// Herald's satisfaction trigger template (fixtures README §3.5). Herald owns it, so anything but
/// `satisfaction_rated` with a score of `good` or `bad` is the admin's mistake: 422.
fn satisfaction(
    ctx: &Context<'_>,
    headers: &HeaderMap,
    body: &Value,
) -> Result<Normalised, ApiError> {
    let herald_event = text(body, &["herald_event"]).unwrap_or_default();
    if herald_event != "satisfaction_rated" {
        return Err(unusable(format!(
            "herald_event {herald_event:?} is not one Herald defines; the satisfaction trigger sends \"satisfaction_rated\""
        )));
    }
    let invocation = headers
        .get("x-zendesk-webhook-invocation-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            unusable("the X-Zendesk-Webhook-Invocation-Id header is required for trigger bodies (it is the event's identity)")
        })?;
    let ticket = body
        .get("ticket")
        .filter(|t| t.is_object())
        .ok_or_else(|| unusable("ticket is required"))?;
    let ticket_id = required(ticket, &["id"])?;
    let score = text(body, &["satisfaction", "score"]).unwrap_or_default();
    if !matches!(score.as_str(), "good" | "bad") {
        return Err(unusable(format!(
            "satisfaction.score {score:?} must be \"good\" or \"bad\" (write the literal in each trigger's body)"
        )));
    }
    let occurred_at = instant(ticket, &["updated_at"])?
        .ok_or_else(|| unusable("ticket.updated_at is required"))?;
    let dir = directory(ctx);
    let assignee = text(ticket, &["assignee_email"]).and_then(|e| dir.person(&e));
    let tags = string_list(ticket.get("tags"));
    let record = Record {
        number: ticket_id.clone(),
        title: text(ticket, &["subject"]),
        url: text(ticket, &["link"]),
        priority: priority(text(ticket, &["priority"]).as_deref()),
        business_service: dir.service(tags.iter().map(String::as_str)),
        assignment_group: text(ticket, &["group"]).and_then(|g| dir.team([g.as_str()])),
        contributors: assignee.iter().cloned().collect(),
        assignee,
        requester: text(ticket, &["requester_email"]).and_then(|e| dir.person(&e)),
        // `{{ticket.requester.name}}` where the trigger body has it: only quoted with consent.
        requester_name: text(ticket, &["requester_name"]),
        opened_at: instant(ticket, &["created_at"])?.map(to_timestamp),
        satisfaction: Some(Satisfaction {
            score,
            comment: text(body, &["satisfaction", "comment"]),
        }),
        ..Default::default()
    };
    Ok(Normalised::event(
        Source::Zendesk,
        EventKind::SurveySubmitted,
        format!("zendesk:invocation:{invocation}"),
        occurred_at,
        record,
        format!("zendesk:ticket:{ticket_id}"),
    ))
}
