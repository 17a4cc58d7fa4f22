//! Counting wins on PostgreSQL in one statement. The transaction the stage otherwise runs (insert
//! the wins, then their announcements, rollup and totals deltas, each its own statement, between a
//! BEGIN and a COMMIT) costs six round trips for a batch of one win, which is what a low event
//! rate brings: those round trips, not the work, filled the machine at 200 events a second. Here
//! the later inserts are data-modifying `WITH` clauses that read which wins the first one
//! inserted, so the whole is one statement: atomic without a transaction, and one round trip.
//! SQLite has no such form; `herald up` keeps the transaction. Each list is bound column by
//! column as arrays ([`pg_arrays`]), so the statement's text never changes.

use std::{collections::HashSet, sync::LazyLock};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use herald_runtime::{
    db::millis,
    deferred_sync::PG_UNSYNCED_COMMIT,
    payload::pack,
    pg_arrays::{self, Column},
    store::{Blobs, Placed},
};
use prost::Message;
use serde::Serialize;
use sqlx::{AnyConnection, Row};

use super::{Counting, WinRow, contributions, merged};

const WIN_COLUMNS: &[Column] = &[
    ("id", "text"),
    ("kind", "text"),
    ("occurred_at", "bigint"),
    ("business_service", "text"),
    ("team", "text"),
    ("label", "text"),
    ("amount", "float8"),
    ("hours", "float8"),
    ("users", "float8"),
    ("headline", "text"),
    ("payload_at", "int"),
    ("payload_len", "int"),
    ("counted_at", "bigint"),
    ("status", "text"),
    ("revoked_at", "bigint"),
    ("status_reason", "text"),
];

const ANNOUNCEMENT_COLUMNS: &[Column] = &[
    ("id", "text"),
    ("win_id", "text"),
    ("payload_at", "int"),
    ("payload_len", "int"),
];

const ROLLUP_COLUMNS: &[Column] = &[
    ("win_id", "text"),
    ("period", "text"),
    ("period_start", "text"),
    ("scope", "text"),
    ("subject_id", "text"),
    ("value_cents", "bigint"),
    ("hours_milli", "bigint"),
    ("wins", "bigint"),
];

const TOTAL_COLUMNS: &[Column] = &[
    ("win_id", "text"),
    ("period", "text"),
    ("period_start", "text"),
    ("label", "text"),
    ("value_cents", "bigint"),
    ("hours_milli", "bigint"),
    ("people", "bigint"),
    ("wins", "bigint"),
];

/// The statement: the same text for every batch, so each connection parses and plans it once. It
/// commits without waiting for PostgreSQL's log flush ([`PG_UNSYNCED_COMMIT`]): the stage syncs
/// after it publishes the announcements and before it acknowledges the wins. Its
/// parameters: the wins' columns, the time of the batch, then the announcements', rollup deltas'
/// and totals deltas' columns (each column an array, empty when there are none), and the payloads
/// of the wins and announcements (one `bytea`, each row saying where its own is).
static COUNT_WINS: LazyLock<String> = LazyLock::new(|| {
    let now = WIN_COLUMNS.len() + 1;
    let announcements = now + 1;
    let rollups = announcements + ANNOUNCEMENT_COLUMNS.len();
    let totals = rollups + ROLLUP_COLUMNS.len();
    let payloads = totals + TOTAL_COLUMNS.len();
    format!(
        "WITH w AS (
            INSERT INTO wins (id, kind, occurred_at, business_service, team, label, amount, hours,
                              users, headline, payload, counted_at, status, revoked_at,
                              status_reason)
            SELECT v.id, v.kind, v.occurred_at, v.business_service, v.team, v.label, v.amount,
                   v.hours, v.users, v.headline,
                   substring(${payloads} FROM v.payload_at FOR v.payload_len), v.counted_at,
                   v.status, v.revoked_at, v.status_reason
            FROM {wins}
            ON CONFLICT (id) DO NOTHING RETURNING id),
        announcement_rows AS (
            INSERT INTO announcements (id, win_id, kind, payload, created_at)
            SELECT v.id, v.win_id, 'headline_win',
                   substring(${payloads} FROM v.payload_at FOR v.payload_len), ${now}
            FROM {announcement_rows}
            JOIN w ON w.id = v.win_id
            ON CONFLICT DO NOTHING),
        rollup_rows AS (
            INSERT INTO rollup_deltas (period, period_start, scope, subject_id, value_cents,
                                       hours_milli, wins)
            SELECT v.period, v.period_start, v.scope, v.subject_id, SUM(v.value_cents)::bigint,
                   SUM(v.hours_milli)::bigint, SUM(v.wins)::bigint
            FROM {rollup_rows}
            JOIN w ON w.id = v.win_id
            GROUP BY v.period, v.period_start, v.scope, v.subject_id),
        total_rows AS (
            INSERT INTO total_deltas (period, period_start, label, value_cents, hours_milli,
                                      people, wins)
            SELECT v.period, v.period_start, v.label, SUM(v.value_cents)::bigint,
                   SUM(v.hours_milli)::bigint, SUM(v.people)::bigint, SUM(v.wins)::bigint
            FROM {total_rows}
            JOIN w ON w.id = v.win_id
            GROUP BY v.period, v.period_start, v.label)
        SELECT id FROM w WHERE {unsynced} IS NOT NULL",
        wins = pg_arrays::unnest(1, WIN_COLUMNS, "v"),
        announcement_rows = pg_arrays::unnest(announcements, ANNOUNCEMENT_COLUMNS, "v"),
        rollup_rows = pg_arrays::unnest(rollups, ROLLUP_COLUMNS, "v"),
        total_rows = pg_arrays::unnest(totals, TOTAL_COLUMNS, "v"),
        unsynced = PG_UNSYNCED_COMMIT,
    )
});

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
/// new, or `None`, having done nothing, when a win carries a figure that is not a finite number
/// (the arrays refuse one): the transaction counts it instead. Only a new win's announcement and
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
                payloads.place(row, &pack(a.encode_to_vec()))
            })
        })
        .collect();

    let query = pg_arrays::bind(sqlx::query(COUNT_WINS.as_str()), &win_rows, WIN_COLUMNS)?;
    let query = pg_arrays::bind(query.bind(millis(now)), &announced, ANNOUNCEMENT_COLUMNS)?;
    let query = pg_arrays::bind(query, &rollups, ROLLUP_COLUMNS)?;
    let rows = pg_arrays::bind(query, &totals, TOTAL_COLUMNS)?
        .bind(payloads.into_bytes())
        .fetch_all(&mut *conn)
        .await?;
    Ok(Some(
        rows.iter().map(|r| r.get::<String, _>("id")).collect(),
    ))
}
