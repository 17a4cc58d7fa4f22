//! What an operator relies on, against the four services as processes: one OpenTelemetry trace
//! from the webhook (or a gRPC `Submit`) to the channel's delivery, carried across NATS headers,
//! the delivery queue and gRPC metadata and received by a real OTLP/gRPC receiver; and the
//! Prometheus metrics the Grafana dashboard in `deploy/` reads, each exported by a service.

use std::{collections::BTreeSet, time::Duration};

use herald_proto::v1::{SubmitRequest, ingest_client::IngestClient};
use herald_testkit::{OtlpReceiver, ReceivedSpan};

use crate::support::{Herald, WEBHOOK_PATH};

const WAIT: Duration = Duration::from_secs(60);
/// The caller's trace: what a tool that traces sends in `traceparent`.
const WEBHOOK_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SUBMIT_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";

fn traceparent(trace: &str) -> String {
    format!("00-{trace}-00f067aa0ba902b7-01")
}

fn in_trace(spans: &[ReceivedSpan], trace: &str) -> Vec<ReceivedSpan> {
    spans
        .iter()
        .filter(|s| s.trace_id == trace)
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_runs_from_the_webhook_to_the_delivery_and_the_dashboards_metrics_exist()
-> anyhow::Result<()> {
    let receiver = OtlpReceiver::start().await?;
    let endpoint = receiver.endpoint();
    let herald = Herald::start_with_env(&[("HERALD_TELEMETRY__OTLP_ENDPOINT", &endpoint)]).await?;
    let result = scenario(&herald, &receiver).await;
    if result.is_err() {
        eprintln!("{}", herald.logs());
    }
    result
}

async fn scenario(herald: &Herald, receiver: &OtlpReceiver) -> anyhow::Result<()> {
    // A webhook from a tool that traces: Herald's spans join the tool's trace.
    let response = herald
        .post_fixture_with(
            "servicenow/incident-resolved-p1.json",
            &[("traceparent", &traceparent(WEBHOOK_TRACE))],
        )
        .await?;
    assert_eq!(response.status().as_u16(), 202);
    herald.webhook.wait_for(WEBHOOK_PATH, 1, WAIT).await?;

    // Each service exports in batches (every few seconds), each on its own clock: notify's
    // delivery can arrive before spotlight's span, so wait until every service's part is in.
    let every = BTreeSet::from([
        "herald-ingest",
        "herald-notify",
        "herald-scoring",
        "herald-spotlight",
    ]);
    let path = herald_testkit::eventually(
        "every service's part of the webhook's trace, through notify's delivery",
        WAIT,
        || async {
            let spans = in_trace(&receiver.spans(), WEBHOOK_TRACE);
            let services: BTreeSet<&str> = spans.iter().map(|s| s.service.as_str()).collect();
            let delivered = spans
                .iter()
                .any(|s| s.service == "herald-notify" && s.name == "notify.deliver");
            (delivered && services == every).then_some(spans)
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}; received: {:#?}", receiver.spans()))?;
    // Linked, not only labelled: every span's parent is the caller's span or a span of the trace.
    let ids: BTreeSet<&str> = path.iter().map(|s| s.span_id.as_str()).collect();
    for span in &path {
        assert!(
            span.parent_span_id == "00f067aa0ba902b7" || ids.contains(span.parent_span_id.as_str()),
            "{span:?} hangs outside the trace: {path:#?}"
        );
    }
    let names: BTreeSet<&str> = path.iter().map(|s| s.name.as_str()).collect();
    // Spotlight's part is its consumer's span (or `announce`, when it took a batch).
    for name in ["ingest.receive", "score.publish", "notify.deliver"] {
        assert!(names.contains(name), "no {name} span: {names:?}");
    }

    // gRPC: the trace context in the call's metadata is carried on in the same way.
    let oracle: serde_json::Value = serde_json::from_slice(&std::fs::read(
        herald_testkit::fixtures_dir().join("expected.json"),
    )?)?;
    let file = "servicenow/problem-closed.json";
    let entry = oracle["deliveries"]
        .as_array()
        .and_then(|d| d.iter().find(|e| e["file"] == file))
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("{file} not in expected.json"))?;
    let mut request = tonic::Request::new(SubmitRequest {
        source: "servicenow".into(),
        headers: entry["headers"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect(),
        body: std::fs::read(herald_testkit::fixtures_dir().join(file))?,
        historical: false,
    });
    request
        .metadata_mut()
        .insert("traceparent", traceparent(SUBMIT_TRACE).parse()?);
    let answer = IngestClient::connect(herald.grpc(0))
        .await?
        .submit(request)
        .await?
        .into_inner();
    assert!(answer.published && !answer.duplicate, "{answer:?}");
    herald_testkit::eventually("the gRPC call's trace at scoring", WAIT, || async {
        let spans = in_trace(&receiver.spans(), SUBMIT_TRACE);
        let services: BTreeSet<String> = spans.iter().map(|s| s.service.clone()).collect();
        (spans.iter().any(|s| s.name == "ingest.submit") && services.contains("herald-scoring"))
            .then_some(())
    })
    .await
    .map_err(|e| {
        anyhow::anyhow!(
            "{e}; received: {:#?}",
            in_trace(&receiver.spans(), SUBMIT_TRACE)
        )
    })?;

    metrics_the_dashboard_reads(herald).await
}

/// Every metric the Grafana dashboard queries is exported by a service after this traffic, and
/// the families an operator needs are there with their labels.
async fn metrics_the_dashboard_reads(herald: &Herald) -> anyhow::Result<()> {
    herald.wait_settled().await?;
    // The backlog gauges are read every few seconds.
    let exported = herald_testkit::eventually("the backlog gauges", WAIT, || async {
        let mut all = String::new();
        for service in 0..4 {
            let text = herald
                .client
                .get(format!("{}/metrics", herald.http(service)))
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            all.push_str(&text);
        }
        all.contains("herald_consumer_ack_pending{").then_some(all)
    })
    .await?;
    for needed in [
        r#"herald_ingest_events_total{source="servicenow",outcome="published"}"#,
        r#"herald_scoring_wins_total{"#,
        r#"herald_spotlight_announcements_total{kind="headline_win"}"#,
        r#"herald_notify_deliveries_total{channel="bi-webhook",status="delivered"}"#,
        r#"herald_notify_attempt_duration_seconds_bucket{channel="bi-webhook""#,
        r#"herald_notify_announcement_to_delivery_seconds_bucket{channel="slack-wins""#,
        r#"herald_message_duration_seconds_bucket{stage="scoring""#,
        r#"herald_worker_batch_messages_bucket{stage="scoring",le="1"}"#,
        r#"herald_worker_lane_work_seconds_bucket{stage="spotlight""#,
        r#"herald_worker_lane_wait_seconds_sum{stage="notify"}"#,
        r#"herald_consumer_pending{stage="notify",consumer="notify"}"#,
        r#"herald_consumer_ack_pending{stage="scoring",consumer="scoring"}"#,
    ] {
        assert!(exported.contains(needed), "no {needed} in /metrics");
    }
    // Scoring's lanes worked on the events, and waited between them.
    for (series, what) in [
        (
            r#"herald_worker_lane_work_seconds_sum{stage="scoring"}"#,
            "worked",
        ),
        (
            r#"herald_worker_lane_wait_seconds_sum{stage="scoring"}"#,
            "waited",
        ),
    ] {
        let seconds: f64 = exported
            .lines()
            .find_map(|l| l.strip_prefix(series))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0);
        assert!(
            seconds > 0.0,
            "scoring's lanes {what} {seconds} s: {series}"
        );
    }
    let names: BTreeSet<String> = exported
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(String::from)
        .collect();
    let dashboard = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/grafana/herald.json"),
    )?;
    let queried = metric_names(&dashboard);
    assert!(queried.len() >= 8, "the dashboard queries {queried:?}");
    for metric in &queried {
        assert!(
            names.contains(metric),
            "the dashboard queries {metric}, which no service exports: {names:?}"
        );
    }
    Ok(())
}

/// The `herald_…` series a dashboard's queries name.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("herald_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        found.insert(name);
    }
    found
}
