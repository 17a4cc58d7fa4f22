//! One database per service, on PostgreSQL (a schema of its own) or SQLite (a file of its own).
//!
//! Services write portable SQL through sqlx's `Any` driver: `$1`-style parameters (SQLite maps
//! `$N` to the N-th argument), times as epoch milliseconds, dates as ISO text, integers as 64-bit.
//! Where the two dialects truly differ (row locking), a store asks [`Database::backend`].

use std::{
    str::FromStr,
    sync::{Arc, Once},
    time::Duration,
};

use chrono::{DateTime, Utc};
use herald_events::embedded::{Checkpointer, SQLITE_CHECKPOINT_PAGES};
use sqlx::{
    AnyPool, ConnectOptions, Connection, Executor, any::AnyPoolOptions, postgres::PgConnectOptions,
};

use crate::config::DatabaseConfig;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database url is not valid: {0}")]
    Url(#[source] sqlx::Error),
    #[error("cannot connect to {target}: {source}")]
    Connect {
        target: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot create schema {schema}: {source}")]
    Schema {
        schema: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot create the data directory {dir}: {source}")]
    DataDir {
        dir: String,
        #[source]
        source: std::io::Error,
    },
    /// The message names the file.
    #[error("{0}")]
    Checkpoint(#[source] herald_events::Cause),
    #[error("migrations for {schema} failed: {source}")]
    Migrate {
        schema: String,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// A service's database.
#[derive(Debug, Clone)]
pub struct Database {
    pub pool: AnyPool,
    pub backend: Backend,
    /// A SQLite file's log copied back beside the commits, for as long as a clone lives.
    _checkpointer: Option<Arc<Checkpointer>>,
}

/// A service's migrations for each backend.
pub struct Migrations {
    pub postgres: &'static sqlx::migrate::Migrator,
    pub sqlite: &'static sqlx::migrate::Migrator,
}

impl Migrations {
    /// The migrations for `backend`.
    pub fn of(&self, backend: Backend) -> &'static sqlx::migrate::Migrator {
        match backend {
            Backend::Postgres => self.postgres,
            Backend::Sqlite => self.sqlite,
        }
    }
}

/// Embeds `migrations/postgres` and `migrations/sqlite` of the calling crate.
#[macro_export]
macro_rules! migrations {
    () => {
        $crate::db::Migrations {
            postgres: {
                static M: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");
                &M
            },
            sqlite: {
                static M: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
                &M
            },
        }
    };
}

/// The SQLite data directory named by a `sqlite:` database URL (`sqlite://herald-data`,
/// `sqlite:///var/lib/herald`), or `None` for any other URL.
pub fn sqlite_dir(url: &str) -> Option<std::path::PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let rest = rest.split('?').next().unwrap_or(rest);
    Some(std::path::PathBuf::from(if rest.is_empty() {
        "."
    } else {
        rest
    }))
}

pub(crate) fn install_drivers() {
    static ONCE: Once = Once::new();
    ONCE.call_once(sqlx::any::install_default_drivers);
}

/// Connects the service `schema` to its database: on PostgreSQL the schema (created if needed) is
/// the connections' search path; with a `sqlite:<dir>` URL the file `<dir>/<schema>.sqlite`.
pub async fn connect(config: &DatabaseConfig, schema: &'static str) -> Result<Database, DbError> {
    install_drivers();
    let url = config.url.expose();
    match sqlite_dir(url) {
        // `max_connections` is PostgreSQL's: a SQLite file gets one (see `connect_sqlite`).
        Some(dir) => connect_sqlite(&dir, schema).await,
        None => connect_postgres(url, schema, config.max_connections).await,
    }
}

async fn connect_postgres(url: &str, schema: &'static str, max: u32) -> Result<Database, DbError> {
    let options = PgConnectOptions::from_str(url).map_err(DbError::Url)?;
    let target = format!(
        "PostgreSQL at {}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or("")
    );
    let connect_error = |e: sqlx::Error| DbError::Connect {
        target: target.clone(),
        source: e,
    };
    let mut admin = options.connect().await.map_err(connect_error)?;
    if let Err(e) = admin
        .execute(sqlx::AssertSqlSafe(format!(
            "CREATE SCHEMA IF NOT EXISTS {schema}"
        )))
        .await
    {
        // Replicas starting together race to create it; losing the race is fine.
        if !e.to_string().contains("already exists") {
            return Err(DbError::Schema {
                schema: schema.to_string(),
                source: e,
            });
        }
    }
    admin.close().await.ok();
    let pool = AnyPoolOptions::new()
        .max_connections(max.max(1))
        .acquire_timeout(Duration::from_secs(5))
        // sqlx pings a connection when it goes back to the pool and drops one that does not
        // answer; a second ping when it is taken out again cost every transaction a round trip
        // on the stages' critical path. A connection that died while idle (the server
        // restarted) fails its first statement instead, which the stages retry like any outage.
        .test_before_acquire(false)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                conn.execute(sqlx::AssertSqlSafe(format!("SET search_path TO {schema}")))
                    .await?;
                conn.execute(sqlx::AssertSqlSafe(format!(
                    "SET application_name TO 'herald-{schema}'"
                )))
                .await?;
                Ok(())
            })
        })
        .connect(url)
        .await
        .map_err(connect_error)?;
    Ok(Database {
        pool,
        backend: Backend::Postgres,
        _checkpointer: None,
    })
}

async fn connect_sqlite(dir: &std::path::Path, schema: &'static str) -> Result<Database, DbError> {
    std::fs::create_dir_all(dir).map_err(|e| DbError::DataDir {
        dir: dir.display().to_string(),
        source: e,
    })?;
    let file = dir.join(format!("{schema}.sqlite"));
    let url = format!("sqlite://{}?mode=rwc", file.display());
    // One connection per file: SQLite allows one writer at a time, and writers on separate
    // connections wait for each other in SQLite's busy handler, which sleeps (1, 2, 5 … 100 ms)
    // between tries. Queued on one connection they wait in the pool instead and go the moment it
    // is free: the benchmark measured 30 % more deliveries per second and half the p99 this way.
    // Reads queue too; in the one-process mode they are small.
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        // The file's one connection is checked when it goes back to the pool; checking it again
        // when it is taken out was a trip to SQLite's worker thread on every transaction.
        .test_before_acquire(false)
        .after_connect(|conn, _| {
            Box::pin(async move {
                // WAL: readers never block the writer. FULL: a commit is on disk before it returns,
                // so nothing acknowledged is lost even if the machine loses power (a stage's own
                // batch lowers it for its transaction and syncs before acking: `deferred_sync`).
                conn.execute("PRAGMA journal_mode = WAL").await?;
                conn.execute("PRAGMA synchronous = FULL").await?;
                conn.execute("PRAGMA busy_timeout = 10000").await?;
                conn.execute(sqlx::AssertSqlSafe(format!(
                    "PRAGMA wal_autocheckpoint = {SQLITE_CHECKPOINT_PAGES}"
                )))
                .await?;
                conn.execute("PRAGMA foreign_keys = ON").await?;
                Ok(())
            })
        })
        .connect(&url)
        .await
        .map_err(|e| DbError::Connect {
            target: format!("SQLite at {}", file.display()),
            source: e,
        })?;
    let checkpointer = Checkpointer::start(&file).map_err(DbError::Checkpoint)?;
    Ok(Database {
        pool,
        backend: Backend::Sqlite,
        _checkpointer: Some(Arc::new(checkpointer)),
    })
}

/// Whether `pool` holds a SQLite file's connection rather than PostgreSQL's, told without taking
/// a connection from it.
pub fn is_sqlite(pool: &AnyPool) -> bool {
    pool.connect_options().database_url.scheme() == "sqlite"
}

/// How a write transaction begins on SQLite (see [`begin_write`]).
pub(crate) const SQLITE_BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

/// Begins a transaction that will write, on a connection of `pool`. On SQLite it takes the file's
/// write lock at once (`BEGIN IMMEDIATE`), waiting for it as long as the busy timeout allows. A
/// transaction begun plainly whose first statement reads holds a read snapshot from then on, and
/// SQLite will not make it wait for the write lock later (two readers waiting to write would
/// deadlock): its first write fails with "database is locked" whenever another connection (the
/// file's checkpointer) holds the lock or has reset the log since the snapshot.
pub async fn begin_write(
    pool: &AnyPool,
) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
    if is_sqlite(pool) {
        pool.begin_with(SQLITE_BEGIN_WRITE).await
    } else {
        pool.begin().await
    }
}

/// [`begin_write`] on a connection already taken from its pool.
pub async fn begin_write_on(
    conn: &mut sqlx::AnyConnection,
) -> Result<sqlx::Transaction<'_, sqlx::Any>, sqlx::Error> {
    if crate::store::is_postgres(conn) {
        conn.begin().await
    } else {
        conn.begin_with(SQLITE_BEGIN_WRITE).await
    }
}

/// Applies a service's migrations for its backend.
pub async fn migrate(
    db: &Database,
    schema: &'static str,
    migrations: &Migrations,
) -> Result<(), DbError> {
    migrations
        .of(db.backend)
        .run(&db.pool)
        .await
        .map_err(|e| DbError::Migrate {
            schema: schema.to_string(),
            source: e,
        })
}

/// An instant as stored: epoch milliseconds.
pub fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

/// A stored instant; out-of-range values (never written by Herald) read as the epoch.
pub fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use sqlx::Row;

    use super::*;

    #[test]
    fn sqlite_urls_name_a_directory() {
        assert_eq!(
            sqlite_dir("sqlite://herald-data"),
            Some("herald-data".into())
        );
        assert_eq!(
            sqlite_dir("sqlite:///var/lib/herald"),
            Some("/var/lib/herald".into())
        );
        assert_eq!(sqlite_dir("sqlite:data?mode=rwc"), Some("data".into()));
        assert_eq!(sqlite_dir("postgres://x@y/z"), None);
    }

    /// A pragma's value as text, whichever type SQLite answers it in.
    async fn pragma(db: &Database, name: &str) -> anyhow::Result<String> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA {name}")))
            .fetch_one(&db.pool)
            .await?;
        Ok(match row.try_get::<String, _>(0) {
            Ok(text) => text,
            Err(_) => row.try_get::<i64, _>(0)?.to_string(),
        })
    }

    #[tokio::test]
    async fn a_sqlite_store_logs_ahead_syncs_commits_and_checkpoints_late() -> anyhow::Result<()> {
        install_drivers();
        let dir = tempfile::tempdir()?;
        let db = connect_sqlite(dir.path(), "scoring").await?;
        assert_eq!(pragma(&db, "journal_mode").await?, "wal");
        assert_eq!(pragma(&db, "synchronous").await?, "2", "FULL");
        assert_eq!(
            pragma(&db, "wal_autocheckpoint").await?,
            SQLITE_CHECKPOINT_PAGES.to_string()
        );
        Ok(())
    }

    /// Another connection to the file holds its write lock for a moment and commits, while a
    /// transaction that reads first and writes second is begun: begun to write, it waits for the
    /// lock; begun plainly, its write fails with "database is locked".
    #[tokio::test]
    async fn a_transaction_begun_to_write_waits_for_the_lock_its_reads_would_not()
    -> anyhow::Result<()> {
        install_drivers();
        let dir = tempfile::tempdir()?;
        let db = connect_sqlite(dir.path(), "t").await?;
        sqlx::query("CREATE TABLE t (id TEXT PRIMARY KEY)")
            .execute(&db.pool)
            .await?;
        let url = format!("sqlite://{}", dir.path().join("t.sqlite").display());

        async fn hold_the_lock(
            url: &str,
        ) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<()>>> {
            let mut other = sqlx::AnyConnection::connect(url).await?;
            sqlx::query("BEGIN IMMEDIATE").execute(&mut other).await?;
            sqlx::query("INSERT INTO t (id) VALUES ('other')")
                .execute(&mut other)
                .await?;
            Ok(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                sqlx::query("COMMIT").execute(&mut other).await?;
                Ok(())
            }))
        }
        async fn read_then_write(
            tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        ) -> Result<(), sqlx::Error> {
            sqlx::query("SELECT COUNT(*) FROM t")
                .fetch_one(&mut **tx)
                .await?;
            sqlx::query("INSERT INTO t (id) VALUES ('mine')")
                .execute(&mut **tx)
                .await?;
            Ok(())
        }

        let holder = hold_the_lock(&url).await?;
        let mut tx = db.pool.begin().await?;
        let plain = read_then_write(&mut tx).await;
        drop(tx);
        holder.await??;
        let refused = plain.expect_err("a plain transaction's write does not wait");
        assert!(refused.to_string().contains("locked"), "{refused}");
        sqlx::query("DELETE FROM t").execute(&db.pool).await?;

        let holder = hold_the_lock(&url).await?;
        let mut tx = begin_write(&db.pool).await?;
        read_then_write(&mut tx).await?;
        tx.commit().await?;
        holder.await??;
        let ids: Vec<String> = sqlx::query("SELECT id FROM t ORDER BY id")
            .fetch_all(&db.pool)
            .await?
            .iter()
            .map(|r| r.try_get("id"))
            .collect::<Result<_, _>>()?;
        assert_eq!(ids, ["mine", "other"]);
        Ok(())
    }

    #[test]
    fn millis_round_trip() {
        let at = DateTime::parse_from_rfc3339("2025-03-11T08:04:37.123Z")
            .expect("t")
            .with_timezone(&Utc);
        assert_eq!(from_millis(millis(at)), at);
    }
}
