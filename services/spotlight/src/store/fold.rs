//! The fold: on PostgreSQL the one writer of the shared figure rows. Counting a win appends what
//! it adds to the deltas (no row another lane needs is locked); the fold takes every delta there is
//! and adds them to the live rollups and totals in one transaction, one upsert per row however many
//! wins touched it. A read of the figures folds first, so it sees every win counted before it. On
//! SQLite counting adds to the figures itself (see `Figures::written_by`), and the fold only ever
//! finds deltas a store written before that left behind.

use std::{collections::BTreeMap, time::Duration};

use sqlx::Row;
use tokio_util::sync::CancellationToken;

use super::{Figures, RollupRow, Store, StoreError, TotalRow, contributions::Amounts, write};

/// How often the fold looks for deltas nobody told it about (appended by another replica, or
/// left by a process that stopped before folding).
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// The least time between two background folds. A read folds for itself, so this delays no
/// figure anyone sees; it lets one fold add up many batches' deltas for the same rows (folding
/// after every lane's commit cost more than the upserts it replaced).
const FOLD_AT_MOST_EVERY: Duration = Duration::from_millis(200);

impl Store {
    /// Adds every delta appended so far to the live figures, in one transaction; returns how many
    /// delta rows it took. Two folds at once each take rows the other did not (a row is deleted
    /// by one of them), and the second waits for the first's rows to be added before it ends.
    pub async fn fold(&self) -> Result<usize, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut rollups: BTreeMap<[String; 4], Amounts> = BTreeMap::new();
        let rows = sqlx::query(
            "DELETE FROM rollup_deltas
             RETURNING period, period_start, scope, subject_id, value_cents, hours_milli, wins",
        )
        .fetch_all(&mut *tx)
        .await?;
        let taken = rows.len();
        for row in rows {
            let key = [
                row.try_get("period")?,
                row.try_get("period_start")?,
                row.try_get("scope")?,
                row.try_get("subject_id")?,
            ];
            rollups
                .entry(key)
                .or_default()
                .add(Amounts::from_row(&row, false)?, 1);
        }
        let mut totals: BTreeMap<[String; 3], Amounts> = BTreeMap::new();
        let rows = sqlx::query(
            "DELETE FROM total_deltas
             RETURNING period, period_start, label, value_cents, hours_milli, people, wins",
        )
        .fetch_all(&mut *tx)
        .await?;
        let taken = taken + rows.len();
        for row in rows {
            let key = [
                row.try_get("period")?,
                row.try_get("period_start")?,
                row.try_get("label")?,
            ];
            totals
                .entry(key)
                .or_default()
                .add(Amounts::from_row(&row, true)?, 1);
        }
        if taken == 0 {
            tx.rollback().await?;
            return Ok(0);
        }
        // A win counted and withdrawn between two folds adds nothing: no row to write.
        let rollups: Vec<RollupRow<'_>> = rollups
            .iter()
            .filter(|(_, amounts)| **amounts != Amounts::default())
            .map(|([a, b, c, d], amounts)| ([a.as_str(), b, c, d], *amounts))
            .collect();
        let totals: Vec<TotalRow<'_>> = totals
            .iter()
            .filter(|(_, amounts)| **amounts != Amounts::default())
            .map(|([a, b, c], amounts)| ([a.as_str(), b, c], *amounts))
            .collect();
        write(&mut tx, Figures::Live, &rollups, &totals).await?;
        tx.commit().await?;
        Ok(taken)
    }

    /// Folds if there is anything to fold: what every read of the figures does first. Looking
    /// costs a read; only a fold that has work takes the write.
    pub async fn fold_pending(&self) -> Result<(), StoreError> {
        let pending: i64 = sqlx::query_scalar(
            "SELECT CAST(CASE WHEN EXISTS (SELECT 1 FROM rollup_deltas)
                               OR EXISTS (SELECT 1 FROM total_deltas) THEN 1 ELSE 0 END AS BIGINT)",
        )
        .fetch_one(&self.pool)
        .await?;
        if pending == 1 {
            self.fold().await?;
        }
        Ok(())
    }

    /// Folds shortly after wins were counted or withdrawn here (at most five times a second),
    /// and every second for deltas from elsewhere, until `shutdown`; then once more. Under load
    /// each fold takes everything the lanes appended since the last one.
    pub async fn fold_continuously(self, shutdown: CancellationToken) {
        let mut sweeper = Sweeper::for_pool(&self.pool);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = self.unfolded.notified() => {}
                () = tokio::time::sleep(LOOK_EVERY) => {}
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(FOLD_AT_MOST_EVERY) => {}
            }
            match self.fold().await {
                Ok(rows) if rows > 0 => {
                    tracing::debug!(rows, "deltas folded into the figures");
                    sweeper.sweep(&self.pool).await;
                }
                Ok(_) => {}
                Err(e) => {
                    // The deltas stay where they are; the next fold takes them.
                    tracing::warn!(error = %e, "cannot fold the counted wins into the figures yet");
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(LOOK_EVERY) => {}
                    }
                }
            }
        }
        if let Err(e) = self.fold().await {
            tracing::warn!(error = %e, "the last fold before stopping failed; the next start folds");
        }
    }
}

/// Keeps PostgreSQL's delta tables small. Every delta row is deleted by a fold moments after it
/// is written, and the fold's `DELETE` reads every page the table has; autovacuum, which wakes
/// once a minute and serves the large tables first, let them grow to thousands of pages of dead
/// rows under load (21 MB for under 2,000 live rows at saturation), so each fold read more than
/// the last. A `VACUUM` of a table that small takes about a millisecond. It does not truncate the
/// emptied table: truncating takes the table's exclusive lock, which the lanes' inserts hold off,
/// so the `VACUUM` retried for it every 50 ms (50–160 ms a sweep, a dozen times a minute at 200
/// events/s) while a connection of the fold's pool waited; the empty pages are reused instead.
/// SQLite reuses the freed pages itself.
struct Sweeper {
    /// When the last sweep ran (later after a failure, to try again then); `None` on SQLite.
    last: Option<tokio::time::Instant>,
}

/// The least time between two sweeps.
const SWEEP_AT_MOST_EVERY: Duration = Duration::from_secs(1);

impl Sweeper {
    fn for_pool(pool: &sqlx::AnyPool) -> Self {
        let postgres = pool
            .connect_options()
            .database_url
            .scheme()
            .starts_with("postgres");
        Self {
            last: postgres.then(|| tokio::time::Instant::now() - SWEEP_AT_MOST_EVERY),
        }
    }

    async fn sweep(&mut self, pool: &sqlx::AnyPool) {
        let Some(last) = self.last else { return };
        if last.elapsed() < SWEEP_AT_MOST_EVERY {
            return;
        }
        // SKIP_LOCKED: another replica sweeping the same tables is enough.
        match sqlx::query("VACUUM (SKIP_LOCKED, TRUNCATE false) rollup_deltas, total_deltas")
            .execute(pool)
            .await
        {
            Ok(_) => self.last = Some(tokio::time::Instant::now()),
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    "cannot vacuum the delta tables; leaving them to autovacuum for a minute"
                );
                self.last = Some(tokio::time::Instant::now() + Duration::from_secs(60));
            }
        }
    }
}
