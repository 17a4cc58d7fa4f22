//! Spotlight as a running stage: wins in, rollups and headline announcements out, gRPC queries.

use std::time::Duration;

use futures::StreamExt;
use herald_proto::{
    time::to_timestamp,
    v1::{
        Announcement, AnnouncementKind, Credit, CreditSubject, EventKind, GetLeaderboardRequest,
        Origin, PeriodKind, RebuildLedgerRequest, Scope, Source, Value, ValueLabel, Win, WinStatus,
    },
};
use herald_testkit::{InProcess, in_process::period_at};
use prost::Message;

const WAIT: Duration = Duration::from_secs(10);

/// Long enough for the dashboard's kept view to age and be made again, with room for a slow run.
fn cache_refresh_wait() -> Duration {
    WAIT + herald_spotlight::dashboard::ViewCache::FRESH_FOR * 4
}

fn at(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(s)
        .expect("time")
        .with_timezone(&chrono::Utc)
}

fn credit(subject: CreditSubject, id: &str, share: f64, amount: f64) -> Credit {
    Credit {
        subject: subject as i32,
        id: id.into(),
        role: if subject == CreditSubject::Team {
            "resolving team"
        } else {
            "worked on it"
        }
        .into(),
        share,
        amount: amount * share,
    }
}

/// The P1 win of the fixtures, as scoring publishes it.
fn p1_win() -> Win {
    let amount = 216_474.6;
    Win {
        id: "w-p1".into(),
        event_id: "servicenow:incident:de67bddaeb083f8fbf5aa0a6fa7222c2:23".into(),
        source: Source::Servicenow as i32,
        kind: EventKind::IncidentResolved as i32,
        occurred_at: Some(to_timestamp(at("2025-03-11T08:04:37Z"))),
        record_number: "INC0048213".into(),
        record_url: Some("https://larkspur.service-now.com/incident.do?sys_id=de67".into()),
        record_title: Some("RF scanners cannot confirm picks at DC Venlo and DC Tilburg".into()),
        business_service: Some("svc-warehouse".into()),
        team: Some("team-platform".into()),
        value: Some(Value {
            label: ValueLabel::Avoided as i32,
            amount,
            currency: "EUR".into(),
            hours: 5696.7,
            users: 2040.0,
            formula: "people affected × blocked share × working hours saved × loaded hourly rate".into(),
            inputs: vec![],
            summary: "€216,475 of lost work avoided (5,697 working hours given back)".into(),
        }),
        credits: vec![
            credit(CreditSubject::Team, "team-platform", 1.0, amount),
            credit(CreditSubject::Person, "p-ingrid-lindqvist", 0.5, amount),
            credit(CreditSubject::Person, "p-amara-okafor", 0.5 / 3.0, amount),
            credit(CreditSubject::Person, "p-jonas-weber", 0.5 / 3.0, amount),
            credit(CreditSubject::Person, "p-tomas-herrera", 0.5 / 3.0, amount),
        ],
        headline: "Warehouse Management restored in 1 h 12 min, 2 h 48 min inside its 4 h target: 2,040 people back at work".into(),
        priority: Some(1),
        status: WinStatus::Confirmed as i32,
        ..Default::default()
    }
}

/// A small win in the same week, below the headline threshold.
fn small_win() -> Win {
    Win {
        id: "w-ritm".into(),
        event_id: "servicenow:sc_req_item:3e2b:14".into(),
        source: Source::Servicenow as i32,
        kind: EventKind::RequestFulfilled as i32,
        occurred_at: Some(to_timestamp(at("2025-03-12T15:22:05Z"))),
        record_number: "RITM0102934".into(),
        business_service: Some("svc-workplace".into()),
        team: Some("team-workplace".into()),
        value: Some(Value {
            label: ValueLabel::Capacity as i32,
            amount: 328.0,
            currency: "EUR".into(),
            hours: 8.0,
            users: 1.0,
            ..Default::default()
        }),
        credits: vec![
            credit(CreditSubject::Team, "team-workplace", 1.0, 328.0),
            credit(CreditSubject::Person, "p-daniel-brooks", 1.0, 328.0),
        ],
        headline: "Laptop delivered 2 days ahead of its due date".into(),
        ..Default::default()
    }
}

/// Spotlight in-process with the fixture catalog; ready means its consumer exists.
async fn start() -> anyhow::Result<InProcess> {
    // The fixture outcomes are from March 2025: a large announce_max_age keeps them news here.
    let toml = "[catalog]\npath = \"catalog.toml\"\n[spotlight]\nheadline_min_value = 1000\nannounce_max_age = \"100000d\"\n";
    InProcess::start::<herald_spotlight::Spotlight>(toml, &herald_testkit::fixtures_dir()).await
}

/// Publishes a win as scoring would, under `msg_id`.
async fn publish(stage: &InProcess, win: &Win, msg_id: &str) -> anyhow::Result<()> {
    let subject = format!("herald.wins.{}", EventKind::try_from(win.kind)?.token());
    stage.publish(&subject, msg_id, win).await
}

/// Waits until spotlight has handled and acknowledged every win published so far.
async fn all_wins_handled(stage: &InProcess) -> anyhow::Result<()> {
    stage.wait_until_consumed("HERALD_WINS", "spotlight").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headline_wins_are_announced_once_and_counted_once() -> anyhow::Result<()> {
    let stage = start().await?;
    let mut announcements =
        herald_testkit::nats::subscribe(&stage.client, "herald.announcements.>").await?;
    publish(&stage, &p1_win(), "w-p1").await?;
    publish(&stage, &small_win(), "w-ritm").await?;

    let msg = tokio::time::timeout(WAIT, announcements.next())
        .await?
        .expect("an announcement");
    assert_eq!(msg.subject.as_str(), "herald.announcements.headline_win");
    let announcement = Announcement::decode(msg.payload)?;
    assert_eq!(announcement.win_id, "w-p1");
    let card = announcement.card.expect("card");
    assert!(card.title.contains("2,040 people back at work"));
    assert_eq!(
        card.business_service.as_deref(),
        Some("Warehouse Management")
    );
    assert!(
        card.summary
            .starts_with("INC0048213: RF scanners cannot confirm picks"),
        "{}",
        card.summary
    );
    assert_eq!(card.teams, vec!["Platform & SRE"]);
    let names: Vec<&str> = card.people.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "Ingrid Lindqvist",
            "Amara Okafor",
            "a member of Platform & SRE",
            "Tomás Herrera"
        ]
    );
    assert!(card.people[2].anonymised);
    assert_eq!(card.value_lines[0].label, ValueLabel::Avoided as i32);
    assert_eq!(card.links[0].title, "Open INC0048213");

    // Redelivery of the same win under another message id (a new JetStream message, so not
    // dropped as a duplicate publish): once spotlight has acknowledged it, nothing has changed.
    publish(&stage, &p1_win(), "w-p1-again").await?;
    assert_eq!(
        stage.stream_len("HERALD_WINS").await?,
        3,
        "the republish is stored"
    );
    all_wins_handled(&stage).await?;
    let board = stage
        .leaderboard(Scope::Team, PeriodKind::Week, at("2025-03-13T12:00:00Z"), 0)
        .await?;
    assert_eq!(board.entries.len(), 2, "{board:?}");
    assert_eq!(board.period_start, "2025-03-10");
    assert_eq!(board.entries[0].display_name, "Platform & SRE");
    assert!((board.entries[0].value - 216_474.6).abs() < 0.01);
    assert_eq!(
        board.entries[0].wins, 1,
        "the redelivered win was not counted twice"
    );
    assert_eq!(stage.stream_len("HERALD_ANNOUNCEMENTS").await?, 1);

    let people = stage
        .leaderboard(
            Scope::Person,
            PeriodKind::Week,
            at("2025-03-11T00:00:00Z"),
            10,
        )
        .await?;
    let first = &people.entries[0];
    assert_eq!(
        (first.rank, first.id.as_str(), first.display_name.as_str()),
        (1, "p-ingrid-lindqvist", "Ingrid Lindqvist")
    );
    assert!(
        first.value_withheld && first.value == 0.0,
        "people are celebrated by wins and hours, not money: {first:?}"
    );
    assert!(first.hours > 0.0, "{first:?}");
    let jonas = people
        .entries
        .iter()
        .find(|e| e.anonymised)
        .expect("the opted-out person");
    assert_eq!(jonas.display_name, "a member of Platform & SRE");
    assert_eq!(jonas.id, "", "an opted-out person's id is withheld");
    assert!(
        people
            .entries
            .iter()
            .all(|e| !e.display_name.contains("Jonas"))
    );

    let summary = stage
        .value_summary(PeriodKind::Week, at("2025-03-11T00:00:00Z"))
        .await?;
    assert!((summary.total_value - (216_474.6 + 328.0)).abs() < 0.01);
    assert_eq!(summary.wins, 2);
    assert!((summary.users_unblocked - 2041.0).abs() < 0.01);
    assert_eq!(summary.top_services[0].display_name, "Warehouse Management");
    assert_eq!(summary.by_label.len(), 2);

    // A week with nothing in it is empty, not an error.
    let empty = stage
        .leaderboard(
            Scope::Person,
            PeriodKind::Week,
            at("2024-01-01T00:00:00Z"),
            10,
        )
        .await?;
    assert!(empty.entries.is_empty());
    let bad = stage
        .spotlight()
        .await?
        .get_leaderboard(GetLeaderboardRequest {
            period: Some(period_at(PeriodKind::Week, at("2025-03-11T00:00:00Z"))),
            scope: 0,
            limit: 10,
        })
        .await
        .expect_err("no scope");
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);

    stage.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawn_win_leaves_every_figure_and_its_headline_is_corrected() -> anyhow::Result<()> {
    let stage = start().await?;
    let mut announcements =
        herald_testkit::nats::subscribe(&stage.client, "herald.announcements.>").await?;
    let week = at("2025-03-11T00:00:00Z");
    publish(&stage, &small_win(), "w-ritm").await?;
    all_wins_handled(&stage).await?;
    let before = (
        stage.value_summary(PeriodKind::Week, week).await?,
        stage
            .leaderboard(Scope::Person, PeriodKind::Week, week, 10)
            .await?,
    );

    publish(&stage, &p1_win(), "w-p1").await?;
    let headline = Announcement::decode(
        tokio::time::timeout(WAIT, announcements.next())
            .await?
            .expect("the headline")
            .payload,
    )?;
    let revoked = Win {
        status: WinStatus::Revoked as i32,
        status_reason: "INC0048213 was reopened 2025-03-12 09:00 UTC".into(),
        ..p1_win()
    };
    publish(&stage, &revoked, "w-p1:revoked").await?;
    let msg = tokio::time::timeout(WAIT, announcements.next())
        .await?
        .expect("a correction");
    assert_eq!(msg.subject.as_str(), "herald.announcements.correction");
    let correction = Announcement::decode(msg.payload)?;
    assert_eq!(correction.kind, AnnouncementKind::Correction as i32);
    assert_eq!(correction.corrects, headline.id);
    let card = correction.card.expect("card");
    assert!(card.title.starts_with("Correction: "), "{}", card.title);
    assert!(card.summary.contains("reopened"), "{}", card.summary);
    assert!(card.people.is_empty() && card.value_lines.is_empty());

    // The revocation again (a redelivery): nothing more.
    publish(&stage, &revoked, "w-p1:revoked:again").await?;
    all_wins_handled(&stage).await?;
    assert_eq!(stage.stream_len("HERALD_ANNOUNCEMENTS").await?, 2);
    let after = (
        stage.value_summary(PeriodKind::Week, week).await?,
        stage
            .leaderboard(Scope::Person, PeriodKind::Week, week, 10)
            .await?,
    );
    assert_eq!(
        after, before,
        "every figure exactly as before the withdrawn win"
    );
    // A late confirmation of the withdrawn win counts nothing.
    publish(&stage, &p1_win(), "w-p1:late").await?;
    all_wins_handled(&stage).await?;
    assert_eq!(stage.value_summary(PeriodKind::Week, week).await?, before.0);
    let check = stage
        .spotlight()
        .await?
        .rebuild_ledger(RebuildLedgerRequest { repair: false })
        .await?
        .into_inner();
    assert!(check.differences.is_empty(), "{check:?}");
    assert_eq!(check.entries, 1, "only the small win still counts");
    stage.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_is_counted_but_never_a_headline() -> anyhow::Result<()> {
    // The default announce_max_age (7 days): March 2025 is history today.
    let toml = "[catalog]\npath = \"catalog.toml\"\n[spotlight]\nheadline_min_value = 1000\n";
    let stage =
        InProcess::start::<herald_spotlight::Spotlight>(toml, &herald_testkit::fixtures_dir())
            .await?;
    let now = chrono::Utc::now();
    let backfilled = Win {
        id: "w-backfilled".into(),
        occurred_at: Some(to_timestamp(now)),
        origin: Origin::Backfill as i32,
        ..p1_win()
    };
    let live = Win {
        id: "w-live".into(),
        occurred_at: Some(to_timestamp(now)),
        origin: Origin::Live as i32,
        ..p1_win()
    };
    publish(&stage, &p1_win(), "w-p1").await?;
    publish(&stage, &backfilled, "w-backfilled").await?;
    publish(&stage, &live, "w-live").await?;
    all_wins_handled(&stage).await?;
    assert_eq!(
        stage.stream_len("HERALD_ANNOUNCEMENTS").await?,
        1,
        "only the live, recent outcome is news"
    );
    let old = stage
        .value_summary(PeriodKind::Week, at("2025-03-11T00:00:00Z"))
        .await?;
    assert_eq!(old.wins, 1, "the old outcome counts in its own week");
    let this_week = stage.value_summary(PeriodKind::Week, now).await?;
    assert_eq!(
        this_week.wins, 2,
        "the backfilled and the live one count in theirs"
    );
    stage.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_this_weeks_value_and_spotlight() -> anyhow::Result<()> {
    let stage = start().await?;
    let now = to_timestamp(chrono::Utc::now());
    let mut big = p1_win();
    big.occurred_at = Some(now);
    let mut small = small_win();
    small.occurred_at = Some(now);
    publish(&stage, &big, "w-p1").await?;
    publish(&stage, &small, "w-ritm").await?;
    // The figures are made once for every screen and kept a few seconds: wait for a view made
    // after both wins were counted, in every stretch.
    let url = format!("{}/", stage.http);
    let api = format!("{}/api/dashboard", stage.http);
    let wait = cache_refresh_wait();
    let page = herald_testkit::eventually("both wins on the dashboard", wait, || {
        let (url, api) = (url.clone(), api.clone());
        async move {
            let json = herald_testkit::raw_http::get(&api).await.ok()?;
            let json: serde_json::Value = serde_json::from_str(&json.body).ok()?;
            if json["last_7_days"]["wins"] != 2 || json["month"]["wins"] != 2 {
                return None;
            }
            let page = herald_testkit::raw_http::get(&url).await.ok()?;
            (page.status == 200 && page.body.contains("2 verified wins")).then_some(page.body)
        }
    })
    .await?;
    // Each label on its own: 216,474.60 avoided and 328 of capacity, never one sum of 216,803.
    assert!(page.contains("€216,475") && page.contains("€328"), "{page}");
    assert!(!page.contains("€216,803"), "labels added up: {page}");
    assert!(
        page.contains("Ingrid Lindqvist"),
        "the spotlight names the top person"
    );
    assert!(!page.contains("Jonas"), "an opted-out person is named");
    assert!(
        page.contains("Platform &amp; SRE") && page.contains("Workplace Technology"),
        "teams"
    );
    assert!(
        page.contains("2,040 people back at work"),
        "the latest wins: {page}"
    );
    assert!(
        page.contains(&format!("href=\"/wins/{}\"", big.id)),
        "each win links to its explanation"
    );
    assert!(
        page.contains("setInterval(refresh"),
        "the figures refresh themselves"
    );
    let json = herald_testkit::raw_http::get(&format!("{}/api/dashboard", stage.http)).await?;
    let json: serde_json::Value = serde_json::from_str(&json.body)?;
    assert_eq!(json["last_7_days"]["wins"], 2);
    assert_eq!(
        json["last_7_days"]["labels"].as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(json["spotlight"][0]["name"], "Ingrid Lindqvist");
    let explained =
        herald_testkit::raw_http::get(&format!("{}/wins/{}", stage.http, big.id)).await?;
    assert_eq!(explained.status, 200);
    assert!(
        explained.body.contains("How it is computed"),
        "{}",
        explained.body
    );
    let missing = herald_testkit::raw_http::get(&format!("{}/wins/w-none", stage.http)).await?;
    assert_eq!(missing.status, 404);
    stage.stop().await
}

/// A burst of wins is handled in batches: every win counted once, each withdrawal in its place
/// (a win withdrawn after its confirmation is corrected; one withdrawn before it arrives is never
/// counted nor announced), one headline per counted win.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_is_counted_exactly_with_withdrawals_in_their_place() -> anyhow::Result<()> {
    let stage = start().await?;
    let js = async_nats::jetstream::new(stage.client.clone());
    let mut acks = Vec::new();
    let mut send = |win: Win, msg_id: String| {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", msg_id.as_str());
        // As scoring publishes: keyed by the win, so a win's messages keep their order.
        headers.insert("Herald-Key", win.id.as_str());
        let subject = format!(
            "herald.wins.{}",
            EventKind::try_from(win.kind)
                .map(|k| k.token())
                .unwrap_or("unspecified")
        );
        let js = js.clone();
        let payload = win.encode_to_vec();
        acks.push(async move {
            js.publish_with_headers(subject, headers, payload.into())
                .await?
                .await?;
            anyhow::Ok(())
        });
    };
    let win = |n: usize| Win {
        id: format!("w-burst-{n}"),
        ..p1_win()
    };
    let revoked = |n: usize| Win {
        status: WinStatus::Revoked as i32,
        status_reason: "reopened".into(),
        ..win(n)
    };
    for n in 0..40 {
        match n {
            5 => {
                send(win(n), format!("{n}"));
                send(revoked(n), format!("{n}:revoked"));
            }
            7 => {
                send(revoked(n), format!("{n}:revoked"));
                send(win(n), format!("{n}"));
            }
            _ => send(win(n), format!("{n}")),
        }
    }
    // Published in order, acknowledged together: the stage finds them queued.
    for ack in acks {
        ack.await?;
    }
    all_wins_handled(&stage).await?;
    let board = stage
        .leaderboard(Scope::Team, PeriodKind::Week, at("2025-03-11T12:00:00Z"), 0)
        .await?;
    let platform = board
        .entries
        .iter()
        .find(|e| e.id == "team-platform")
        .ok_or_else(|| anyhow::anyhow!("no platform team: {board:?}"))?;
    assert_eq!(platform.wins, 38, "40 wins, two withdrawn");
    assert!(
        (platform.value - 38.0 * 216_474.6).abs() < 1.0,
        "{platform:?}"
    );
    let js = async_nats::jetstream::new(stage.client.clone());
    let mut stream = js.get_stream("HERALD_ANNOUNCEMENTS").await?;
    let last = stream.info().await?.state.last_sequence;
    let mut headlines = std::collections::HashSet::new();
    let mut corrections = Vec::new();
    for seq in 1..=last {
        let raw = stream.get_raw_message(seq).await?;
        let a = Announcement::decode(raw.payload.as_ref())?;
        match raw.subject.as_str() {
            "herald.announcements.headline_win" => {
                assert!(
                    headlines.insert(a.win_id.clone()),
                    "two headlines for {}",
                    a.win_id
                );
            }
            "herald.announcements.correction" => corrections.push(a.win_id.clone()),
            other => anyhow::bail!("unexpected {other}"),
        }
    }
    assert_eq!(headlines.len(), 39, "every win but the one withdrawn first");
    assert!(
        !headlines.contains("w-burst-7"),
        "withdrawn before it arrived"
    );
    assert_eq!(corrections, ["w-burst-5"]);
    stage.stop().await
}
