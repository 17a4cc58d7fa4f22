//! Routes as an ordered tree and quiet hours, on the running stage: announcements in over
//! JetStream, deliveries out to real HTTP receivers.

use std::time::Duration;

use chrono::{DateTime, Timelike, Utc};
use herald_proto::{
    time::to_timestamp,
    v1::{Announcement, AnnouncementKind, Card, DeliveryStatus, ValueLabel, ValueLine},
};
use herald_testkit::{HttpReceiver, InProcess};

const WAIT: Duration = Duration::from_secs(15);

fn announcement(id: &str, value: f64, label: ValueLabel) -> Announcement {
    Announcement {
        id: id.into(),
        kind: AnnouncementKind::HeadlineWin as i32,
        created_at: Some(to_timestamp(Utc::now())),
        card: Some(Card {
            title: format!("Win {id}"),
            value_lines: vec![ValueLine {
                label: label as i32,
                text: format!("€{value} of lost work avoided"),
                formula: "users × hours × rate".into(),
            }],
            ..Default::default()
        }),
        business_service: Some("svc-warehouse".into()),
        value_amount: value,
        currency: "EUR".into(),
        ..Default::default()
    }
}

/// Notify in-process with two webhook channels, `a` and `b`, and the given routes.
async fn start(a: &HttpReceiver, b: &HttpReceiver, routes: &str) -> anyhow::Result<InProcess> {
    let toml = format!(
        r#"
[notify]
allow_private_networks = true
poll_interval = "100ms"
request_timeout = "2s"

[[notify.channels]]
name = "a"
kind = "webhook"
url = "{a}"

[[notify.channels]]
name = "b"
kind = "webhook"
url = "{b}"

{routes}
"#,
        a = a.url("/a"),
        b = b.url("/b"),
    );
    InProcess::start::<herald_notify::Notify>(&toml, std::path::Path::new(".")).await
}

async fn announce(stage: &InProcess, a: &Announcement) -> anyhow::Result<()> {
    stage
        .publish("herald.announcements.headline_win", &a.id, a)
        .await
}

/// (route, channel) of every delivery of `announcement` once all are delivered, sorted.
async fn delivered(
    stage: &InProcess,
    announcement: &str,
    expected: usize,
) -> anyhow::Result<Vec<(String, String)>> {
    herald_testkit::eventually(
        &format!("{expected} deliveries of {announcement}"),
        WAIT,
        || async {
            let list = stage
                .deliveries(announcement, Some(DeliveryStatus::Delivered))
                .await
                .ok()?;
            let mut got: Vec<(String, String)> = list
                .deliveries
                .into_iter()
                .map(|d| (d.route, d.channel))
                .collect();
            got.sort();
            (got.len() == expected).then_some(got)
        },
    )
    .await
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(r, c)| (r.to_string(), c.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_matching_route_wins_unless_it_continues() -> anyhow::Result<()> {
    let a = HttpReceiver::start().await?;
    let b = HttpReceiver::start().await?;
    let stage = start(
        &a,
        &b,
        r#"
[[notify.routes]]
name = "cash-everywhere"
channels = ["a", "b"]
labels = ["cash"]

[[notify.routes]]
name = "big-to-a"
channel = "a"
min_value = 10000
continue = false

[[notify.routes]]
name = "rest-to-b"
channel = "b"
"#,
    )
    .await?;

    // A big win: big-to-a matches and stops the walk, so rest-to-b never sees it.
    announce(&stage, &announcement("big", 50_000.0, ValueLabel::Avoided)).await?;
    assert_eq!(
        delivered(&stage, "big", 1).await?,
        pairs(&[("big-to-a", "a")])
    );
    // A small one falls through big-to-a to rest-to-b.
    announce(&stage, &announcement("small", 500.0, ValueLabel::Avoided)).await?;
    assert_eq!(
        delivered(&stage, "small", 1).await?,
        pairs(&[("rest-to-b", "b")])
    );
    // Cash goes to both channels of cash-everywhere, which continues (the default), then to
    // big-to-a, which stops.
    announce(&stage, &announcement("cash", 50_000.0, ValueLabel::Cash)).await?;
    assert_eq!(
        delivered(&stage, "cash", 3).await?,
        pairs(&[
            ("big-to-a", "a"),
            ("cash-everywhere", "a"),
            ("cash-everywhere", "b")
        ])
    );
    stage
        .wait_until_consumed("HERALD_ANNOUNCEMENTS", "notify")
        .await?;
    assert_eq!(a.requests().len(), 3, "a: big, cash twice");
    assert_eq!(b.requests().len(), 2, "b: small, cash");
    let ids: std::collections::HashSet<String> = a
        .requests()
        .iter()
        .filter_map(|r| r.header("webhook-id").map(str::to_string))
        .collect();
    assert_eq!(
        ids.len(),
        3,
        "each (announcement, route, channel) has its own id"
    );
    stage.stop().await
}

/// `at` as "HH:MM" in UTC.
fn hhmm(at: DateTime<Utc>) -> String {
    format!("{:02}:{:02}", at.hour(), at.minute())
}

/// A route to `a` whose quiet hours run from `from` to `to` (UTC), at most a day apart.
fn quiet_route(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    format!(
        "[[notify.routes]]\nname = \"quiet\"\nchannel = \"a\"\n\
         quiet_hours = {{ from = \"{}\", to = \"{}\" }}\ntimezone = \"UTC\"\n",
        hhmm(from),
        hhmm(to)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_win_in_quiet_hours_is_held_until_they_end() -> anyhow::Result<()> {
    let a = HttpReceiver::start().await?;
    let b = HttpReceiver::start().await?;
    let now = Utc::now();
    // Quiet from an hour ago until two hours from now (to the minute).
    let end = now + chrono::Duration::hours(2);
    let stage = start(&a, &b, &quiet_route(now - chrono::Duration::hours(1), end)).await?;
    announce(
        &stage,
        &announcement("night", 50_000.0, ValueLabel::Avoided),
    )
    .await?;
    let held = stage
        .first_delivery("night", DeliveryStatus::Pending, WAIT)
        .await?;
    let window_start = end
        .with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .expect("a whole minute");
    assert_eq!(held.route, "quiet");
    assert_eq!(held.attempts, 0);
    assert_eq!(
        held.next_attempt_at.map(|t| t.seconds),
        Some(window_start.timestamp()),
        "held until the quiet hours end"
    );
    // The dispatcher looks every 100 ms: give it many chances to send what it must not.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(a.requests().is_empty(), "nothing is sent in quiet hours");
    let still = stage.deliveries("night", None).await?;
    assert_eq!(still.deliveries.len(), 1);
    assert_eq!(still.deliveries[0].status, DeliveryStatus::Pending as i32);
    stage.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_win_is_sent_when_quiet_hours_end() -> anyhow::Result<()> {
    let a = HttpReceiver::start().await?;
    let b = HttpReceiver::start().await?;
    let now = Utc::now();
    // Quiet from an hour ago until three seconds from now, to the second.
    let end = (now + chrono::Duration::seconds(3))
        .with_nanosecond(0)
        .expect("a whole second");
    let from = now - chrono::Duration::hours(1);
    let routes = format!(
        "[[notify.routes]]\nname = \"quiet\"\nchannel = \"a\"\n\
         quiet_hours = {{ from = \"{}\", to = \"{}\" }}\ntimezone = \"UTC\"\n",
        from.format("%H:%M:%S"),
        end.format("%H:%M:%S"),
    );
    let stage = start(&a, &b, &routes).await?;
    announce(&stage, &announcement("dawn", 50_000.0, ValueLabel::Avoided)).await?;
    let held = stage
        .first_delivery("dawn", DeliveryStatus::Pending, WAIT)
        .await?;
    assert_eq!(
        held.next_attempt_at.map(|t| t.seconds),
        Some(end.timestamp())
    );
    let got = a.wait_for("/a", 1, WAIT).await?;
    assert_eq!(got.len(), 1);
    let sent = delivered(&stage, "dawn", 1).await?;
    assert_eq!(sent, pairs(&[("quiet", "a")]));
    let list = stage.deliveries("dawn", None).await?;
    let log = &list.deliveries[0].attempt_log;
    assert_eq!(log.len(), 1, "one attempt, made once the window opened");
    assert!(
        log[0]
            .at
            .as_ref()
            .is_some_and(|at| at.seconds >= end.timestamp()),
        "attempted at {:?}, before the window opened at {end}",
        log[0].at
    );
    stage.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_win_outside_quiet_hours_is_sent_at_once() -> anyhow::Result<()> {
    let a = HttpReceiver::start().await?;
    let b = HttpReceiver::start().await?;
    let now = Utc::now();
    // Quiet hours later today: from two hours from now to four.
    let stage = start(
        &a,
        &b,
        &quiet_route(
            now + chrono::Duration::hours(2),
            now + chrono::Duration::hours(4),
        ),
    )
    .await?;
    announce(&stage, &announcement("day", 50_000.0, ValueLabel::Avoided)).await?;
    assert_eq!(delivered(&stage, "day", 1).await?, pairs(&[("quiet", "a")]));
    a.wait_for("/a", 1, WAIT).await?;
    stage.stop().await
}
