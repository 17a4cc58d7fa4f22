//! What a backfilled row cost PostgreSQL: the write transactions and the log it wrote for each row,
//! how much each table and index grew, and, when the server loads `pg_stat_statements`, which
//! statements took its time. A backfill is where a row's fixed cost shows most plainly (no
//! announcements, big batches), and these are the figures that say whether that cost is in
//! Herald's statements or around them, read in every run instead of by hand.

use std::collections::HashMap;

use serde::Serialize;
use sqlx::{Connection, Row, postgres::PgConnection};

/// How many relations and statements the report names: the rest are small beside them.
const LISTED: usize = 8;

/// How long to wait after a backfill before reading the server's counters. A backend reports its
/// log statistics (`pg_stat_wal`) at most once a second; one that goes idle with some unreported
/// reports them within ten seconds (PostgreSQL's `PGSTAT_IDLE_INTERVAL`). Without the wait a
/// run's last batches, or all of a short run, would be missing.
const STATISTICS_SETTLE: std::time::Duration = std::time::Duration::from_secs(11);

/// The server's counters before a backfill, to subtract from those after it.
pub struct Before {
    url: String,
    counters: Counters,
    /// Whether `pg_stat_statements` was reset for this run and can be read after it.
    statements: bool,
}

struct Counters {
    /// The next transaction id: every transaction that wrote takes one.
    next_xid: i64,
    /// Bytes of log inserted so far (exact, read from the log's position).
    wal_bytes: i64,
    /// Log records and full-page images so far (`pg_stat_wal`, PostgreSQL 14 on), as the backends
    /// have reported them (see [`STATISTICS_SETTLE`]).
    wal_records: Option<(i64, i64)>,
    /// Bytes of each table and index, by `schema.name`.
    sizes: HashMap<String, i64>,
}

/// What the server wrote for each row of the backfill.
#[derive(Debug, Clone, Serialize)]
pub struct PostgresCost {
    pub write_transactions_per_row: f64,
    pub wal_bytes_per_row: f64,
    pub wal_records_per_row: Option<f64>,
    pub wal_full_page_images_per_row: Option<f64>,
    /// The tables and indexes that grew most, in bytes a row.
    pub relations: Vec<Growth>,
    /// The statements that took most of the server's time, when `pg_stat_statements` is loaded
    /// (`HERALD_TEST_PG_SETTINGS="shared_preload_libraries=pg_stat_statements"`).
    pub statements: Option<Vec<Statement>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Growth {
    pub relation: String,
    pub bytes_per_row: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Statement {
    /// The statement's text, its whitespace folded, cut to its first words.
    pub statement: String,
    pub calls: i64,
    pub rows_per_call: f64,
    /// Time inside the statement, in microseconds a backfilled row: waits for locks, the disk and
    /// a core included, so the sum can exceed the server's CPU.
    pub us_per_row: f64,
    pub wal_bytes_per_row: f64,
}

impl Before {
    /// Reads the counters of the database at `url` (and resets `pg_stat_statements` where the
    /// server loads it).
    pub async fn take(url: &str) -> anyhow::Result<Self> {
        let mut conn = PgConnection::connect(url).await?;
        let preloaded: String = sqlx::query_scalar("SHOW shared_preload_libraries")
            .fetch_one(&mut conn)
            .await?;
        let statements = preloaded.contains("pg_stat_statements");
        if statements {
            sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
                .execute(&mut conn)
                .await?;
            sqlx::query("SELECT pg_stat_statements_reset()")
                .execute(&mut conn)
                .await?;
        }
        let counters = Counters::read(&mut conn).await?;
        conn.close().await?;
        Ok(Self {
            url: url.to_string(),
            counters,
            statements,
        })
    }

    /// What the server wrote since, for each of `rows`: read once the backends have reported
    /// their statistics, so it includes what the services wrote in that wait (next to nothing once
    /// every row is counted).
    pub async fn cost(&self, rows: u64) -> anyhow::Result<PostgresCost> {
        tokio::time::sleep(STATISTICS_SETTLE).await;
        let mut conn = PgConnection::connect(&self.url).await?;
        let after = Counters::read(&mut conn).await?;
        let statements = if self.statements {
            Some(statements(&mut conn, rows).await?)
        } else {
            None
        };
        conn.close().await?;
        let per_row = |n: i64| n as f64 / rows.max(1) as f64;
        let (before, now) = (&self.counters, &after);
        let wal = before.wal_records.zip(now.wal_records);
        let mut relations: Vec<Growth> = now
            .sizes
            .iter()
            .map(|(relation, bytes)| Growth {
                relation: relation.clone(),
                bytes_per_row: per_row(bytes - before.sizes.get(relation).copied().unwrap_or(0)),
            })
            .filter(|g| g.bytes_per_row > 0.0)
            .collect();
        relations.sort_by(|a, b| b.bytes_per_row.total_cmp(&a.bytes_per_row));
        relations.truncate(LISTED);
        Ok(PostgresCost {
            write_transactions_per_row: per_row(now.next_xid - before.next_xid),
            wal_bytes_per_row: per_row(now.wal_bytes - before.wal_bytes),
            wal_records_per_row: wal.map(|((r0, _), (r1, _))| per_row(r1 - r0)),
            wal_full_page_images_per_row: wal.map(|((_, f0), (_, f1))| per_row(f1 - f0)),
            relations,
            statements,
        })
    }
}

impl Counters {
    async fn read(conn: &mut PgConnection) -> anyhow::Result<Self> {
        let row = sqlx::query(
            "SELECT txid_snapshot_xmax(txid_current_snapshot()) AS next_xid,
                    (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint AS wal_bytes",
        )
        .fetch_one(&mut *conn)
        .await?;
        // Older servers have no `pg_stat_wal`: the records are then left out, not guessed.
        let wal_records = sqlx::query("SELECT wal_records, wal_fpi FROM pg_stat_wal")
            .fetch_one(&mut *conn)
            .await
            .ok()
            .and_then(|r| Some((r.try_get("wal_records").ok()?, r.try_get("wal_fpi").ok()?)));
        let sizes = sqlx::query(
            "SELECT n.nspname || '.' || c.relname AS relation, pg_relation_size(c.oid) AS bytes
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'i')
               AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')",
        )
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("relation")?, r.try_get("bytes")?)))
        .collect::<Result<_, sqlx::Error>>()?;
        Ok(Self {
            next_xid: row.try_get("next_xid")?,
            wal_bytes: row.try_get("wal_bytes")?,
            wal_records,
            sizes,
        })
    }
}

async fn statements(conn: &mut PgConnection, rows: u64) -> anyhow::Result<Vec<Statement>> {
    let rows = rows.max(1) as f64;
    Ok(sqlx::query(
        "SELECT regexp_replace(query, '\\s+', ' ', 'g') AS statement, calls,
                rows::float8 AS returned, total_exec_time AS ms, wal_bytes::float8 AS wal_bytes
         FROM pg_stat_statements
         WHERE query NOT LIKE '%pg_stat_statements%'
         ORDER BY total_exec_time DESC
         LIMIT $1",
    )
    .bind(LISTED as i64)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| {
        let calls: i64 = r.try_get("calls")?;
        let statement: String = r.try_get("statement")?;
        Ok(Statement {
            statement: first_words(&statement, 72),
            calls,
            rows_per_call: r.try_get::<f64, _>("returned")? / calls.max(1) as f64,
            us_per_row: r.try_get::<f64, _>("ms")? * 1000.0 / rows,
            wal_bytes_per_row: r.try_get::<f64, _>("wal_bytes")? / rows,
        })
    })
    .collect::<Result<_, sqlx::Error>>()?)
}

/// `text` cut at a character boundary to at most `max` bytes, with an ellipsis when cut.
fn first_words(text: &str, max: usize) -> String {
    let text = text.trim();
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// One paragraph for a mode's backfill: what PostgreSQL wrote a row.
pub fn markdown(mode: &str, cost: &PostgresCost) -> String {
    let mut out = format!(
        "{mode}: PostgreSQL wrote, a row, {:.3} write transactions and {:.1} KB of log",
        cost.write_transactions_per_row,
        cost.wal_bytes_per_row / 1000.0
    );
    if let (Some(records), Some(images)) =
        (cost.wal_records_per_row, cost.wal_full_page_images_per_row)
    {
        out.push_str(&format!(
            " in {records:.1} records ({images:.3} of them full-page images)"
        ));
    }
    out.push_str(". Grown a row: ");
    out.push_str(
        &cost
            .relations
            .iter()
            .map(|g| format!("{} {:.0} B", g.relation, g.bytes_per_row))
            .collect::<Vec<_>>()
            .join(", "),
    );
    out.push('.');
    if let Some(statements) = &cost.statements {
        out.push_str(
            "\n\n| statement (`pg_stat_statements`) | calls | rows a call | µs a backfilled row | log bytes a row |\n|---|---|---|---|---|\n",
        );
        for s in statements {
            out.push_str(&format!(
                "| `{}` | {} | {:.1} | {:.1} | {:.0} |\n",
                s.statement.replace('|', "\\|").replace('`', "'"),
                s.calls,
                s.rows_per_call,
                s.us_per_row,
                s.wal_bytes_per_row
            ));
        }
    }
    out.push_str("\n\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_statement_is_cut_at_a_character_boundary() {
        assert_eq!(first_words("  SELECT 1  ", 72), "SELECT 1");
        assert_eq!(first_words("INSERT INTO wins", 6), "INSERT…");
        // "é" is two bytes: a cut inside it moves back before it.
        assert_eq!(first_words("café au lait", 4), "caf…");
    }

    #[test]
    fn the_paragraph_names_the_log_the_relations_and_the_statements() {
        let cost = PostgresCost {
            write_transactions_per_row: 0.012,
            wal_bytes_per_row: 5_812.0,
            wal_records_per_row: Some(28.5),
            wal_full_page_images_per_row: Some(0.053),
            relations: vec![Growth {
                relation: "scoring.wins".into(),
                bytes_per_row: 1_613.0,
            }],
            statements: Some(vec![Statement {
                statement: "WITH w AS ( INSERT INTO wins | x".into(),
                calls: 5_063,
                rows_per_call: 58.2,
                us_per_row: 124.5,
                wal_bytes_per_row: 1_765.0,
            }]),
        };
        let text = markdown("distributed", &cost);
        assert!(
            text.starts_with(
                "distributed: PostgreSQL wrote, a row, 0.012 write transactions and 5.8 KB of log \
                 in 28.5 records (0.053 of them full-page images). Grown a row: scoring.wins 1613 B."
            ),
            "{text}"
        );
        assert!(
            text.contains("| `WITH w AS ( INSERT INTO wins \\| x` | 5063 | 58.2 | 124.5 | 1765 |"),
            "{text}"
        );
        let without = PostgresCost {
            wal_records_per_row: None,
            wal_full_page_images_per_row: None,
            statements: None,
            ..cost
        };
        let text = markdown("distributed", &without);
        assert!(
            !text.contains("records") && !text.contains("| statement"),
            "{text}"
        );
    }
}
