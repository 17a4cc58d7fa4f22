//! Channel URLs are credentials (Slack's and most webhooks' carry their token in the path or the
//! query): when a channel cannot be reached, neither the logs nor the delivery log may show them.

use std::time::Duration;

use herald_proto::v1::{ListDeliveriesRequest, notify_client::NotifyClient};

use crate::support::{WEBHOOK_PATH, standalone::Standalone};

const WAIT: Duration = Duration::from_secs(60);
const SLACK_TOKEN: &str = "slacktokenLEAK1234";
const HOOK_TOKEN: &str = "webhooktokenLEAK5678";
/// Path parts after the first segment that a redacted URL must not show either.
const SLACK_IDS: [&str; 2] = ["T0LEAK", "B0LEAK"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_channels_never_show_their_urls() -> anyhow::Result<()> {
    // A port nothing listens on (connection refused) and a name that never resolves.
    let closed = herald_testkit::free_port()?;
    let extra = format!(
        r#"
[telemetry]
log_level = "debug"
[[notify.channels]]
name = "slack-down"
kind = "slack"
url = "http://127.0.0.1:{closed}/services/{t}/{b}/{SLACK_TOKEN}"
[[notify.channels]]
name = "hook-unknown"
kind = "webhook"
url = "http://herald-no-such-host.invalid/hooks/in?token={HOOK_TOKEN}"
[[notify.routes]]
name = "to-slack-down"
channel = "slack-down"
[[notify.routes]]
name = "to-hook-unknown"
channel = "hook-unknown"
"#,
        t = SLACK_IDS[0],
        b = SLACK_IDS[1],
    );
    let mut herald = Standalone::start_with(&extra).await?;
    let result = check(&herald, closed).await;
    if result.is_err() {
        eprintln!("{}", herald.process.output());
    }
    herald.process.terminate(Duration::from_secs(20)).await?;
    result?;
    // Everything the process wrote, up to its exit.
    assert_no_secret("the logs", &herald.process.output());
    Ok(())
}

async fn check(herald: &Standalone, closed: u16) -> anyhow::Result<()> {
    let body =
        std::fs::read(herald_testkit::fixtures_dir().join("servicenow/incident-resolved-p1.json"))?;
    assert_eq!(herald.post(body).await?.status().as_u16(), 202);
    // The reachable channel proves the announcement went out.
    herald.webhook.wait_for(WEBHOOK_PATH, 1, WAIT).await?;

    let notify = NotifyClient::connect(herald.grpc.clone()).await?;
    let failed = herald_testkit::eventually("both dead channels tried", WAIT, || {
        let mut notify = notify.clone();
        async move {
            let answer = notify
                .list_deliveries(ListDeliveriesRequest::default())
                .await
                .ok()?
                .into_inner();
            let tried = answer
                .deliveries
                .iter()
                .filter(|d| d.channel != "bi" && !d.last_error.is_empty())
                .count();
            (tried == 2).then_some(answer)
        }
    })
    .await?;
    let answer = format!("{failed:?}");
    assert_no_secret("ListDeliveries", &answer);
    // What an operator does see: where it went, without the credential.
    let slack = failed
        .deliveries
        .iter()
        .find(|d| d.channel == "slack-down")
        .ok_or_else(|| anyhow::anyhow!("no slack-down delivery: {answer}"))?;
    assert!(
        slack
            .last_error
            .contains(&format!("http://127.0.0.1:{closed}/services/…")),
        "the error names the redacted destination: {}",
        slack.last_error
    );
    let page = reqwest::get(format!("{}/metrics", herald.http))
        .await?
        .text()
        .await?;
    assert_no_secret("/metrics", &page);
    Ok(())
}

fn assert_no_secret(place: &str, text: &str) {
    for secret in [SLACK_TOKEN, HOOK_TOKEN, SLACK_IDS[0], SLACK_IDS[1]] {
        assert!(
            !text.contains(secret),
            "{place} shows {secret}:\n{}",
            text.lines()
                .filter(|l| l.contains(secret))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}
