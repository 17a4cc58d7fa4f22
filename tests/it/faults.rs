//! The fault suite at CI size: every scenario of `scripts/faults` (a service killed with -9 in
//! turn, nats-server restarted, nats-server frozen with its connections open, PostgreSQL stopped, a receiver that hangs, `herald up` killed, a
//! node of a three-node NATS cluster with R3 streams killed, one of three scoring and one of two
//! notify replicas killed) on a short stream, and nothing lost, doubled or dead-lettered. The long
//! version (5,000 events a scenario, a two-minute PostgreSQL outage) is `scripts/faults`;
//! RELIABILITY.md keeps its table.

use std::time::Duration;

use crate::support::run_tool;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_fault_loses_or_doubles_an_event() -> anyhow::Result<()> {
    let (run, rows) = run_tool(
        "herald-faults",
        &[
            "--events",
            "400",
            "--rate",
            "100",
            "--outage-seconds",
            "5",
            "--drain-seconds",
            "180",
        ],
        Duration::from_secs(900),
    )
    .await?;
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    let rows = rows.as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 11, "every scenario ran: {rows:?}\n{stdout}");
    for row in &rows {
        assert_eq!(row["sent"], 400, "{row}");
        assert_eq!(
            row["accepted"], 400,
            "every event accepted in the end: {row}"
        );
        assert_eq!(row["delivered"], 400, "nothing lost: {row}\n{stdout}");
        assert_eq!(row["lost"], 0, "{row}");
        assert_eq!(row["duplicates"], 0, "nothing doubled: {row}");
        assert!(
            row["dead_letters"].is_null() || row["dead_letters"] == 0,
            "nothing dead-lettered: {row}"
        );
    }
    // The faults really happened: the hanging receiver made notify send again under the same id,
    // and PostgreSQL's outage made POSTs wait for an answer.
    let by_name = |prefix: &str| {
        rows.iter()
            .find(|r| {
                r["scenario"]
                    .as_str()
                    .is_some_and(|s| s.starts_with(prefix))
            })
            .cloned()
            .unwrap_or_default()
    };
    assert!(
        by_name("the webhook receiver hangs")["repeats"]
            .as_u64()
            .unwrap_or_default()
            > 0,
        "{rows:?}"
    );
    assert!(
        by_name("kill -9 ingest")["retried_posts"]
            .as_u64()
            .unwrap_or_default()
            > 0,
        "{rows:?}"
    );
    assert!(run.status.success(), "{stdout}\n{stderr}");
    Ok(())
}
