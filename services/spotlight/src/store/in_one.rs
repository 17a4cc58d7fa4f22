//! Counting wins on PostgreSQL in one statement. The transaction the stage otherwise runs (insert
//! the wins, then their ledger entries, announcements, rollup and totals deltas, each its own
//! statement, between a BEGIN and a COMMIT) costs seven round trips for a batch of one win, which
//! is what a low event rate brings: those round trips, not the work, filled the machine at 200
//! events a second. Here the later inserts are data-modifying `WITH` clauses that read which wins
//! the first one inserted, so the whole is one statement: atomic without a transaction, and one
//! round trip. SQLite has no such form; `herald up` keeps the transaction.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use herald_runtime::{
    db::millis,
    store::{batch_query, numbered_rows_from},
};
use prost::Message;
use sqlx::{AnyConnection, Row};

use super::{Counting, WIN_COLUMNS, bind_rollup, bind_total, bind_win, contributions, merged};

/// Bound values at most in one statement: well inside PostgreSQL's 65,535. A batch that needs
/// more is counted in a transaction instead.
const MAX_PARAMETERS: usize = 30_000;

/// Counts `wins` (no id twice) in one statement on `conn` and returns the ids of those that were
/// new, or `None`, having done nothing, when the batch is too large for one statement. Only a
/// new win's ledger entry, announcement and deltas are written, as in the transaction; each win's
/// deltas are merged per key across the batch by the statement's `GROUP BY`.
pub(super) async fn count_wins(
    conn: &mut AnyConnection,
    wins: &[Counting<'_>],
    tz: Tz,
    now: DateTime<Utc>,
) -> Result<Option<HashSet<String>>, sqlx::Error> {
    if wins.is_empty() {
        return Ok(Some(HashSet::new()));
    }
    let contributions: Vec<contributions::Contributions> = wins
        .iter()
        .map(|(win, at, _)| contributions::of(win, *at, tz))
        .collect();
    let mut rollups = Vec::new();
    let mut totals = Vec::new();
    for ((win, _, _), c) in wins.iter().zip(&contributions) {
        let (r, t) = merged(c, 1);
        rollups.extend(r.into_iter().map(|row| (win.id.as_str(), row)));
        totals.extend(t.into_iter().map(|row| (win.id.as_str(), row)));
    }
    let announced: Vec<(&str, &herald_proto::v1::Announcement)> = wins
        .iter()
        .filter_map(|(win, _, a)| a.map(|a| (win.id.as_str(), a)))
        .collect();
    let parameters =
        wins.len() * 15 + 1 + announced.len() * 3 + rollups.len() * 8 + totals.len() * 8;
    if parameters > MAX_PARAMETERS {
        return Ok(None);
    }

    let mut next = 1;
    let mut sql = format!(
        "WITH w AS (INSERT INTO wins ({WIN_COLUMNS}) VALUES {} ON CONFLICT (id) DO NOTHING RETURNING id)",
        numbered_rows_from(&mut next, wins.len(), 15)
    );
    let now_at = next;
    next += 1;
    sql.push_str(&format!(
        ", ledger_rows AS (INSERT INTO ledger (win_id, entry, at) SELECT id, 'counted', ${now_at} FROM w)"
    ));
    if !announced.is_empty() {
        sql.push_str(&format!(
            ", announcement_rows AS (
                 INSERT INTO announcements (id, win_id, kind, payload, created_at)
                 SELECT v.id, v.win_id, 'headline_win', v.payload, ${now_at}
                 FROM (VALUES {}) AS v (id, win_id, payload) JOIN w ON w.id = v.win_id
                 ON CONFLICT DO NOTHING)",
            numbered_rows_from(&mut next, announced.len(), 3)
        ));
    }
    if !rollups.is_empty() {
        sql.push_str(&format!(
            ", rollup_rows AS (
                 INSERT INTO rollup_deltas (period, period_start, scope, subject_id, value_cents, hours_milli, wins)
                 SELECT v.period, v.period_start, v.scope, v.subject_id, SUM(v.value_cents)::bigint,
                        SUM(v.hours_milli)::bigint, SUM(v.wins)::bigint
                 FROM (VALUES {}) AS v (win_id, period, period_start, scope, subject_id, value_cents, hours_milli, wins)
                 JOIN w ON w.id = v.win_id
                 GROUP BY v.period, v.period_start, v.scope, v.subject_id)",
            numbered_rows_from(&mut next, rollups.len(), 8)
        ));
    }
    if !totals.is_empty() {
        sql.push_str(&format!(
            ", total_rows AS (
                 INSERT INTO total_deltas (period, period_start, label, value_cents, hours_milli, people, wins)
                 SELECT v.period, v.period_start, v.label, SUM(v.value_cents)::bigint,
                        SUM(v.hours_milli)::bigint, SUM(v.people)::bigint, SUM(v.wins)::bigint
                 FROM (VALUES {}) AS v (win_id, period, period_start, label, value_cents, hours_milli, people, wins)
                 JOIN w ON w.id = v.win_id
                 GROUP BY v.period, v.period_start, v.label)",
            numbered_rows_from(&mut next, totals.len(), 8)
        ));
    }
    sql.push_str(" SELECT id FROM w");

    let mut query = batch_query(sql);
    for (win, at, _) in wins {
        query = bind_win(query, win, *at, "counted", now);
    }
    query = query.bind(millis(now));
    for (win_id, announcement) in &announced {
        query = query
            .bind(announcement.id.clone())
            .bind(win_id.to_string())
            .bind(announcement.encode_to_vec());
    }
    for (win_id, row) in &rollups {
        query = bind_rollup(query.bind(*win_id), row);
    }
    for (win_id, row) in &totals {
        query = bind_total(query.bind(*win_id), row);
    }
    let rows = query.fetch_all(&mut *conn).await?;
    Ok(Some(
        rows.iter().map(|r| r.get::<String, _>("id")).collect(),
    ))
}
