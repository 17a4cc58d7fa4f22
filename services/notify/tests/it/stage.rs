//! Notify as a running stage: announcements in over JetStream, deliveries out to real HTTP
//! receivers, retries, the attempt log and the never-twice guarantee.

use std::time::Duration;

use herald_notify::signing;
use herald_proto::{
    time::to_timestamp,
    v1::{
        Announcement, AnnouncementKind, Card, CreditedPerson, DeliveryStatus, EventKind, Link,
        ValueLabel, ValueLine,
    },
};
use herald_testkit::{HttpReceiver, InProcess, Reply};

const WAIT: Duration = Duration::from_secs(15);
const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn announcement(id: &str, value: f64) -> Announcement {
    Announcement {
        id: id.into(),
        kind: AnnouncementKind::HeadlineWin as i32,
        created_at: Some(to_timestamp(chrono::Utc::now())),
        card: Some(Card {
            title: "Warehouse Management restored in 1 h 12 min: 2,040 people back at work".into(),
            summary: "RF scanners cannot confirm picks (INC0048213).".into(),
            value_lines: vec![ValueLine {
                label: ValueLabel::Avoided as i32,
                text: "€216,475 of lost work avoided".into(),
                formula:
                    "people affected × blocked share × working hours saved × loaded hourly rate"
                        .into(),
            }],
            people: vec![
                CreditedPerson {
                    name: "Ingrid Lindqvist".into(),
                    role: "resolved it".into(),
                    anonymised: false,
                },
                CreditedPerson {
                    name: "a member of Platform & SRE".into(),
                    role: "worked on it".into(),
                    anonymised: true,
                },
            ],
            teams: vec!["Platform & SRE".into()],
            links: vec![Link {
                title: "Open INC0048213".into(),
                url: "https://larkspur.service-now.com/incident.do".into(),
            }],
            business_service: Some("Warehouse Management".into()),
        }),
        win_id: "w-1".into(),
        event_kind: EventKind::IncidentResolved as i32,
        business_service: Some("svc-warehouse".into()),
        team: Some("team-platform".into()),
        value_amount: value,
        currency: "EUR".into(),
        corrects: String::new(),
        digest: String::new(),
    }
}

/// Notify in-process, with a Slack channel and a signed webhook pointing at the receivers.
async fn start(slack: &HttpReceiver, hook: &HttpReceiver) -> anyhow::Result<InProcess> {
    start_with_timeout(slack, hook, "1s").await
}

/// The same, waiting `request_timeout` for an answer.
async fn start_with_timeout(
    slack: &HttpReceiver,
    hook: &HttpReceiver,
    request_timeout: &str,
) -> anyhow::Result<InProcess> {
    let toml = format!(
        r#"
[notify]
allow_private_networks = true
retry_base = "100ms"
retry_max = "2s"
max_attempts = 4
poll_interval = "100ms"
request_timeout = "{request_timeout}"

[[notify.channels]]
name = "slack-wins"
kind = "slack"
url = "{slack}"
min_interval = "10ms"

[[notify.channels]]
name = "bi-hook"
kind = "webhook"
url = "{hook}"
secret = "{WEBHOOK_SECRET}"

[[notify.routes]]
name = "wins-to-slack"
channel = "slack-wins"
kinds = ["headline_win"]

[[notify.routes]]
name = "wins-to-bi"
channel = "bi-hook"

[[notify.routes]]
name = "huge-only"
channel = "slack-wins"
min_value = 1000000000
"#,
        slack = slack.url("/services/T000/B000/XXXX"),
        hook = hook.url("/herald"),
    );
    InProcess::start::<herald_notify::Notify>(&toml, std::path::Path::new(".")).await
}

/// Waits until `announcement` has a delivery on `route` in `status`, and returns it.
async fn delivery_in(
    stage: &InProcess,
    announcement: &str,
    route: &str,
    status: DeliveryStatus,
) -> anyhow::Result<herald_proto::v1::Delivery> {
    herald_testkit::eventually(
        &format!("{announcement} on {route} {status:?}"),
        WAIT,
        || async {
            let list = stage.deliveries(announcement, Some(status)).await.ok()?;
            list.deliveries.into_iter().find(|d| d.route == route)
        },
    )
    .await
}

async fn announce(stage: &InProcess, a: &Announcement, msg_id: &str) -> anyhow::Result<()> {
    stage
        .publish("herald.announcements.headline_win", msg_id, a)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correction_reaches_every_route_that_carried_the_original() -> anyhow::Result<()> {
    let slack = HttpReceiver::start().await?;
    let hook = HttpReceiver::start().await?;
    let stage = start(&slack, &hook).await?;
    let original = announcement("a-7", 216_474.6);
    announce(&stage, &original, "a-7").await?;
    delivery_in(&stage, "a-7", "wins-to-slack", DeliveryStatus::Delivered).await?;
    delivery_in(&stage, "a-7", "wins-to-bi", DeliveryStatus::Delivered).await?;

    // The route to Slack takes headline_win only; the correction goes there all the same.
    let correction = Announcement {
        id: "c-7".into(),
        kind: AnnouncementKind::Correction as i32,
        corrects: "a-7".into(),
        value_amount: 0.0,
        card: Some(Card {
            title: "Correction: Warehouse Management restored".into(),
            summary: "INC0048213 was reopened, so this win no longer stands.".into(),
            ..Default::default()
        }),
        ..original.clone()
    };
    stage
        .publish("herald.announcements.correction", "c-7", &correction)
        .await?;
    delivery_in(&stage, "c-7", "wins-to-slack", DeliveryStatus::Delivered).await?;
    delivery_in(&stage, "c-7", "wins-to-bi", DeliveryStatus::Delivered).await?;
    let slack_msgs = slack.wait_for("/services/T000/B000/XXXX", 2, WAIT).await?;
    assert!(
        slack_msgs[1]
            .text()
            .contains("Correction: Warehouse Management")
    );
    let hooks = hook.wait_for("/herald", 2, WAIT).await?;
    assert!(
        hooks[1].text().contains("correction"),
        "{}",
        hooks[1].text()
    );
    let all = stage.deliveries("c-7", None).await?;
    assert_eq!(
        all.deliveries.len(),
        2,
        "the routes of the original, and only those"
    );
    stage.stop().await
}

/// A webhook is sent to many at once, but a correction waits until what went before it has been
/// answered: its receiver never reads a correction before the announcement it corrects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correction_waits_for_the_attempt_it_corrects_to_end() -> anyhow::Result<()> {
    let slack = HttpReceiver::start().await?;
    let hook = HttpReceiver::start().await?;
    let answer_after = Duration::from_secs(3);
    hook.script([Reply::status(200).after(answer_after)]);
    let stage = start_with_timeout(&slack, &hook, "10s").await?;
    let original = announcement("a-8", 216_474.6);
    announce(&stage, &original, "a-8").await?;
    // Slack has it (a correction withdraws a delivery not yet sent instead of correcting it),
    delivery_in(&stage, "a-8", "wins-to-slack", DeliveryStatus::Delivered).await?;
    hook.wait_for("/herald", 1, WAIT).await?;
    // and the webhook holds a-8's request unanswered: its correction arrives meanwhile.
    let correction = Announcement {
        id: "c-8".into(),
        kind: AnnouncementKind::Correction as i32,
        corrects: "a-8".into(),
        ..original.clone()
    };
    stage
        .publish("herald.announcements.correction", "c-8", &correction)
        .await?;
    delivery_in(&stage, "c-8", "wins-to-slack", DeliveryStatus::Delivered).await?;
    assert_eq!(
        hook.requests_to("/herald").len(),
        1,
        "the correction went to the webhook while the announcement it corrects was unanswered"
    );
    delivery_in(&stage, "c-8", "wins-to-bi", DeliveryStatus::Delivered).await?;
    let hooks = hook.wait_for("/herald", 2, WAIT).await?;
    assert!(
        hooks[1].text().contains("correction"),
        "{}",
        hooks[1].text()
    );
    stage.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_announcement_reaches_each_route_once_signed_and_within_limits() -> anyhow::Result<()> {
    let slack = HttpReceiver::start().await?;
    let hook = HttpReceiver::start().await?;
    let stage = start(&slack, &hook).await?;
    let a = announcement("a-1", 216_474.6);
    announce(&stage, &a, "a-1").await?;

    let slack_msgs = slack.wait_for("/services/T000/B000/XXXX", 1, WAIT).await?;
    let body = slack_msgs[0].json()?;
    assert_eq!(body["blocks"][0]["type"], "header");
    let text = body.to_string();
    assert!(text.contains("Warehouse Management restored"), "{text}");
    assert!(text.contains("€216,475 of lost work avoided"), "{text}");
    assert!(text.contains("Ingrid Lindqvist"), "{text}");

    let hooks = hook.wait_for("/herald", 1, WAIT).await?;
    let request = &hooks[0];
    let id = request.header("webhook-id").expect("webhook-id");
    let timestamp: i64 = request
        .header("webhook-timestamp")
        .expect("timestamp")
        .parse()?;
    let signature = request.header("webhook-signature").expect("signature");
    let key = signing::key_bytes(WEBHOOK_SECRET).map_err(anyhow::Error::msg)?;
    assert_eq!(signature, signing::sign(&key, id, timestamp, &request.body));
    assert!((chrono::Utc::now().timestamp() - timestamp).abs() < 60);
    let json = request.json()?;
    assert_eq!(json["type"], "herald.announcement.headline_win");
    assert_eq!(json["data"]["card"]["value_lines"][0]["label"], "avoided");

    // Both routes delivered: nothing is left to send for a-1.
    delivery_in(&stage, "a-1", "wins-to-slack", DeliveryStatus::Delivered).await?;
    delivery_in(&stage, "a-1", "wins-to-bi", DeliveryStatus::Delivered).await?;

    // The same announcement again, as a redelivery (a new message on the stream). Once notify has
    // acknowledged it, it has added no delivery; with every delivery of a-1 already final, nothing
    // can be sent again.
    announce(&stage, &a, "a-1-again").await?;
    stage
        .wait_until_consumed("HERALD_ANNOUNCEMENTS", "notify")
        .await?;
    let listed = stage.deliveries("a-1", None).await?;
    assert_eq!(
        slack.requests().len(),
        1,
        "slack got the announcement twice"
    );
    assert_eq!(
        hook.requests().len(),
        1,
        "the webhook got the announcement twice"
    );
    let mut routes: Vec<&str> = listed.deliveries.iter().map(|d| d.route.as_str()).collect();
    routes.sort_unstable();
    assert_eq!(
        routes,
        vec!["wins-to-bi", "wins-to-slack"],
        "the huge-only route did not match"
    );
    for d in &listed.deliveries {
        assert_eq!(d.status, DeliveryStatus::Delivered as i32);
        assert_eq!(d.attempt_log.len(), 1);
        assert_eq!(d.attempt_log[0].http_status, 200);
    }
    stage.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_503s_then_success_is_one_delivery_and_a_400_is_final() -> anyhow::Result<()> {
    let slack = HttpReceiver::start().await?;
    let hook = HttpReceiver::start().await?;
    hook.script([Reply::status(503), Reply::status(503)]);
    slack.script([Reply::status(400)]);
    let stage = start(&slack, &hook).await?;
    announce(&stage, &announcement("a-2", 5000.0), "a-2").await?;

    let delivered = delivery_in(&stage, "a-2", "wins-to-bi", DeliveryStatus::Delivered).await?;
    let statuses: Vec<u32> = delivered
        .attempt_log
        .iter()
        .map(|a| a.http_status)
        .collect();
    assert_eq!(statuses, vec![503, 503, 200]);
    // Exactly one delivery: three requests, one accepted, all under the same webhook-id so the
    // receiver can tell they are one message.
    let hooks = hook.requests_to("/herald");
    assert_eq!(hooks.len(), 3);
    let ids: Vec<&str> = hooks
        .iter()
        .filter_map(|r| r.header("webhook-id"))
        .collect();
    assert!(
        ids.len() == 3 && ids.windows(2).all(|w| w[0] == w[1]),
        "{ids:?}"
    );
    // Backoff between attempts, not a hot loop.
    assert!(hooks[1].received_at - hooks[0].received_at >= Duration::from_millis(50));

    // Slack's 400 is final: the delivery is failed after one attempt, with no retry scheduled, so
    // the one request Slack got is all it will get.
    let failed = delivery_in(&stage, "a-2", "wins-to-slack", DeliveryStatus::Failed).await?;
    assert_eq!(failed.attempts, 1, "slack answered 400: permanent");
    assert!(
        failed.last_error.contains("HTTP 400"),
        "{}",
        failed.last_error
    );
    assert!(failed.next_attempt_at.is_none(), "{failed:?}");
    assert_eq!(slack.requests().len(), 1, "a 400 must not be retried");
    stage.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_with_retry_after_2_waits_two_seconds() -> anyhow::Result<()> {
    let slack = HttpReceiver::start().await?;
    let hook = HttpReceiver::start().await?;
    hook.script([Reply::status(429).with_header("retry-after", "2")]);
    let stage = start(&slack, &hook).await?;
    announce(&stage, &announcement("a-429", 5000.0), "a-429").await?;

    let hooks = hook.wait_for("/herald", 2, WAIT).await?;
    // retry_base is 100 ms: only the receiver's Retry-After explains a two-second wait.
    let gap = hooks[1].received_at - hooks[0].received_at;
    assert!(
        gap >= Duration::from_millis(1950),
        "Retry-After: 2 ignored: {gap:?}"
    );
    let delivered = delivery_in(&stage, "a-429", "wins-to-bi", DeliveryStatus::Delivered).await?;
    let statuses: Vec<u32> = delivered
        .attempt_log
        .iter()
        .map(|a| a.http_status)
        .collect();
    assert_eq!(statuses, vec![429, 200]);
    stage.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_keeps_failing_is_given_up_on_after_max_attempts() -> anyhow::Result<()> {
    let slack = HttpReceiver::start().await?;
    let hook = HttpReceiver::start().await?;
    hook.script((0..10).map(|_| Reply::status(500)));
    let stage = start(&slack, &hook).await?;
    announce(&stage, &announcement("a-3", 5000.0), "a-3").await?;
    hook.wait_for("/herald", 4, WAIT).await?;
    // Failed is final (no next attempt scheduled): the four requests are all there will be.
    let failed = delivery_in(&stage, "a-3", "wins-to-bi", DeliveryStatus::Failed).await?;
    assert_eq!(failed.attempts, 4);
    assert!(failed.next_attempt_at.is_none(), "{failed:?}");
    assert_eq!(hook.requests().len(), 4, "no attempt after the last");
    stage.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_channel_gets_one_json_line_per_announcement() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("out/announcements.jsonl");
    let toml = format!(
        "[notify]\npoll_interval = \"100ms\"\n\
         [[notify.channels]]\nname = \"log\"\nkind = \"file\"\npath = {:?}\n\
         [[notify.channels]]\nname = \"terminal\"\nkind = \"console\"\n\
         [[notify.routes]]\nname = \"to-log\"\nchannel = \"log\"\n\
         [[notify.routes]]\nname = \"to-terminal\"\nchannel = \"terminal\"\n",
        path.display().to_string()
    );
    let stage = InProcess::start::<herald_notify::Notify>(&toml, std::path::Path::new(".")).await?;
    for id in ["a-f1", "a-f2"] {
        announce(&stage, &announcement(id, 10.0), id).await?;
    }
    let lines = herald_testkit::eventually("two lines", WAIT, || {
        let path = path.clone();
        async move {
            let text = std::fs::read_to_string(&path).ok()?;
            let lines: Vec<String> = text.lines().map(String::from).collect();
            (lines.len() == 2).then_some(lines)
        }
    })
    .await?;
    let mut ids: Vec<String> = lines
        .iter()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line)
                .map(|j| j["data"]["id"].as_str().unwrap_or("").to_string())
        })
        .collect::<Result<_, _>>()?;
    ids.sort();
    assert_eq!(ids, vec!["a-f1", "a-f2"]);
    herald_testkit::eventually(
        "four deliveries recorded as delivered (two announcements × file + console)",
        WAIT,
        || async {
            let delivered = stage
                .deliveries("", Some(DeliveryStatus::Delivered))
                .await
                .ok()?;
            (delivered.deliveries.len() == 4).then_some(())
        },
    )
    .await?;
    stage.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_does_not_answer_in_time_is_tried_again() -> anyhow::Result<()> {
    let slack = HttpReceiver::start().await?;
    let hook = HttpReceiver::start().await?;
    hook.script([Reply::status(200).after(Duration::from_secs(3))]);
    let stage = start(&slack, &hook).await?;
    announce(&stage, &announcement("a-4", 5000.0), "a-4").await?;
    hook.wait_for("/herald", 2, WAIT).await?;
    let delivered = delivery_in(&stage, "a-4", "wins-to-bi", DeliveryStatus::Delivered).await?;
    assert_eq!(delivered.attempt_log.len(), 2);
    let first = &delivered.attempt_log[0];
    assert_eq!(first.http_status, 0, "no answer came back");
    assert!(
        first.error.contains("timed out") || first.error.contains("timeout"),
        "{}",
        first.error
    );
    assert_eq!(delivered.attempt_log[1].http_status, 200);
    stage.stop().await
}

/// A channel that hangs holds up only itself: while the webhook takes its time over the first
/// announcement, the next one reaches Slack at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_channel_does_not_hold_up_the_others() -> anyhow::Result<()> {
    let slack = HttpReceiver::start().await?;
    let hook = HttpReceiver::start().await?;
    let hang = Duration::from_secs(12);
    hook.script([Reply::status(200).after(hang)]);
    // Long enough that the webhook's hang is a wait, not a timeout.
    let stage = start_with_timeout(&slack, &hook, "30s").await?;
    announce(&stage, &announcement("a-slow", 5000.0), "a-slow").await?;
    slack.wait_for("/services/T000/B000/XXXX", 1, WAIT).await?;
    hook.wait_for("/herald", 1, WAIT).await?;
    // The webhook now holds a-slow's request; a-next goes to both channels.
    announce(&stage, &announcement("a-next", 6000.0), "a-next").await?;
    slack
        .wait_for("/services/T000/B000/XXXX", 2, hang / 2)
        .await?;
    let answered = stage
        .deliveries("a-slow", Some(DeliveryStatus::Delivered))
        .await?
        .deliveries
        .into_iter()
        .any(|d| d.route == "wins-to-bi");
    assert!(
        !answered,
        "Slack had to wait for the hanging webhook to answer"
    );
    // The webhook still gets both, in order, once it answers.
    delivery_in(&stage, "a-slow", "wins-to-bi", DeliveryStatus::Delivered).await?;
    delivery_in(&stage, "a-next", "wins-to-bi", DeliveryStatus::Delivered).await?;
    stage.stop().await
}
