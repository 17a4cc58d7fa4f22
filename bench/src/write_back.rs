//! Before a fixed rate is timed, the disk catches up with what the runs before it wrote. A
//! saturation run leaves hundreds of megabytes in the page cache unsynced (JetStream's stream files,
//! PostgreSQL's table pages); with the kernel's defaults they go to disk all at once about 30 s
//! later, and every commit waiting on the disk in that moment waits tens of milliseconds
//! (BENCHMARKS.md, twelfth sitting). Without this step the fixed rate would time the saturation
//! run's write-back rather than its own.
//!
//! PostgreSQL keeps a saturation run's table pages in its own buffers too, where `sync` does not
//! reach: 40,000 events leave about half a gigabyte of log since the last checkpoint, and the pages
//! behind it go out while the fixed rate runs. A `CHECKPOINT` first writes them where `sync` then
//! finds them (BENCHMARKS.md, thirty-sixth sitting: with it, the distributed p99 at 200/s after two
//! saturation runs fell in seven pairs of seven).

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use sqlx::{Connection, Executor, postgres::PgConnection};

/// How the disk caught up before a fixed rate.
#[derive(Debug, Clone, Copy)]
pub struct Settled {
    pub took: Duration,
    /// What was asked for, in the report's words: `"CHECKPOINT, sync"` or `"sync"`.
    pub by: &'static str,
}

/// Asks PostgreSQL at `database` (when the run has one) to write its changed pages (`CHECKPOINT`),
/// then the kernel to write everything unsynced to disk (`sync`), and waits for both. A server that
/// refuses the checkpoint (a role without `pg_checkpoint`) is an error: the fixed rates would
/// otherwise time the runs before them without saying so.
pub async fn settle(database: Option<&str>) -> anyhow::Result<Settled> {
    let started = Instant::now();
    if let Some(url) = database {
        checkpoint(url).await.context(
            "cannot ask PostgreSQL for a CHECKPOINT before a fixed rate (the benchmark's role needs \
             superuser or pg_checkpoint)",
        )?;
    }
    let status = tokio::process::Command::new("sync")
        .status()
        .await
        .context("cannot run `sync` to let the disk catch up before a fixed rate")?;
    ensure!(status.success(), "`sync` failed ({status})");
    Ok(Settled {
        took: started.elapsed(),
        by: if database.is_some() {
            "CHECKPOINT, sync"
        } else {
            "sync"
        },
    })
}

async fn checkpoint(url: &str) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect(url).await?;
    conn.execute("CHECKPOINT").await?;
    conn.close().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use herald_testkit::TestDatabase;

    use super::*;

    async fn last_checkpoint(url: &str) -> anyhow::Result<String> {
        let mut conn = PgConnection::connect(url).await?;
        let lsn = sqlx::query_scalar::<_, String>(
            "SELECT checkpoint_lsn::text FROM pg_control_checkpoint()",
        )
        .fetch_one(&mut conn)
        .await?;
        conn.close().await?;
        Ok(lsn)
    }

    #[tokio::test]
    async fn settling_before_a_fixed_rate_checkpoints_the_database() -> anyhow::Result<()> {
        let db = TestDatabase::create().await?;
        let before = last_checkpoint(db.url()).await?;
        let settled = settle(Some(db.url())).await?;
        assert_eq!(settled.by, "CHECKPOINT, sync");
        let after = last_checkpoint(db.url()).await?;
        assert_ne!(before, after, "no checkpoint was made");
        Ok(())
    }

    #[tokio::test]
    async fn a_database_that_cannot_be_reached_is_an_error_not_a_silent_skip() {
        let refused = settle(Some("postgres://postgres@127.0.0.1:1/none")).await;
        let message = format!("{:#}", refused.expect_err("settled without its checkpoint"));
        assert!(message.contains("CHECKPOINT"), "{message}");
    }
}
