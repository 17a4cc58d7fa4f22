//! `herald backfill` against `herald up`: the 300-incident ServiceNow export goes through ingest,
//! scoring, spotlight and notify; an interrupted run resumes from its checkpoint; a second run
//! finds every event already there.

use std::{path::Path, process::Stdio, time::Duration};

use serde_json::Value;

use crate::support::{
    SECRET, WEBHOOK_PATH, WEBHOOK_SECRET, standalone::Standalone, verify_standard_webhook,
};

const WAIT: Duration = Duration::from_secs(60);

pub(crate) fn herald_cli(args: &[&str]) -> anyhow::Result<tokio::process::Command> {
    let mut command = tokio::process::Command::new(herald_testkit::binary("herald")?);
    command
        .args(args)
        .env_remove("HERALD_URL")
        .env_remove("HERALD_INGEST_URL")
        .env_remove("HERALD_SOURCE_SECRET")
        .env("NO_COLOR", "1");
    Ok(command)
}

pub(crate) async fn run(args: &[&str]) -> anyhow::Result<(Value, String)> {
    let output = herald_cli(args)?.output().await?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    anyhow::ensure!(
        output.status.success(),
        "herald {args:?} failed: {:?}\n{stdout}\n{stderr}",
        output.status.code()
    );
    let summary = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Value>(l).ok())
        .ok_or_else(|| anyhow::anyhow!("no JSON summary in:\n{stdout}\n{stderr}"))?;
    Ok((summary, stderr))
}

fn signal(pid: u32, signal: &str) -> anyhow::Result<()> {
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()?;
    anyhow::ensure!(status.success(), "kill {signal} {pid} failed");
    Ok(())
}

/// The checkpoint's contents, once it holds at least `rows` rows (it is written aside and renamed,
/// so a read sees a whole one).
fn checkpoint_with(path: &Path, rows: u64) -> Option<Value> {
    let checkpoint: Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    (checkpoint["totals"]["rows"].as_u64()? >= rows).then_some(checkpoint)
}

/// Starts a backfill in chunks of 10 and interrupts it cleanly between two chunks: once two
/// chunks are checkpointed (so its Ctrl-C handler, installed after the first, is listening),
/// `herald up` is frozen so no further chunk can be acknowledged, the backfill gets SIGINT, and
/// `herald up` is thawed. The chunk in flight completes and is checkpointed, and the backfill
/// stops there, naming the line. Returns that line and the checkpoint left behind.
async fn interrupted_run(herald: &Standalone, export: &Path) -> anyhow::Result<(u64, Value)> {
    let checkpoint = export.with_file_name("incidents-export.jsonl.herald-backfill");
    let mut child = herald_cli(&[
        "backfill",
        "--source",
        "servicenow",
        &export.display().to_string(),
        "--secret",
        SECRET,
        "--chunk",
        "10",
        "--url",
        &herald.grpc,
    ])?
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .kill_on_drop(true)
    .spawn()?;
    let up = herald
        .process
        .pid()
        .ok_or_else(|| anyhow::anyhow!("herald up is not running"))?;
    let backfill = child
        .id()
        .ok_or_else(|| anyhow::anyhow!("the backfill exited at once"))?;
    // Polled closely: each chunk takes a few milliseconds, and the whole file is 30 of them.
    let deadline = tokio::time::Instant::now() + WAIT;
    while checkpoint_with(&checkpoint, 20).is_none() {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "no checkpoint of two chunks within {WAIT:?}"
        );
        anyhow::ensure!(
            child.try_wait()?.is_none(),
            "the backfill ended before it could be interrupted"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    signal(up, "-STOP")?;
    signal(backfill, "-INT")?;
    signal(up, "-CONT")?;
    let output = tokio::time::timeout(WAIT, child.wait_with_output()).await??;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !output.status.success(),
        "an interrupted run exits non-zero: {stderr}"
    );
    let line = stderr
        .split("interrupted at line ")
        .nth(1)
        .and_then(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse::<u64>()
                .ok()
        })
        .ok_or_else(|| anyhow::anyhow!("the backfill does not say where it stopped: {stderr}"))?;
    let saved: Value = serde_json::from_slice(&std::fs::read(&checkpoint)?)?;
    Ok((line, saved))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servicenow_export_backfills_resumes_and_then_is_all_duplicates() -> anyhow::Result<()>
{
    let herald = Standalone::start().await?;
    let oracle: Value = serde_json::from_slice(&std::fs::read(
        herald_testkit::fixtures_dir().join("expected.json"),
    )?)?;
    let counts = &oracle["backfill"];
    let (lines, events) = (
        counts["lines"].as_u64().unwrap_or_default(),
        counts["events"].as_u64().unwrap_or_default(),
    );
    let work = tempfile::tempdir()?;
    let export = work.path().join("incidents-export.jsonl");
    std::fs::copy(
        herald_testkit::fixtures_dir().join("servicenow/incidents-export.jsonl"),
        &export,
    )?;
    let file = export.display().to_string();
    let base = [
        "--json",
        "backfill",
        "--source",
        "servicenow",
        file.as_str(),
        "--secret",
        SECRET,
        "--url",
        herald.grpc.as_str(),
    ];

    // Interrupted between two chunks, after at least three, before the end: the checkpoint is
    // exactly where the run said it stopped, with every row up to there counted.
    let (stopped, checkpoint) = interrupted_run(&herald, &export).await?;
    let done = checkpoint["totals"]["rows"].as_u64().unwrap_or_default();
    assert_eq!(checkpoint["line"].as_u64(), Some(stopped), "{checkpoint}");
    assert_eq!(done, stopped, "one row a line: {checkpoint}");
    assert!(
        done >= 30 && done < lines && done % 10 == 0,
        "stopped after whole chunks, midway: {checkpoint}"
    );

    // The same command resumes exactly there.
    let (first, stderr) = run(&base).await?;
    assert!(
        stderr.contains(&format!("resuming at line {}", stopped + 1)),
        "{stderr}"
    );
    assert_eq!(first["rows"].as_u64(), Some(lines), "{first}");
    assert_eq!(first["rejected"].as_u64(), Some(0), "{first}");
    assert_eq!(
        first["not_published"].as_u64(),
        counts["not_published"].as_u64(),
        "{first}"
    );
    // Stopped between chunks, nothing was in flight: no row is sent twice.
    assert_eq!(first["accepted"].as_u64(), Some(events), "{first}");
    assert_eq!(first["duplicates"].as_u64(), Some(0), "{first}");
    assert!(
        !export
            .with_file_name("incidents-export.jsonl.herald-backfill")
            .exists(),
        "the checkpoint is removed once the file is done"
    );

    // History is not news: once everything has gone through, no win of the export was announced
    // as a headline (anything delivered at all is signed).
    herald.wait_settled().await?;
    let delivered = herald.webhook.requests();
    for request in &delivered {
        verify_standard_webhook(request, WEBHOOK_SECRET)?;
        let body = request.json()?;
        assert_ne!(
            body["type"], "herald.announcement.headline_win",
            "a backfilled outcome was announced as news: {body}"
        );
    }

    // The leaderboard has the export's people.
    let board = herald_testkit::eventually("the March leaderboard", WAIT, || {
        let grpc = herald.grpc.clone();
        async move {
            let (board, _) = run(&[
                "--json",
                "leaderboard",
                "--period",
                "month",
                "--at",
                "2025-03-05",
                "--url",
                &grpc,
            ])
            .await
            .ok()?;
            (board["entries"].as_array()?.len() >= 3).then_some(board)
        }
    })
    .await?;
    // People are shown by wins and hours given back; money per person is withheld by default.
    assert!(board["entries"][0]["hours"].as_f64().unwrap_or_default() > 0.0);
    assert!(board["entries"][0]["value"].is_null(), "{board}");

    // A second run finds every event already accepted.
    let (second, _) = run(&base).await?;
    assert_eq!(second["rows"].as_u64(), Some(lines), "{second}");
    assert_eq!(second["accepted"].as_u64(), Some(0), "{second}");
    assert_eq!(second["duplicates"].as_u64(), Some(events), "{second}");
    assert_eq!(
        second["not_published"].as_u64(),
        counts["not_published"].as_u64(),
        "{second}"
    );
    // ... and announces nothing again.
    herald.wait_settled().await?;
    assert_eq!(herald.webhook.requests().len(), delivered.len());

    // The same kind of outcome, of the same month, arriving live is news: only the backfill's
    // origin kept the export quiet.
    let live =
        std::fs::read(herald_testkit::fixtures_dir().join("servicenow/incident-resolved-p1.json"))?;
    assert_eq!(herald.post(live).await?.status().as_u16(), 202);
    let requests = herald
        .webhook
        .wait_for(WEBHOOK_PATH, delivered.len() + 1, WAIT)
        .await?;
    let headline = requests
        .last()
        .map(|r| r.json())
        .transpose()?
        .unwrap_or_default();
    assert_eq!(
        headline["type"], "herald.announcement.headline_win",
        "{headline}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rows_are_reported_with_their_lines_and_the_rest_goes_through() -> anyhow::Result<()> {
    let herald = Standalone::start().await?;
    let work = tempfile::tempdir()?;
    let export = work.path().join("mixed.jsonl");
    let rows = std::fs::read_to_string(
        herald_testkit::fixtures_dir().join("servicenow/incidents-export.jsonl"),
    )?;
    let good: Vec<&str> = rows.lines().take(3).collect();
    std::fs::write(
        &export,
        format!(
            "{}\n{{\"table\": \"incident\"}}\nnot json at all\n\n{}\n",
            good[0],
            good[1..].join("\n")
        ),
    )?;
    let (summary, _) = run(&[
        "--json",
        "backfill",
        "--source",
        "servicenow",
        &export.display().to_string(),
        "--secret",
        SECRET,
        "--url",
        &herald.grpc,
    ])
    .await?;
    assert_eq!(summary["rows"].as_u64(), Some(5), "{summary}");
    assert_eq!(summary["rejected"].as_u64(), Some(2), "{summary}");
    assert_eq!(
        summary["reasons"]["unusable_event"]["lines"],
        serde_json::json!([2])
    );
    assert_eq!(
        summary["reasons"]["malformed_json"]["lines"],
        serde_json::json!([3])
    );
    assert_eq!(
        summary["accepted"].as_u64().unwrap_or_default()
            + summary["not_published"].as_u64().unwrap_or_default(),
        3,
        "{summary}"
    );

    // A wrong secret refuses every row, says why, publishes nothing, and exits non-zero: nothing
    // was accepted.
    let refused = herald_cli(&[
        "--json",
        "backfill",
        "--source",
        "servicenow",
        &export.display().to_string(),
        "--secret",
        "not-the-secret",
        "--restart",
        "--url",
        &herald.grpc,
    ])?
    .output()
    .await?;
    let stderr = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert!(
        !refused.status.success(),
        "every row rejected must exit non-zero: {stderr}"
    );
    assert!(stderr.contains("nothing was accepted"), "{stderr}");
    let refused = String::from_utf8_lossy(&refused.stdout)
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Value>(l).ok())
        .ok_or_else(|| anyhow::anyhow!("no JSON summary: {stderr}"))?;
    assert_eq!(refused["accepted"].as_u64(), Some(0), "{refused}");
    assert_eq!(
        refused["reasons"]["signature_mismatch"]["count"].as_u64(),
        Some(5),
        "{refused}"
    );
    Ok(())
}
