//! The poller's position in each table, kept in ingest's database so a restart resumes where the
//! last run stopped instead of re-reading (or skipping) history.

use chrono::{DateTime, NaiveDateTime, Utc};
use herald_runtime::db::{from_millis, millis};
use sqlx::{AnyPool, Row as _};

/// ServiceNow's date-time format: UTC, no zone designator.
const SN_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// A position in a table ordered by `sys_updated_on`, then `sys_id`: the last row handled. Rows
/// that compare at or below it have been handled. Field order matters: the derived ordering is
/// (updated_on, sys_id), the order the poller asks ServiceNow for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    pub updated_on: DateTime<Utc>,
    pub sys_id: String,
}

impl Cursor {
    /// A cursor before every row updated at or after `at` (truncated to the second, ServiceNow's
    /// resolution, so no row of that second is missed).
    pub fn before(at: DateTime<Utc>) -> Self {
        let seconds = at.timestamp();
        Self {
            updated_on: DateTime::from_timestamp(seconds, 0).unwrap_or(at),
            sys_id: String::new(),
        }
    }

    /// `sys_updated_on` as the Table API writes and reads it.
    pub fn updated_on_text(&self) -> String {
        format_sn(self.updated_on)
    }
}

pub fn format_sn(at: DateTime<Utc>) -> String {
    at.format(SN_FORMAT).to_string()
}

pub fn parse_sn(text: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(text.trim(), SN_FORMAT)
        .ok()
        .map(|n| n.and_utc())
}

#[derive(Debug, thiserror::Error)]
#[error("poll cursor store: {0}")]
pub struct CursorError(#[from] sqlx::Error);

/// The `poll_cursors` table, for one instance.
#[derive(Clone)]
pub struct CursorStore {
    pool: AnyPool,
    instance: String,
}

impl CursorStore {
    pub fn new(pool: AnyPool, instance: impl Into<String>) -> Self {
        Self {
            pool,
            instance: instance.into(),
        }
    }

    pub async fn load(&self, table: &str) -> Result<Option<Cursor>, CursorError> {
        let row = sqlx::query(
            "SELECT updated_on, sys_id FROM poll_cursors WHERE instance = $1 AND table_name = $2",
        )
        .bind(&self.instance)
        .bind(table)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(row) => Some(Cursor {
                updated_on: from_millis(row.try_get::<i64, _>(0)?),
                sys_id: row.try_get::<String, _>(1)?,
            }),
            None => None,
        })
    }

    /// The stored cursor, or `initial` stored now: "24 hours before the first start" must stay
    /// the first start's, not move with every restart.
    pub async fn load_or_init(&self, table: &str, initial: Cursor) -> Result<Cursor, CursorError> {
        if let Some(cursor) = self.load(table).await? {
            return Ok(cursor);
        }
        // Two replicas starting together may both get here; the first insert wins and both read it.
        sqlx::query(
            "INSERT INTO poll_cursors (instance, table_name, updated_on, sys_id, saved_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (instance, table_name) DO NOTHING",
        )
        .bind(&self.instance)
        .bind(table)
        .bind(millis(initial.updated_on))
        .bind(&initial.sys_id)
        .bind(millis(Utc::now()))
        .execute(&self.pool)
        .await?;
        Ok(self.load(table).await?.unwrap_or(initial))
    }

    /// Moves the cursor forward; never back, so a replica that fell behind cannot undo another's
    /// progress.
    pub async fn save(&self, table: &str, cursor: &Cursor) -> Result<(), CursorError> {
        let updated_on = millis(cursor.updated_on);
        sqlx::query(
            "INSERT INTO poll_cursors (instance, table_name, updated_on, sys_id, saved_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (instance, table_name) DO UPDATE
               SET updated_on = excluded.updated_on, sys_id = excluded.sys_id,
                   saved_at = excluded.saved_at
             WHERE poll_cursors.updated_on < excluded.updated_on
                OR (poll_cursors.updated_on = excluded.updated_on
                    AND poll_cursors.sys_id < excluded.sys_id)",
        )
        .bind(&self.instance)
        .bind(table)
        .bind(updated_on)
        .bind(&cursor.sys_id)
        .bind(millis(Utc::now()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_order_by_time_then_sys_id() {
        let at = |s: &str| parse_sn(s).expect("date");
        let a = Cursor {
            updated_on: at("2025-03-11 08:04:37"),
            sys_id: "b".into(),
        };
        let same_second_lower = Cursor {
            sys_id: "a".into(),
            ..a.clone()
        };
        let later = Cursor {
            updated_on: at("2025-03-11 08:04:38"),
            sys_id: "0".into(),
        };
        assert!(same_second_lower < a);
        assert!(a < later);
        assert!(Cursor::before(at("2025-03-11 08:04:37")) < same_second_lower);
    }

    #[test]
    fn before_truncates_to_the_second() -> Result<(), chrono::ParseError> {
        let at = DateTime::parse_from_rfc3339("2025-03-10T12:30:45.750Z")?.with_timezone(&Utc);
        assert_eq!(Cursor::before(at).updated_on_text(), "2025-03-10 12:30:45");
        Ok(())
    }

    /// The store's SQL on SQLite (`herald up`); PostgreSQL runs it in tests/it/poller.rs.
    #[tokio::test]
    async fn the_store_moves_forward_only_on_sqlite() -> anyhow::Result<()> {
        use herald_runtime::{Secret, config::DatabaseConfig, db};
        let dir = tempfile::tempdir()?;
        let config = DatabaseConfig {
            url: Secret::new(format!("sqlite://{}", dir.path().display())),
            max_connections: 1,
        };
        let database = db::connect(&config, "ingest").await?;
        db::migrate(&database, "ingest", &herald_runtime::migrations!()).await?;
        let store = CursorStore::new(database.pool.clone(), "https://x.service-now.com");
        let other = CursorStore::new(database.pool, "https://y.service-now.com");
        let at = |s: &str| parse_sn(s).unwrap_or_default();
        let initial = Cursor::before(at("2025-03-10 00:00:00"));

        assert_eq!(store.load("incident").await?, None);
        assert_eq!(
            store.load_or_init("incident", initial.clone()).await?,
            initial
        );
        // A second start keeps the first start's cursor, not its own idea of "24 hours ago".
        let later = Cursor::before(at("2025-03-11 00:00:00"));
        assert_eq!(store.load_or_init("incident", later).await?, initial);

        let moved = Cursor {
            updated_on: at("2025-03-11 08:04:37"),
            sys_id: "b".into(),
        };
        store.save("incident", &moved).await?;
        assert_eq!(store.load("incident").await?, Some(moved.clone()));
        let behind = Cursor {
            sys_id: "a".into(),
            ..moved.clone()
        };
        store.save("incident", &behind).await?;
        assert_eq!(
            store.load("incident").await?,
            Some(moved),
            "never moves back"
        );
        assert_eq!(store.load("problem").await?, None);
        assert_eq!(
            other.load("incident").await?,
            None,
            "cursors are per instance"
        );
        Ok(())
    }
}
