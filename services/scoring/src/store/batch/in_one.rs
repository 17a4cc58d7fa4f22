//! A run's new wins on PostgreSQL in one statement: the wins' insert first, then their person
//! credits and ledger lines as data-modifying `WITH` clauses joined to the ids it inserted, so only
//! a win actually made gets them (as [`super::writes`] does in three statements, which at a low
//! event rate, a run of one event, were three round trips of the dozen a run costs). SQLite has no
//! data-modifying `WITH`; `herald up` keeps the three statements. Each list is bound column by
//! column as arrays ([`pg_arrays`]), so the statement's text never changes.

use std::{collections::HashSet, sync::LazyLock};

use chrono::{DateTime, Utc};
use herald_proto::v1::Win;
use herald_runtime::{
    db::millis,
    payload::pack,
    pg_arrays::{self, Column},
    store::{Blobs, Placed},
};
use prost::Message;
use serde::Serialize;
use sqlx::{Any, Row, Transaction};

use super::super::StoreError;
use super::writes::{self, Entry, NewWin, WinRow};

/// A new win's columns, bound as arrays in this order (`payload_at` and `payload_len` say where its
/// payload is in the batch's bytes).
const WIN_COLUMNS: &[Column] = &[
    ("id", "text"),
    ("outcome_key", "text"),
    ("event_id", "text"),
    ("source", "text"),
    ("kind", "text"),
    ("record_number", "text"),
    ("occurred_at", "bigint"),
    ("business_service", "text"),
    ("team", "text"),
    ("label", "text"),
    ("amount", "float8"),
    ("currency", "text"),
    ("hours", "float8"),
    ("headline", "text"),
    ("payload_at", "int"),
    ("payload_len", "int"),
    ("created_at", "bigint"),
    ("status", "text"),
    ("outcome_at", "bigint"),
    ("confirm_at", "bigint"),
    ("revocable_until", "bigint"),
    ("configuration_item", "text"),
    ("status_reason", "text"),
    ("status_at", "bigint"),
];

const CREDIT_COLUMNS: &[Column] = &[
    ("win_id", "text"),
    ("outcome_at", "bigint"),
    ("person", "text"),
    ("amount", "float8"),
];

const LEDGER_COLUMNS: &[Column] = &[
    ("n", "bigint"),
    ("win_id", "text"),
    ("entry", "text"),
    ("amount", "float8"),
    ("reason", "text"),
];

/// The statement: the same text for every run, so each connection parses and plans it once. Its
/// parameters: the wins' columns, the time of the run, the person credits' and the ledger lines'
/// columns (each column an array, empty when there are none), then the wins' payloads (one
/// `bytea`, each win saying where its own is). The ledger's sequence numbers follow the lines'
/// order (`ORDER BY v.n`): a win's "credited" line comes before its "revoked" one.
static RECORD_WINS: LazyLock<String> = LazyLock::new(|| {
    let now = WIN_COLUMNS.len() + 1;
    let credits = now + 1;
    let ledger = credits + CREDIT_COLUMNS.len();
    let payloads = ledger + LEDGER_COLUMNS.len();
    format!(
        "WITH w AS (
             INSERT INTO wins (id, outcome_key, event_id, source, kind, record_number, occurred_at,
                               business_service, team, label, amount, currency, hours, headline,
                               payload, created_at, status, outcome_at, confirm_at, revocable_until,
                               configuration_item, status_reason, status_at)
             SELECT v.id, v.outcome_key, v.event_id, v.source, v.kind, v.record_number,
                    v.occurred_at, v.business_service, v.team, v.label, v.amount, v.currency,
                    v.hours, v.headline, substring(${payloads} FROM v.payload_at FOR v.payload_len),
                    v.created_at, v.status, v.outcome_at, v.confirm_at, v.revocable_until,
                    v.configuration_item, v.status_reason, v.status_at
             FROM {wins}
             ON CONFLICT (id) DO NOTHING RETURNING id, created_at),
         credit_rows AS (
             INSERT INTO person_credits (person, outcome_at, win_id, amount)
             SELECT v.person, v.outcome_at, v.win_id, v.amount
             FROM {credit_rows}
             JOIN w ON w.id = v.win_id
             ON CONFLICT DO NOTHING),
         ledger_rows AS (
             INSERT INTO ledger (win_id, win_at, entry, at, amount, reason)
             SELECT v.win_id, w.created_at, v.entry, ${now}, v.amount, v.reason
             FROM {ledger_rows}
             JOIN w ON w.id = v.win_id
             ORDER BY v.n)
         SELECT id FROM w",
        wins = pg_arrays::unnest(1, WIN_COLUMNS, "v"),
        credit_rows = pg_arrays::unnest(credits, CREDIT_COLUMNS, "v"),
        ledger_rows = pg_arrays::unnest(ledger, LEDGER_COLUMNS, "v"),
    )
});

#[derive(Serialize)]
struct CreditRow<'a> {
    win_id: &'a str,
    outcome_at: i64,
    person: &'a str,
    amount: f64,
}

#[derive(Serialize)]
struct LedgerRow<'a> {
    n: usize,
    win_id: &'a str,
    entry: &'static str,
    amount: f64,
    reason: Option<&'a str>,
}

/// Inserts `wins` with, for each one inserted, the person credits of `credited` and the ledger
/// lines of `entries` that belong to it, the lines in their order; on PostgreSQL only. Returns the
/// ids inserted, or `None`, having written nothing, when the run is empty or carries an amount that
/// is not a finite number (the arrays refuse one; the statements of their own take it).
pub(super) async fn record_wins(
    tx: &mut Transaction<'_, Any>,
    wins: &[NewWin<'_>],
    credited: &[(&Win, DateTime<Utc>)],
    entries: &[Entry<'_>],
    now: DateTime<Utc>,
) -> Result<Option<HashSet<String>>, StoreError> {
    if wins.is_empty() {
        return Ok(None);
    }
    let mut payloads = Blobs::default();
    let win_rows: Vec<Placed<WinRow<'_>>> = wins
        .iter()
        .map(|new| payloads.place(WinRow::of(new, now), &pack(new.win.encode_to_vec())))
        .collect();
    let credits: Vec<CreditRow<'_>> = writes::credit_rows(credited)
        .into_iter()
        .map(|(win_id, outcome_at, person, amount)| CreditRow {
            win_id,
            outcome_at,
            person,
            amount,
        })
        .collect();
    let lines: Vec<LedgerRow<'_>> = entries
        .iter()
        .enumerate()
        .map(|(n, e)| LedgerRow {
            n,
            win_id: &e.win.id,
            entry: e.entry,
            amount: writes::signed_amount(e),
            reason: e.reason,
        })
        .collect();
    let finite = win_rows.iter().all(|r| r.row.is_finite())
        && credits.iter().all(|c| c.amount.is_finite())
        && lines.iter().all(|l| l.amount.is_finite());
    if !finite {
        return Ok(None);
    }

    let query = pg_arrays::bind(sqlx::query(RECORD_WINS.as_str()), &win_rows, WIN_COLUMNS)?;
    let query = pg_arrays::bind(query.bind(millis(now)), &credits, CREDIT_COLUMNS)?;
    let rows = pg_arrays::bind(query, &lines, LEDGER_COLUMNS)?
        .bind(payloads.into_bytes())
        .fetch_all(&mut **tx)
        .await?;
    Ok(Some(
        rows.iter().map(|r| r.get::<String, _>("id")).collect(),
    ))
}
