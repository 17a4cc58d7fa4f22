//! Canonical events from the fixtures oracle (tests/fixtures/expected.json), as scoring receives them.

#![allow(dead_code)]

use herald_catalog::Catalog;
use herald_proto::{
    time::to_timestamp,
    v1::{EventKind, ItsmEvent, Record, Source},
};
use serde_json::Value;

pub fn catalog() -> Catalog {
    Catalog::from_file(&herald_testkit::fixtures_dir().join("catalog.toml"))
        .expect("fixture catalog")
}

fn oracle() -> Value {
    let path = herald_testkit::fixtures_dir().join("expected.json");
    serde_json::from_slice(&std::fs::read(path).expect("expected.json")).expect("json")
}

fn time(v: &Value) -> Option<prost_types::Timestamp> {
    v.as_str()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|d| to_timestamp(d.with_timezone(&chrono::Utc)))
}

fn text(v: &Value) -> Option<String> {
    v.as_str().map(String::from)
}

fn num(v: &Value) -> Option<u32> {
    v.as_u64().and_then(|n| u32::try_from(n).ok())
}

/// Builds an `ItsmEvent` from the oracle's JSON shape.
pub fn event_from_json(e: &Value) -> ItsmEvent {
    let r = &e["record"];
    ItsmEvent {
        id: text(&e["id"]).unwrap_or_default(),
        source: Source::from_token(e["source"].as_str().unwrap_or_default())
            .unwrap_or(Source::Unspecified) as i32,
        kind: EventKind::from_token(e["kind"].as_str().unwrap_or_default())
            .unwrap_or(EventKind::Unspecified) as i32,
        occurred_at: time(&e["occurred_at"]),
        record: Some(Record {
            number: text(&r["number"]).unwrap_or_default(),
            title: text(&r["title"]),
            url: text(&r["url"]),
            priority: num(&r["priority"]),
            business_service: text(&r["business_service"]),
            configuration_item: text(&r["configuration_item"]),
            assignee: text(&r["assignee"]),
            assignment_group: text(&r["assignment_group"]),
            contributors: r["contributors"]
                .as_array()
                .map(|a| a.iter().filter_map(text).collect())
                .unwrap_or_default(),
            requester: text(&r["requester"]),
            resolved_by: text(&r["resolved_by"]),
            opened_at: time(&r["opened_at"]),
            resolved_at: time(&r["resolved_at"]),
            sla_due_at: time(&r["sla_due_at"]),
            sla_breached: r["sla_breached"].as_bool(),
            reassignment_count: num(&r["reassignment_count"]),
            reopen_count: num(&r["reopen_count"]),
            close_code: text(&r["close_code"]),
            automated: r["automated"].as_bool(),
            status: text(&r["status"]),
            minutes_saved: r["minutes_saved"].as_i64(),
            acknowledged_at: time(&r["acknowledged_at"]),
            incidents_caused: num(&r["incidents_caused"]),
            postmortem_url: text(&r["postmortem_url"]),
            linked_incidents: num(&r["linked_incidents"]),
            environment: text(&r["environment"]),
            satisfaction: r["satisfaction"]
                .as_object()
                .map(|s| herald_proto::v1::Satisfaction {
                    score: s.get("score").and_then(text).unwrap_or_default(),
                    comment: s.get("comment").and_then(text),
                }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The canonical event the oracle gives for a fixture file.
pub fn event(file: &str) -> ItsmEvent {
    let oracle = oracle();
    let entry = oracle["deliveries"]
        .as_array()
        .and_then(|d| d.iter().find(|e| e["file"] == file))
        .unwrap_or_else(|| panic!("{file} not in expected.json"));
    event_from_json(&entry["event"])
}

/// A backfill spot-check event by record number.
pub fn backfill_event(number: &str) -> ItsmEvent {
    let oracle = oracle();
    let spot = oracle["backfill"]["spot_checks"]
        .as_array()
        .and_then(|s| s.iter().find(|e| e["record"]["number"] == number))
        .unwrap_or_else(|| panic!("{number} not among the spot checks"));
    event_from_json(spot)
}
