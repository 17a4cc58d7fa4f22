//! `herald up --demo` as a real process: its month from every tool is accepted, and a second start
//! on the same data directory adds nothing (the README's promise): no event, win or announcement on
//! the bus, no line in announcements.jsonl, the same wins, leaderboards and value.

use std::{path::Path, time::Duration};

use herald_testkit::ServiceProcess;
use serde_json::Value;

use crate::support::herald_cli as herald;
use crate::support::standalone::{demo_day, start_demo, start_demo_with_env, wait_settled};

const WAIT: Duration = Duration::from_secs(120);

/// The last JSON line a command printed.
async fn json(args: &[&str]) -> anyhow::Result<Value> {
    let output = herald(args).await?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(
        output.status.success(),
        "herald {args:?}: {:?}\n{stdout}\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| anyhow::anyhow!("no JSON from herald {args:?}: {stdout}"))
}

/// What a user of the demo can see: the demo month's value, its people, teams and services,
/// every announcement written so far and how many messages each stream of the bus holds.
#[derive(Debug, PartialEq)]
struct Seen {
    value: Value,
    leaderboards: Vec<Value>,
    announcements: Vec<String>,
    streams: Vec<(String, i64)>,
}

async fn seen(data: &Path, grpc: &str) -> anyhow::Result<Seen> {
    let day = demo_day();
    let value = json(&[
        "--json", "value", "--period", "month", "--at", &day, "--url", grpc,
    ])
    .await?;
    let mut leaderboards = Vec::new();
    for scope in ["person", "team", "service"] {
        leaderboards.push(
            json(&[
                "--json",
                "leaderboard",
                "--period",
                "month",
                "--at",
                &day,
                "--scope",
                scope,
                "--url",
                grpc,
            ])
            .await?,
        );
    }
    let announcements = std::fs::read_to_string(data.join("announcements.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect();
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(data.join("bus.sqlite"))
        .read_only(true)
        .busy_timeout(Duration::from_secs(10));
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?;
    let streams = sqlx::query_as::<_, (String, i64)>(
        "SELECT stream, count(*) FROM messages GROUP BY stream ORDER BY stream",
    )
    .fetch_all(&pool)
    .await?;
    pool.close().await;
    Ok(Seen {
        value,
        leaderboards,
        announcements,
        streams,
    })
}

/// Waits for the `n`th line the demo prints about its replay (one per start: the output of every
/// start is appended to the same log) and returns it.
async fn replay_line(up: &ServiceProcess, n: usize) -> anyhow::Result<String> {
    herald_testkit::eventually("the demo's replay summary", WAIT, || {
        let output = up.output();
        async move {
            if output.contains("demo replay failed") {
                return Some(Err(anyhow::anyhow!("the replay failed:\n{output}")));
            }
            output
                .lines()
                .filter(|l| l.starts_with("demo: "))
                .nth(n - 1)
                .map(|l| Ok(l.to_string()))
        }
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", up.output()))?
}

/// Over the demo's quarter: the public list of people stops at the top ten and carries no money;
/// one person's own position agrees with it; the spread counts every person of the catalog.
async fn recognition_is_private_where_it_matters(grpc: &str) -> anyhow::Result<()> {
    let day = demo_day();
    let board = json(&[
        "--json",
        "leaderboard",
        "--period",
        "quarter",
        "--at",
        &day,
        "--scope",
        "person",
        "--limit",
        "50",
        "--url",
        grpc,
    ])
    .await?;
    let entries = board["entries"].as_array().cloned().unwrap_or_default();
    assert!(
        (1..=10).contains(&entries.len()),
        "the top ten at most, of the demo's thirteen people: {board}"
    );
    assert!(
        entries.iter().all(|e| e["value"].is_null()),
        "no money per person: {board}"
    );
    let first = &entries[0];
    let id = first["id"].as_str().unwrap_or_default();
    let me = json(&[
        "--json",
        "leaderboard",
        "--period",
        "quarter",
        "--at",
        &day,
        "--me",
        id,
        "--url",
        grpc,
    ])
    .await?;
    assert_eq!(me["credited"], true, "{me}");
    assert_eq!(me["rank"], 1, "{me}");
    assert_eq!(me["wins"], first["wins"], "{me} against {first}");
    assert!(
        me["of"].as_u64().unwrap_or_default() >= entries.len() as u64,
        "{me}"
    );
    let spread = json(&[
        "--json",
        "recognition",
        "--period",
        "quarter",
        "--at",
        &day,
        "--url",
        grpc,
    ])
    .await?;
    let teams = spread["teams"].as_array().cloned().unwrap_or_default();
    assert_eq!(teams.len(), 6, "{spread}");
    let people: u64 = teams
        .iter()
        .map(|t| t["people"].as_u64().unwrap_or_default())
        .sum();
    let recognised: u64 = teams
        .iter()
        .map(|t| t["recognised"].as_u64().unwrap_or_default())
        .sum();
    assert_eq!(people, 13, "{spread}");
    assert_eq!(
        recognised,
        me["of"].as_u64().unwrap_or_default(),
        "everyone credited is counted once in their team: {spread}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_demo_start_on_the_same_data_directory_adds_nothing() -> anyhow::Result<()> {
    herald_testkit::init_tracing();
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("herald-data");
    let (mut up, grpc) = start_demo(&data).await?;

    // The first start sends the month from every tool and ingest accepts all of it.
    let first = replay_line(&up, 1).await?;
    assert!(first.contains("all accepted"), "{first}");
    for tool in [
        "servicenow",
        "jira",
        "pagerduty",
        "opsgenie",
        "zendesk",
        "github",
        "cloudevents",
    ] {
        assert!(
            first.contains(tool),
            "no {tool} delivery in the month: {first}"
        );
    }
    wait_settled(&data, &grpc)
        .await
        .map_err(|e| anyhow::anyhow!("{e}\n{}", up.output()))?;
    let before = seen(&data, &grpc).await?;
    recognition_is_private_where_it_matters(&grpc).await?;
    assert!(
        before.value["wins"].as_u64().unwrap_or_default() > 0,
        "the month earned nothing: {}",
        before.value
    );
    assert!(
        !before.announcements.is_empty(),
        "the month announced nothing"
    );

    // Stopped and started again on the same data directory: it says the month is loaded, and
    // once everything has settled nothing anyone can see has changed.
    up.terminate(Duration::from_secs(30)).await?;
    up.restart().await?;
    let second = replay_line(&up, 2).await?;
    assert!(second.contains("already loaded"), "{second}");
    // It tells the sample's month as the month's value summary counts it (the middle of the
    // sample's 30 days, so on the first of a month it is the month before, not an empty one).
    assert!(
        second.contains(&format!(": {} wins, ", before.value["wins"])),
        "{second} against {}",
        before.value
    );
    wait_settled(&data, &grpc)
        .await
        .map_err(|e| anyhow::anyhow!("{e}\n{}", up.output()))?;
    let after = seen(&data, &grpc).await?;
    assert_eq!(
        after.announcements.len(),
        before.announcements.len(),
        "the restart announced again: {:?}",
        &after.announcements[before.announcements.len().min(after.announcements.len())..]
    );
    assert_eq!(after, before);
    up.terminate(Duration::from_secs(30)).await?;
    Ok(())
}

/// The README's promise: two lines put the demo's announcements in Teams and in mailboxes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_lines_send_the_demo_to_teams_and_an_smtp_relay() -> anyhow::Result<()> {
    herald_runtime::install_tls_provider();
    let teams = herald_testkit::HttpReceiver::start().await?;
    let sink = herald_testkit::SmtpSink::start().await?;
    let teams_path = "/workflows/8d2c/triggers/manual/paths/invoke";
    let teams_url = format!(
        "{}?api-version=1&sig=TEAMS-SIGNATURE-SECRET",
        teams.url(teams_path)
    );
    let smtp = format!(
        "smtp+plain://127.0.0.1:{}?from=herald@larkspur.example&to=it-wins@larkspur.example",
        sink.port()
    );
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let (mut up, _grpc) = start_demo_with_env(
        &data,
        &[
            ("HERALD_DEMO_TEAMS_URL", &teams_url),
            ("HERALD_DEMO_SMTP", &smtp),
        ],
    )
    .await?;
    let cards = teams
        .wait_for(teams_path, 1, WAIT)
        .await
        .map_err(|e| anyhow::anyhow!("{e}\n{}", up.output()))?;
    let card = cards[0].json()?;
    assert_eq!(card["type"], "message", "{card}");
    assert_eq!(
        card["attachments"][0]["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    let mails = sink
        .wait_for(1, WAIT)
        .await
        .map_err(|e| anyhow::anyhow!("{e}\n{}", up.output()))?;
    assert_eq!(mails[0].to, vec!["it-wins@larkspur.example"]);
    let output = up.output();
    assert!(
        output.contains("teams (teams) → http://127.0.0.1:"),
        "the banner names the Teams channel: {output}"
    );
    assert!(output.contains("email (email) → it-wins@larkspur.example via 127.0.0.1"));
    assert!(
        !output.contains("TEAMS-SIGNATURE-SECRET"),
        "the Teams URL's signature is a secret"
    );
    up.terminate(Duration::from_secs(30)).await?;
    Ok(())
}
