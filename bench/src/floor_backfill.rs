//! The floor's backfill: the same export's rows stored on the floor's first stream as fast as
//! JetStream takes them, then recorded by its first two stages, as Herald's backfill is by scoring
//! and spotlight (history is counted, never announced). No CLI, no gRPC call, no signature and no
//! parsing: the rows go straight onto the stream, so what this reaches is more than any backfill
//! through the floor's own doors could — the pace this machine leaves for a backfill that keeps
//! Herald's guarantees, to set Herald's own beside.
#![allow(clippy::print_stdout)] // progress of a long run, for the person running the benchmark

use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::{HeaderMap, header::NATS_MESSAGE_ID, jetstream};
use serde::Serialize;
use tokio::io::AsyncBufReadExt as _;

use crate::{
    backfill::{BackfillReport, TARGET_DISTRIBUTED_S, TARGET_ROWS, count, rate},
    cpu,
    export::Export,
    floor::{ANNOUNCEMENTS_STREAM, EVENTS_SUBJECT, HISTORY_DONE_AT, HISTORY_HEADER},
    targets::Target,
};

/// Stores awaited at a time: enough to keep JetStream busy, as ingest's batch call keeps it.
const IN_FLIGHT: usize = 256;
/// How long the floor may make no progress before the rows still missing are called lost.
const STALLED_AFTER: Duration = Duration::from_secs(60);
const POLL_EVERY: Duration = Duration::from_millis(100);

#[derive(Debug, Serialize)]
pub struct FloorBackfillReport {
    pub rows: u64,
    /// Seconds until the last row was stored on the first stream.
    pub stored_s: f64,
    /// Seconds until the second stage had recorded every row; `None` when it never did.
    pub done_s: Option<f64>,
    pub rows_per_s: Option<f64>,
    /// Rows the second stage had not recorded when the floor stopped making progress.
    pub lost: u64,
    /// Rows passed on to be announced: none, as Herald announces no history.
    pub announced: u64,
    /// The machine's CPU from the first store to the last record.
    pub machine: cpu::Usage,
}

/// Stores every row of `export` (one a line, after the header) on the floor's first stream, then
/// waits until its second stage has recorded them all.
pub async fn measure(target: &Target, export: &Export) -> anyhow::Result<FloorBackfillReport> {
    let nats = target
        .nats
        .as_ref()
        .context("the floor's backfill needs the floor's nats-server")?;
    let js = jetstream::new(async_nats::connect(nats.url()).await?);
    let file = tokio::fs::File::open(&export.path)
        .await
        .with_context(|| format!("opening {}", export.path.display()))?;
    let mut lines = tokio::io::BufReader::new(file).lines();
    lines.next_line().await?.context("the export is empty")?;

    let machine = cpu::Snapshot::take();
    let started = Instant::now();
    let mut rows = 0_u64;
    let mut pending = std::collections::VecDeque::with_capacity(IN_FLIGHT);
    while let Some(line) = lines.next_line().await? {
        rows += 1;
        let mut headers = HeaderMap::new();
        headers.insert(NATS_MESSAGE_ID, format!("history-{rows}").as_str());
        headers.insert(HISTORY_HEADER, "1");
        pending.push_back(
            js.publish_with_headers(EVENTS_SUBJECT, headers, line.into())
                .await?,
        );
        if pending.len() >= IN_FLIGHT
            && let Some(ack) = pending.pop_front()
        {
            ack.await?;
        }
    }
    for ack in pending {
        ack.await?;
    }
    let stored_s = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        rows == export.rows,
        "the export has {} rows but {rows} lines after its header: a field spans lines",
        export.rows
    );

    let (stream, consumer) = HISTORY_DONE_AT;
    let stream = js.get_stream(stream).await?;
    let mut recorded = 0;
    let mut last_progress = Instant::now();
    let done_s = loop {
        let info = stream.consumer_info(consumer).await?;
        // The stage acknowledges a pull only once its keys are committed.
        let now = info.ack_floor.stream_sequence;
        if now >= rows {
            break Some(started.elapsed().as_secs_f64());
        }
        if now > recorded {
            recorded = now;
            last_progress = Instant::now();
        } else if last_progress.elapsed() > STALLED_AFTER {
            break None;
        }
        tokio::time::sleep(POLL_EVERY).await;
    };
    let machine = machine.usage_since();
    // Fetched now, after the last record: anything the second stage passed on is stored by then.
    let announced = js
        .get_stream(ANNOUNCEMENTS_STREAM)
        .await?
        .cached_info()
        .state
        .messages;
    Ok(FloorBackfillReport {
        rows,
        stored_s,
        done_s,
        rows_per_s: done_s.map(|s| rows as f64 / s),
        lost: if done_s.is_some() { 0 } else { rows - recorded },
        announced,
        machine,
    })
}

/// The floor's backfill beside Herald's: its pace, the pace a million rows in the target's time
/// needs, and each Herald mode's pace as a share of the floor's.
pub fn markdown(floor: &FloorBackfillReport, herald: &[BackfillReport]) -> String {
    let Some((done_s, pace)) = floor.done_s.zip(floor.rows_per_s) else {
        return format!(
            "**The floor's backfill** of the same rows: **{} rows never recorded** (no progress \
             for {} s).\n\n",
            count(floor.lost),
            STALLED_AFTER.as_secs()
        );
    };
    let needed = TARGET_ROWS as f64 / TARGET_DISTRIBUTED_S;
    let mut out = format!(
        "**The floor's backfill**: the same {} rows stored straight onto the floor's first stream \
         ({IN_FLIGHT} stores in flight; no CLI, call, signature or parsing), recorded by its first \
         two stages as Herald's are by scoring and spotlight: stored after {:.1} s, recorded after \
         **{done_s:.1} s ({} rows/s, {:.2}× the {} rows/s a million rows in {:.0} s \
         need)**, the machine {:.2} cores busy ({}).",
        count(floor.rows),
        floor.stored_s,
        rate(pace),
        pace / needed,
        rate(needed),
        TARGET_DISTRIBUTED_S,
        floor.machine.busy_cores(),
        floor
            .machine
            .programs
            .iter()
            .take(3)
            .map(|p| format!("{} {:.2}", p.program, p.cores))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if floor.announced > 0 {
        out.push_str(&format!(
            " **{} rows were passed on to be announced**, which history never is: the floor broke \
             its own rule, and its pace is not a bound.",
            count(floor.announced)
        ));
    }
    for run in herald {
        if let Some(rows_per_s) = run.rows_per_s {
            out.push_str(&format!(
                " {}'s backfill reaches {:.2}× the floor's pace.",
                run.mode,
                rows_per_s / pace
            ));
        }
    }
    out.push_str("\n\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(announced: u64) -> FloorBackfillReport {
        FloorBackfillReport {
            rows: 1_000_000,
            stored_s: 36.2,
            done_s: Some(72.7),
            rows_per_s: Some(13_755.2),
            lost: 0,
            announced,
            machine: cpu::Usage {
                machine_cores: 1.67,
                kernel_cores: 0.5,
                switches_per_second: 0.0,
                programs: Vec::new(),
            },
        }
    }

    #[test]
    fn the_paragraph_gives_the_pace_against_the_target_with_thousands_grouped() {
        let text = markdown(&report(0), &[]);
        assert!(
            text.contains("13,755 rows/s, 1.38× the 10,000 rows/s"),
            "{text}"
        );
        assert!(!text.contains("passed on to be announced"), "{text}");
    }

    #[test]
    fn history_passed_on_to_be_announced_is_called_out_and_the_bound_withdrawn() {
        let text = markdown(&report(3), &[]);
        assert!(
            text.contains("**3 rows were passed on to be announced**"),
            "{text}"
        );
        assert!(text.contains("its pace is not a bound"), "{text}");
    }
}
