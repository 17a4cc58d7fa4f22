//! Before a fixed rate is timed, the disk catches up with what the runs before it wrote. A
//! saturation run leaves hundreds of megabytes in the page cache unsynced (JetStream's stream files,
//! PostgreSQL's table pages); with the kernel's defaults they go to disk all at once about 30 s
//! later, and every commit waiting on the disk in that moment waits tens of milliseconds
//! (BENCHMARKS.md, twelfth sitting). Without this step the fixed rate would time the saturation
//! run's write-back rather than its own.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};

/// Asks the kernel to write everything unsynced to disk (`sync`) and waits for it; returns how
/// long that took.
pub async fn settle() -> anyhow::Result<Duration> {
    let started = Instant::now();
    let status = tokio::process::Command::new("sync")
        .status()
        .await
        .context("cannot run `sync` to let the disk catch up before a fixed rate")?;
    ensure!(status.success(), "`sync` failed ({status})");
    Ok(started.elapsed())
}
