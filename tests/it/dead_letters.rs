//! Dead letters end to end, in both modes: scoring's table is renamed away so every delivery of an
//! event fails, the event lands on `herald.dlq.scoring` with the database's reason, `herald dlq list`
//! (the real binary) shows it, the table is renamed back, `herald dlq replay` sends it through again,
//! the win appears and the dead letters are empty.

use std::{path::Path, process::Output, time::Duration};

use futures::StreamExt;

use serde_json::Value;

use crate::support::herald_cli;
use crate::support::{Herald, SLACK_PATH, sign, standalone::Standalone};

const WAIT: Duration = Duration::from_secs(60);
const FIXTURE: &str = "servicenow/incident-resolved-p1.json";
const EVENT_ID: &str = "servicenow:incident:de67bddaeb083f8fbf5aa0a6fa7222c2:23";
const RECORD: &str = "INC0048213";

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        stdout(output),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `herald … dlq list --json`: the dead letters.
async fn list(address: &[&str]) -> anyhow::Result<Vec<Value>> {
    let output = herald_cli(&[&["--json", "dlq", "list"], address].concat()).await?;
    anyhow::ensure!(output.status.success(), "dlq list: {}", describe(&output));
    let listed: Value = serde_json::from_slice(&output.stdout)?;
    Ok(listed["dead_letters"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

/// Waits until exactly one dead letter is listed, and returns it.
async fn one_dead_letter(address: &[&str]) -> anyhow::Result<Value> {
    herald_testkit::eventually("one dead letter listed", WAIT, || async {
        let listed = list(address).await.ok()?;
        (listed.len() == 1).then(|| listed[0].clone())
    })
    .await
}

/// Checks what `herald dlq list` says about the failed fixture event.
fn check_entry(entry: &Value, reason: &str) {
    assert_eq!(entry["stage"], "scoring", "{entry}");
    assert_eq!(
        entry["original_subject"], "herald.events.servicenow.incident_resolved",
        "{entry}"
    );
    assert_eq!(entry["original_msg_id"], EVENT_ID, "{entry}");
    assert_eq!(entry["deliveries"], 2, "max_deliveries is 2: {entry}");
    let text = entry["reason"].as_str().unwrap_or_default();
    assert!(
        text.contains(reason),
        "the database's reason, {reason:?}: {entry}"
    );
    assert!(text.contains("gave up after 2 attempts"), "{entry}");
    assert_eq!(entry["event"]["id"], EVENT_ID, "{entry}");
    assert_eq!(entry["event"]["source"], "servicenow", "{entry}");
    assert_eq!(entry["event"]["kind"], "incident_resolved", "{entry}");
    assert_eq!(entry["event"]["record_number"], RECORD, "{entry}");
    assert!(entry["failed_at"].is_string(), "{entry}");
}

/// `herald explain <event>` until it answers with the event's win.
async fn wait_for_win(address: &[&str]) -> anyhow::Result<Value> {
    herald_testkit::eventually("the win of the replayed event", WAIT, || async {
        let output = herald_cli(&[&["--json", "explain", EVENT_ID], address].concat())
            .await
            .ok()?;
        if !output.status.success() {
            return None;
        }
        let explained: Value = serde_json::from_slice(&output.stdout).ok()?;
        explained["win_id"].is_string().then_some(explained)
    })
    .await
}

/// `herald explain <event>` fails with scoring's NotFound for an event it has never seen: not any
/// failure (a missing table, a refused connection), that one.
async fn assert_not_scored(address: &[&str]) -> anyhow::Result<()> {
    let explain = herald_cli(&[&["explain", EVENT_ID], address].concat()).await?;
    assert!(
        !explain.status.success(),
        "explained before the replay: {}",
        describe(&explain)
    );
    let error = String::from_utf8_lossy(&explain.stderr);
    assert!(
        error.contains("NotFound") && error.contains(EVENT_ID) && error.contains("has not seen it"),
        "explain failed for another reason than NotFound: {}",
        describe(&explain)
    );
    Ok(())
}

// ---------------------------------------------------------------- distributed

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distributed_dead_letters_are_listed_and_replayed() -> anyhow::Result<()> {
    let herald =
        Herald::start_with_env(&[("HERALD_SCORING__CONSUMER__MAX_DELIVERIES", "2")]).await?;
    let result = distributed(&herald).await;
    if result.is_err() {
        eprintln!("{}", herald.logs());
    }
    result
}

async fn distributed(herald: &Herald) -> anyhow::Result<()> {
    let ingest = herald.grpc(0);
    let scoring = herald.grpc(1);
    let at_ingest = ["--ingest", ingest.as_str()];
    let at_scoring = ["--scoring", scoring.as_str()];
    let nats = async_nats::connect(herald.nats.url()).await?;
    let mut dead_letters = herald_testkit::nats::subscribe(&nats, "herald.dlq.>").await?;

    // The fault: scoring's wins table is gone, so recording the win fails on every delivery.
    let db = herald.db.pool().await?;
    sqlx::query("ALTER TABLE scoring.wins RENAME TO wins_moved")
        .execute(&db)
        .await?;
    assert!(list(&at_ingest).await?.is_empty(), "no dead letters yet");

    let response = herald.post_fixture(FIXTURE).await?;
    assert_eq!(response.status().as_u16(), 202);

    // It lands on scoring's dead-letter subject, with the reason in a header.
    let letter = tokio::time::timeout(WAIT, dead_letters.next())
        .await
        .map_err(|_| anyhow::anyhow!("nothing on herald.dlq.> within {WAIT:?}"))?
        .ok_or_else(|| anyhow::anyhow!("the subscription ended"))?;
    assert_eq!(letter.subject.as_str(), "herald.dlq.scoring");
    let reason = letter
        .headers
        .as_ref()
        .and_then(|h| h.get("Herald-Dlq-Reason"))
        .map(|v| v.as_str().to_string())
        .unwrap_or_default();
    assert!(
        reason.contains("\"wins\" does not exist"),
        "reason: {reason}"
    );

    // `herald dlq list`: as JSON and as a table.
    let entry = one_dead_letter(&at_ingest).await?;
    check_entry(&entry, "relation \"wins\" does not exist");
    let id = entry["id"]
        .as_u64()
        .ok_or_else(|| anyhow::anyhow!("no id: {entry}"))?;
    let table = herald_cli(&[&["dlq", "list"], &at_ingest[..]].concat()).await?;
    assert!(table.status.success(), "{}", describe(&table));
    let text = stdout(&table);
    assert!(text.contains("REASON"), "{text}");
    let row = text
        .lines()
        .find(|l| l.trim_start().starts_with(&id.to_string()))
        .ok_or_else(|| anyhow::anyhow!("no row for dead letter {id}: {text}"))?;
    assert!(row.contains("scoring") && row.contains(RECORD), "{row}");
    assert!(row.contains("does not exist"), "{row}");
    assert!(text.contains("1 dead letter"), "{text}");
    let other_stage = herald_cli(
        &[
            &["--json", "dlq", "list", "--stage", "notify"],
            &at_ingest[..],
        ]
        .concat(),
    )
    .await?;
    let other: Value = serde_json::from_slice(&other_stage.stdout)?;
    assert_eq!(other["dead_letters"], Value::Array(vec![]), "{other}");

    // The fault is fixed; before the replay, nothing was scored: explain finds no such event
    // (asked once the table is back, so the answer is NotFound, not the missing table's error).
    sqlx::query("ALTER TABLE scoring.wins_moved RENAME TO wins")
        .execute(&db)
        .await?;
    assert_not_scored(&at_scoring).await?;

    // Replay everything.
    let replay = herald_cli(&[&["dlq", "replay"], &at_ingest[..]].concat()).await?;
    assert!(replay.status.success(), "{}", describe(&replay));
    let text = stdout(&replay);
    assert!(
        text.contains(&format!("replayed {id} (scoring): {EVENT_ID}")),
        "{text}"
    );
    assert!(text.contains("1 replayed, 0 failed"), "{text}");

    // Processed this time: the win is there and announced; no dead letters are left.
    let explained = wait_for_win(&at_scoring).await?;
    assert!(
        explained["text"]
            .as_str()
            .unwrap_or_default()
            .contains("Warehouse Management"),
        "{explained}"
    );
    herald.slack.wait_for(SLACK_PATH, 1, WAIT).await?;
    assert!(
        list(&at_ingest).await?.is_empty(),
        "the dead letter was removed"
    );
    assert_eq!(
        herald_testkit::nats::stream_len(&nats, "HERALD_DLQ").await?,
        0,
        "the stream holds no dead letter"
    );
    Ok(())
}

// ---------------------------------------------------------------- standalone

/// Runs one statement on a SQLite file that `herald up` has open.
async fn sqlite(file: &Path, statement: &'static str) -> anyhow::Result<()> {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(file)
        .busy_timeout(Duration::from_secs(10));
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?;
    sqlx::query(statement).execute(&pool).await?;
    pool.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_dead_letters_are_listed_and_replayed() -> anyhow::Result<()> {
    let mut herald =
        Standalone::start_with("[scoring.consumer]\nmax_deliveries = 2\nack_wait = \"3s\"\n")
            .await?;
    let result = standalone(&herald).await;
    if result.is_err() {
        eprintln!("{}", herald.process.output());
    }
    herald.process.terminate(Duration::from_secs(20)).await?;
    result
}

async fn standalone(herald: &Standalone) -> anyhow::Result<()> {
    let at = ["--url", herald.grpc.as_str()];
    let scoring_db = herald.dir.path().join("data").join("scoring.sqlite");
    sqlite(&scoring_db, "ALTER TABLE wins RENAME TO wins_moved").await?;

    let body = std::fs::read(herald_testkit::fixtures_dir().join(FIXTURE))?;
    let response = reqwest::Client::new()
        .post(format!("{}/v1/events/servicenow", herald.http))
        .header("content-type", "application/json")
        .header("x-herald-signature", sign(&body))
        .body(body)
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 202);

    let entry = one_dead_letter(&at).await?;
    check_entry(&entry, "no such table: wins");
    let id = entry["id"]
        .as_u64()
        .ok_or_else(|| anyhow::anyhow!("no id: {entry}"))?;
    // An id that is not a dead letter is refused, and the command says so and fails.
    let missing = id + 1000;
    let wrong = herald_cli(&[&["dlq", "replay", &missing.to_string()], &at[..]].concat()).await?;
    assert!(!wrong.status.success(), "{}", describe(&wrong));
    assert!(
        stdout(&wrong).contains(&format!("not replayed {missing}: no dead letter {missing}")),
        "{}",
        describe(&wrong)
    );

    // Fixed; nothing was scored before the replay (NotFound, asked once the table is back).
    sqlite(&scoring_db, "ALTER TABLE wins_moved RENAME TO wins").await?;
    assert_not_scored(&at).await?;

    // Replayed by id, as JSON.
    let replay = herald_cli(
        &[
            &[
                "--json",
                "dlq",
                "replay",
                &id.to_string(),
                "--stage",
                "scoring",
            ],
            &at[..],
        ]
        .concat(),
    )
    .await?;
    assert!(replay.status.success(), "{}", describe(&replay));
    let replayed: Value = serde_json::from_slice(&replay.stdout)?;
    assert_eq!(replayed["replayed"], 1, "{replayed}");
    assert_eq!(replayed["failed"], 0, "{replayed}");
    assert_eq!(replayed["outcomes"][0]["id"], id, "{replayed}");
    assert_eq!(
        replayed["outcomes"][0]["original_msg_id"], EVENT_ID,
        "{replayed}"
    );

    let explained = wait_for_win(&at).await?;
    assert!(
        explained["win_id"]
            .as_str()
            .is_some_and(|w| w.starts_with("w-")),
        "{explained}"
    );
    assert!(list(&at).await?.is_empty(), "the dead letter was removed");
    let again = herald_cli(&[&["dlq", "replay"], &at[..]].concat()).await?;
    assert!(again.status.success(), "{}", describe(&again));
    assert!(
        stdout(&again).contains("no dead letters to replay"),
        "{}",
        describe(&again)
    );
    Ok(())
}
