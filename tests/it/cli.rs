//! The `herald` command line (the real binary) against `herald up`: `herald send` delivers one
//! fixture of every source the way its tool would and each is accepted; `herald explain` finds the
//! win by ticket number and by event id; `herald deliveries` says what was delivered and what a
//! file channel did; wrong enum values, unreachable servers and unknown tickets exit non-zero with
//! a message that says what to do.

use std::{collections::BTreeMap, path::Path, process::Output, time::Duration};

use serde_json::Value;

use crate::support::herald_cli as herald;
use crate::support::{SECRET, describe, standalone::Standalone};

const WAIT: Duration = Duration::from_secs(60);

/// The last line of stdout that is JSON.
fn json_line(output: &Output) -> anyhow::Result<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| anyhow::anyhow!("no JSON in the output: {}", describe(output)))
}

fn oracle() -> anyhow::Result<Value> {
    let path = herald_testkit::fixtures_dir().join("expected.json");
    Ok(serde_json::from_str(&std::fs::read_to_string(path)?)?)
}

/// A key for every source in its tool's kind (Opsgenie holds a token, the others a secret), and a
/// file channel that receives every announcement. servicenow's secret is in the base config.
fn extra_toml(journal: &Path) -> String {
    let mut toml = String::new();
    for source in ["jira", "pagerduty", "zendesk", "github", "cloudevents"] {
        toml.push_str(&format!("[sources.{source}]\nsecret = \"{SECRET}\"\n"));
    }
    toml.push_str(&format!(
        "[sources.opsgenie]\ntoken = \"{SECRET}\"\n\
         [[notify.channels]]\nname = \"journal\"\nkind = \"file\"\npath = {journal:?}\n\
         [[notify.routes]]\nname = \"everything-to-journal\"\nchannel = \"journal\"\n",
        journal = journal.display().to_string(),
    ));
    toml
}

/// The oracle's deliveries to send: per source, every file that is not a binary-mode CloudEvent
/// (whose attributes travel in `ce-` headers, tested by ingest itself).
fn deliveries_by_source(oracle: &Value) -> BTreeMap<String, Vec<(String, bool)>> {
    let mut by_source: BTreeMap<String, Vec<(String, bool)>> = BTreeMap::new();
    for delivery in oracle["deliveries"].as_array().into_iter().flatten() {
        let (Some(file), Some(source)) = (delivery["file"].as_str(), delivery["source"].as_str())
        else {
            continue;
        };
        if file.contains(".data.") {
            continue;
        }
        let published = delivery["published"].as_bool().unwrap_or(false);
        by_source
            .entry(source.to_string())
            .or_default()
            .push((file.to_string(), published));
    }
    by_source
}

async fn send(herald_up: &Standalone, source: &str, file: &str) -> anyhow::Result<Output> {
    let path = herald_testkit::fixtures_dir().join(file);
    let key = if source == "opsgenie" {
        "--token"
    } else {
        "--secret"
    };
    herald(&[
        "send",
        source,
        &path.display().to_string(),
        key,
        SECRET,
        "--json",
        "--url",
        &herald_up.grpc,
    ])
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn herald_send_delivers_every_source_as_its_tool_does_and_explain_finds_the_win()
-> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let journal = work.path().join("journal.jsonl");
    let herald_up = Standalone::start_with(&extra_toml(&journal)).await?;
    let oracle = oracle()?;
    let by_source = deliveries_by_source(&oracle);
    let registered: Vec<&str> = herald_proto::v1::Source::ALL
        .iter()
        .map(|s| s.token())
        .collect();
    assert_eq!(
        by_source.keys().map(String::as_str).collect::<Vec<_>>(),
        {
            let mut sorted = registered.clone();
            sorted.sort_unstable();
            sorted
        },
        "a fixture of every registered source"
    );

    // One outcome of every source, and one delivery that is not an outcome (answered 202, not
    // published): each accepted, exit 0.
    for (source, files) in &by_source {
        let (file, _) = files
            .iter()
            .find(|(_, published)| *published)
            .ok_or_else(|| anyhow::anyhow!("{source}: no published fixture"))?;
        let output = send(&herald_up, source, file).await?;
        anyhow::ensure!(
            output.status.success(),
            "{source} {file}: {}",
            describe(&output)
        );
        let answer = json_line(&output)?;
        assert_eq!(answer["accepted"], true, "{source} {file}: {answer}");
        assert_eq!(answer["published"], true, "{source} {file}: {answer}");
    }
    let ping = send(&herald_up, "github", "github/ping.json").await?;
    anyhow::ensure!(ping.status.success(), "github ping: {}", describe(&ping));
    let answer = json_line(&ping)?;
    assert_eq!(
        answer["published"], false,
        "a ping is not an outcome: {answer}"
    );

    // The same delivery signed with the wrong secret is refused, and the exit status says so.
    let wrong = herald(&[
        "send",
        "jira",
        &herald_testkit::fixtures_dir()
            .join("jira/issue-resolved.json")
            .display()
            .to_string(),
        "--secret",
        "not-the-secret",
        "--url",
        &herald_up.grpc,
    ])
    .await?;
    assert!(!wrong.status.success(), "{}", describe(&wrong));
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("X-Hub-Signature"),
        "{}",
        describe(&wrong)
    );

    // `herald explain` by ticket number: the newest win of INC0048213; then by its event id.
    let record = "INC0048213";
    let event_id = "servicenow:incident:de67bddaeb083f8fbf5aa0a6fa7222c2:23";
    let by_record = herald_testkit::eventually("the ticket's win", WAIT, || async {
        let output = herald(&["explain", record, "--json", "--url", &herald_up.grpc])
            .await
            .ok()?;
        output.status.success().then_some(output)
    })
    .await?;
    let by_record = json_line(&by_record)?;
    assert_eq!(by_record["matched"], "record", "{by_record}");
    let win_id = by_record["win_id"].as_str().unwrap_or_default().to_string();
    assert!(win_id.starts_with("w-"), "{by_record}");
    let text = by_record["text"].as_str().unwrap_or_default();
    assert!(
        text.contains(record),
        "the explanation names its ticket: {text}"
    );

    let by_event = herald(&["explain", event_id, "--json", "--url", &herald_up.grpc]).await?;
    anyhow::ensure!(by_event.status.success(), "{}", describe(&by_event));
    let by_event = json_line(&by_event)?;
    assert_eq!(by_event["matched"], "event", "{by_event}");
    assert_eq!(by_event["win_id"].as_str(), Some(win_id.as_str()));

    let unknown = herald(&["explain", "INC9999999", "--url", &herald_up.grpc]).await?;
    assert!(!unknown.status.success(), "{}", describe(&unknown));
    let said = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        said.contains("INC9999999") && said.contains("record numbers"),
        "NotFound says what was searched: {said}"
    );

    // `herald deliveries`: what was delivered, and what the file channel did (no "HTTP 0").
    let journal_text = journal.display().to_string();
    let listed = herald_testkit::eventually("a delivery to the journal", WAIT, || async {
        let output = herald(&["deliveries", "--json", "--url", &herald_up.grpc])
            .await
            .ok()?;
        let rows = json_line(&output).ok()?;
        rows.as_array()?
            .iter()
            .find(|d| d["channel"] == "journal" && d["status"] == "delivered")
            .cloned()
    })
    .await?;
    assert!(
        !listed["headline"].as_str().unwrap_or_default().is_empty(),
        "the headline delivered: {listed}"
    );
    assert_eq!(
        listed["attempt_log"][0]["outcome"].as_str(),
        Some(format!("appended to {journal_text}").as_str()),
        "{listed}"
    );
    let table = herald(&["deliveries", "--url", &herald_up.grpc]).await?;
    let table = String::from_utf8_lossy(&table.stdout).into_owned();
    assert!(!table.contains("HTTP 0"), "{table}");
    assert!(table.contains("appended to"), "{table}");
    Ok(())
}

#[tokio::test]
async fn unknown_enum_values_are_refused() -> anyhow::Result<()> {
    for args in [
        &["dlq", "list", "--stage", "bogus"][..],
        &["send", "bogus", "body.json"],
        &["deliveries", "--status", "lost"],
    ] {
        let output = herald(args).await?;
        assert!(!output.status.success(), "{args:?}: {}", describe(&output));
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("invalid value"),
            "{args:?}: {}",
            describe(&output)
        );
    }
    Ok(())
}

#[tokio::test]
async fn an_unreachable_server_is_named_with_how_to_point_elsewhere() -> anyhow::Result<()> {
    let port = herald_testkit::free_port()?;
    let url = format!("http://127.0.0.1:{port}");
    let output = herald(&["leaderboard", "--spotlight", &url]).await?;
    assert!(!output.status.success(), "{}", describe(&output));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains(&url), "names the URL tried: {said}");
    assert!(
        said.contains("HERALD_URL=") && said.contains("--url"),
        "says how to point elsewhere: {said}"
    );
    assert_eq!(said.matches("tcp connect error").count(), 1, "{said}");
    Ok(())
}
