//! The one error a service's store returns, and what it means for a message being handled: a
//! database that is down comes back (wait for it, without using up the message's deliveries), a
//! stored row that cannot be decoded never will (dead-letter the message now), anything else is
//! retried within the message's delivery budget.

use std::collections::HashSet;

use herald_events::worker::HandleError;
use sqlx::Row;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database error: {0}")]
    Db(#[source] sqlx::Error),
    #[error("stored record {0} cannot be decoded: {1}")]
    Corrupt(String, #[source] prost::DecodeError),
    #[error("stored record {0} cannot be unpacked: {1}")]
    Unpackable(String, #[source] crate::payload::UnpackError),
    #[error("{0}")]
    Sync(#[source] crate::deferred_sync::SyncError),
}

impl From<crate::deferred_sync::SyncError> for Error {
    fn from(e: crate::deferred_sync::SyncError) -> Self {
        Error::Sync(e)
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Error::Db(e)
    }
}

impl Error {
    /// True when trying again cannot help: the stored data or the schema does not match what the
    /// code reads.
    pub fn is_permanent(&self) -> bool {
        match self {
            Error::Corrupt(..) | Error::Unpackable(..) => true,
            Error::Db(e) => is_permanent(e),
            Error::Sync(_) => false,
        }
    }
}

/// `($1, $2, …), ($n+1, …), …`: numbered placeholders for a multi-row `VALUES` of `rows` rows of
/// `columns` values, the form both PostgreSQL and SQLite accept through the `Any` driver (sqlx's
/// `QueryBuilder` writes `?`, which PostgreSQL refuses).
pub fn numbered_rows(rows: usize, columns: usize) -> String {
    numbered_rows_from(&mut 1, rows, columns)
}

/// A statement through the `Any` driver, as the stores build them bind by bind.
pub type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// Statement texts up to this size stay prepared on their connection (100 a connection at most).
const KEPT_PREPARED_UP_TO: usize = 8 * 1024;

/// A statement whose text was built for its batch: kept prepared on its connection while its text
/// is small, run unprepared when it is larger. A batch's text changes with its size; the small
/// shapes (a few rows, what a low rate sends again and again) recur and are worth keeping, the
/// large ones seldom come back, and kept they filled each connection's cache with texts of up to a
/// few hundred kilobytes: spotlight grew from 20 to over 100 MiB under load.
pub fn batch_query(sql: String) -> AnyQuery<'static> {
    let keep = sql.len() <= KEPT_PREPARED_UP_TO;
    sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(keep)
}

/// The bytes of a batch's rows bound as one `bytea` parameter beside their columns
/// ([`crate::pg_arrays`]): each row
/// carries where its own bytes are, read back with `substring($n FROM v.payload_at FOR
/// v.payload_len)`.
#[derive(Debug, Default)]
pub struct Blobs {
    bytes: Vec<u8>,
}

/// A row of a batch with where its bytes are in the batch's [`Blobs`]: from `payload_at`
/// (counted from 1), `payload_len` bytes.
#[derive(Debug, serde::Serialize)]
pub struct Placed<T> {
    #[serde(flatten)]
    pub row: T,
    pub payload_at: usize,
    pub payload_len: usize,
}

impl Blobs {
    /// Appends `bytes` and gives `row` their place.
    pub fn place<T>(&mut self, row: T, bytes: &[u8]) -> Placed<T> {
        let payload_at = self.bytes.len() + 1;
        self.bytes.extend_from_slice(bytes);
        Placed {
            row,
            payload_at,
            payload_len: bytes.len(),
        }
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// [`numbered_rows`] numbered on from `*next` (left one past the last), for a statement that binds
/// several lists: PostgreSQL's data-modifying `WITH` clauses, each with a `VALUES` of its own.
pub fn numbered_rows_from(next: &mut usize, rows: usize, columns: usize) -> String {
    let first = *next;
    *next += rows * columns;
    placeholder_rows(rows, columns, |i| format!("${}", first + i - 1))
}

/// The placeholders of a multi-row `VALUES` for the database `conn` talks to, bound in order:
/// [`numbered_rows`] for PostgreSQL, anonymous `?` for SQLite. SQLite looks a numbered
/// parameter's name up by walking the statement's list of names, so binding `n` of them costs `n²`
/// string comparisons: with a few thousand values a statement, the embedded run mode spent an
/// eighth of its time there. Each `?` must be bound in the order it appears, which `VALUES` rows
/// are.
pub fn value_rows(conn: &sqlx::AnyConnection, rows: usize, columns: usize) -> String {
    if is_postgres(conn) {
        numbered_rows(rows, columns)
    } else {
        placeholder_rows(rows, columns, |_| "?".to_string())
    }
}

/// Whether `conn` talks to PostgreSQL rather than SQLite: the statements only PostgreSQL accepts
/// (data-modifying `WITH`) are chosen by it.
pub fn is_postgres(conn: &sqlx::AnyConnection) -> bool {
    !conn.backend_name().eq_ignore_ascii_case("sqlite")
}

fn placeholder_rows(rows: usize, columns: usize, placeholder: impl Fn(usize) -> String) -> String {
    (0..rows)
        .map(|r| {
            let row = (1..=columns)
                .map(|c| placeholder(r * columns + c))
                .collect::<Vec<_>>()
                .join(", ");
            format!("({row})")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs `insert`, an `INSERT INTO table … ON CONFLICT (id) DO NOTHING` of the rows of `ids`
/// (distinct) with its values bound by `bind`, and returns the ids it inserted: those `table` did
/// not hold before. PostgreSQL says which with `RETURNING id`. On SQLite each row so returned
/// crossed sqlx's row channel (50 deep; the `Any` driver cannot size it), whose worker thread
/// parked on it inside the store's transaction: a `herald up` backfill took about 6 % longer.
/// There the insert's count says whether every id went in, as it does but for a redelivery;
/// otherwise the new rows are the table's last that many by `rowid`: SQLite numbers each new row
/// one past the largest, and the insert left the transaction holding the write lock, so no other
/// writer's rows come after them.
pub async fn insert_new(
    conn: &mut sqlx::AnyConnection,
    table: &'static str,
    insert: String,
    ids: &[&str],
    bind: impl FnOnce(AnyQuery<'static>) -> AnyQuery<'static>,
) -> Result<HashSet<String>, Error> {
    if ids.is_empty() {
        return Ok(HashSet::new());
    }
    if is_postgres(conn) {
        return Ok(bind(batch_query(format!("{insert} RETURNING id")))
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| r.try_get("id"))
            .collect::<Result<_, _>>()?);
    }
    let inserted = bind(batch_query(insert))
        .execute(&mut *conn)
        .await?
        .rows_affected();
    if inserted == ids.len() as u64 {
        return Ok(ids.iter().map(|id| id.to_string()).collect());
    }
    Ok(sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT id FROM {table} ORDER BY rowid DESC LIMIT $1"
    )))
    .bind(inserted as i64)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| r.try_get("id"))
    .collect::<Result<_, _>>()?)
}

/// Rows of `id` and `payload` (a stored protobuf message) decoded in order; a row that cannot be
/// decoded is [`Error::Corrupt`] with its id.
pub fn decode_rows<T: prost::Message + Default>(
    rows: Vec<sqlx::any::AnyRow>,
) -> Result<Vec<T>, Error> {
    use sqlx::Row;
    rows.into_iter()
        .map(|r| {
            let id: String = r.try_get("id")?;
            let payload: Vec<u8> = r.try_get("payload")?;
            decode_payload(&id, &payload)
        })
        .collect()
}

/// The message kept in the payload of the row `id`: packed by [`crate::payload::pack`], or as it
/// was written before payloads were packed.
pub fn decode_payload<T: prost::Message + Default>(id: &str, stored: &[u8]) -> Result<T, Error> {
    let encoded =
        crate::payload::unpack(stored).map_err(|e| Error::Unpackable(id.to_string(), e))?;
    T::decode(encoded.as_ref()).map_err(|e| Error::Corrupt(id.to_string(), e))
}

/// Runs `sql`, which selects `id` and `payload` with `$1` and `$2` the start (inclusive) and end
/// (exclusive) of a time range, and decodes each row's payload: the one shape of every "what
/// happened between" read.
pub async fn payloads_between<T: prost::Message + Default>(
    pool: &sqlx::AnyPool,
    sql: &'static str,
    from: chrono::DateTime<chrono::Utc>,
    to: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<T>, Error> {
    let rows = sqlx::query(sql)
        .bind(crate::db::millis(from))
        .bind(crate::db::millis(to))
        .fetch_all(pool)
        .await?;
    decode_rows(rows)
}

/// sqlx errors about the shape of stored data rather than the database's availability.
pub fn is_permanent(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::Decode(_)
            | sqlx::Error::ColumnNotFound(_)
            | sqlx::Error::ColumnIndexOutOfBounds { .. }
            | sqlx::Error::TypeNotFound { .. }
    )
}

/// sqlx errors that say the database cannot be reached or is not serving right now (rather than
/// anything about the statement or the data): waiting for it is not the message's fault.
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // 08: connection exception; 53: insufficient resources; 57P01-57P03: the server is
        // shutting down or not accepting connections yet.
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || code.starts_with("53") || code.starts_with("57P0")
        }),
        _ => false,
    }
}

impl From<Error> for HandleError {
    fn from(e: Error) -> Self {
        if e.is_permanent() {
            return HandleError::reject(e);
        }
        if matches!(&e, Error::Db(db) if is_unavailable(db)) {
            return HandleError::unavailable(e);
        }
        HandleError::retry(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_rows_count_on_across_rows() {
        assert_eq!(numbered_rows(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(numbered_rows(0, 3), "");
    }

    #[test]
    fn numbered_rows_from_go_on_where_the_last_list_stopped() {
        let mut next = 1;
        assert_eq!(numbered_rows_from(&mut next, 1, 2), "($1, $2)");
        next += 1; // a single value of the statement's own, bound between the lists
        assert_eq!(numbered_rows_from(&mut next, 2, 2), "($4, $5), ($6, $7)");
        assert_eq!(next, 8);
        assert_eq!(numbered_rows_from(&mut next, 0, 2), "");
        assert_eq!(next, 8);
    }

    #[tokio::test]
    async fn sqlite_gets_anonymous_placeholders_bound_in_order() -> anyhow::Result<()> {
        use sqlx::{Connection, Row};
        crate::db::install_drivers();
        let mut conn = sqlx::AnyConnection::connect("sqlite::memory:").await?;
        assert_eq!(value_rows(&conn, 2, 2), "(?, ?), (?, ?)");
        sqlx::query("CREATE TABLE t (a TEXT, b INTEGER)")
            .execute(&mut conn)
            .await?;
        let sql = format!("INSERT INTO t (a, b) VALUES {}", value_rows(&conn, 3, 2));
        let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (a, b) in [("x", 1_i64), ("y", 2), ("z", 3)] {
            insert = insert.bind(a).bind(b);
        }
        insert.execute(&mut conn).await?;
        let rows: Vec<(String, i64)> = sqlx::query("SELECT a, b FROM t ORDER BY rowid")
            .fetch_all(&mut conn)
            .await?
            .iter()
            .map(|r| (r.get("a"), r.get("b")))
            .collect();
        assert_eq!(rows, [("x".into(), 1), ("y".into(), 2), ("z".into(), 3)]);
        Ok(())
    }

    /// Inserts `ids` into `t` through [`insert_new`], each row numbered `n`.
    async fn insert_ids(
        conn: &mut sqlx::AnyConnection,
        ids: &[&str],
        n: i64,
    ) -> Result<HashSet<String>, Error> {
        let sql = format!(
            "INSERT INTO t (id, n) VALUES {} ON CONFLICT (id) DO NOTHING",
            value_rows(conn, ids.len(), 2)
        );
        let binds: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
        insert_new(conn, "t", sql, ids, |query| {
            binds.into_iter().fold(query, |q, id| q.bind(id).bind(n))
        })
        .await
    }

    fn set(ids: &[&str]) -> HashSet<String> {
        ids.iter().map(|id| id.to_string()).collect()
    }

    #[tokio::test]
    async fn insert_new_names_the_ids_the_table_did_not_hold() -> anyhow::Result<()> {
        use sqlx::Connection;
        crate::db::install_drivers();
        let mut conn = sqlx::AnyConnection::connect("sqlite::memory:").await?;
        sqlx::query("CREATE TABLE t (id TEXT PRIMARY KEY, n INTEGER)")
            .execute(&mut conn)
            .await?;
        assert_eq!(
            insert_ids(&mut conn, &["a", "b"], 1).await?,
            set(&["a", "b"])
        );
        // The largest row goes, so a new row could take its number again: still only the new.
        sqlx::query("DELETE FROM t WHERE id = 'b'")
            .execute(&mut conn)
            .await?;
        assert_eq!(
            insert_ids(&mut conn, &["a", "c", "d"], 2).await?,
            set(&["c", "d"])
        );
        assert!(insert_ids(&mut conn, &["c"], 3).await?.is_empty());
        assert!(insert_ids(&mut conn, &[], 4).await?.is_empty());
        let rows: Vec<(String, i64)> = sqlx::query("SELECT id, n FROM t ORDER BY id")
            .fetch_all(&mut conn)
            .await?
            .iter()
            .map(|r| (r.get("id"), r.get("n")))
            .collect();
        assert_eq!(rows, [("a".into(), 1), ("c".into(), 2), ("d".into(), 2)]);
        Ok(())
    }

    #[test]
    fn undecodable_rows_are_rejected_and_outages_retried() {
        let corrupt = Error::Corrupt(
            "win-1".into(),
            <herald_proto::v1::ItsmEvent as prost::Message>::decode(&[0xff_u8][..])
                .expect_err("not a message"),
        );
        assert!(matches!(HandleError::from(corrupt), HandleError::Reject(_)));
        let decode = Error::Db(sqlx::Error::ColumnDecode {
            index: "payload".into(),
            source: "not bytes".into(),
        });
        assert!(matches!(HandleError::from(decode), HandleError::Reject(_)));
        let outage = Error::Db(sqlx::Error::PoolTimedOut);
        let handled = HandleError::from(outage);
        assert!(
            matches!(handled, HandleError::Unavailable(_)),
            "a database down is no fault of the message"
        );
        let missing = Error::Db(sqlx::Error::RowNotFound);
        assert!(matches!(HandleError::from(missing), HandleError::Retry(_)));
        // The cause travels with the error instead of being flattened into a string.
        assert!(std::error::Error::source(&handled).is_some());
    }
}
