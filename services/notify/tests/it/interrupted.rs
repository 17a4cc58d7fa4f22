//! An attempt cut short by a stop (the process died between claiming a delivery and recording its
//! answer): a Slack-kind channel is not posted to twice, a webhook gets the same `webhook-id` again,
//! and both keep the interrupted attempt in their log.

use std::time::Duration;

use herald_proto::v1::{Announcement, AnnouncementKind, Card, DeliveryStatus};
use herald_testkit::{HttpReceiver, InProcess};
use prost::Message;

const WAIT: Duration = Duration::from_secs(15);

fn config(slack: &HttpReceiver, hook: &HttpReceiver) -> String {
    format!(
        r#"
[notify]
allow_private_networks = true
poll_interval = "100ms"
request_timeout = "1s"

[[notify.channels]]
name = "slack-wins"
kind = "slack"
url = "{slack}"

[[notify.channels]]
name = "bi-hook"
kind = "webhook"
url = "{hook}"

[[notify.routes]]
name = "to-slack"
channel = "slack-wins"

[[notify.routes]]
name = "to-bi"
channel = "bi-hook"
"#,
        slack = slack.url("/services/T/B/X"),
        hook = hook.url("/herald"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_attempt_is_never_posted_twice_to_chat_and_resent_to_a_webhook()
-> anyhow::Result<()> {
    let slack = HttpReceiver::start().await?;
    let hook = HttpReceiver::start().await?;
    let toml = config(&slack, &hook);
    let first = InProcess::start::<herald_notify::Notify>(&toml, std::path::Path::new(".")).await?;
    let (nats, db) = first.stop_keeping_state().await?;

    // What a dispatcher that died mid-send leaves: both deliveries claimed (attempt 1, sending),
    // their lease run out.
    let announcement = Announcement {
        id: "a-cut".into(),
        kind: AnnouncementKind::HeadlineWin as i32,
        card: Some(Card {
            title: "Warehouse Management restored in 1 h 12 min".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let pool = db.pool().await?;
    let long_ago = chrono::Utc::now().timestamp_millis() - 60_000;
    for (id, route, channel) in [
        ("d-slack", "to-slack", "slack-wins"),
        ("d-hook", "to-bi", "bi-hook"),
    ] {
        sqlx::query(
            "INSERT INTO notify.deliveries (id, announcement_id, route, channel, status, attempts,
                                            next_attempt_at, lease_until, created_at, payload)
             VALUES ($1, 'a-cut', $2, $3, 'sending', 1, $4, $4, $4, $5)",
        )
        .bind(id)
        .bind(route)
        .bind(channel)
        .bind(long_ago)
        .bind(announcement.encode_to_vec())
        .execute(&pool)
        .await?;
    }

    let second =
        InProcess::start_with::<herald_notify::Notify>(nats, db, &toml, std::path::Path::new("."))
            .await?;
    let final_state = herald_testkit::eventually("both deliveries final", WAIT, || async {
        let list = second.deliveries("a-cut", None).await.ok()?;
        let done = list.deliveries.len() == 2
            && list.deliveries.iter().all(|d| {
                d.status == DeliveryStatus::Delivered as i32
                    || d.status == DeliveryStatus::Failed as i32
            });
        done.then_some(list)
    })
    .await?;
    let slack_delivery = final_state
        .deliveries
        .iter()
        .find(|d| d.id == "d-slack")
        .ok_or_else(|| anyhow::anyhow!("no slack delivery"))?;
    assert_eq!(slack_delivery.status, DeliveryStatus::Failed as i32);
    assert!(
        slack_delivery.last_error.contains("not sent again"),
        "{}",
        slack_delivery.last_error
    );
    assert_eq!(
        slack_delivery.attempt_log.len(),
        1,
        "the interrupted attempt, logged"
    );
    assert!(slack.requests().is_empty(), "no second post to Slack");

    let hook_delivery = final_state
        .deliveries
        .iter()
        .find(|d| d.id == "d-hook")
        .ok_or_else(|| anyhow::anyhow!("no webhook delivery"))?;
    assert_eq!(hook_delivery.status, DeliveryStatus::Delivered as i32);
    assert_eq!(
        hook_delivery.attempt_log.len(),
        2,
        "interrupted, then delivered"
    );
    let received = hook.wait_for("/herald", 1, WAIT).await?;
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].header("webhook-id"),
        Some("d-hook"),
        "the same id again"
    );
    second.stop().await
}
