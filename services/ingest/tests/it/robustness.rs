//! Hostile and broken bodies, correctly signed, for every source: a clear 4xx, never a 5xx or a
//! panic, and nothing published.

use std::collections::BTreeMap;

use base64::Engine;
use herald_ingest::verify::{sign_base64, sign_hex};
use serde_json::Value;

use crate::support::{rig::*, *};

const SOURCES: [&str; 7] = [
    "servicenow",
    "jira",
    "pagerduty",
    "opsgenie",
    "zendesk",
    "github",
    "cloudevents",
];

const SIGNED_AT: &str = "2025-03-12T09:02:45Z";

/// Headers that authenticate `body` for `source` under the test secret.
fn signed(source: &str, body: &[u8]) -> BTreeMap<String, String> {
    let key = SECRET.as_bytes();
    let mut h = BTreeMap::from([("Content-Type".to_string(), "application/json".to_string())]);
    let (name, value) = match source {
        "servicenow" => (
            "X-Herald-Signature",
            format!("sha256={}", sign_base64(key, body)),
        ),
        "cloudevents" => {
            h.insert("Content-Type".into(), "application/cloudevents+json".into());
            (
                "X-Herald-Signature",
                format!("sha256={}", sign_base64(key, body)),
            )
        }
        "jira" => (
            "X-Hub-Signature",
            format!("sha256={}", sign_hex(key, &[body])),
        ),
        "github" => {
            h.insert("X-GitHub-Event".into(), "pull_request".into());
            (
                "X-Hub-Signature-256",
                format!("sha256={}", sign_hex(key, &[body])),
            )
        }
        "pagerduty" => (
            "X-PagerDuty-Signature",
            format!("v1={}", sign_hex(key, &[body])),
        ),
        "opsgenie" => ("Authorization", format!("Bearer {SECRET}")),
        "zendesk" => {
            h.insert(
                "X-Zendesk-Webhook-Signature-Timestamp".into(),
                SIGNED_AT.into(),
            );
            let mac = hex::decode(sign_hex(key, &[SIGNED_AT.as_bytes(), body])).unwrap_or_default();
            (
                "X-Zendesk-Webhook-Signature",
                base64::engine::general_purpose::STANDARD.encode(mac),
            )
        }
        other => panic!("{other}"),
    };
    h.insert(name.to_string(), value);
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_and_hostile_bodies_get_a_clear_4xx_and_publish_nothing() -> anyhow::Result<()> {
    let clock = chrono::DateTime::parse_from_rfc3339(SIGNED_AT)?.with_timezone(&chrono::Utc);
    let rig = Rig::start(test_keys(), Some(clock)).await?;
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_object = format!("{}1{}", "{\"a\":".repeat(5_000), "}".repeat(5_000));
    let cases: Vec<(&str, Vec<u8>, &[u16])> = vec![
        ("empty", Vec::new(), &[400]),
        ("not JSON", b"<xml>hello</xml>".to_vec(), &[400]),
        ("not UTF-8", vec![0xff, 0xfe, 0x7b, 0x7d], &[400]),
        ("truncated", b"{\"event\": {\"id\": \"x\"".to_vec(), &[400]),
        ("nested 100,000 deep", deep.into_bytes(), &[400]),
        ("objects nested 5,000 deep", deep_object.into_bytes(), &[400]),
        ("a number", b"42".to_vec(), &[422]),
        ("null", b"null".to_vec(), &[422]),
        ("an empty object", b"{}".to_vec(), &[422]),
        (
            "wrong types everywhere",
            br#"{"event": 1, "issue": [], "alert": "x", "detail": true, "action": {}, "webhookEvent": 7,
                "table": 3, "sys_id": {}, "record": [], "specversion": 1, "type": [], "pull_request": 1}"#
                .to_vec(),
            &[422],
        ),
    ];
    for source in SOURCES {
        for (case, body, allowed) in &cases {
            let response = rig
                .post(source, &signed(source, body), body.clone())
                .await?;
            let status = response.status().as_u16();
            let answer: Value = response.json().await?;
            assert!(
                allowed.contains(&status),
                "{source} / {case}: {status} {answer}"
            );
            assert!(
                answer["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty()),
                "{source} / {case}: {answer}"
            );
        }
    }
    assert!(rig.stored_events().await?.is_empty(), "nothing published");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cloudevents_batch_with_one_bad_item_publishes_nothing() -> anyhow::Result<()> {
    let rig = Rig::start(test_keys(), None).await?;
    let good = |id: &str| {
        serde_json::json!({"specversion": "1.0", "id": id, "source": "https://automation.example/r",
            "type": "dev.herald.automation.run",
            "data": {"automation": "Re-image scanners", "status": "succeeded", "minutes_saved": 30}})
    };
    let bad = serde_json::json!({"specversion": "1.0", "id": "3", "source": "s", "type": "dev.herald.automation.run", "data": {}});
    let refused = send_batch(&rig, vec![good("1"), good("2"), bad]).await?;
    assert_eq!(refused.status().as_u16(), 422);
    let answer: Value = refused.json().await?;
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("batch item 2") && m.contains("minutes_saved")),
        "{answer}"
    );
    assert!(rig.stored_events().await?.is_empty());

    let accepted = send_batch(&rig, vec![good("1"), good("2"), good("1")]).await?;
    assert_eq!(accepted.status().as_u16(), 202);
    let answer: Value = accepted.json().await?;
    let events = answer["events"].as_array().cloned().unwrap_or_default();
    assert_eq!(events.len(), 3, "{answer}");
    assert_eq!(events[2]["duplicate"], true, "{answer}");
    assert_eq!(rig.stored_events().await?.len(), 2);
    Ok(())
}

async fn send_batch(rig: &Rig, items: Vec<Value>) -> anyhow::Result<reqwest::Response> {
    let body = serde_json::to_vec(&items)?;
    let headers = BTreeMap::from([
        (
            "Content-Type".to_string(),
            "application/cloudevents-batch+json".to_string(),
        ),
        (
            "X-Herald-Signature".to_string(),
            format!("sha256={}", sign_base64(SECRET.as_bytes(), &body)),
        ),
    ]);
    rig.post("cloudevents", &headers, body).await
}
