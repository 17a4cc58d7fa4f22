//! Two notify processes on one stream and one database: every announcement reaches each channel
//! once, and together they keep a Slack channel's pace (one slot every `min_interval`, whichever
//! process takes it).

use std::{collections::HashSet, time::Duration};

use herald_proto::{
    time::to_timestamp,
    v1::{Announcement, AnnouncementKind, Card, EventKind},
};
use herald_testkit::{HttpReceiver, NatsServer, TestDatabase};

use crate::support::spawn_replica;
use prost::Message;

const SLACK: &str = "/services/T0001/B0001/hooksecret";
const HOOK: &str = "/hooks/herald";
const WINS: usize = 24;
const PACE: Duration = Duration::from_millis(250);

fn announcement(n: usize) -> Announcement {
    Announcement {
        id: format!("a-replica-{n}"),
        kind: AnnouncementKind::HeadlineWin as i32,
        created_at: Some(to_timestamp(chrono::Utc::now())),
        card: Some(Card {
            title: format!("Win {n} of the replica test"),
            ..Default::default()
        }),
        win_id: format!("w-{n}"),
        event_kind: EventKind::IncidentResolved as i32,
        value_amount: 1000.0,
        currency: "EUR".into(),
        ..Default::default()
    }
}

async fn attempts_on(client: &reqwest::Client, http: u16) -> anyhow::Result<f64> {
    let page = client
        .get(format!("http://127.0.0.1:{http}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    Ok(page
        .lines()
        .filter(|l| l.starts_with("herald_notify_attempts_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_notify_processes_deliver_once_and_share_slacks_pace() -> anyhow::Result<()> {
    herald_testkit::init_tracing();
    herald_runtime::install_tls_provider();
    let nats = NatsServer::start().await?;
    let db = TestDatabase::create().await?;
    let slack = HttpReceiver::start().await?;
    let webhook = HttpReceiver::start().await?;
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("herald.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[nats]
url = "{nats}"
[database]
url = "{db}"
[notify]
allow_private_networks = true
retry_base = "200ms"
poll_interval = "100ms"

[[notify.channels]]
name = "slack-wins"
kind = "slack"
url = "{slack}"
min_interval = "{pace}ms"
# Every win goes out on its own here, so the pace is what the test measures.
burst = 0

[[notify.channels]]
name = "bi-webhook"
kind = "webhook"
url = "{webhook}"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

[[notify.routes]]
name = "wins-to-slack"
channel = "slack-wins"

[[notify.routes]]
name = "wins-to-bi"
channel = "bi-webhook"
"#,
            nats = nats.url(),
            db = db.url(),
            slack = slack.url(SLACK),
            webhook = webhook.url(HOOK),
            pace = PACE.as_millis(),
        ),
    )?;
    let client = reqwest::Client::new();
    let mut replicas = Vec::new();
    for _ in 0..2 {
        replicas.push(spawn_replica("herald-notify", "notify", &config).await?);
    }

    let bus = async_nats::connect(nats.url()).await?;
    for n in 0..WINS {
        let a = announcement(n);
        herald_testkit::nats::publish(
            &bus,
            "herald.announcements.headline_win",
            &a.id,
            a.encode_to_vec(),
        )
        .await?;
    }
    let wait = PACE * WINS as u32 * 2 + Duration::from_secs(20);
    let logs = || {
        replicas
            .iter()
            .map(|(p, _)| p.output())
            .collect::<Vec<_>>()
            .join("\n---\n")
    };
    let got = slack
        .wait_for(SLACK, WINS, wait)
        .await
        .map_err(|e| anyhow::anyhow!("{e}\n{}", logs()))?;
    webhook.wait_for(HOOK, WINS, wait).await?;
    // Let anything that would be a duplicate arrive.
    tokio::time::sleep(PACE * 4).await;

    let slack_requests = slack.requests_to(SLACK);
    let titles: HashSet<String> = slack_requests
        .iter()
        .filter_map(|r| {
            let body = r.text();
            (0..WINS)
                .map(|n| format!("Win {n} of the replica test"))
                .find(|t| body.contains(t.as_str()))
        })
        .collect();
    assert_eq!(slack_requests.len(), WINS, "no Slack message twice");
    assert_eq!(titles.len(), WINS, "every win once on Slack");
    let hooks = webhook.requests_to(HOOK);
    let ids: HashSet<&str> = hooks
        .iter()
        .filter_map(|r| r.header("webhook-id"))
        .collect();
    assert_eq!(
        (hooks.len(), ids.len()),
        (WINS, WINS),
        "every win once on the webhook"
    );

    // Together they keep the pace. Slots are `PACE` apart; arrival times also carry each request's
    // own latency, so on a loaded machine a request sent late shortens the gap after it (in a full
    // suite run, once, to 56 ms). Replicas that did not share the slots would leave about every
    // other gap near zero: at most one gap below half the pace, and the whole run no faster than
    // the pace allows (less one interval of jitter).
    let mut at: Vec<_> = got.iter().map(|r| r.received_at).collect();
    at.sort();
    let gaps: Vec<Duration> = at.windows(2).map(|w| w[1] - w[0]).collect();
    let short: Vec<&Duration> = gaps.iter().filter(|g| **g < PACE / 2).collect();
    assert!(
        short.len() <= 1,
        "Slack messages {short:?} apart; the pace is {PACE:?}"
    );
    let span = at[at.len() - 1] - at[0];
    assert!(
        span >= PACE * (WINS as u32 - 2),
        "{WINS} messages in {span:?}: faster than one every {PACE:?}"
    );
    // And both did part of the work.
    let mut per_replica = Vec::new();
    for (_, http) in &replicas {
        per_replica.push(attempts_on(&client, *http).await?);
    }
    assert!(
        per_replica.iter().all(|n| *n > 0.0),
        "each replica should have sent some: {per_replica:?}"
    );
    assert_eq!(per_replica.iter().sum::<f64>(), (2 * WINS) as f64);
    Ok(())
}
