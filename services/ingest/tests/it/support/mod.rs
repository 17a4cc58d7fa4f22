//! Starts ingest in-process against a real nats-server and PostgreSQL, and reads the fixtures oracle.

#![allow(dead_code)]

pub mod rig;

use std::{collections::BTreeMap, path::PathBuf};

use herald_proto::v1::{EventKind, ItsmEvent, Source};
use herald_testkit::InProcess;
use prost::Message;
use serde_json::{Value, json};

pub const SECRET: &str = "herald-test-secret";

/// Ingest in-process with the fixture catalog and the shared test secret on servicenow and
/// cloudevents, plus an HTTP client.
pub struct Harness {
    pub service: InProcess,
    pub client: reqwest::Client,
}

impl std::ops::Deref for Harness {
    type Target = InProcess;
    fn deref(&self) -> &InProcess {
        &self.service
    }
}

impl std::ops::DerefMut for Harness {
    fn deref_mut(&mut self) -> &mut InProcess {
        &mut self.service
    }
}

impl Harness {
    pub async fn start(extra_toml: &str) -> anyhow::Result<Self> {
        Self::start_on(herald_testkit::NatsServer::start().await?, extra_toml).await
    }

    /// The same, against a nats-server the caller started.
    pub async fn start_on(
        nats: herald_testkit::NatsServer,
        extra_toml: &str,
    ) -> anyhow::Result<Self> {
        let toml = format!(
            "[catalog]\npath = \"catalog.toml\"\n[sources.servicenow]\nsecret = \"{SECRET}\"\n\
             [sources.cloudevents]\nsecret = \"{SECRET}\"\n{extra_toml}"
        );
        let service = InProcess::start_on::<herald_ingest::Ingest>(
            nats,
            &toml,
            &herald_testkit::fixtures_dir(),
        )
        .await?;
        Ok(Self {
            service,
            client: reqwest::Client::new(),
        })
    }

    pub fn events_url(&self, source: &str) -> String {
        format!("{}/v1/events/{source}", self.http)
    }

    /// Every event stored in HERALD_EVENTS so far, in order, with its subject. Ingest answers 202
    /// only after the store, so this is exact right after a response.
    pub async fn stored_events(&self) -> anyhow::Result<Vec<(String, ItsmEvent)>> {
        stored_events(&self.service.client).await
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        self.service.stop().await
    }
}

/// Every event stored in HERALD_EVENTS so far, in order, with its subject.
pub async fn stored_events(
    client: &async_nats::Client,
) -> anyhow::Result<Vec<(String, ItsmEvent)>> {
    {
        let js = async_nats::jetstream::new(client.clone());
        let mut stream = js.get_stream("HERALD_EVENTS").await?;
        let last = stream.info().await?.state.last_sequence;
        let mut events = Vec::new();
        for sequence in 1..=last {
            let message = stream.get_raw_message(sequence).await?;
            events.push((
                message.subject.to_string(),
                ItsmEvent::decode(message.payload)?,
            ));
        }
        Ok(events)
    }
}

pub fn fixtures() -> PathBuf {
    herald_testkit::fixtures_dir()
}

pub fn expected() -> anyhow::Result<Value> {
    Ok(serde_json::from_slice(&std::fs::read(
        fixtures().join("expected.json"),
    )?)?)
}

/// The oracle entry for a fixture file.
pub fn delivery(file: &str) -> anyhow::Result<Value> {
    expected()?["deliveries"]
        .as_array()
        .and_then(|d| d.iter().find(|e| e["file"] == file).cloned())
        .ok_or_else(|| anyhow::anyhow!("{file} is not in expected.json"))
}

/// The fixture's bytes, checked against the oracle's size and hash so a re-encoded copy fails clearly.
pub fn fixture_bytes(entry: &Value) -> anyhow::Result<Vec<u8>> {
    use sha2::Digest;
    let file = entry["file"].as_str().unwrap_or_default();
    let bytes = std::fs::read(fixtures().join(file))?;
    let hash = hex::encode(sha2::Sha256::digest(&bytes));
    anyhow::ensure!(
        Some(bytes.len() as u64) == entry["bytes"].as_u64()
            && Some(hash.as_str()) == entry["sha256"].as_str(),
        "{file} differs from the copy expected.json describes (edited or re-encoded?)"
    );
    Ok(bytes)
}

pub fn fixture_headers(entry: &Value) -> BTreeMap<String, String> {
    entry["headers"]
        .as_object()
        .map(|h| {
            h.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// POSTs a fixture exactly as the oracle says.
pub async fn post_fixture(h: &Harness, entry: &Value) -> anyhow::Result<reqwest::Response> {
    let source = entry["source"].as_str().unwrap_or_default();
    let mut request = h
        .client
        .post(h.events_url(source))
        .body(fixture_bytes(entry)?);
    for (k, v) in fixture_headers(entry) {
        request = request.header(k, v);
    }
    Ok(request.send().await?)
}

fn ts(t: &Option<prost_types::Timestamp>) -> Value {
    match t.as_ref().and_then(herald_proto::time::from_timestamp) {
        Some(at) => json!(at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
        None => Value::Null,
    }
}

/// An event in the oracle's shape.
pub fn event_json(event: &ItsmEvent) -> Value {
    let r = event.record.clone().unwrap_or_default();
    let mut record = json!({
        "number": r.number,
        "title": r.title,
        "url": r.url,
        "priority": r.priority,
        "business_service": r.business_service,
        "configuration_item": r.configuration_item,
        "assignee": r.assignee,
        "assignment_group": r.assignment_group,
        "contributors": r.contributors,
        "requester": r.requester,
        "resolved_by": r.resolved_by,
        "opened_at": ts(&r.opened_at),
        "resolved_at": ts(&r.resolved_at),
        "sla_due_at": ts(&r.sla_due_at),
        "sla_breached": r.sla_breached,
        "reassignment_count": r.reassignment_count,
        "reopen_count": r.reopen_count,
        "close_code": r.close_code,
        "automated": r.automated,
    });
    let extras = record.as_object_mut().expect("object");
    let kind = EventKind::try_from(event.kind)
        .map(|k| k.token())
        .unwrap_or("?");
    // Pages carry acknowledged_at as an extra, null until acknowledged.
    if r.acknowledged_at.is_some() || kind.starts_with("page_") {
        extras.insert("acknowledged_at".into(), ts(&r.acknowledged_at));
    }
    if let Some(v) = r.incidents_caused {
        extras.insert("incidents_caused".into(), json!(v));
    }
    if let Some(v) = r.postmortem_url {
        extras.insert("postmortem_url".into(), json!(v));
    }
    if let Some(v) = r.linked_incidents {
        extras.insert("linked_incidents".into(), json!(v));
    }
    if let Some(s) = r.satisfaction {
        extras.insert(
            "satisfaction".into(),
            json!({"score": s.score, "comment": s.comment}),
        );
    }
    if let Some(v) = r.environment {
        extras.insert("environment".into(), json!(v));
    }
    if let Some(v) = r.status {
        extras.insert("status".into(), json!(v));
    }
    if let Some(v) = r.minutes_saved {
        extras.insert("minutes_saved".into(), json!(v));
    }
    json!({
        "id": event.id,
        "source": Source::try_from(event.source).map(|s| s.token()).unwrap_or("?"),
        "kind": EventKind::try_from(event.kind).map(|k| k.token()).unwrap_or("?"),
        "occurred_at": ts(&event.occurred_at),
        "record": record,
    })
}

/// Timestamps compare as instants; everything else exactly.
fn normalise(value: &Value) -> Value {
    match value {
        Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|d| json!(d.timestamp_nanos_opt()))
            .unwrap_or_else(|_| value.clone()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), normalise(v))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(normalise).collect()),
        other => other.clone(),
    }
}

pub fn assert_event_matches(file: &str, expected: &Value, event: &ItsmEvent) {
    let actual = event_json(event);
    assert_eq!(
        normalise(&actual),
        normalise(expected),
        "\n{file}: published event differs from expected.json\n actual:   {}\n expected: {}",
        actual,
        expected
    );
}
