//! Ingest over HTTP and gRPC against a real nats-server and PostgreSQL.

use std::time::Duration;

use herald_proto::v1::{SubmitRequest, ingest_client::IngestClient};
use serde_json::Value;

use crate::support::*;

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_delivery_is_accepted_and_reported_as_a_duplicate() -> anyhow::Result<()> {
    let h = Harness::start("").await?;
    let entry = delivery("servicenow/incident-resolved-p1.json")?;
    let first: Value = post_fixture(&h, &entry).await?.json().await?;
    let second = post_fixture(&h, &entry).await?;
    assert_eq!(second.status().as_u16(), 202);
    let second: Value = second.json().await?;
    assert_eq!(first["duplicate"], false);
    assert_eq!(second["duplicate"], true);
    assert_eq!(first["id"], second["id"]);

    let js = async_nats::jetstream::new(h.service.client.clone());
    let mut stream = js.get_stream("HERALD_EVENTS").await?;
    assert_eq!(stream.info().await?.state.messages, 1, "one event stored");
    h.stop().await
}

async fn error_of(response: reqwest::Response) -> anyhow::Result<(u16, String, String)> {
    let status = response.status().as_u16();
    let body: Value = response.json().await?;
    Ok((
        status,
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_deliveries_get_clear_errors_and_publish_nothing() -> anyhow::Result<()> {
    let h = Harness::start("").await?;
    let entry = delivery("servicenow/incident-resolved-p1.json")?;
    let body = fixture_bytes(&entry)?;
    let sign = |bytes: &[u8]| {
        format!(
            "sha256={}",
            herald_ingest::verify::sign_base64(SECRET.as_bytes(), bytes)
        )
    };
    // Wrong signature: 401.
    let wrong = h
        .client
        .post(h.events_url("servicenow"))
        .header("x-herald-signature", sign(b"something else"))
        .body(body.clone())
        .send()
        .await?;
    let (status, code, message) = error_of(wrong).await?;
    assert_eq!((status, code.as_str()), (401, "signature_mismatch"));
    assert!(message.contains("secret"), "{message}");

    // Missing signature: 401.
    let missing = h
        .client
        .post(h.events_url("servicenow"))
        .body(body.clone())
        .send()
        .await?;
    let (status, code, _) = error_of(missing).await?;
    assert_eq!((status, code.as_str()), (401, "signature_missing"));

    // Malformed JSON, correctly signed: 400.
    let junk = b"{\"table\": \"incident\",".to_vec();
    let malformed = h
        .client
        .post(h.events_url("servicenow"))
        .header("x-herald-signature", sign(&junk))
        .body(junk)
        .send()
        .await?;
    let (status, code, message) = error_of(malformed).await?;
    assert_eq!((status, code.as_str()), (400, "malformed_json"));
    assert!(message.contains("JSON"), "{message}");

    // Valid JSON, not a usable event: 422 naming what is missing.
    let unusable = br#"{"table": "incident", "record": {}}"#.to_vec();
    let response = h
        .client
        .post(h.events_url("servicenow"))
        .header("x-herald-signature", sign(&unusable))
        .body(unusable)
        .send()
        .await?;
    let (status, code, message) = error_of(response).await?;
    assert_eq!((status, code.as_str()), (422, "unusable_event"));
    assert!(
        message.contains("sys_id") && message.contains("sys_mod_count"),
        "{message}"
    );

    // Unknown source: 404 naming the known ones.
    let response = h
        .client
        .post(h.events_url("remedy"))
        .body(body.clone())
        .send()
        .await?;
    let (status, code, message) = error_of(response).await?;
    assert_eq!((status, code.as_str()), (404, "unknown_source"));
    assert!(message.contains("servicenow"), "{message}");

    // Over the 2 MiB limit: 413, whether the size is declared or only found while reading.
    let big = vec![b' '; 2 * 1024 * 1024 + 1];
    for chunked in [false, true] {
        let response =
            herald_testkit::raw_http::post(&h.events_url("servicenow"), &[], big.clone(), chunked)
                .await?;
        assert_eq!(
            response.status, 413,
            "chunked: {chunked}: {}",
            response.body
        );
        let error: Value = serde_json::from_str(&response.body)?;
        assert_eq!(error["error"]["code"], "body_too_large");
    }

    assert!(
        h.stored_events().await?.is_empty(),
        "a rejected delivery was published"
    );

    // Rejections are logged for operators.
    let pool = h.db.pool().await?;
    let logged: Vec<(String, i64, String)> =
        herald_testkit::eventually("rejections logged", WAIT, || {
            let pool = pool.clone();
            async move {
                let rows: Vec<(String, i64, String)> = sqlx::query_as(
                    "SELECT source, status, code FROM ingest.rejections ORDER BY id",
                )
                .fetch_all(&pool)
                .await
                .ok()?;
                (rows.len() >= 7).then_some(rows)
            }
        })
        .await?;
    assert!(logged.contains(&("servicenow".into(), 401, "signature_mismatch".into())));
    assert!(logged.contains(&("remedy".into(), 404, "unknown_source".into())));
    h.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_submit_takes_the_same_path() -> anyhow::Result<()> {
    let h = Harness::start("").await?;
    let entry = delivery("cloudevents/automation-run-structured.json")?;
    let mut client = IngestClient::connect(h.grpc.clone()).await?;
    let request = SubmitRequest {
        historical: false,
        source: "cloudevents".into(),
        body: fixture_bytes(&entry)?,
        headers: fixture_headers(&entry).into_iter().collect(),
    };
    let response = client.submit(request.clone()).await?.into_inner();
    assert!(response.published);
    assert!(!response.duplicate);
    assert_eq!(Some(response.id.as_str()), entry["event"]["id"].as_str());
    let stored = h.stored_events().await?;
    assert_eq!(stored.len(), 1);
    assert_event_matches("grpc", &entry["event"], &stored[0].1);

    let again = client.submit(request.clone()).await?.into_inner();
    assert!(again.duplicate);

    let mut unsigned = request.clone();
    unsigned.headers.remove("X-Herald-Signature");
    let status = client.submit(unsigned).await.expect_err("unsigned");
    assert_eq!(status.code(), tonic::Code::Unauthenticated);

    let mut unknown = request;
    unknown.source = "remedy".into();
    let status = client.submit(unknown).await.expect_err("unknown");
    assert_eq!(status.code(), tonic::Code::NotFound);
    h.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics_are_served() -> anyhow::Result<()> {
    let h = Harness::start("").await?;
    let health: Value = h
        .client
        .get(format!("{}/healthz", h.http))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(health["status"], "alive");
    let ready: Value = h
        .client
        .get(format!("{}/readyz", h.http))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(ready["checks"]["nats"], "ok");
    assert_eq!(ready["checks"]["database"], "ok");
    // The counter is process-wide (other tests in this process may have counted deliveries too):
    // one accepted delivery adds exactly one.
    let accepted = r#"herald_ingest_deliveries_total{source="servicenow",status="202"}"#;
    let before = h.metric(accepted).await?;
    let entry = delivery("servicenow/ritm-fulfilled.json")?;
    assert_eq!(post_fixture(&h, &entry).await?.status().as_u16(), 202);
    assert_eq!(h.metric(accepted).await? - before, 1.0);
    h.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_while_nats_is_down_and_recovers() -> anyhow::Result<()> {
    let mut h = Harness::start("").await?;
    h.nats.kill().await;
    let url = format!("{}/readyz", h.http);
    let client = h.client.clone();
    herald_testkit::eventually("readyz 503 without NATS", WAIT, || {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let r = client.get(&url).send().await.ok()?;
            (r.status().as_u16() == 503).then_some(())
        }
    })
    .await?;
    // A delivery while the bus is down is refused with 503, so the sender retries: nothing is lost.
    let entry = delivery("servicenow/change-implemented.json")?;
    let response = post_fixture(&h, &entry).await?;
    assert_eq!(response.status().as_u16(), 503);

    h.nats.restart().await?;
    herald_testkit::eventually(
        "readyz 200 after NATS returns",
        Duration::from_secs(20),
        || {
            let (client, url) = (client.clone(), url.clone());
            async move {
                let r = client.get(&url).send().await.ok()?;
                r.status().is_success().then_some(())
            }
        },
    )
    .await?;
    let response = post_fixture(&h, &entry).await?;
    assert_eq!(response.status().as_u16(), 202);
    h.stop().await
}

/// A P1 delivery whose description is `description`.
fn p1_with_description(description: String) -> anyhow::Result<Vec<u8>> {
    let mut body: Value = serde_json::from_slice(&fixture_bytes(&delivery(
        "servicenow/incident-resolved-p1.json",
    )?)?)?;
    body["record"]["description"] = description.into();
    Ok(serde_json::to_vec(&body)?)
}

/// Text compression cannot shrink: hex of a SHA-256 chain, no run of it repeated.
fn incompressible(bytes: usize) -> String {
    use sha2::{Digest, Sha256};
    let mut text = String::with_capacity(bytes + 64);
    let mut digest = Sha256::digest(b"herald");
    while text.len() < bytes {
        text.push_str(&hex::encode(digest));
        digest = Sha256::digest(digest);
    }
    text
}

/// Posts a signed P1 delivery whose description is `description` to an ingest on a nats-server
/// keeping its default 1 MB message limit, expects its 202, and returns the body sent and the one
/// event stored.
async fn post_p1_over_a_1mb_bus(
    description: String,
) -> anyhow::Result<(Vec<u8>, herald_proto::v1::ItsmEvent)> {
    let nats = herald_testkit::NatsServer::start_with_max_payload("1MB").await?;
    let h = Harness::start_on(nats, "").await?;
    let body = p1_with_description(description)?;
    assert!(body.len() > 1_000_000, "{} bytes", body.len());
    let signature = format!(
        "sha256={}",
        herald_ingest::verify::sign_base64(SECRET.as_bytes(), &body)
    );
    let response = h
        .client
        .post(h.events_url("servicenow"))
        .header("x-herald-signature", signature)
        .body(body.clone())
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 202);
    let mut stored = h.stored_events().await?;
    assert_eq!(stored.len(), 1);
    let (_, event) = stored.remove(0);
    h.stop().await?;
    Ok((body, event))
}

/// NATS keeps its default 1 MB message limit, below ingest's 2 MiB body limit: a large delivery is
/// still accepted and its event published, with the raw bytes left out (and said so) rather than
/// refused for ever. This one compresses, but not under the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_larger_than_the_bus_allows_is_published_without_its_raw_bytes()
-> anyhow::Result<()> {
    let description = incompressible(1_200_000) + &"Scanners restarted. ".repeat(30_000);
    let (_, event) = post_p1_over_a_1mb_bus(description).await?;
    assert!(
        event.raw_payload_omitted,
        "the omission is recorded on the event"
    );
    assert!(event.raw_payload.is_empty());
    assert!(
        herald_runtime::payload::raw_body(&event)?.is_empty(),
        "no bytes, and none claimed compressed"
    );
    assert_eq!(
        event.record.as_ref().map(|r| r.number.as_str()),
        Some("INC0048213")
    );
    Ok(())
}

/// The raw bytes travel compressed, so a delivery over the bus's limit that compresses under it
/// keeps them, byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_delivery_that_compresses_under_the_bus_limit_keeps_its_raw_bytes()
-> anyhow::Result<()> {
    let line = "Restarted the Tilburg site's warehouse scanners; confirmed with the floor lead.\n";
    let (body, event) = post_p1_over_a_1mb_bus(line.repeat(1_500_000 / line.len())).await?;
    assert!(!event.raw_payload_omitted);
    assert!(
        event.raw_payload.len() < 1_000_000,
        "{} bytes on the bus",
        event.raw_payload.len()
    );
    assert_eq!(
        herald_runtime::payload::raw_body(&event)?.as_ref(),
        body.as_slice()
    );
    Ok(())
}
