//! The benchmark itself, on a small load: it runs from a clean checkout against both run modes and
//! the floor of what Herald's guarantees cost, every accepted event reaches the sink exactly once,
//! the query timings read the wins they stored, a backfill turns every row into a win in both
//! modes (and the floor records every row of it), the stage timer cuts every event's trace into
//! stages, and it writes its figures as JSON and Markdown. (The figures of a full run are in
//! BENCHMARKS.md; a timed assertion here would only measure how busy the machine is.)

use std::time::Duration;

use crate::support::{describe, run_tool};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_benchmark_runs_both_modes_and_loses_and_doubles_nothing() -> anyhow::Result<()> {
    let (run, report) = run_tool(
        "herald-bench",
        &[
            "--modes",
            "distributed,standalone,floor,floor-keeping-bodies",
            "--events",
            "300",
            "--rates",
            "50",
            "--seconds",
            "2",
            "--drain-seconds",
            "120",
            "--query-wins",
            "20000",
            "--query-samples",
            "20",
            "--backfill-rows",
            "500",
            "--stages",
        ],
        Duration::from_secs(600),
    )
    .await?;
    anyhow::ensure!(
        run.status.success(),
        "herald-bench failed: {}",
        describe(&run)
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    // What an acknowledgement survives depends on how nats-server syncs: the report says it.
    let bus = report["bus"].as_str().unwrap_or_default();
    assert!(bus.contains("JetStream syncs"), "{report}");
    assert!(
        stdout.contains(bus),
        "the printed report says how JetStream syncs: {stdout}"
    );
    // `herald up`'s latencies are its disk's syncs too: the report says where its files were.
    let files = report["herald_up_files"].as_str().unwrap_or_default();
    assert!(files.contains("`herald up` keeps its files"), "{report}");
    assert!(
        stdout.contains(files),
        "the printed report says where herald up kept its files: {stdout}"
    );
    let modes = report["modes"].as_array().cloned().unwrap_or_default();
    let names: Vec<&str> = modes.iter().filter_map(|m| m["mode"].as_str()).collect();
    assert_eq!(
        names,
        ["distributed", "herald up", "floor", "floor, bodies kept"],
        "{report}"
    );
    for mode in &modes {
        // The floor (only what Herald's guarantees cost) exports no spans and keeps no rollups.
        let floor = mode["mode"]
            .as_str()
            .is_some_and(|m| m.starts_with("floor"));
        assert_eq!(mode["duplicates"], 0, "{mode}");
        for run in mode["saturation"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(mode["fixed"].as_array().into_iter().flatten())
        {
            let accepted = run["accepted"].as_u64().unwrap_or_default();
            assert!(accepted > 0, "nothing accepted: {run}");
            assert_eq!(run["delivered"].as_u64(), Some(accepted), "{run}");
        }
        // Where the time went: the events' traces, cut into stages that add up to the whole.
        for run in mode["fixed"].as_array().into_iter().flatten() {
            // Each rate begins once the disk has caught up with the runs before it.
            assert!(
                run["write_back_s"].as_f64().is_some_and(|s| s >= 0.0),
                "{run}"
            );
            // The other programs on the machine were sampled all through, and none of the
            // benchmark's own is taken for one of them.
            let neighbours = &run["neighbours"];
            assert!(
                neighbours["moments"].as_u64().unwrap_or_default() > 0,
                "{run}"
            );
            for busiest in field_of_each(&neighbours["taken"], "busiest") {
                assert!(
                    !busiest.starts_with("herald-")
                        && !["postgres", "nats-server"].contains(&busiest),
                    "{busiest} is the benchmark's own: {run}"
                );
            }
            if floor {
                assert!(run["stages"].is_null(), "{run}");
                continue;
            }
            let stages = &run["stages"];
            let traces = stages["traces"].as_u64().unwrap_or_default();
            let delivered = run["delivered"].as_u64().unwrap_or_default();
            assert!(
                traces * 10 >= delivered * 9 && traces <= stages["begun"].as_u64().unwrap_or(0),
                "most events' traces are complete: {run}"
            );
            let p50s: Vec<f64> = stages["stages"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s["p50_ms"].as_f64())
                .collect();
            assert_eq!(p50s.len(), 7, "six stages and the whole: {run}");
            assert!(
                p50s[..6].iter().all(|p| *p >= 0.0 && *p <= p50s[6]),
                "no stage is longer than the whole: {run}"
            );
        }
        // Ingest by itself, with nothing downstream: distributed only, every event accepted,
        // and the machine's CPU shows ingest and the bus it stores to.
        let alone = &mode["ingest_alone"];
        if mode["mode"] == "distributed" {
            assert_eq!(alone["accepted"].as_u64(), Some(300), "{alone}");
            assert!(
                alone["accepted_per_s"].as_f64().unwrap_or_default() > 0.0,
                "{alone}"
            );
            let programs = program_names(&alone["machine_while_posting"]);
            for name in ["herald-ingest", "nats-server"] {
                assert!(programs.contains(&name), "{name} missing: {alone}");
            }
            assert!(
                !programs.contains(&"herald-scoring"),
                "nothing downstream runs: {alone}"
            );
        } else {
            assert!(alone.is_null(), "{mode}");
        }
        let saturation = mode["saturation"].as_array().cloned().unwrap_or_default();
        assert_eq!(
            saturation.len(),
            if floor { 1 } else { 2 },
            "organisation and worst case: {mode}"
        );
        assert!(
            saturation
                .iter()
                .all(|s| s["delivered_per_s"].as_f64().unwrap_or_default() > 0.0),
            "{mode}"
        );
        // The machine's CPU is reported with the programs outside Herald's own processes:
        // PostgreSQL's backends and nats-server are where a distributed run's database and bus work.
        let expected: &[&str] = if mode["mode"] == "distributed" {
            &["postgres", "nats-server"]
        } else if floor {
            // Its PostgreSQL work (a key a stage) can be too small to be listed in a short run.
            &["herald-floor", "nats-server"]
        } else {
            &["herald"]
        };
        // At a fixed rate too: what a small batch costs the machine shows there.
        let usages = saturation
            .iter()
            .map(|s| &s["machine_while_posting"])
            .chain(
                mode["fixed"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|f| &f["machine_while_sending"]),
            );
        for usage in usages {
            assert!(
                usage["machine_cores"].as_f64().unwrap_or_default() > 0.0,
                "{usage}"
            );
            // Every event is handed from process to process: the machine switched threads.
            assert!(
                usage["switches_per_second"].as_f64().unwrap_or_default() > 0.0,
                "{usage}"
            );
            let programs = program_names(usage);
            for name in expected {
                assert!(programs.contains(name), "{name} missing: {usage}");
            }
        }
    }
    assert!(
        report["limits"]["jetstream_7kb_three_hops_per_s"]
            .as_f64()
            .unwrap_or_default()
            > 0.0,
        "{report}"
    );
    // The bus alone: its CPU is nats-server's, measured while it still runs.
    let relay_programs = program_names(&report["limits"]["jetstream_three_hops_machine"]);
    assert!(
        relay_programs.contains(&"nats-server"),
        "{}",
        report["limits"]
    );
    assert!(
        report["limits"]["jetstream_7kb_per_s"]
            .as_f64()
            .unwrap_or_default()
            > 0.0,
        "{report}"
    );
    assert!(stdout.contains("| saturation |"), "the table: {stdout}");
    assert!(
        stdout.contains("**The floor** is Herald's shape")
            && stdout.contains("against it, distributed delivers"),
        "what the floor is, and Herald against it: {stdout}"
    );
    assert!(
        stdout.contains("**Ingest alone** (nothing downstream)"),
        "ingest alone's figures: {stdout}"
    );
    // The query timings read what was stored: every query found something.
    let queries = report["queries"].as_array().cloned().unwrap_or_default();
    assert_eq!(queries.len(), 1, "{report}");
    assert_eq!(queries[0]["wins"], 20_000);
    let times = queries[0]["times"].as_array().cloned().unwrap_or_default();
    assert!(times.len() >= 12, "{times:?}");
    assert!(
        times
            .iter()
            .all(|t| t["found"].as_u64().unwrap_or_default() > 0 && t["p99_ms"].as_f64().is_some()),
        "{times:?}"
    );
    assert!(queries[0]["dashboard_builds"].as_u64().unwrap_or_default() >= 1);
    assert!(
        stdout.contains("| query (p50 / p99) |"),
        "the query table: {stdout}"
    );
    // The backfill: every row of the export became a win, counted and on the leaderboards, in
    // both modes, and the CLI's memory was measured.
    let backfills = report["backfill"].as_array().cloned().unwrap_or_default();
    let modes: Vec<&str> = backfills
        .iter()
        .filter_map(|b| b["mode"].as_str())
        .collect();
    assert_eq!(modes, ["distributed", "herald up"], "{report}");
    for backfill in &backfills {
        assert_eq!(backfill["rows"], 500, "{backfill}");
        assert_eq!(backfill["lost"], 0, "{backfill}");
        assert_eq!(backfill["wins_recorded"], 500, "{backfill}");
        assert!(backfill["done_s"].as_f64().is_some(), "{backfill}");
        assert!(
            backfill["cli_peak_rss_mib"].as_f64().unwrap_or_default() > 0.0,
            "{backfill}"
        );
        // The machine over the backfill, and, where the mode stores in PostgreSQL, what the
        // server wrote for each row: the log, and the tables each service writes a win to.
        // The program keeping the mode's rows: PostgreSQL's backends, or `herald up` itself.
        let distributed = backfill["mode"] == "distributed";
        let keeper = if distributed { "postgres" } else { "herald" };
        let programs = program_names(&backfill["machine"]);
        assert!(programs.contains(&keeper), "{backfill}");
        let postgres = &backfill["postgres"];
        if distributed {
            for figure in ["write_transactions_per_row", "wal_bytes_per_row"] {
                assert!(
                    postgres[figure].as_f64().is_some_and(|f| f > 0.0),
                    "{figure}: {postgres}"
                );
            }
            let grown = field_of_each(&postgres["relations"], "relation");
            for relation in ["scoring.wins", "spotlight.wins"] {
                assert!(grown.contains(&relation), "{relation}: {postgres}");
            }
        } else {
            assert!(postgres.is_null(), "{backfill}");
        }
        // What the keeper wrote to storage. Both keep their files under the temporary directory,
        // on a disk unless the report says it is in memory, where nothing goes to storage.
        let written = backfill["machine"]["programs"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["program"] == keeper))
            .map(|p| &p["written_bytes"]);
        let written = written.and_then(serde_json::Value::as_u64).ok_or_else(|| {
            anyhow::anyhow!(
                "{keeper}'s writes to storage were not read (/proc/<pid>/io): {backfill}"
            )
        })?;
        let in_memory = report["herald_up_files"]
            .as_str()
            .is_some_and(|said| said.contains("in memory"));
        if !in_memory {
            assert!(written > 0, "{keeper} wrote nothing to storage: {backfill}");
        }
    }
    assert!(
        stdout.contains("distributed: PostgreSQL wrote, a row,")
            && stdout.contains("distributed: CPU over the backfill, in cores:"),
        "what a backfilled row cost: {stdout}"
    );
    // The floor's backfill of the same export: every row recorded by its first two stages, none
    // passed on to be announced, and the report sets Herald's pace beside it.
    let floor = &report["floor_backfill"];
    assert_eq!(floor["rows"], 500, "{floor}");
    assert_eq!(floor["lost"], 0, "{floor}");
    assert_eq!(floor["announced"], 0, "{floor}");
    assert!(
        floor["rows_per_s"].as_f64().is_some_and(|r| r > 0.0),
        "{floor}"
    );
    let programs = program_names(&floor["machine"]);
    assert!(programs.contains(&"herald-floor"), "{floor}");
    assert!(
        stdout.contains("**The floor's backfill**")
            && stdout.contains("distributed's backfill reaches"),
        "the floor's backfill paragraph: {stdout}"
    );
    Ok(())
}

/// The programs a CPU figure of the report names (`machine_while_posting`, `machine`, …).
fn program_names(usage: &serde_json::Value) -> Vec<&str> {
    field_of_each(&usage["programs"], "program")
}

/// The text `field` of each object in the report's `list` (none when it is not a list).
fn field_of_each<'a>(list: &'a serde_json::Value, field: &str) -> Vec<&'a str> {
    list.as_array()
        .map(|items| items.iter().filter_map(|i| i[field].as_str()).collect())
        .unwrap_or_default()
}
