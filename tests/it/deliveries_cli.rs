//! `herald send-test` and `herald deliveries list|replay` against both run modes: `herald up` and
//! the four services as processes.

use herald_testkit::HttpReceiver;
use serde_json::Value;

use crate::support::{
    HEADLINE_INCIDENT, Herald, SLACK_PATH, WEBHOOK_PATH, describe, export_row, herald_cli,
    standalone::Standalone,
};

/// Sends a test message to `channel` (whose receiver is `receiver` at `path`), checks an unknown
/// channel is refused with the known ones named, then replays the first delivery to `replayed`
/// and checks the receiver got it again under the same webhook-id.
async fn exercise(
    target: &[&str],
    channel: &str,
    receiver: &HttpReceiver,
    path: &str,
    webhook: &HttpReceiver,
) -> anyhow::Result<()> {
    let sent = herald_cli(&[&["send-test", channel][..], target].concat()).await?;
    assert!(sent.status.success(), "{}", describe(&sent));
    let stdout = String::from_utf8_lossy(&sent.stdout);
    assert!(
        stdout.contains(&format!("sent a test message to {channel}")),
        "{}",
        describe(&sent)
    );
    let got = receiver
        .wait_for(path, 1, std::time::Duration::from_secs(10))
        .await?;
    assert!(
        got.iter().any(|r| r.text().contains("Herald test message")),
        "the receiver got no test message"
    );

    let unknown = herald_cli(&[&["send-test", "no-such-channel"][..], target].concat()).await?;
    assert!(!unknown.status.success(), "{}", describe(&unknown));
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains(channel),
        "the configured channels are named: {}",
        describe(&unknown)
    );

    // A delivery to the webhook, replayed.
    let list = herald_cli(&[&["deliveries", "list", "--json"][..], target].concat()).await?;
    assert!(list.status.success(), "{}", describe(&list));
    let rows: Value = serde_json::from_slice(&list.stdout)?;
    let delivery = rows
        .as_array()
        .and_then(|rows| {
            rows.iter().find(|r| {
                r["status"] == "delivered"
                    && r["route"].as_str().is_some_and(|r| r.ends_with("-bi"))
            })
        })
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no delivered webhook delivery: {rows}"))?;
    let id = delivery["id"].as_str().unwrap_or_default().to_string();
    let before = webhook.requests_to(WEBHOOK_PATH).len();
    let replayed = herald_cli(&[&["deliveries", "replay", &id][..], target].concat()).await?;
    assert!(replayed.status.success(), "{}", describe(&replayed));
    assert!(
        String::from_utf8_lossy(&replayed.stdout).contains(&format!("replayed {id}")),
        "{}",
        describe(&replayed)
    );
    let again = webhook
        .wait_for(WEBHOOK_PATH, before + 1, std::time::Duration::from_secs(15))
        .await?;
    assert_eq!(
        again.last().and_then(|r| r.header("webhook-id")),
        Some(id.as_str()),
        "the replay carries the delivery's own webhook-id"
    );
    let shown = herald_cli(&[&["deliveries", "--json"][..], target].concat()).await?;
    let rows: Value = serde_json::from_slice(&shown.stdout)?;
    let row = rows
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["id"] == id.as_str()))
        .cloned()
        .unwrap_or_default();
    assert!(
        row["attempt_log"].as_array().is_some_and(|l| l.len() >= 2),
        "the first attempt stays in the log: {row}"
    );

    let unknown = herald_cli(&[&["deliveries", "replay", "d-none"][..], target].concat()).await?;
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("no delivery d-none"),
        "{}",
        describe(&unknown)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_test_and_replay_work_against_herald_up() -> anyhow::Result<()> {
    let herald = Standalone::start().await?;
    let accepted = herald.post(export_row(HEADLINE_INCIDENT)?).await?;
    assert_eq!(accepted.status(), 202);
    herald.wait_settled().await?;
    let grpc = herald.grpc.clone();
    exercise(
        &["--url", &grpc],
        "bi",
        &herald.webhook,
        WEBHOOK_PATH,
        &herald.webhook,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", herald.process.output()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_test_and_replay_work_against_the_distributed_services() -> anyhow::Result<()> {
    let herald = Herald::start().await?;
    let accepted = herald
        .post_signed("servicenow", export_row(HEADLINE_INCIDENT)?)
        .await?;
    assert_eq!(accepted.status(), 202);
    herald.wait_settled().await?;
    let notify = herald.grpc(3);
    exercise(
        &["--notify", &notify],
        "slack-wins",
        &herald.slack,
        SLACK_PATH,
        &herald.webhook,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", herald.logs()))
}
