//! A run's new wins on PostgreSQL in one statement: the wins' insert first, then their person
//! credits and ledger lines as data-modifying `WITH` clauses joined to the ids it inserted, so only
//! a win actually made gets them (as [`super::writes`] does in three statements, which at a low
//! event rate, a run of one event, were three round trips of the dozen a run costs). SQLite has no
//! data-modifying `WITH`; `herald up` keeps the three statements. Each list is one
//! JSON parameter ([`json_rows`]), so the statement's text never changes.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use herald_proto::v1::Win;
use herald_runtime::{
    db::millis,
    payload::pack,
    store::{Blobs, Placed, json_rows},
};
use prost::Message;
use serde::Serialize;
use sqlx::{Any, Row, Transaction};

use super::super::StoreError;
use super::writes::{self, Entry, NewWin, WinRow};

/// The statement: the same text for every run, so each connection parses and plans it once. Its
/// parameters: the wins ($1), the time of the run ($2), then the person credits ($3) and ledger
/// lines ($4), each a JSON array (`[]` when there are none), and the wins' payloads ($5, one
/// `bytea`, each win saying where its own is).
const RECORD_WINS: &str = concat!(
    "WITH w AS (
         INSERT INTO wins (id, outcome_key, event_id, source, kind, record_number, occurred_at,
                           business_service, team, label, amount, currency, hours, headline,
                           payload, created_at, status, outcome_at, confirm_at, revocable_until,
                           configuration_item, status_reason, status_at)
         SELECT v.id, v.outcome_key, v.event_id, v.source, v.kind, v.record_number, v.occurred_at,
                v.business_service, v.team, v.label, v.amount, v.currency, v.hours, v.headline,
                substring($5 FROM v.payload_at FOR v.payload_len), v.created_at, v.status,
                v.outcome_at, v.confirm_at, v.revocable_until, v.configuration_item,
                v.status_reason, v.status_at
         FROM json_to_recordset($1::text::json) AS v (
                  id text, outcome_key text, event_id text, source text, kind text,
                  record_number text, occurred_at bigint, business_service text, team text,
                  label text, amount float8, currency text, hours float8, headline text,
                  payload_at int, payload_len int, created_at bigint, status text,
                  outcome_at bigint, confirm_at bigint, revocable_until bigint,
                  configuration_item text, status_reason text, status_at bigint)
         ON CONFLICT (id) DO NOTHING RETURNING id, created_at),
     credit_rows AS (
         INSERT INTO person_credits (person, outcome_at, win_id, amount)
         SELECT v.person, v.outcome_at, v.win_id, v.amount
         FROM json_to_recordset($3::text::json)
              AS v (win_id text, outcome_at bigint, person text, amount float8)
         JOIN w ON w.id = v.win_id
         ON CONFLICT DO NOTHING),",
    // The ledger's sequence numbers follow the lines' order: a win's "credited" line comes before
    // the "confirmed" or "revoked" one.
    "
     ledger_rows AS (
         INSERT INTO ledger (win_id, win_at, entry, at, amount, reason)
         SELECT v.win_id, w.created_at, v.entry, $2, v.amount, v.reason
         FROM json_to_recordset($4::text::json)
              AS v (n bigint, win_id text, entry text, amount float8, reason text)
         JOIN w ON w.id = v.win_id
         ORDER BY v.n)
     SELECT id FROM w"
);

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
/// ids inserted, or `None`, having written nothing, when the run is empty or carries an amount JSON
/// cannot hold (not a finite number).
pub(super) async fn record_wins(
    tx: &mut Transaction<'static, Any>,
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

    let rows = sqlx::query(RECORD_WINS)
        .bind(json_rows(&win_rows)?)
        .bind(millis(now))
        .bind(json_rows(&credits)?)
        .bind(json_rows(&lines)?)
        .bind(payloads.into_bytes())
        .fetch_all(&mut **tx)
        .await?;
    Ok(Some(
        rows.iter().map(|r| r.get::<String, _>("id")).collect(),
    ))
}
