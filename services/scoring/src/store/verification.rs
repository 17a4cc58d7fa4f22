//! The verification half of scoring's store: signals, withdrawals, confirmations, the ledger and
//! the lease that lets one replica at a time confirm due wins.

use chrono::{DateTime, Utc};
use herald_proto::{
    time::to_timestamp,
    v1::{EventKind, Source, Win, WinStatus},
};
use herald_runtime::db::{from_millis, millis};
use prost::Message;
use sqlx::{Any, Row, Transaction};

use super::{Store, StoreError, decode, status_token};
use crate::verification::{Signal, SignalKind, Windows};

/// Rows a pass confirms or publishes at most, so one pass never holds a transaction for long.
const BATCH: i64 = 500;

/// `$first, $first+1, …` for an `IN (…)` list of `n` values.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Stores a signal and withdraws every win it falls inside the window of. Returns the withdrawn
/// wins that had been confirmed (their withdrawal must be published; a provisional one was never
/// public).
pub(super) async fn apply_signal(
    tx: &mut Transaction<'static, Any>,
    signal: &Signal,
    now: DateTime<Utc>,
) -> Result<Vec<Win>, StoreError> {
    sqlx::query(
        "INSERT INTO signals (event_id, source, kind, record_number, at, business_service, configuration_item)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(&signal.event_id)
    .bind(signal.source.token())
    .bind(signal.kind.token())
    .bind(&signal.record_number)
    .bind(millis(signal.at))
    .bind(&signal.business_service)
    .bind(&signal.configuration_item)
    .execute(&mut **tx)
    .await?;

    let kinds: Vec<&str> = signal.kind.withdraws().iter().map(|k| k.token()).collect();
    let rows = if signal.kind.same_record() {
        let sql = format!(
            "SELECT id, payload FROM wins
             WHERE source = $1 AND record_number = $2 AND status <> 'revoked'
               AND outcome_at < $3 AND revocable_until >= $3 AND kind IN ({})",
            placeholders(4, kinds.len())
        );
        // Only placeholders are spliced in (`$4, $5, …`); every value is bound.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(signal.source.token())
            .bind(&signal.record_number)
            .bind(millis(signal.at));
        for kind in &kinds {
            query = query.bind(*kind);
        }
        query.fetch_all(&mut **tx).await?
    } else {
        let sql = format!(
            "SELECT id, payload FROM wins
             WHERE status <> 'revoked' AND outcome_at < $1 AND revocable_until >= $1
               AND (business_service = $2 OR configuration_item = $3) AND kind IN ({})",
            placeholders(4, kinds.len())
        );
        // Only placeholders are spliced in (`$4, $5, …`); every value is bound.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(millis(signal.at))
            .bind(&signal.business_service)
            .bind(&signal.configuration_item);
        for kind in &kinds {
            query = query.bind(*kind);
        }
        query.fetch_all(&mut **tx).await?
    };
    let mut published = Vec::new();
    for row in rows {
        let id: String = row.get("id");
        let mut win = decode(&id, row.get::<Vec<u8>, _>("payload"))?;
        let was_public = win.status != WinStatus::Provisional as i32;
        revoke(&mut win, &signal.reason(), now);
        write_status(tx, &win, was_public).await?;
        ledger(tx, &win, "revoked", now, Some(&win.status_reason)).await?;
        if was_public {
            published.push(win);
        }
    }
    Ok(published)
}

/// A signal already seen that withdraws `win` (it arrived before the outcome did).
pub(super) async fn signal_against(
    tx: &mut Transaction<'static, Any>,
    win: &Win,
    configuration_item: Option<&str>,
    windows: &Windows,
) -> Result<Option<Signal>, StoreError> {
    let kind = EventKind::try_from(win.kind).unwrap_or(EventKind::Unspecified);
    let applicable: Vec<SignalKind> = [
        SignalKind::Reopen,
        SignalKind::Rollback,
        SignalKind::RelatedIncident,
        SignalKind::SlaBreach,
    ]
    .into_iter()
    .filter(|s| s.withdraws().contains(&kind))
    .collect();
    let same: Vec<&str> = applicable
        .iter()
        .filter(|s| s.same_record())
        .map(|s| s.token())
        .collect();
    let related = applicable.iter().any(|s| !s.same_record());
    let source = Source::try_from(win.source)
        .map(|s| s.token())
        .unwrap_or("unspecified");
    let mut found = Vec::new();
    if !same.is_empty() {
        let sql = format!(
            "SELECT event_id, kind, record_number, at, business_service, configuration_item FROM signals
             WHERE source = $1 AND record_number = $2 AND at > $3 AND at <= $4 AND kind IN ({})
             ORDER BY at LIMIT 1",
            placeholders(5, same.len())
        );
        // Only placeholders are spliced in (`$4, $5, …`); every value is bound.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(source)
            .bind(&win.record_number)
            .bind(millis(windows.outcome_at))
            .bind(millis(windows.revocable_until));
        for kind in &same {
            query = query.bind(*kind);
        }
        found.extend(query.fetch_all(&mut **tx).await?);
    }
    if related && (win.business_service.is_some() || configuration_item.is_some()) {
        found.extend(
            sqlx::query(
                "SELECT event_id, kind, record_number, at, business_service, configuration_item FROM signals
                 WHERE kind = 'related_incident' AND at > $1 AND at <= $2
                   AND (business_service = $3 OR configuration_item = $4)
                 ORDER BY at LIMIT 1",
            )
            .bind(millis(windows.outcome_at))
            .bind(millis(windows.revocable_until))
            .bind(&win.business_service)
            .bind(configuration_item)
            .fetch_all(&mut **tx)
            .await?,
        );
    }
    let first = found
        .into_iter()
        .filter_map(|row| {
            Some(Signal {
                event_id: row.get("event_id"),
                kind: SignalKind::from_token(&row.get::<String, _>("kind"))?,
                source: Source::try_from(win.source).unwrap_or(Source::Unspecified),
                record_number: row.get("record_number"),
                at: from_millis(row.get::<i64, _>("at")),
                business_service: row.get("business_service"),
                configuration_item: row.get("configuration_item"),
            })
        })
        .min_by_key(|s| s.at);
    Ok(first)
}

/// Related incidents (same business service or configuration item) in the observation window
/// before a problem was closed and in as long a window after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProblemCounts {
    pub before: u32,
    pub after: u32,
    pub window_days: u32,
}

async fn problem_counts(
    tx: &mut Transaction<'static, Any>,
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

/// A win's value changed (a problem valued at the end of its window): the row's figures follow.
async fn write_value(tx: &mut Transaction<'static, Any>, win: &Win) -> Result<(), StoreError> {
    let value = win.value.clone().unwrap_or_default();
    sqlx::query("UPDATE wins SET amount = $2, hours = $3, headline = $4 WHERE id = $1")
        .bind(&win.id)
        .bind(value.amount)
        .bind(value.hours)
        .bind(&win.headline)
        .execute(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM credits WHERE win_id = $1")
        .bind(&win.id)
        .execute(&mut **tx)
        .await?;
    super::insert_credits(tx, win).await
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

fn revoke(win: &mut Win, reason: &str, now: DateTime<Utc>) {
    win.status = WinStatus::Revoked as i32;
    win.status_reason = reason.to_string();
    win.status_at = Some(to_timestamp(now));
}

/// Writes a win's new status and payload; `publish` marks it for the outbox.
async fn write_status(
    tx: &mut Transaction<'static, Any>,
    win: &Win,
    publish: bool,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE wins SET status = $2, status_reason = $3, status_at = $4, payload = $5,
                publish_pending = $6
         WHERE id = $1",
    )
    .bind(&win.id)
    .bind(status_token(win.status))
    .bind(&win.status_reason)
    .bind(
        herald_proto::time::opt_from_timestamp(win.status_at.as_ref())
            .map(millis)
            .unwrap_or_default(),
    )
    .bind(win.encode_to_vec())
    .bind(i32::from(publish))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn ledger(
    tx: &mut Transaction<'static, Any>,
    win: &Win,
    entry: &str,
    now: DateTime<Utc>,
    reason: Option<&str>,
) -> Result<(), StoreError> {
    let amount = win.value.as_ref().map(|v| v.amount).unwrap_or_default();
    let signed = if entry == "revoked" { -amount } else { amount };
    sqlx::query(
        "INSERT INTO ledger (win_id, entry, at, amount, reason) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&win.id)
    .bind(entry)
    .bind(millis(now))
    .bind(signed)
    .bind(reason)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The ledger entries of a win just recorded: its provisional credit, and at once its confirmation
/// or withdrawal when it arrived decided.
pub(super) async fn ledger_for_new_win(
    tx: &mut Transaction<'static, Any>,
    win: &Win,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    ledger(tx, win, "credited", now, None).await?;
    match WinStatus::try_from(win.status) {
        Ok(WinStatus::Confirmed) => ledger(tx, win, "confirmed", now, None).await,
        Ok(WinStatus::Revoked) => ledger(tx, win, "revoked", now, Some(&win.status_reason)).await,
        _ => Ok(()),
    }
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
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(
            "SELECT id, payload, outcome_at, confirm_at, revocable_until, configuration_item FROM wins
             WHERE status = 'provisional' AND confirm_at <= $1 ORDER BY confirm_at LIMIT $2",
        )
        .bind(millis(now))
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?;
        let mut confirmed = Vec::with_capacity(rows.len());
        for row in rows {
            let id: String = row.get("id");
            let mut win = decode(&id, row.get::<Vec<u8>, _>("payload"))?;
            let windows = Windows {
                outcome_at: from_millis(row.get::<i64, _>("outcome_at")),
                confirm_at: from_millis(row.get::<i64, _>("confirm_at")),
                revocable_until: from_millis(row.get::<i64, _>("revocable_until")),
            };
            let ci: Option<String> = row.get("configuration_item");
            if let Some(signal) = signal_against(&mut tx, &win, ci.as_deref(), &windows).await? {
                revoke(&mut win, &signal.reason(), now);
                write_status(&mut tx, &win, false).await?;
                ledger(&mut tx, &win, "revoked", now, Some(&win.status_reason)).await?;
                continue;
            }
            if win.kind == EventKind::ProblemClosed as i32 {
                let counts = problem_counts(&mut tx, &win, ci.as_deref(), &windows).await?;
                match revalue(&win, counts) {
                    Ok(valued) => win = valued,
                    Err(reason) => {
                        revoke(&mut win, &reason, now);
                        write_status(&mut tx, &win, false).await?;
                        ledger(&mut tx, &win, "revoked", now, Some(&win.status_reason)).await?;
                        continue;
                    }
                }
                write_value(&mut tx, &win).await?;
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

    /// Wins whose current status has not been published yet (the outbox), oldest change first.
    pub async fn unpublished(&self) -> Result<Vec<Win>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, payload FROM wins WHERE publish_pending = 1 ORDER BY status_at LIMIT $1",
        )
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
        let mut tx = self.pool.begin().await?;
        for win in wins {
            sqlx::query("UPDATE wins SET publish_pending = 0 WHERE id = $1 AND status = $2")
                .bind(&win.id)
                .bind(status_token(win.status))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
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

    /// The ledger of one win, oldest entry first: (entry, at, amount, reason).
    pub async fn ledger_of(
        &self,
        win_id: &str,
    ) -> Result<Vec<(String, DateTime<Utc>, f64, Option<String>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT entry, at, amount, reason FROM ledger WHERE win_id = $1 ORDER BY seq",
        )
        .bind(win_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                (
                    r.get("entry"),
                    from_millis(r.get::<i64, _>("at")),
                    r.get("amount"),
                    r.get("reason"),
                )
            })
            .collect())
    }
}
