//! Jira Service Management (Jira Cloud) admin webhooks, signed with `X-Hub-Signature`.
//!
//! Outcomes are read from the changelog's `resolution` item rather than status names, so every
//! project's workflow works the same and a Resolved → Closed move is not a second resolution.

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
    fields::{Directory, epoch, instant, parse_instant, required, text},
    parse_json, unusable,
};
use crate::verify::{Keys, verify_hex_sha256};

pub const DEFAULT_TEAM_FIELD: &str = "customfield_10001";

pub struct Jira {
    /// The custom field holding the Atlassian team; its id differs per site.
    pub team_field: String,
}

impl Default for Jira {
    fn default() -> Self {
        Self {
            team_field: DEFAULT_TEAM_FIELD.to_string(),
        }
    }
}

impl SourceHandler for Jira {
    fn source(&self) -> Source {
        Source::Jira
    }

    fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        keys: &Keys,
        _now: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        verify_hex_sha256(headers, "x-hub-signature", "X-Hub-Signature", body, keys)
    }

    fn normalise(
        &self,
        ctx: &Context<'_>,
        _headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Normalised, ApiError> {
        let value = parse_json(body)?;
        self.normalise_value(ctx, &value)
    }
}

/// What a changelog says happened to the resolution.
enum Transition {
    Resolved,
    Reopened,
}

fn transition(changelog: Option<&Value>) -> Option<Transition> {
    let items = changelog?.get("items")?.as_array()?;
    items
        .iter()
        .filter(|i| i.get("field").and_then(Value::as_str) == Some("resolution"))
        .find_map(|i| {
            let set = |k: &str| i.get(k).is_some_and(|v| !v.is_null());
            match (set("from"), set("to")) {
                (_, true) => Some(Transition::Resolved),
                (true, false) => Some(Transition::Reopened),
                (false, false) => None,
            }
        })
}

fn priority(name: Option<&str>) -> Option<u32> {
    match name? {
        "Highest" => Some(1),
        "High" => Some(2),
        "Medium" => Some(3),
        "Low" => Some(4),
        "Lowest" => Some(5),
        _ => None,
    }
}

/// `scheme://host` of the issue's REST URL, for the browse link.
fn site(self_url: &str) -> Option<&str> {
    let scheme_end = self_url.find("://")? + 3;
    let host_end = self_url[scheme_end..]
        .find('/')
        .map_or(self_url.len(), |i| scheme_end + i);
    (host_end > scheme_end).then(|| &self_url[..host_end])
}

/// An SLA time object carries the instant three ways; epochMillis is exact and unambiguous.
fn sla_time(value: Option<&Value>) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(v) = value.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    if let Some(t) = epoch(v, &["epochMillis"])? {
        return Ok(Some(t));
    }
    for form in ["jira", "iso8601"] {
        if let Some(s) = text(v, &[form]) {
            return parse_instant("SLA time", &s).map(Some);
        }
    }
    Ok(None)
}

/// (`sla_breached`, `sla_due_at`) from every JSM SLA field: any field whose value has
/// `completedCycles`. Breached when any cycle of any SLA ever breached (JSM restarts the clock on
/// reopen, so the last cycle alone would hide a breach).
fn slas(
    fields: &serde_json::Map<String, Value>,
) -> Result<(Option<bool>, Option<DateTime<Utc>>), ApiError> {
    let mut breached: Option<bool> = None;
    let mut due = None;
    for sla in fields
        .values()
        .filter(|v| v.get("completedCycles").is_some())
    {
        let completed: Vec<&Value> = sla
            .get("completedCycles")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .collect();
        let ongoing = sla.get("ongoingCycle").filter(|v| !v.is_null());
        let any = completed
            .iter()
            .copied()
            .chain(ongoing)
            .any(|c| c.get("breached").and_then(Value::as_bool) == Some(true));
        breached = Some(breached.unwrap_or(false) || any);
        if sla.get("name").and_then(Value::as_str) == Some("Time to resolution") {
            due = match ongoing {
                Some(cycle) => sla_time(cycle.get("breachTime"))?,
                None => sla_time(completed.last().and_then(|c| c.get("breachTime")))?,
            };
        }
    }
    Ok((breached, due))
}

impl Jira {
    fn normalise_value(&self, ctx: &Context<'_>, body: &Value) -> Result<Normalised, ApiError> {
        if !body.is_object() {
            return Err(unusable("a Jira webhook body is a JSON object"));
        }
        let webhook_event = required(body, &["webhookEvent"])?;
        let issue = body
            .get("issue")
            .filter(|i| i.is_object())
            .ok_or_else(|| unusable("issue is required (an issue created or updated webhook)"))?;
        let issue_id = required(issue, &["id"])?;
        let key = required(issue, &["key"])?;
        let fields = issue
            .get("fields")
            .and_then(Value::as_object)
            .ok_or_else(|| unusable("issue.fields is required"))?;
        let fields_value = &issue["fields"];
        let issue_type = text(fields_value, &["issuetype", "name"]).unwrap_or_default();
        let is_incident = issue_type == "Incident";

        let changelog = body.get("changelog").filter(|c| !c.is_null());
        let (kind, id) = match webhook_event.as_str() {
            "jira:issue_created" => (
                if is_incident {
                    EventKind::IncidentOpened
                } else {
                    EventKind::RequestOpened
                },
                format!("jira:{issue_id}:created"),
            ),
            "jira:issue_updated" => {
                let changelog_id = changelog.and_then(|c| text(c, &["id"]));
                let done = text(fields_value, &["status", "statusCategory", "key"]).as_deref()
                    == Some("done");
                let kind = match transition(changelog) {
                    Some(Transition::Resolved) if done => Some(match issue_type.as_str() {
                        "Incident" => EventKind::IncidentResolved,
                        "Problem" => EventKind::ProblemClosed,
                        "Change" => EventKind::ChangeImplemented,
                        _ => EventKind::RequestFulfilled,
                    }),
                    Some(Transition::Reopened) => Some(if is_incident {
                        EventKind::IncidentReopened
                    } else {
                        EventKind::RequestReopened
                    }),
                    _ => None,
                };
                match (kind, changelog_id) {
                    (Some(kind), Some(changelog_id)) => {
                        (kind, format!("jira:{issue_id}:{changelog_id}"))
                    }
                    (Some(_), None) => {
                        return Err(unusable("changelog.id is required on an issue update"));
                    }
                    (None, changelog_id) => {
                        return Ok(Normalised::Ignored {
                            id: changelog_id.map(|c| format!("jira:{issue_id}:{c}")),
                            note: format!(
                                "{key}: an update that neither sets nor clears the resolution is not an outcome"
                            ),
                        });
                    }
                }
            }
            other => {
                return Ok(Normalised::Ignored {
                    id: None,
                    note: format!("Jira event {other:?} is not one Herald uses"),
                });
            }
        };

        let dir = Directory {
            catalog: ctx.catalog,
            source: "jira",
        };
        let actor = text(body, &["user", "accountId"]);
        let reporter = text(fields_value, &["reporter", "accountId"]);
        let assignee = text(fields_value, &["assignee", "accountId"]).and_then(|a| dir.person(&a));
        let resolution_kind = matches!(
            kind,
            EventKind::IncidentResolved
                | EventKind::ProblemClosed
                | EventKind::ChangeImplemented
                | EventKind::RequestFulfilled
        );
        let actor_person = actor.as_deref().and_then(|a| dir.person(a));
        let mut contributors: BTreeSet<String> = assignee.iter().cloned().collect();
        if actor.is_some() && actor != reporter {
            contributors.extend(actor_person.clone());
        }
        let components: Vec<String> = fields
            .get("components")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| text(c, &["name"]))
            .collect();
        let team = fields.get(&self.team_field).filter(|t| !t.is_null());
        let team_candidates: Vec<String> = match team {
            Some(Value::String(s)) => vec![s.clone()],
            Some(t) => [text(t, &["name"]), text(t, &["id"])]
                .into_iter()
                .flatten()
                .collect(),
            None => Vec::new(),
        };
        let (sla_breached, sla_due_at) = slas(fields)?;
        let occurred_at = match epoch(body, &["timestamp"])? {
            Some(t) => t,
            None => ctx.received_at,
        };
        let record = Record {
            number: key.clone(),
            title: text(fields_value, &["summary"]),
            url: text(issue, &["self"])
                .as_deref()
                .and_then(site)
                .map(|s| format!("{s}/browse/{key}")),
            priority: priority(text(fields_value, &["priority", "name"]).as_deref()),
            business_service: dir.service(components.iter().map(String::as_str)),
            assignment_group: dir.team(team_candidates.iter().map(String::as_str)),
            assignee,
            contributors: contributors.into_iter().collect(),
            requester: reporter.as_deref().and_then(|r| dir.person(r)),
            resolved_by: if resolution_kind { actor_person } else { None },
            opened_at: instant(fields_value, &["created"])?.map(to_timestamp),
            resolved_at: instant(fields_value, &["resolutiondate"])?.map(to_timestamp),
            sla_due_at: sla_due_at.map(to_timestamp),
            sla_breached,
            close_code: text(fields_value, &["resolution", "name"]),
            automated: resolution_kind.then(|| actor.as_deref().is_some_and(|a| dir.is_system(a))),
            ..Default::default()
        };
        Ok(Normalised::event(
            Source::Jira,
            kind,
            id,
            occurred_at,
            record,
            format!("jira:{issue_id}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_browse_link_uses_the_site_of_the_rest_url() {
        assert_eq!(
            site("https://larkspur.atlassian.net/rest/api/2/issue/21877"),
            Some("https://larkspur.atlassian.net")
        );
        assert_eq!(site("https://host"), Some("https://host"));
        assert_eq!(site("not a url"), None);
        assert_eq!(site("https:///x"), None);
    }

    #[test]
    fn resolution_set_cleared_or_untouched() {
        let log = |from: Value, to: Value| serde_json::json!({"id": "1", "items": [{"field": "resolution", "from": from, "to": to}]});
        assert!(matches!(
            transition(Some(&log(Value::Null, "10000".into()))),
            Some(Transition::Resolved)
        ));
        assert!(matches!(
            transition(Some(&log("10000".into(), Value::Null))),
            Some(Transition::Reopened)
        ));
        let status_only =
            serde_json::json!({"id": "1", "items": [{"field": "status", "from": "1", "to": "2"}]});
        assert!(transition(Some(&status_only)).is_none());
        assert!(transition(None).is_none());
    }
}
