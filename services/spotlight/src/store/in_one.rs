//! Counting wins on PostgreSQL in one statement. The transaction the stage otherwise runs (insert
//! the wins, then their ledger entries, announcements, rollup and totals deltas, each its own
//! statement, between a BEGIN and a COMMIT) costs seven round trips for a batch of one win, which
//! is what a low event rate brings: those round trips, not the work, filled the machine at 200
//! events a second. Here the later inserts are data-modifying `WITH` clauses that read which wins
//! the first one inserted, so the whole is one statement: atomic without a transaction, and one
//! round trip. SQLite has no such form; `herald up` keeps the transaction. Each list is one JSON
//! parameter ([`json_rows`]), so the statement's text never changes.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use herald_runtime::{
    db::millis,
    payload::pack,
    store::{Blobs, Placed, json_rows},
};
use prost::Message;
use serde::Serialize;
use sqlx::{AnyConnection, Row};

use super::{Counting, WinRow, contributions, merged};

/// The statement: the same text for every batch, so each connection parses and plans it once. Its
/// parameters: the wins ($1), the time of the batch ($2), then the announcements ($3), rollup
/// deltas ($4) and totals deltas ($5), each a JSON array (`[]` when there are none), and the
/// payloads of the wins and announcements ($6, one `bytea`, each row saying where its own is).
const COUNT_WINS: &str = "
    WITH w AS (
        INSERT INTO wins (id, kind, occurred_at, business_service, team, label, amount, hours, users,
                          headline, payload, counted_at, status, revoked_at, status_reason)
        SELECT v.id, v.kind, v.occurred_at, v.business_service, v.team, v.label, v.amount, v.hours,
               v.users, v.headline, substring($6 FROM v.payload_at FOR v.payload_len),
               v.counted_at, v.status, v.revoked_at, v.status_reason
        FROM json_to_recordset($1::text::json) AS v (
                 id text, kind text, occurred_at bigint, business_service text, team text,
                 label text, amount float8, hours float8, users float8, headline text,
                 payload_at int, payload_len int, counted_at bigint, status text,
                 revoked_at bigint, status_reason text)
        ON CONFLICT (id) DO NOTHING RETURNING id),
    ledger_rows AS (INSERT INTO ledger (win_id, entry, at) SELECT id, 'counted', $2 FROM w),
    announcement_rows AS (
        INSERT INTO announcements (id, win_id, kind, payload, created_at)
        SELECT v.id, v.win_id, 'headline_win',
               substring($6 FROM v.payload_at FOR v.payload_len), $2
        FROM json_to_recordset($3::text::json)
             AS v (id text, win_id text, payload_at int, payload_len int)
        JOIN w ON w.id = v.win_id
        ON CONFLICT DO NOTHING),
    rollup_rows AS (
        INSERT INTO rollup_deltas (period, period_start, scope, subject_id, value_cents, hours_milli, wins)
        SELECT v.period, v.period_start, v.scope, v.subject_id, SUM(v.value_cents)::bigint,
               SUM(v.hours_milli)::bigint, SUM(v.wins)::bigint
        FROM json_to_recordset($4::text::json) AS v (
                 win_id text, period text, period_start text, scope text, subject_id text,
                 value_cents bigint, hours_milli bigint, wins bigint)
        JOIN w ON w.id = v.win_id
        GROUP BY v.period, v.period_start, v.scope, v.subject_id),
    total_rows AS (
        INSERT INTO total_deltas (period, period_start, label, value_cents, hours_milli, people, wins)
        SELECT v.period, v.period_start, v.label, SUM(v.value_cents)::bigint,
               SUM(v.hours_milli)::bigint, SUM(v.people)::bigint, SUM(v.wins)::bigint
        FROM json_to_recordset($5::text::json) AS v (
                 win_id text, period text, period_start text, label text, value_cents bigint,
                 hours_milli bigint, people bigint, wins bigint)
        JOIN w ON w.id = v.win_id
        GROUP BY v.period, v.period_start, v.label)
    SELECT id FROM w";

#[derive(Serialize)]
struct AnnouncementRow<'a> {
    id: &'a str,
    win_id: &'a str,
}

#[derive(Serialize)]
struct RollupDelta<'a> {
    win_id: &'a str,
    period: &'a str,
    period_start: &'a str,
    scope: &'a str,
    subject_id: &'a str,
    value_cents: i64,
    hours_milli: i64,
    wins: i64,
}

#[derive(Serialize)]
struct TotalDelta<'a> {
    win_id: &'a str,
    period: &'a str,
    period_start: &'a str,
    label: &'a str,
    value_cents: i64,
    hours_milli: i64,
    people: i64,
    wins: i64,
}

/// Counts `wins` (no id twice) in one statement on `conn` and returns the ids of those that were
/// new, or `None`, having done nothing, when a win carries a figure JSON cannot hold (not a finite
/// number): the transaction counts it instead. Only a new win's ledger entry, announcement and
/// deltas are written, as in the transaction; each win's deltas are merged per key across the
/// batch by the statement's `GROUP BY`.
pub(super) async fn count_wins(
    conn: &mut AnyConnection,
    wins: &[Counting<'_>],
    tz: Tz,
    now: DateTime<Utc>,
) -> Result<Option<HashSet<String>>, sqlx::Error> {
    if wins.is_empty() {
        return Ok(Some(HashSet::new()));
    }
    let mut payloads = Blobs::default();
    let win_rows: Vec<Placed<WinRow<'_>>> = wins
        .iter()
        .map(|(win, at, _)| {
            payloads.place(
                WinRow::of(win, *at, "counted", now),
                &pack(win.encode_to_vec()),
            )
        })
        .collect();
    if !win_rows.iter().all(|placed| placed.row.is_finite()) {
        return Ok(None);
    }
    let contributions: Vec<contributions::Contributions> = wins
        .iter()
        .map(|(win, at, _)| contributions::of(win, *at, tz))
        .collect();
    let mut rollups = Vec::new();
    let mut totals = Vec::new();
    for ((win, _, _), c) in wins.iter().zip(&contributions) {
        let (r, t) = merged(c, 1);
        rollups.extend(
            r.into_iter().map(
                |([period, period_start, scope, subject_id], a)| RollupDelta {
                    win_id: &win.id,
                    period,
                    period_start,
                    scope,
                    subject_id,
                    value_cents: a.value_cents,
                    hours_milli: a.hours_milli,
                    wins: a.wins,
                },
            ),
        );
        totals.extend(
            t.into_iter()
                .map(|([period, period_start, label], a)| TotalDelta {
                    win_id: &win.id,
                    period,
                    period_start,
                    label,
                    value_cents: a.value_cents,
                    hours_milli: a.hours_milli,
                    people: a.people,
                    wins: a.wins,
                }),
        );
    }
    let announced: Vec<Placed<AnnouncementRow<'_>>> = wins
        .iter()
        .filter_map(|(win, _, a)| {
            a.map(|a| {
                let row = AnnouncementRow {
                    id: &a.id,
                    win_id: &win.id,
                };
                payloads.place(row, &a.encode_to_vec())
            })
        })
        .collect();

    let rows = sqlx::query(COUNT_WINS)
        .bind(json_rows(&win_rows)?)
        .bind(millis(now))
        .bind(json_rows(&announced)?)
        .bind(json_rows(&rollups)?)
        .bind(json_rows(&totals)?)
        .bind(payloads.into_bytes())
        .fetch_all(&mut *conn)
        .await?;
    Ok(Some(
        rows.iter().map(|r| r.get::<String, _>("id")).collect(),
    ))
}
