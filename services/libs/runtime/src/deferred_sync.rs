//! Commits that reach the disk after the work they record has moved on.
//!
//! A stage between two others (scoring, spotlight) makes the same rows from the same input every
//! time: a redelivered message finds or rebuilds them. Its store's commit therefore need not be on
//! the disk before the stage publishes what the commit recorded, only before it acknowledges its
//! input; until then a power cut that loses the commit also keeps the input, which comes back. So
//! the commit returns once it is written ([`DeferredSync::unsynced`]), the stage publishes, and
//! [`DeferredSync::sync`] makes it durable before the acknowledgement. The sync leaves the event's
//! path (the next stage is already working), and concurrent lanes share one.
//!
//! On SQLite the one connection commits with `synchronous = NORMAL` for that transaction only and
//! the log file is synced afterwards; every other transaction on the file still syncs its own
//! commit. The setting travels with the transaction's `BEGIN`, in one command: each command is a
//! hand-off to the connection's thread and back, and at a low event rate the machine's CPU follows
//! those hand-offs (BENCHMARKS.md, forty-eighth sitting).
//!
//! On PostgreSQL the transaction turns `synchronous_commit` off for itself alone (`SET LOCAL` in
//! its `BEGIN`, or [`PG_UNSYNCED_COMMIT`] in a statement that is its own transaction), which costs
//! no round trip, and [`DeferredSync::sync`] commits a transaction of its own that writes a log
//! record and waits for the flush: PostgreSQL flushes its log in order, so that flush covers every
//! commit made before it.

use std::{
    path::PathBuf,
    sync::{
        LazyLock,
        atomic::{AtomicU64, Ordering},
    },
};

use sqlx::{AnyPool, Connection, Executor, Row};
use tokio::sync::{Mutex, OnceCell};

use crate::kept::{Kept, KeptConnections};

/// Why a deferred sync failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("cannot find the SQLite file's log: {0}")]
    Locate(#[source] sqlx::Error),
    #[error("cannot sync the SQLite log {file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the SQLite log's sync did not finish: {0}")]
    Join(#[source] tokio::task::JoinError),
    #[error("cannot flush PostgreSQL's log: {0}")]
    Flush(#[source] sqlx::Error),
}

/// Called in the text of a PostgreSQL statement that runs as a transaction of its own (no `BEGIN`
/// around it), e.g. `... WHERE {PG_UNSYNCED_COMMIT} IS NOT NULL`, it makes that transaction commit
/// without waiting for the log's flush, as [`Unsynced::begin`] does for a transaction. It is
/// evaluated for each row the statement returns, so a statement that returns none commits as
/// usual: use it where returning no row means having written none.
pub const PG_UNSYNCED_COMMIT: &str = "set_config('synchronous_commit', 'off', true)";

/// One simple query, so the setting costs no round trip of its own; `LOCAL` ends it with the
/// transaction, and the connection goes back to its pool as it came.
const PG_BEGIN_UNSYNCED: &str = "BEGIN; SET LOCAL synchronous_commit = off";

/// The same on SQLite, whose setting outlives the transaction: [`Unsynced::release`] restores it.
/// The transaction begins as every other write does ([`crate::db::begin_write_on`]).
static SQLITE_BEGIN_UNSYNCED: LazyLock<String> = LazyLock::new(|| {
    format!(
        "PRAGMA synchronous = NORMAL; {}",
        crate::db::SQLITE_BEGIN_WRITE
    )
});

/// A transaction whose commit must wait for the log's flush: a transactional message gives it a
/// transaction id and a log record (a transaction that only asks for an id writes none, and its
/// commit does not wait). A role with no privileges of its own may call it; logical decoding
/// clients see a message with this prefix and nothing else.
const PG_FLUSH: &str = "SELECT FROM pg_logical_emit_message(true, 'herald.deferred_sync', '')";

/// One store's commits left unsynced, and the syncs that make them durable. Share one per pool:
/// its lanes then share syncs.
#[derive(Debug)]
pub struct DeferredSync {
    pool: AnyPool,
    /// The write connections and the flushes' connection, kept between uses on PostgreSQL.
    kept: KeptConnections,
    sqlite: bool,
    /// The SQLite log file, as SQLite itself names its main database.
    log: OnceCell<PathBuf>,
    /// How many syncs were asked for; a sync started after the n-th was asked covers it.
    asked: AtomicU64,
    /// The last ask covered by a finished sync; held while a sync runs.
    covered: Mutex<u64>,
}

impl DeferredSync {
    pub fn new(pool: AnyPool) -> Self {
        Self {
            sqlite: crate::db::is_sqlite(&pool),
            kept: KeptConnections::new(pool.clone()),
            pool,
            log: OnceCell::new(),
            asked: AtomicU64::new(0),
            covered: Mutex::new(0),
        }
    }

    /// The store's connection, its commits left for [`DeferredSync::sync`] to make durable until
    /// [`Unsynced::release`] (or drop) gives it back.
    pub async fn unsynced(&self) -> Result<Unsynced, sqlx::Error> {
        Ok(Unsynced {
            conn: Some(self.kept.take().await?),
            relaxed: false,
        })
    }

    /// Makes every commit made before this call durable. Concurrent callers share one sync: a
    /// caller that finds one running waits for it, then for the next only if that one began too
    /// early to cover its commits.
    pub async fn sync(&self) -> Result<(), SyncError> {
        let ticket = self.asked.fetch_add(1, Ordering::SeqCst) + 1;
        let mut covered = self.covered.lock().await;
        if *covered >= ticket {
            return Ok(());
        }
        // Every ask counted so far was made after its commit returned: this sync covers them all.
        let covers = self.asked.load(Ordering::SeqCst);
        if self.sqlite {
            self.sync_log().await?;
        } else {
            let mut conn = self.kept.take().await.map_err(SyncError::Flush)?;
            conn.execute(PG_FLUSH).await.map_err(SyncError::Flush)?;
            conn.keep();
        }
        *covered = covers;
        Ok(())
    }

    /// Syncs the SQLite file's log.
    async fn sync_log(&self) -> Result<(), SyncError> {
        let log = self.log().await?.clone();
        tokio::task::spawn_blocking(move || {
            // Opened anew each time: SQLite may remove the log and make a new one when its last
            // connection closes, and a handle kept from before would sync the old file.
            std::fs::File::open(&log)
                .and_then(|f| f.sync_data())
                .map_err(|source| SyncError::Io {
                    file: log.display().to_string(),
                    source,
                })
        })
        .await
        .map_err(SyncError::Join)?
    }

    async fn log(&self) -> Result<&PathBuf, SyncError> {
        self.log
            .get_or_try_init(|| async {
                let row = sqlx::query("SELECT file FROM pragma_database_list WHERE name = 'main'")
                    .fetch_one(&self.pool)
                    .await
                    .map_err(SyncError::Locate)?;
                let file: String = row.try_get("file").map_err(SyncError::Locate)?;
                Ok(PathBuf::from(format!("{file}-wal")))
            })
            .await
    }
}

/// A store connection whose commits wait for [`DeferredSync::sync`] to reach the disk.
pub struct Unsynced {
    /// `None` only once [`Unsynced::release`], which consumes the value, has kept it.
    conn: Option<Kept>,
    /// Set once the connection's `synchronous` may have been lowered, until it is restored.
    relaxed: bool,
}

impl Unsynced {
    /// A write transaction on the connection (see [`crate::db::begin_write_on`]) whose commit waits
    /// for [`DeferredSync::sync`] to reach the disk.
    pub async fn begin(&mut self) -> Result<sqlx::Transaction<'_, sqlx::Any>, sqlx::Error> {
        if crate::store::is_postgres(self.connection()) {
            return self.connection().begin_with(PG_BEGIN_UNSYNCED).await;
        }
        // Counted as lowered before the command is sent: should the `BEGIN` fail after the
        // `PRAGMA` took effect, the connection is closed rather than given back relaxed.
        self.relaxed = true;
        self.connection()
            .begin_with(SQLITE_BEGIN_UNSYNCED.as_str())
            .await
    }

    /// The connection itself, for work that begins its own transactions (through
    /// [`Unsynced::begin`] on SQLite, where only a transaction begun there commits unsynced). On
    /// PostgreSQL a statement run on it as a transaction of its own commits unsynced only if it
    /// calls [`PG_UNSYNCED_COMMIT`].
    pub fn connection(&mut self) -> &mut sqlx::AnyConnection {
        match self.conn.as_mut() {
            Some(conn) => conn,
            None => unreachable!("an unsynced connection is used after its release"),
        }
    }

    /// Gives the connection back with its commits synced again: kept for the store's next write
    /// on PostgreSQL (see [`crate::kept`]), to its pool on SQLite. Call it once the connection's
    /// work has succeeded; dropped without it, the connection goes back to its pool (or, on
    /// SQLite, is closed).
    pub async fn release(mut self) -> Result<(), sqlx::Error> {
        if self.relaxed {
            self.connection()
                .execute("PRAGMA synchronous = FULL")
                .await?;
            self.relaxed = false;
        }
        if let Some(conn) = self.conn.take() {
            conn.keep();
        }
        Ok(())
    }
}

impl Drop for Unsynced {
    fn drop(&mut self) {
        // Left by an error before `release`: the pool must not hand out a connection whose commits
        // skip their sync, so it is closed and the next one connects afresh.
        if let (true, Some(conn)) = (self.relaxed, self.conn.as_mut()) {
            conn.close_on_drop();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sqlx::Row;

    use super::*;
    use crate::{config::DatabaseConfig, db};

    async fn sqlite(dir: &std::path::Path) -> anyhow::Result<db::Database> {
        let config = DatabaseConfig {
            url: crate::secret::Secret::new(format!("sqlite://{}", dir.display())),
            ..DatabaseConfig::default()
        };
        let db = db::connect(&config, "t").await?;
        sqlx::query("CREATE TABLE t (id TEXT PRIMARY KEY)")
            .execute(&db.pool)
            .await?;
        Ok(db)
    }

    async fn synchronous(conn: &mut sqlx::AnyConnection) -> anyhow::Result<i64> {
        Ok(sqlx::query("PRAGMA synchronous")
            .fetch_one(conn)
            .await?
            .try_get(0)?)
    }

    #[tokio::test]
    async fn only_the_unsynced_transaction_skips_its_sync() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let db = sqlite(dir.path()).await?;
        let deferred = DeferredSync::new(db.pool.clone());

        let mut writes = deferred.unsynced().await?;
        assert_eq!(
            synchronous(writes.connection()).await?,
            2,
            "FULL until the unsynced transaction begins"
        );
        let mut tx = writes.begin().await?;
        assert_eq!(synchronous(&mut tx).await?, 1, "NORMAL inside it");
        sqlx::query("INSERT INTO t (id) VALUES ('a')")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        writes.release().await?;
        deferred.sync().await?;
        let mut conn = db.pool.acquire().await?;
        assert_eq!(synchronous(&mut conn).await?, 2, "FULL again once released");
        drop(conn);

        // Left without `release`, as an error would leave it: the pool connects afresh.
        let mut writes = deferred.unsynced().await?;
        let mut tx = writes.begin().await?;
        sqlx::query("INSERT INTO t (id) VALUES ('b')")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        drop(writes);
        let mut conn = db.pool.acquire().await?;
        assert_eq!(
            synchronous(&mut conn).await?,
            2,
            "FULL on the next connection"
        );
        let ids: i64 = sqlx::query("SELECT COUNT(*) FROM t")
            .fetch_one(&mut *conn)
            .await?
            .try_get(0)?;
        assert_eq!(ids, 2, "both commits kept");
        Ok(())
    }

    #[tokio::test]
    async fn concurrent_syncs_share_the_log_they_find() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let db = sqlite(dir.path()).await?;
        let deferred = Arc::new(DeferredSync::new(db.pool.clone()));
        let syncs = (0..8).map(|_| {
            let deferred = deferred.clone();
            tokio::spawn(async move { deferred.sync().await })
        });
        for sync in futures::future::join_all(syncs).await {
            sync??;
        }
        let log = deferred.log().await?;
        assert_eq!(log, &dir.path().join("t.sqlite-wal"));
        assert!(log.exists(), "{}", log.display());
        let asked = deferred.asked.load(Ordering::SeqCst);
        assert_eq!(asked, 8);
        assert_eq!(*deferred.covered.lock().await, 8, "every ask covered");

        // A log that cannot be synced is an error that names it, not a silent success.
        let gone = DeferredSync::new(db.pool.clone());
        gone.log
            .set(dir.path().join("missing").join("t.sqlite-wal"))?;
        let err = gone.sync().await.expect_err("no such log");
        assert!(err.to_string().contains("missing"), "{err}");
        Ok(())
    }
}
