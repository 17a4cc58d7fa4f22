//! The batch limits the README promises: a CloudEvents batch carries at most 1,000 events (more is
//! refused whole, with a message saying so, and nothing is published); a `SubmitBatch` call carries
//! at most 10,000 items (the item after the limit fails the call, saying how to split it).

use std::collections::BTreeMap;

use herald_ingest::verify::{sign_base64, sign_hex};
use herald_proto::v1::SubmitRequest;
use serde_json::Value;

use crate::support::{rig::*, *};

fn automation_run(id: usize) -> Value {
    serde_json::json!({"specversion": "1.0", "id": format!("run-{id}"),
        "source": "https://automation.example/r", "type": "dev.herald.automation.run",
        "data": {"automation": "Re-image scanners", "status": "succeeded", "minutes_saved": 30}})
}

async fn send_batch(rig: &Rig, items: &[Value]) -> anyhow::Result<reqwest::Response> {
    let body = serde_json::to_vec(items)?;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cloudevents_batch_over_1000_events_is_refused_whole() -> anyhow::Result<()> {
    let rig = Rig::start(test_keys(), None).await?;
    let items: Vec<Value> = (0..1001).map(automation_run).collect();

    let refused = send_batch(&rig, &items).await?;
    assert_eq!(refused.status().as_u16(), 422);
    let answer: Value = refused.json().await?;
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("at most 1000 events") && message.contains("1001"),
        "the message says the limit and the count: {answer}"
    );
    assert!(
        rig.stored_events().await?.is_empty(),
        "nothing of a refused batch is published"
    );

    // At the limit, the whole batch is accepted.
    let accepted = send_batch(&rig, &items[..1000]).await?;
    assert_eq!(accepted.status().as_u16(), 202);
    let answer: Value = accepted.json().await?;
    assert_eq!(answer["events"].as_array().map(Vec::len), Some(1000));
    assert_eq!(
        herald_testkit::nats::stream_len(&rig.client, "HERALD_EVENTS").await?,
        1000
    );
    Ok(())
}

/// GitHub's `ping`, signed: a valid delivery that publishes nothing, so a long call is cheap.
fn github_ping() -> anyhow::Result<SubmitRequest> {
    let entry = delivery("github/ping.json")?;
    let body = fixture_bytes(&entry)?;
    let mut headers = fixture_headers(&entry);
    headers.insert(
        "X-Hub-Signature-256".to_string(),
        format!("sha256={}", sign_hex(SECRET.as_bytes(), &[&body])),
    );
    Ok(SubmitRequest {
        historical: false,
        source: "github".into(),
        body,
        headers: headers.into_iter().collect(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submit_batch_call_over_10000_items_is_refused() -> anyhow::Result<()> {
    let h = Harness::start(&format!("[sources.github]\nsecret = \"{SECRET}\"\n")).await?;
    let ping = github_ping()?;
    let mut ingest = h.ingest().await?;

    let at_limit = ingest
        .submit_batch(futures::stream::iter(vec![ping.clone(); 10_000]))
        .await?
        .into_inner();
    assert_eq!(at_limit.results.len(), 10_000);
    assert_eq!(
        (at_limit.ignored, at_limit.rejected),
        (10_000, 0),
        "every ping answered, none refused"
    );

    let status = ingest
        .submit_batch(futures::stream::iter(vec![ping; 10_001]))
        .await
        .expect_err("one item over the limit");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("at most 10000 items") && status.message().contains("split"),
        "{}",
        status.message()
    );
    h.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_historical_submit_is_marked_as_backfill_and_a_webhook_as_live() -> anyhow::Result<()> {
    let h = Harness::start(&format!("[sources.github]\nsecret = \"{SECRET}\"\n")).await?;
    let entry = delivery("servicenow/incident-resolved-p1.json")?;
    let body = fixture_bytes(&entry)?;
    let signature = format!("sha256={}", sign_base64(SECRET.as_bytes(), &body));
    let history = SubmitRequest {
        historical: true,
        source: "servicenow".into(),
        body: body.clone(),
        headers: [("x-herald-signature".to_string(), signature.clone())]
            .into_iter()
            .collect(),
    };
    h.ingest()
        .await?
        .submit_batch(futures::stream::iter(vec![history]))
        .await?;
    let other = delivery("servicenow/ritm-fulfilled.json")?;
    let live = fixture_bytes(&other)?;
    let response = h
        .client
        .post(h.events_url("servicenow"))
        .header("content-type", "application/json")
        .header(
            "x-herald-signature",
            format!("sha256={}", sign_base64(SECRET.as_bytes(), &live)),
        )
        .body(live)
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 202);
    let origins: BTreeMap<String, i32> = h
        .stored_events()
        .await?
        .into_iter()
        .map(|(_, e)| (e.record.unwrap_or_default().number, e.origin))
        .collect();
    assert_eq!(
        origins.get("INC0048213"),
        Some(&(herald_proto::v1::Origin::Backfill as i32))
    );
    assert_eq!(
        origins.get("RITM0102934"),
        Some(&(herald_proto::v1::Origin::Live as i32))
    );
    h.stop().await
}

/// Revisions of one ServiceNow incident, signed, as `herald backfill` sends them.
fn revision(body: &Value, mod_count: usize, secret: &str) -> anyhow::Result<SubmitRequest> {
    let mut body = body.clone();
    body["sys_mod_count"] = serde_json::json!(mod_count);
    let bytes = serde_json::to_vec(&body)?;
    let signature = format!("sha256={}", sign_base64(secret.as_bytes(), &bytes));
    Ok(SubmitRequest {
        historical: true,
        source: "servicenow".into(),
        body: bytes,
        headers: [("x-herald-signature".to_string(), signature)]
            .into_iter()
            .collect(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submit_batch_is_answered_and_stored_in_the_order_sent() -> anyhow::Result<()> {
    let h = Harness::start(&format!("[sources.github]\nsecret = \"{SECRET}\"\n")).await?;
    let entry = delivery("servicenow/incident-resolved-p1.json")?;
    let body: Value = serde_json::from_slice(&fixture_bytes(&entry)?)?;
    // Items are published several at a time: the answers and the stream must still follow the
    // order of the call, and a refused item in the middle must not shift the others.
    let mut items = Vec::new();
    for mod_count in 1..=400 {
        let secret = if mod_count == 150 {
            "not-the-secret"
        } else {
            SECRET
        };
        items.push(revision(&body, mod_count, secret)?);
    }
    let answer = h
        .ingest()
        .await?
        .submit_batch(futures::stream::iter(items))
        .await?
        .into_inner();
    assert_eq!(
        (answer.accepted, answer.rejected),
        (399, 1),
        "{:?}",
        answer.results.get(149)
    );
    let answered: Vec<String> = answer
        .results
        .iter()
        .map(|r| match &r.outcome {
            Some(herald_proto::v1::submit_result::Outcome::Response(r)) => r.id.clone(),
            Some(herald_proto::v1::submit_result::Outcome::Error(e)) => format!("error {}", e.code),
            None => "nothing".into(),
        })
        .collect();
    let sys_id = body["sys_id"].as_str().unwrap_or_default();
    let expected: Vec<String> = (1..=400)
        .map(|n| {
            if n == 150 {
                "error signature_mismatch".to_string()
            } else {
                format!("servicenow:incident:{sys_id}:{n}")
            }
        })
        .collect();
    assert_eq!(answered, expected, "answers in the order of the items");
    let stored: Vec<String> = h
        .stored_events()
        .await?
        .into_iter()
        .map(|(_, e)| e.id)
        .collect();
    let published: Vec<String> = expected
        .into_iter()
        .filter(|id| !id.starts_with("error"))
        .collect();
    assert_eq!(stored, published, "stored in the order sent");
    h.stop().await
}
