//! ServiceNow: Herald's documented row body (tests/fixtures/README.md §3.1), pushed by a Business
//! Rule or produced by the Table API poller and backfill.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDateTime, Utc};
use herald_catalog::Catalog;
use herald_proto::{
    time::to_timestamp,
    v1::{EventKind, ItsmEvent, Record, Source},
};
use herald_runtime::ApiError;
use http::HeaderMap;

use super::{
    Context, Normalised, SourceHandler,
    borrowed::{self, Fields, Json},
    unusable,
};
use crate::verify::{Keys, verify_herald_signature};

const SOURCE: &str = "servicenow";
const TABLES: [&str; 4] = ["incident", "change_request", "problem", "sc_req_item"];

pub struct ServiceNow;

impl SourceHandler for ServiceNow {
    fn source(&self) -> Source {
        Source::Servicenow
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
        _headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Normalised, ApiError> {
        normalise_row(ctx.catalog, body)
    }
}

/// A reference field: `{value, display_value}`, a plain sys_id, or a plain display value.
#[derive(Debug, Default, PartialEq)]
struct Reference {
    value: Option<String>,
    display: Option<String>,
}

impl Reference {
    fn candidates(&self) -> impl Iterator<Item = &str> {
        self.display
            .as_deref()
            .into_iter()
            .chain(self.value.as_deref())
    }
}

fn non_empty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

fn is_sys_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The row, read Table-API style: every scalar a string, dates naive UTC.
struct Row<'r, 'a>(&'r Fields<'a>);

impl Row<'_, '_> {
    fn str(&self, field: &str) -> Option<String> {
        match self.0.get(field)? {
            Json::Str(s) => non_empty(s),
            Json::Number(n) => Some(n.to_string()),
            Json::Bool(b) => Some(b.to_string()),
            // display_value=all gives pairs even for scalars: keep the value.
            Json::Object(o) => o.str("value").and_then(non_empty),
            _ => None,
        }
    }

    fn reference(&self, field: &str) -> Reference {
        match self.0.get(field) {
            Some(Json::Object(o)) => Reference {
                value: o.str("value").and_then(non_empty),
                display: o.str("display_value").and_then(non_empty),
            },
            Some(Json::Str(s)) => match non_empty(s) {
                Some(s) if is_sys_id(&s) => Reference {
                    value: Some(s),
                    display: None,
                },
                Some(s) => Reference {
                    value: None,
                    display: Some(s),
                },
                None => Reference::default(),
            },
            _ => Reference::default(),
        }
    }

    fn datetime(&self, field: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
        self.str(field)
            .map(|s| parse_datetime(field, &s))
            .transpose()
    }

    fn uint(&self, field: &str) -> Result<Option<u32>, ApiError> {
        self.str(field)
            .map(|s| {
                s.parse::<u32>().map_err(|_| {
                    unusable(format!("record.{field} must be a whole number, got {s:?}"))
                })
            })
            .transpose()
    }

    fn flag(&self, field: &str) -> Option<bool> {
        self.str(field).and_then(|s| match s.as_str() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        })
    }
}

/// ServiceNow writes UTC without a zone (`2025-03-11 08:04:37`); ISO forms are accepted too.
fn parse_datetime(field: &str, s: &str) -> Result<DateTime<Utc>, ApiError> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
        .map(|n| n.and_utc())
        .or_else(|_| DateTime::parse_from_rfc3339(s).map(|d| d.with_timezone(&Utc)))
        .map_err(|_| {
            unusable(format!(
                "{field} must be a UTC date-time like \"2025-03-11 08:04:37\", got {s:?}"
            ))
        })
}

/// People and teams named in the row, resolved through the catalog.
struct Resolver<'a> {
    catalog: &'a Catalog,
}

impl Resolver<'_> {
    fn is_system(&self, r: &Reference) -> bool {
        r.candidates()
            .any(|c| self.catalog.is_system_account(SOURCE, c))
    }

    fn person(&self, r: &Reference) -> Option<String> {
        if self.is_system(r) {
            return None;
        }
        r.value
            .as_deref()
            .and_then(|v| self.catalog.match_person(SOURCE, v))
            .or_else(|| {
                r.display.as_deref().and_then(|d| {
                    self.catalog
                        .match_person(SOURCE, d)
                        .or_else(|| self.catalog.match_person_by_display_name(d))
                })
            })
            .map(|p| p.id.clone())
    }

    /// A user given as a user name or sys_id (audit and journal rows).
    fn user(&self, value: &str) -> Option<String> {
        if self.catalog.is_system_account(SOURCE, value) {
            return None;
        }
        self.catalog
            .match_person(SOURCE, value)
            .map(|p| p.id.clone())
    }

    fn team(&self, r: &Reference) -> Option<String> {
        r.candidates()
            .find_map(|c| self.catalog.match_team(c))
            .map(|t| t.id.clone())
    }

    fn service(&self, r: &Reference) -> Option<String> {
        self.catalog
            .match_service(r.candidates())
            .map(|s| s.id.clone())
    }
}

/// Normalises one ServiceNow row body: 400 when it is not JSON, 422 when it is not a row.
pub fn normalise_row(catalog: &Catalog, body: &[u8]) -> Result<Normalised, ApiError> {
    let body = borrowed::parse(body)?;
    let obj = body.as_object().ok_or_else(|| {
        unusable("the body must be a JSON object with table, sys_id, sys_mod_count and record")
    })?;
    let missing: Vec<&str> = ["table", "sys_id", "sys_mod_count", "record"]
        .into_iter()
        .filter(|k| obj.get(k).is_none_or(Json::is_null))
        .collect();
    if !missing.is_empty() {
        return Err(unusable(format!(
            "missing required field(s): {}",
            missing.join(", ")
        )));
    }
    let table = obj
        .str("table")
        .ok_or_else(|| unusable("table must be a string"))?;
    if !TABLES.contains(&table) {
        return Err(unusable(format!(
            "table {table:?} is not one Herald reads; send one of {}",
            TABLES.join(", ")
        )));
    }
    let sys_id = obj
        .str("sys_id")
        .and_then(non_empty)
        .ok_or_else(|| unusable("sys_id must be a non-empty string"))?;
    let mod_count = match obj.get("sys_mod_count") {
        Some(Json::Number(n)) => n.as_u64(),
        Some(Json::Str(s)) => s.trim().parse::<u64>().ok(),
        _ => None,
    }
    .ok_or_else(|| {
        unusable("sys_mod_count must be a non-negative integer or its decimal string")
    })?;
    let record = obj.get("record").and_then(Json::as_object).ok_or_else(|| {
        unusable("record must be an object (the row as the Table API returns it)")
    })?;
    let row = Row(record);
    let id = format!("{SOURCE}:{table}:{sys_id}:{mod_count}");
    let resolver = Resolver { catalog };

    let state = row.str("state").unwrap_or_default();
    let previous_state = obj
        .get("previous")
        .and_then(|p| p.get("state"))
        .and_then(Json::as_str);
    let operation = obj.str("operation").unwrap_or("");

    // Which outcome this row version describes, and who performed it.
    let classified = classify(table, &state, previous_state, operation, &row)?;
    let Some(Classified {
        kind,
        occurred_field,
        resolved_field,
        actor_field,
        requester_field,
    }) = classified
    else {
        return Ok(Normalised::Ignored {
            id: Some(id),
            note: format!("{table} in state {state:?} is not an outcome Herald scores"),
        });
    };

    let occurred_at = match occurred_field {
        Some(field) => row.datetime(field)?,
        None => None,
    }
    .ok_or_else(|| {
        unusable(format!(
            "record.{} is required for {}",
            occurred_field.unwrap_or("?"),
            kind.token()
        ))
    })?;

    let actor = actor_field.map(|f| row.reference(f));
    let assignee_ref = row.reference("assigned_to");
    let assignee = resolver.person(&assignee_ref);
    let resolved_by = actor.as_ref().and_then(|a| resolver.person(a));
    let automated = actor.as_ref().map(|a| resolver.is_system(a));

    // Contributors: assignment history, the current assignee, the actor, work-note authors.
    let mut contributors = BTreeSet::new();
    contributors.extend(assignee.clone());
    contributors.extend(resolved_by.clone());
    let objects = |key: &str| {
        obj.get(key)
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .filter_map(Json::as_object)
    };
    for row in objects("audit") {
        if row.str("fieldname") == Some("assigned_to") {
            for side in ["oldvalue", "newvalue"] {
                if let Some(user) = row.str(side).and_then(non_empty) {
                    contributors.extend(resolver.user(&user));
                }
            }
        }
    }
    for entry in objects("journal") {
        // Customer-visible comments are conversation, not work.
        if entry.str("element") == Some("work_notes")
            && let Some(author) = entry.str("sys_created_by")
        {
            contributors.extend(resolver.user(author));
        }
    }

    let task_slas = obj
        .get("task_slas")
        .and_then(Json::as_array)
        .unwrap_or_default();
    let sla_breached = if !task_slas.is_empty() {
        Some(task_slas.iter().any(|s| {
            matches!(s.get("has_breached"), Some(Json::Str(v)) if v == "true")
                || matches!(s.get("has_breached"), Some(Json::Bool(true)))
        }))
    } else {
        row.flag("made_sla").map(|made| !made)
    };

    let related = obj.get("related").and_then(Json::as_object);
    let related_count = |key: &str| {
        related
            .and_then(|r| r.get(key))
            .and_then(Json::as_u64)
            .and_then(|n| u32::try_from(n).ok())
    };

    let instance = obj.str("instance").map(|s| s.trim_end_matches('/'));
    let close_code = match (kind, table) {
        (EventKind::IncidentReopened, _) | (_, "sc_req_item") => None,
        (_, "problem") => row.str("resolution_code"),
        _ => row.str("close_code"),
    };
    let cmdb_ci = row.reference("cmdb_ci");

    let mut record = Record {
        number: row.str("number").unwrap_or_else(|| sys_id.clone()),
        title: row.str("short_description"),
        url: instance.map(|i| format!("{i}/{table}.do?sys_id={sys_id}")),
        priority: row.uint("priority")?.filter(|p| (1..=5).contains(p)),
        business_service: resolver.service(&row.reference("business_service")),
        configuration_item: cmdb_ci.display.or(cmdb_ci.value),
        assignee,
        assignment_group: resolver.team(&row.reference("assignment_group")),
        contributors: contributors.into_iter().collect(),
        requester: requester_field.and_then(|f| resolver.person(&row.reference(f))),
        resolved_by,
        opened_at: row.datetime("opened_at")?.map(to_timestamp),
        acknowledged_at: None,
        resolved_at: match resolved_field {
            Some(field) => row.datetime(field)?.map(to_timestamp),
            None => None,
        },
        sla_due_at: match row.datetime("sla_due")? {
            Some(due) => Some(to_timestamp(due)),
            None => row.datetime("due_date")?.map(to_timestamp),
        },
        sla_breached,
        reassignment_count: row.uint("reassignment_count")?,
        reopen_count: row.uint("reopen_count")?,
        close_code,
        automated,
        ..Default::default()
    };
    match kind {
        EventKind::ChangeImplemented | EventKind::ChangeFailed => {
            record.incidents_caused = related_count("incidents_caused");
            if kind == EventKind::ChangeFailed {
                record.postmortem_url = row.str("u_postmortem_url");
                record.notes = row.str("close_notes");
            }
        }
        EventKind::ProblemClosed => record.linked_incidents = related_count("incident_count"),
        // A major incident with a postmortem can become a lesson-learned story, which quotes the
        // closing notes (after scoring leaves out anyone they blame).
        EventKind::IncidentResolved => {
            record.postmortem_url = row.str("u_postmortem_url");
            if record.postmortem_url.is_some() {
                record.notes = row.str("close_notes");
            }
        }
        _ => {}
    }

    let event = ItsmEvent {
        id,
        source: Source::Servicenow as i32,
        kind: kind as i32,
        occurred_at: Some(to_timestamp(occurred_at)),
        record: Some(record),
        ..Default::default()
    };
    Ok(Normalised::Event {
        event: Box::new(event),
        ordering_key: format!("{SOURCE}:{table}:{sys_id}"),
    })
}

struct Classified {
    kind: EventKind,
    occurred_field: Option<&'static str>,
    resolved_field: Option<&'static str>,
    actor_field: Option<&'static str>,
    requester_field: Option<&'static str>,
}

/// The state table of §3.1. `None`: accepted, not an outcome.
fn classify(
    table: &str,
    state: &str,
    previous_state: Option<&str>,
    operation: &str,
    row: &Row<'_, '_>,
) -> Result<Option<Classified>, ApiError> {
    let c = |kind, occurred, resolved, actor, requester| {
        Some(Classified {
            kind,
            occurred_field: Some(occurred),
            resolved_field: resolved,
            actor_field: actor,
            requester_field: Some(requester),
        })
    };
    Ok(match table {
        "incident" => {
            let resolved = matches!(state, "6" | "7");
            if resolved && row.str("resolved_at").is_some() {
                c(
                    EventKind::IncidentResolved,
                    "resolved_at",
                    Some("resolved_at"),
                    Some("resolved_by"),
                    "caller_id",
                )
            } else if !matches!(state, "6" | "7" | "8")
                && row.str("reopened_time").is_some()
                && previous_state.is_none_or(|p| matches!(p, "6" | "7"))
            {
                c(
                    EventKind::IncidentReopened,
                    "reopened_time",
                    None,
                    None,
                    "caller_id",
                )
            } else if operation == "insert" {
                c(
                    EventKind::IncidentOpened,
                    "opened_at",
                    None,
                    None,
                    "caller_id",
                )
            } else {
                None
            }
        }
        "change_request" if state == "3" => match row.str("close_code").as_deref() {
            Some("successful" | "successful_issues") => c(
                EventKind::ChangeImplemented,
                "closed_at",
                Some("work_end"),
                Some("closed_by"),
                "requested_by",
            ),
            Some("unsuccessful") => c(
                EventKind::ChangeFailed,
                "closed_at",
                Some("work_end"),
                Some("closed_by"),
                "requested_by",
            ),
            _ => None,
        },
        "problem" if state == "107" => match row.str("resolution_code").as_deref() {
            Some("fix_applied" | "risk_accepted") => c(
                EventKind::ProblemClosed,
                "closed_at",
                Some("resolved_at"),
                Some("resolved_by"),
                "opened_by",
            ),
            _ => None,
        },
        "sc_req_item" if state == "3" => c(
            EventKind::RequestFulfilled,
            "closed_at",
            Some("closed_at"),
            Some("closed_by"),
            "requested_for",
        ),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalise(catalog: &Catalog, body: &serde_json::Value) -> Result<Normalised, ApiError> {
        normalise_row(catalog, &serde_json::to_vec(body).expect("json"))
    }

    #[test]
    fn dates_without_a_zone_are_utc() {
        let at = parse_datetime("f", "2025-03-11 08:04:37").expect("parses");
        assert_eq!(at.to_rfc3339(), "2025-03-11T08:04:37+00:00");
        assert!(parse_datetime("f", "11/03/2025 08:04").is_err());
    }

    #[test]
    fn references_take_every_documented_shape() {
        let body = br#"{"a": {"value": "0eb6d88f20969a6f441de57fb6074f49", "display_value": "Platform & SRE", "link": "x"},
                "b": "0eb6d88f20969a6f441de57fb6074f49", "c": "Platform & SRE", "d": ""}"#;
        let row = borrowed::parse(body).expect("json");
        let row = Row(row.as_object().expect("an object"));
        assert_eq!(
            row.reference("a").display.as_deref(),
            Some("Platform & SRE")
        );
        assert_eq!(
            row.reference("b").value.as_deref(),
            Some("0eb6d88f20969a6f441de57fb6074f49")
        );
        assert_eq!(
            row.reference("c").display.as_deref(),
            Some("Platform & SRE")
        );
        assert_eq!(row.reference("d"), Reference::default());
        assert_eq!(row.reference("missing"), Reference::default());
    }

    #[test]
    fn missing_fields_and_unknown_tables_are_named() {
        let catalog = Catalog::default();
        let err = normalise(&catalog, &serde_json::json!({"table": "incident"})).expect_err("422");
        assert!(
            err.message.contains("sys_id") && err.message.contains("record"),
            "{}",
            err.message
        );
        let err = normalise(
            &catalog,
            &serde_json::json!({"table": "kb_knowledge", "sys_id": "x", "sys_mod_count": 1, "record": {}}),
        )
        .expect_err("422");
        assert!(
            err.message.contains("kb_knowledge") && err.message.contains("sc_req_item"),
            "{}",
            err.message
        );
        let err = normalise(
            &catalog,
            &serde_json::json!({"table": "incident", "sys_id": "x", "sys_mod_count": "seven", "record": {}}),
        )
        .expect_err("422");
        assert!(err.message.contains("sys_mod_count"), "{}", err.message);
    }

    #[test]
    fn canceled_and_open_rows_are_accepted_but_not_published() {
        let catalog = Catalog::default();
        let body = serde_json::json!({"table": "incident", "sys_id": "abc", "sys_mod_count": "3",
            "record": {"state": "8", "number": "INC1"}});
        match normalise(&catalog, &body).expect("accepted") {
            Normalised::Ignored { id, note } => {
                assert_eq!(id.as_deref(), Some("servicenow:incident:abc:3"));
                assert!(note.contains("\"8\""), "{note}");
            }
            other => panic!("expected ignored, got {other:?}"),
        }
    }

    #[test]
    fn a_failed_change_and_a_postmortem_incident_carry_their_closing_notes() {
        let catalog = Catalog::default();
        let event = |body: serde_json::Value| match normalise(&catalog, &body) {
            Ok(Normalised::Event { event, .. }) => event.record.unwrap_or_default(),
            other => panic!("expected an event, got {other:?}"),
        };
        let failed = event(
            serde_json::json!({"table": "change_request", "sys_id": "c1",
            "sys_mod_count": 2, "record": {"state": "3", "close_code": "unsuccessful",
            "closed_at": "2025-03-05 10:12:45", "close_notes": "Rolled back.",
            "u_postmortem_url": "https://wiki.example/pm/1"}}),
        );
        assert_eq!(failed.notes.as_deref(), Some("Rolled back."));
        assert_eq!(
            failed.postmortem_url.as_deref(),
            Some("https://wiki.example/pm/1")
        );
        let incident = |extra: serde_json::Value| {
            let mut record = serde_json::json!({"state": "6", "resolved_at": "2025-03-05 10:00:00",
                "close_notes": "Certificate renewed."});
            record
                .as_object_mut()
                .expect("object")
                .extend(extra.as_object().cloned().unwrap_or_default());
            event(
                serde_json::json!({"table": "incident", "sys_id": "i1", "sys_mod_count": 4,
                "record": record}),
            )
        };
        let with_postmortem =
            incident(serde_json::json!({"u_postmortem_url": "https://wiki.example/pm/2"}));
        assert_eq!(
            with_postmortem.notes.as_deref(),
            Some("Certificate renewed.")
        );
        // Without a postmortem no story will quote them: the notes stay in the raw payload only.
        assert_eq!(incident(serde_json::json!({})).notes, None);
    }

    #[test]
    fn a_resolved_incident_without_its_resolution_time_is_not_an_outcome_yet() {
        let catalog = Catalog::default();
        let body = serde_json::json!({"table": "incident", "sys_id": "abc", "sys_mod_count": 3,
            "record": {"state": "6", "resolved_at": ""}});
        assert!(matches!(
            normalise(&catalog, &body),
            Ok(Normalised::Ignored { .. })
        ));
    }

    #[test]
    fn bad_dates_are_unusable_with_the_field_named() {
        let catalog = Catalog::default();
        let body = serde_json::json!({"table": "incident", "sys_id": "abc", "sys_mod_count": 3,
            "record": {"state": "6", "resolved_at": "yesterday"}});
        let err = normalise(&catalog, &body).expect_err("422");
        assert!(
            err.message.contains("resolved_at") && err.message.contains("yesterday"),
            "{}",
            err.message
        );
    }
}
