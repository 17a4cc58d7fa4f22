//! What an operator and a busy day need from notify: a burst of wins merged into a few messages,
//! a delivery replayed on request, and a test message to a channel on demand.

use std::time::Duration;

use herald_proto::{
    time::to_timestamp,
    v1::{
        Announcement, AnnouncementKind, Card, DeliveryStatus, EventKind, ReplayDeliveryRequest,
        SendTestRequest, ValueLabel, ValueLine,
    },
};
use herald_testkit::{HttpReceiver, InProcess, Reply};

const WAIT: Duration = Duration::from_secs(20);
const SLACK: &str = "/services/T000/B000/XXXX";
const HOOK: &str = "/herald";

fn win(n: usize) -> Announcement {
    Announcement {
        id: format!("burst-{n}"),
        kind: AnnouncementKind::HeadlineWin as i32,
        created_at: Some(to_timestamp(chrono::Utc::now())),
        card: Some(Card {
            title: format!("Win number {n}: Payroll restored, {n} people back at work"),
            summary: "A restore.".into(),
            value_lines: vec![ValueLine {
                label: ValueLabel::Capacity as i32,
                text: format!("{n} h given back"),
                formula: "people × hours".into(),
            }],
            teams: vec!["Service Desk".into()],
            ..Default::default()
        }),
        win_id: format!("w-{n}"),
        event_kind: EventKind::IncidentResolved as i32,
        value_amount: n as f64 * 100.0,
        currency: "EUR".into(),
        ..Default::default()
    }
}

/// Notify with a Slack channel paced at `slack_interval` and a signed webhook.
async fn start(
    slack: &HttpReceiver,
    hook: &HttpReceiver,
    slack_interval: &str,
) -> anyhow::Result<InProcess> {
    let toml = format!(
        r#"
[notify]
allow_private_networks = true
retry_base = "100ms"
retry_max = "1s"
max_attempts = 3
poll_interval = "100ms"
request_timeout = "2s"

[[notify.channels]]
name = "slack-wins"
kind = "slack"
url = "{slack}"
min_interval = "{slack_interval}"

[[notify.channels]]
name = "bi-hook"
kind = "webhook"
url = "{hook}"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

[[notify.routes]]
name = "wins-to-slack"
channel = "slack-wins"

[[notify.routes]]
name = "wins-to-bi"
channel = "bi-hook"
"#,
        slack = slack.url(SLACK),
        hook = hook.url(HOOK),
    );
    InProcess::start::<herald_notify::Notify>(&toml, std::path::Path::new(".")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_thirty_wins_reaches_slack_as_a_few_messages_and_none_is_lost()
-> anyhow::Result<()> {
    let slack = HttpReceiver::start().await?;
    let hook = HttpReceiver::start().await?;
    let stage = start(&slack, &hook, "500ms").await?;
    for n in 1..=30 {
        let a = win(n);
        stage
            .publish("herald.announcements.headline_win", &a.id, &a)
            .await?;
    }
    // Every win is delivered on both routes: the webhook, which never merges, gets thirty.
    let delivered = herald_testkit::eventually("60 deliveries", WAIT, || async {
        let list = stage
            .notify()
            .await
            .ok()?
            .list_deliveries(herald_proto::v1::ListDeliveriesRequest {
                announcement_id: String::new(),
                status: DeliveryStatus::Delivered as i32,
                limit: 500,
            })
            .await
            .ok()?
            .into_inner();
        (list.deliveries.len() == 60).then_some(list.deliveries)
    })
    .await?;
    assert_eq!(
        hook.requests_to(HOOK).len(),
        30,
        "the webhook gets each win"
    );

    let messages = slack.requests_to(SLACK);
    assert!(
        (2..=5).contains(&messages.len()),
        "thirty wins should be a few Slack messages, got {}",
        messages.len()
    );
    // None lost: each win's headline is in exactly one Slack message.
    let bodies: Vec<String> = messages.iter().map(|r| r.text()).collect();
    for n in 1..=30 {
        let needle = format!("Win number {n}:");
        let carrying = bodies.iter().filter(|b| b.contains(&needle)).count();
        assert_eq!(carrying, 1, "{needle} is in {carrying} Slack messages");
    }
    let summary = bodies
        .iter()
        .find(|b| b.contains("more wins"))
        .expect("a summary message");
    // Nothing is added up across wins: each line keeps its own number.
    assert!(!summary.contains(" h given back"), "{summary}");

    // The merged deliveries say which delivery carried them; those sent alone and the carrier of
    // the one summary do not.
    let on_slack: Vec<_> = delivered
        .iter()
        .filter(|d| d.channel == "slack-wins")
        .collect();
    let merged = on_slack
        .iter()
        .filter(|d| !d.merged_into.is_empty())
        .count();
    assert_eq!(
        merged + messages.len(),
        30,
        "every win not sent alone is merged"
    );
    let carrier = &on_slack
        .iter()
        .find(|d| !d.merged_into.is_empty())
        .expect("merged")
        .merged_into;
    assert!(on_slack.iter().any(|d| &d.id == carrier));
    stage.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_is_replayed_on_request_with_a_fresh_budget() -> anyhow::Result<()> {
    let slack = HttpReceiver::start().await?;
    let hook = HttpReceiver::start().await?;
    // The webhook refuses for good (400) the first time.
    hook.script([Reply::status(400).with_body("{\"error\":\"schema\"}")]);
    let stage = start(&slack, &hook, "10ms").await?;
    let a = win(1);
    stage
        .publish("herald.announcements.headline_win", &a.id, &a)
        .await?;
    let failed = stage
        .first_delivery(&a.id, DeliveryStatus::Failed, WAIT)
        .await?;
    assert_eq!(failed.attempts, 1);
    assert!(
        failed.last_error.contains("schema"),
        "{}",
        failed.last_error
    );

    let mut notify = stage.notify().await?;
    let replayed = notify
        .replay_delivery(ReplayDeliveryRequest {
            id: failed.id.clone(),
        })
        .await?
        .into_inner();
    assert_eq!(replayed.id, failed.id);
    let delivered = herald_testkit::eventually("replayed delivery", WAIT, || async {
        let list = stage
            .deliveries(&a.id, Some(DeliveryStatus::Delivered))
            .await
            .ok()?;
        list.deliveries.into_iter().find(|d| d.id == failed.id)
    })
    .await?;
    let statuses: Vec<u32> = delivered
        .attempt_log
        .iter()
        .map(|a| a.http_status)
        .collect();
    assert_eq!(statuses, vec![400, 200], "the log keeps the first attempt");
    let ids: Vec<String> = hook
        .requests_to(HOOK)
        .iter()
        .filter_map(|r| r.header("webhook-id").map(str::to_string))
        .collect();
    assert_eq!(
        ids,
        vec![failed.id.clone(), failed.id.clone()],
        "same webhook-id"
    );

    // A pending or unknown delivery cannot be replayed; the answer says why.
    let unknown = notify
        .replay_delivery(ReplayDeliveryRequest {
            id: "d-nothing".into(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    assert!(unknown.message().contains("herald deliveries list"));
    stage.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_test_posts_a_test_message_and_reports_what_the_channel_said() -> anyhow::Result<()> {
    let slack = HttpReceiver::start().await?;
    let hook = HttpReceiver::start().await?;
    hook.script([Reply::status(500).with_body("receiver is down")]);
    let stage = start(&slack, &hook, "10ms").await?;
    let mut notify = stage.notify().await?;

    let ok = notify
        .send_test(SendTestRequest {
            channel: "slack-wins".into(),
        })
        .await?
        .into_inner();
    assert!(ok.delivered, "{ok:?}");
    assert_eq!((ok.http_status, ok.kind.as_str()), (200, "slack"));
    let got = slack.wait_for(SLACK, 1, WAIT).await?;
    assert!(
        got[0].text().contains("Herald test message"),
        "{}",
        got[0].text()
    );

    let down = notify
        .send_test(SendTestRequest {
            channel: "bi-hook".into(),
        })
        .await?
        .into_inner();
    assert!(!down.delivered);
    assert_eq!(down.http_status, 500);
    assert!(
        down.outcome.contains("receiver is down"),
        "{}",
        down.outcome
    );

    let unknown = notify
        .send_test(SendTestRequest {
            channel: "teams".into(),
        })
        .await
        .expect_err("unknown channel");
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    assert!(
        unknown.message().contains("slack-wins, bi-hook"),
        "{}",
        unknown.message()
    );
    // A test message is not a delivery: nothing was queued.
    assert!(stage.deliveries("", None).await?.deliveries.is_empty());
    stage.stop().await
}
