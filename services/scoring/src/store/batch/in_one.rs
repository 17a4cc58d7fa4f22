//! A run's new wins on PostgreSQL in one statement: the wins' insert first, then their outbox
//! rows, person credits and ledger lines as data-modifying `WITH` clauses joined to the ids it
//! inserted, so only a win actually made gets them (as [`super::writes`] does in four statements,
//! which at a low event rate, a run of one event, were four round trips of the dozen a run costs).
//! SQLite has no data-modifying `WITH`; `herald up` keeps the four statements.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use herald_proto::v1::{Win, WinStatus};
use herald_runtime::{
    db::millis,
    store::{batch_query, numbered_rows_from},
};
use sqlx::{Any, Row, Transaction};

use super::super::{StoreError, status_token, verification};
use super::writes::{self, Entry, NewWin, WIN_COLUMNS};

/// Bound values at most in one statement: well inside PostgreSQL's 65,535. A run that needs more
/// is written in separate statements.
const MAX_PARAMETERS: usize = 30_000;

/// Inserts `wins` with, for each one inserted, its outbox row (when confirmed), the person
/// credits of `credited` and the ledger lines of `entries` that belong to it, the lines in their
/// order; on PostgreSQL only. Returns the ids inserted, or `None`, having written nothing, when the
/// run is empty or too large for one statement.
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
    let mut seen = HashSet::new();
    let public: Vec<&Win> = wins
        .iter()
        .map(|new| new.win)
        .filter(|win| win.status == WinStatus::Confirmed as i32 && seen.insert(win.id.as_str()))
        .collect();
    let credits = writes::credit_rows(credited);
    let parameters = wins.len() * 23 + 1 + public.len() * 3 + credits.len() * 4 + entries.len() * 5;
    if parameters > MAX_PARAMETERS {
        return Ok(None);
    }

    let mut next = 1;
    let mut sql = format!(
        "WITH w AS (INSERT INTO wins ({WIN_COLUMNS}) VALUES {}
                    ON CONFLICT (outcome_key) DO NOTHING RETURNING id)",
        numbered_rows_from(&mut next, wins.len(), 23)
    );
    let now_at = next;
    next += 1;
    if !public.is_empty() {
        sql.push_str(&format!(
            ", outbox_rows AS (
                 INSERT INTO outbox (win_id, status, status_at)
                 SELECT v.win_id, v.status, v.status_at
                 FROM (VALUES {}) AS v (win_id, status, status_at) JOIN w ON w.id = v.win_id
                 ON CONFLICT (win_id) DO UPDATE SET status = excluded.status, status_at = excluded.status_at)",
            numbered_rows_from(&mut next, public.len(), 3)
        ));
    }
    if !credits.is_empty() {
        sql.push_str(&format!(
            ", credit_rows AS (
                 INSERT INTO person_credits (person, outcome_at, win_id, amount)
                 SELECT v.person, v.outcome_at, v.win_id, v.amount
                 FROM (VALUES {}) AS v (win_id, outcome_at, person, amount) JOIN w ON w.id = v.win_id
                 ON CONFLICT DO NOTHING)",
            numbered_rows_from(&mut next, credits.len(), 4)
        ));
    }
    if !entries.is_empty() {
        // The ledger's sequence numbers follow the rows' order: a win's "credited" line comes
        // before the "confirmed" or "revoked" one.
        sql.push_str(&format!(
            ", ledger_rows AS (
                 INSERT INTO ledger (win_id, entry, at, amount, reason)
                 SELECT v.win_id, v.entry, ${now_at}, v.amount, v.reason
                 FROM (VALUES {}) AS v (n, win_id, entry, amount, reason) JOIN w ON w.id = v.win_id
                 ORDER BY v.n)",
            numbered_rows_from(&mut next, entries.len(), 5)
        ));
    }
    sql.push_str(" SELECT id FROM w");

    let mut query = batch_query(sql);
    for new in wins {
        query = writes::bind_win(query, new, now);
    }
    query = query.bind(millis(now));
    for win in &public {
        query = query
            .bind(win.id.clone())
            .bind(status_token(win.status))
            .bind(verification::status_at(win));
    }
    for (win, outcome_at, person, amount) in &credits {
        query = query
            .bind(win.to_string())
            .bind(*outcome_at)
            .bind(person.to_string())
            .bind(*amount);
    }
    for (n, e) in entries.iter().enumerate() {
        query = query
            .bind(i64::try_from(n).unwrap_or(i64::MAX))
            .bind(e.win.id.clone())
            .bind(e.entry)
            .bind(writes::signed_amount(e))
            .bind(e.reason.map(str::to_string));
    }
    let rows = query.fetch_all(&mut **tx).await?;
    Ok(Some(
        rows.iter().map(|r| r.get::<String, _>("id")).collect(),
    ))
}
