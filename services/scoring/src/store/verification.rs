//! The verification half of scoring's store: signals, withdrawals, confirmations, the ledger and
//! the lease that lets one replica at a time confirm due wins.

use chrono::{DateTime, Utc};
use herald_proto::{
    time::to_timestamp,
    v1::{EventKind, Win, WinStatus},
};
use herald_runtime::{
    db::{begin_write, from_millis, millis},
    payload::pack,
    store::{batch_query, value_rows},
};
use prost::Message;
use sqlx::{Any, Row, Transaction};

use super::{
    Store, StoreError,
    batch::{Candidate, signals_against, writes::CONFIRMED_ON_ARRIVAL},
    decode, status_token,
};
use crate::verification::{LedgerLine, Signal, Windows};

/// Rows a pass confirms or publishes at most, so one pass never holds a transaction for long.
const BATCH: i64 = 500;

/// Wins one outbox update clears at most.
const MARK_CHUNK: usize = 500;

/// Related incidents (same business service or configuration item) in the observation window
/// before a problem was closed and in as long a window after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProblemCounts {
    pub before: u32,
    pub after: u32,
    pub window_days: u32,
}

async fn problem_counts(
    tx: &mut Transaction<'_, Any>,
    win: &Win,
    configuration_item: Option<&str>,
    windows: &Windows,
) -> Result<ProblemCounts, StoreError> {
    // The observation window is the problem's revocation window: as long after the fix as the
    // hold-back waited, whenever the problem arrived.
    let window = windows.revocable_until - windows.outcome_at;
    let count = |from: DateTime<Utc>, to: DateTime<Utc>| {
        sqlx::query(
            // One incident may be seen opened and resolved: count it once. Related means the same
            // configuration item when the problem names one (the narrower, more defensible
            // count), else the same business service.
            "SELECT COUNT(DISTINCT source || ':' || record_number) AS n FROM signals
             WHERE kind = 'related_incident'
               AND (($2 IS NOT NULL AND configuration_item = $2)
                    OR ($2 IS NULL AND business_service = $1))
               AND at >= $3 AND at < $4",
        )
        .bind(win.business_service.clone())
        .bind(configuration_item.map(str::to_string))
        .bind(millis(from))
        .bind(millis(to))
    };
    let before: i64 = count(windows.outcome_at - window, windows.outcome_at)
        .fetch_one(&mut **tx)
        .await?
        .get("n");
    let after: i64 = count(windows.outcome_at, windows.outcome_at + window)
        .fetch_one(&mut **tx)
        .await?
        .get("n");
    Ok(ProblemCounts {
        before: u32::try_from(before).unwrap_or(u32::MAX),
        after: u32::try_from(after).unwrap_or(u32::MAX),
        window_days: u32::try_from(window.num_days()).unwrap_or_default(),
    })
}

/// A win's value changed (a problem valued at the end of its window): the row's figures and its
/// person credits follow. `before` is the win as it was stored, whose credits are replaced.
async fn write_value(
    tx: &mut Transaction<'_, Any>,
    before: &Win,
    win: &Win,
    outcome_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let value = win.value.clone().unwrap_or_default();
    sqlx::query("UPDATE wins SET amount = $2, hours = $3, headline = $4 WHERE id = $1")
        .bind(&win.id)
        .bind(value.amount)
        .bind(value.hours)
        .bind(&win.headline)
        .execute(&mut **tx)
        .await?;
    // By the table's key, person by person: a revaluation is rare, and a delete by win alone would
    // need an index that every insert pays for.
    for (person, _) in super::batch::people_credited(before) {
        sqlx::query(
            "DELETE FROM person_credits WHERE person = $1 AND outcome_at = $2 AND win_id = $3",
        )
        .bind(person.to_string())
        .bind(millis(outcome_at))
        .bind(&win.id)
        .execute(&mut **tx)
        .await?;
    }
    super::batch::writes::person_credits(tx, &[(win, outcome_at)]).await
}

/// A new win's status: withdrawn by a signal seen earlier, confirmed if its hold-back has already
/// passed, else provisional.
pub(super) fn set_initial_status(
    win: &mut Win,
    windows: &Windows,
    withdrawn_by: Option<&Signal>,
    now: DateTime<Utc>,
) {
    win.confirm_at = Some(to_timestamp(windows.confirm_at));
    win.revocable_until = Some(to_timestamp(windows.revocable_until));
    win.status_at = Some(to_timestamp(now));
    // A closed problem is valued only when its window has been observed, by the confirmer, so it
    // is never confirmed on arrival, even with no hold-back.
    let valued_later = win.kind == EventKind::ProblemClosed as i32;
    match withdrawn_by {
        Some(signal) => revoke(win, &signal.reason(), now),
        None if windows.confirm_at <= now && !valued_later => {
            win.status = WinStatus::Confirmed as i32
        }
        None => win.status = WinStatus::Provisional as i32,
    }
}

pub(super) fn revoke(win: &mut Win, reason: &str, now: DateTime<Utc>) {
    win.status = WinStatus::Revoked as i32;
    win.status_reason = reason.to_string();
    win.status_at = Some(to_timestamp(now));
}

/// Writes a win's new status and payload; `publish` marks it for the outbox.
pub(super) async fn write_status(
    tx: &mut Transaction<'_, Any>,
    win: &Win,
    publish: bool,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE wins SET status = $2, status_reason = $3, status_at = $4, payload = $5 WHERE id = $1",
    )
    .bind(&win.id)
    .bind(status_token(win.status))
    .bind(&win.status_reason)
    .bind(status_at(win))
    .bind(pack(win.encode_to_vec()))
    .execute(&mut **tx)
    .await?;
    if publish {
        to_outbox(tx, &[win]).await
    } else {
        // A change nobody saw the win before: an earlier status still waiting goes unpublished.
        sqlx::query("DELETE FROM outbox WHERE win_id = $1")
            .bind(&win.id)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

pub(super) fn status_at(win: &Win) -> i64 {
    herald_proto::time::opt_from_timestamp(win.status_at.as_ref())
        .map(millis)
        .unwrap_or_default()
}

/// Puts the current status of `wins` in the outbox, in place of an earlier status still waiting
/// there. The outbox is a table of its own, not a mark on the win: clearing a mark on the wide,
/// much-indexed win row rewrote the row and every index entry of it, once a win.
pub(super) async fn to_outbox(
    tx: &mut Transaction<'_, Any>,
    wins: &[&Win],
) -> Result<(), StoreError> {
    for chunk in wins.chunks(OUTBOX_CHUNK) {
        let sql = format!(
            "INSERT INTO outbox (win_id, status, status_at) VALUES {}
             ON CONFLICT (win_id) DO UPDATE SET status = excluded.status, status_at = excluded.status_at",
            value_rows(tx, chunk.len(), 3)
        );
        let mut query = batch_query(sql);
        for win in chunk {
            query = query
                .bind(win.id.clone())
                .bind(status_token(win.status))
                .bind(status_at(win));
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Rows per outbox statement: far inside either backend's bound values.
const OUTBOX_CHUNK: usize = 1_000;

async fn ledger(
    tx: &mut Transaction<'_, Any>,
    win: &Win,
    entry: &'static str,
    now: DateTime<Utc>,
    reason: Option<&str>,
) -> Result<(), StoreError> {
    super::batch::writes::ledger(
        tx,
        &[super::batch::writes::Entry { win, entry, reason }],
        now,
    )
    .await
}

/// One replica's claim on a piece of scheduled work, renewed on every pass.
#[derive(Debug, Clone)]
pub struct Lease {
    pub name: &'static str,
    pub holder: String,
    pub ttl: chrono::Duration,
}

impl Store {
    /// Takes or renews `lease`; false while another holder's lease is still running.
    pub async fn hold(&self, lease: &Lease, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let taken = sqlx::query(
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
             WHERE leases.holder = EXCLUDED.holder OR leases.expires_at < $4",
        )
        .bind(lease.name)
        .bind(&lease.holder)
        .bind(millis(now + lease.ttl))
        .bind(millis(now))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(taken == 1)
    }

    /// Confirms provisional wins whose hold-back has passed, checking once more for a signal that
    /// arrived meanwhile (a related incident handled in another lane). Returns the confirmed wins,
    /// to publish.
    pub async fn confirm_due(&self, now: DateTime<Utc>) -> Result<Vec<Win>, StoreError> {
        self.confirm_due_with(now, &|win, _| Ok(win.clone())).await
    }

    /// [`Store::confirm_due`], with `revalue` deciding a closed problem's value at the end of its
    /// observation window from the related incidents seen before and after it (`Err` with the
    /// reason when it earned nothing: the win is then withdrawn).
    pub async fn confirm_due_with(
        &self,
        now: DateTime<Utc>,
        revalue: &(dyn Fn(&Win, ProblemCounts) -> Result<Win, String> + Sync),
    ) -> Result<Vec<Win>, StoreError> {
        let mut tx = begin_write(&self.pool).await?;
        let rows = sqlx::query(
            "SELECT id, payload, outcome_at, confirm_at, revocable_until, configuration_item FROM wins
             WHERE status = 'provisional' AND confirm_at <= $1 ORDER BY confirm_at LIMIT $2",
        )
        .bind(millis(now))
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?;
        let mut due = Vec::with_capacity(rows.len());
        for row in rows {
            let id: String = row.get("id");
            let win = decode(&id, row.get::<Vec<u8>, _>("payload"))?;
            let windows = Windows {
                outcome_at: from_millis(row.get::<i64, _>("outcome_at")),
                confirm_at: from_millis(row.get::<i64, _>("confirm_at")),
                revocable_until: from_millis(row.get::<i64, _>("revocable_until")),
            };
            let ci: Option<String> = row.get("configuration_item");
            due.push((win, windows, ci));
        }
        // A signal that arrived meanwhile (a related incident handled in another lane), for all
        // of the pass's wins at once.
        let candidates: Vec<Candidate<'_>> = due
            .iter()
            .map(|(win, windows, ci)| Candidate {
                win,
                configuration_item: ci.as_deref(),
                windows: *windows,
            })
            .collect();
        let against = signals_against(&mut tx, &candidates).await?;
        let mut confirmed = Vec::with_capacity(due.len());
        for ((mut win, windows, ci), signal) in due.into_iter().zip(against) {
            if let Some(signal) = signal {
                revoke(&mut win, &signal.reason(), now);
                write_status(&mut tx, &win, false).await?;
                ledger(&mut tx, &win, "revoked", now, Some(&win.status_reason)).await?;
                continue;
            }
            if win.kind == EventKind::ProblemClosed as i32 {
                let counts = problem_counts(&mut tx, &win, ci.as_deref(), &windows).await?;
                match revalue(&win, counts) {
                    Ok(valued) => {
                        write_value(&mut tx, &win, &valued, windows.outcome_at).await?;
                        win = valued;
                    }
                    Err(reason) => {
                        revoke(&mut win, &reason, now);
                        write_status(&mut tx, &win, false).await?;
                        ledger(&mut tx, &win, "revoked", now, Some(&win.status_reason)).await?;
                        continue;
                    }
                }
            }
            win.status = WinStatus::Confirmed as i32;
            win.status_at = Some(to_timestamp(now));
            write_status(&mut tx, &win, true).await?;
            ledger(&mut tx, &win, "confirmed", now, None).await?;
            confirmed.push(win);
        }
        tx.commit().await?;
        Ok(confirmed)
    }

    /// Wins whose status changed before `changed_before` and has not been published yet (the
    /// outbox), oldest change first.
    pub async fn unpublished(&self, changed_before: DateTime<Utc>) -> Result<Vec<Win>, StoreError> {
        let rows = sqlx::query(
            "SELECT w.id, w.payload FROM outbox o JOIN wins w ON w.id = o.win_id
             WHERE o.status_at < $1 ORDER BY o.status_at LIMIT $2",
        )
        .bind(millis(changed_before))
        .bind(BATCH)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| decode(&r.get::<String, _>("id"), r.get::<Vec<u8>, _>("payload")))
            .collect()
    }

    /// Clears the outbox mark of wins published in the status they had then (a win whose status
    /// changed meanwhile stays marked).
    pub async fn mark_published(&self, wins: &[Win]) -> Result<(), StoreError> {
        if wins.is_empty() {
            return Ok(());
        }
        let mut conn = self.pool.acquire().await?;
        mark_published_in(&mut conn, wins).await
    }

    /// Wins in `status` (every status when `None`), provisional ones soonest to confirm first,
    /// others newest first; with how many there are in all.
    pub async fn list_wins(
        &self,
        status: Option<WinStatus>,
        limit: i64,
    ) -> Result<(Vec<Win>, u64), StoreError> {
        let token = status.map(|s| s.token());
        let sql = if status == Some(WinStatus::Provisional) {
            "SELECT id, payload FROM wins WHERE status = $1 ORDER BY confirm_at ASC, id LIMIT $2"
        } else {
            "SELECT id, payload FROM wins WHERE ($1 IS NULL OR status = $1)
             ORDER BY COALESCE(status_at, created_at) DESC, id LIMIT $2"
        };
        let rows = sqlx::query(sql)
            .bind(token)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        let total: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM wins WHERE ($1 IS NULL OR status = $1)")
                .bind(token)
                .fetch_one(&self.pool)
                .await?
                .get("n");
        let wins = rows
            .into_iter()
            .map(|r| decode(&r.get::<String, _>("id"), r.get::<Vec<u8>, _>("payload")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((wins, u64::try_from(total).unwrap_or_default()))
    }

    /// The ledger of one win, oldest entry first: (entry, at, amount, reason). A win that arrived
    /// confirmed has one line stored ([`CONFIRMED_ON_ARRIVAL`] first); it is read as the credit
    /// and the confirmation it stands for, at the same instant, just as a win recorded with both
    /// lines by an earlier version reads.
    pub async fn ledger_of(&self, win_id: &str) -> Result<Vec<LedgerLine>, StoreError> {
        let rows = sqlx::query(
            // By when the win arrived, then its id: the ledger's index (migration 0015).
            "SELECT entry, at, amount, reason FROM ledger
             WHERE win_at = (SELECT created_at FROM wins WHERE id = $1) AND win_id = $1
             ORDER BY seq",
        )
        .bind(win_id)
        .fetch_all(&self.pool)
        .await?;
        let mut lines: Vec<LedgerLine> = rows
            .into_iter()
            .map(|r| {
                (
                    r.get("entry"),
                    from_millis(r.get::<i64, _>("at")),
                    r.get("amount"),
                    r.get("reason"),
                )
            })
            .collect();
        if let Some((entry, at, amount, _)) = lines.first()
            && entry == CONFIRMED_ON_ARRIVAL
        {
            let credited = ("credited".to_string(), *at, *amount, None);
            lines.insert(0, credited);
        }
        Ok(lines)
    }
}

/// [`Store::mark_published`] on a connection or inside a transaction of the caller's.
pub(super) async fn mark_published_in(
    conn: &mut sqlx::AnyConnection,
    wins: &[Win],
) -> Result<(), StoreError> {
    // A lane's wins stay marked from its commit until its own mark, so the confirmer's outbox
    // pass can publish and mark the same wins at the same moment; two marks waiting on each
    // other's row locks deadlocked (PostgreSQL broke the tie after a second, at saturation).
    // A mark never waits: it leaves a row another transaction holds to that transaction,
    // which is marking it too or changing its status (which leaves it marked for the new
    // status). At worst the outbox publishes a win once more, and the bus drops the repeat.
    // SQLite has one writer and no row locks.
    let skip_locked = if conn.backend_name().eq_ignore_ascii_case("sqlite") {
        ""
    } else {
        "FOR UPDATE OF o SKIP LOCKED"
    };
    for chunk in wins.chunks(MARK_CHUNK) {
        let sql = format!(
            "WITH v(id, status) AS (VALUES {})
             DELETE FROM outbox
             WHERE win_id IN (SELECT o.win_id FROM outbox o JOIN v ON v.id = o.win_id AND v.status = o.status
                              {skip_locked})",
            value_rows(conn, chunk.len(), 2)
        );
        let mut query = batch_query(sql);
        for win in chunk {
            query = query.bind(win.id.clone()).bind(status_token(win.status));
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}
