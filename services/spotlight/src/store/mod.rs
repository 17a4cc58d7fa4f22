//! Spotlight's tables (schema `spotlight`): counted wins, rollups, totals and announcements. The
//! wins are the ledger the figures are rebuilt from: each row says when the win was counted and,
//! once taken out again, when and why.

pub mod contributions;
pub mod digests;
pub mod figures;
mod fold;
mod in_one;
pub mod rankings;
pub mod rebuild;

use std::{collections::HashSet, sync::Arc};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use herald_proto::v1::{Announcement, Win};
use herald_runtime::{
    db::{begin_write, millis},
    deferred_sync::{DeferredSync, Unsynced},
    payload::pack,
    store::{AnyQuery, batch_query, decode_payload, insert_new, is_postgres, value_rows},
};
use prost::Message;
use sqlx::{Any, AnyPool, Row, Transaction};

use crate::periods::Period;
use contributions::Contributions;

pub use herald_runtime::store::Error as StoreError;

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    /// Told when this process appended deltas, so the fold takes them at once.
    unfolded: Arc<tokio::sync::Notify>,
    /// The stage's counts, made durable by [`Store::sync`] before their wins are acked.
    deferred: Arc<DeferredSync>,
}

/// One ranked row of a rollup.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    pub subject_id: String,
    pub value: f64,
    pub hours: f64,
    pub wins: i64,
}

/// A period's totals for one value label.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelTotals {
    pub label: String,
    pub value: f64,
    pub hours: f64,
    pub users: f64,
    pub wins: i64,
}

impl Store {
    pub fn new(pool: AnyPool) -> Self {
        Self {
            deferred: Arc::new(DeferredSync::new(pool.clone())),
            pool,
            unfolded: Arc::default(),
        }
    }

    /// Makes every commit of [`Store::count_wins`] so far durable: the stage calls it after
    /// publishing their announcements and before acking the wins.
    pub async fn sync(&self) -> Result<(), StoreError> {
        Ok(self.deferred.sync().await?)
    }

    /// Counts a win into every rollup once, and keeps its announcement (if it earned one). Returns
    /// the announcement stored for this win, new or from an earlier delivery, so it can be
    /// published (again). A win already withdrawn (its revocation arrived first) is not counted.
    pub async fn count_win(
        &self,
        win: &Win,
        occurred_at: DateTime<Utc>,
        tz: Tz,
        announcement: Option<&Announcement>,
    ) -> Result<Option<Announcement>, StoreError> {
        let mut stored = self
            .count_wins(&[(win.clone(), occurred_at, announcement.cloned())], tz)
            .await?;
        self.sync().await?;
        Ok(stored.pop().flatten())
    }

    /// [`Store::count_win`] for several wins at once: on PostgreSQL in one statement
    /// (`in_one.rs`), on SQLite in one transaction; either way the wins, their announcements, and
    /// what they add to the rollups and totals merged: appended as deltas on PostgreSQL (the fold
    /// adds them to the shared rows), added to the figures themselves on SQLite
    /// ([`Figures::written_by`]). Answers in the order given; a win given twice is counted
    /// once (the second finds the first). The commit may not be on the disk yet: call
    /// [`Store::sync`] before acknowledging the wins.
    pub async fn count_wins(
        &self,
        wins: &[(Win, DateTime<Utc>, Option<Announcement>)],
        tz: Tz,
    ) -> Result<Vec<Option<Announcement>>, StoreError> {
        let now = chrono::Utc::now();
        // Only the first of a repeated id can be new: the second finds it.
        let mut seen = HashSet::new();
        let first: Vec<bool> = wins
            .iter()
            .map(|(win, _, _)| seen.insert(win.id.as_str()))
            .collect();
        let firsts: Vec<Counting<'_>> = wins
            .iter()
            .zip(&first)
            .filter(|(_, first)| **first)
            .map(|((win, at, announcement), _)| (win, *at, announcement.as_ref()))
            .collect();
        // Synced later by `sync`: the stage publishes the announcements first, so notify does not
        // wait on this disk.
        let mut writes = self.deferred.unsynced().await?;
        let conn = writes.connection();
        let in_one = if is_postgres(conn) {
            in_one::count_wins(conn, &firsts, tz, now).await?
        } else {
            None
        };
        let figures = Figures::written_by(conn);
        let inserted = match in_one {
            Some(inserted) => inserted,
            None => count_in_transaction(&mut writes, &firsts, tz, now, figures).await?,
        };
        writes.release().await?;
        let new: Vec<bool> = wins
            .iter()
            .zip(first)
            .map(|((win, _, _), first)| first && inserted.contains(&win.id))
            .collect();
        if figures == Figures::Deltas && new.iter().any(|new| *new) {
            self.unfolded.notify_one();
        }
        let mut out = Vec::with_capacity(wins.len());
        for ((win, _, announcement), new) in wins.iter().zip(new) {
            out.push(if new {
                announcement.clone()
            } else {
                // A redelivery: the announcement decided the first time, if any, is the one.
                self.announcement_for_win(&win.id).await?
            });
        }
        Ok(out)
    }

    /// Takes a withdrawn win out of every figure it was counted in (the very same whole-unit rows,
    /// subtracted) and stores `correction` if the win had been announced. Returns the correction
    /// to publish: new, or the one stored by an earlier delivery of the same revocation. A win not
    /// counted yet is remembered as withdrawn, so its confirmation can never count it later.
    pub async fn revoke_win(
        &self,
        win: &Win,
        occurred_at: DateTime<Utc>,
        tz: Tz,
        correction: impl FnOnce(&Announcement) -> Announcement,
    ) -> Result<Option<Announcement>, StoreError> {
        let now = chrono::Utc::now();
        let mut tx = begin_write(&self.pool).await?;
        let row = sqlx::query("SELECT status, payload FROM wins WHERE id = $1")
            .bind(&win.id)
            .fetch_optional(&mut *tx)
            .await?;
        let counted = match row {
            None => {
                insert_wins(&mut tx, [(win, occurred_at)], "revoked", now).await?;
                tx.commit().await?;
                return Ok(None);
            }
            Some(row) if row.get::<String, _>("status") == "revoked" => {
                tx.rollback().await?;
                return self.correction_for_win(&win.id).await;
            }
            Some(row) => decode_payload::<Win>(&win.id, &row.get::<Vec<u8>, _>("payload"))?,
        };
        // Subtract what was added: the win as it was counted, in the periods it was counted in.
        let counted_at = herald_proto::time::opt_from_timestamp(counted.occurred_at.as_ref())
            .unwrap_or(occurred_at);
        let figures = Figures::written_by(&tx);
        apply(
            &mut tx,
            figures,
            &contributions::of(&counted, counted_at, tz),
            -1,
        )
        .await?;
        sqlx::query(
            "UPDATE wins SET status = 'revoked', revoked_at = $2, status_reason = $3 WHERE id = $1",
        )
        .bind(&win.id)
        .bind(millis(now))
        .bind(&win.status_reason)
        .execute(&mut *tx)
        .await?;
        let announced = sqlx::query("SELECT payload FROM announcements WHERE win_id = $1")
            .bind(&win.id)
            .fetch_optional(&mut *tx)
            .await?;
        let correction = match announced {
            Some(row) => {
                let original: Announcement =
                    decode_payload(&win.id, &row.get::<Vec<u8>, _>("payload"))?;
                let correction = correction(&original);
                sqlx::query(
                    "INSERT INTO announcements (id, win_id, kind, payload, created_at, corrects)
                     VALUES ($1, NULL, 'correction', $2, $3, $4) ON CONFLICT DO NOTHING",
                )
                .bind(&correction.id)
                .bind(pack(correction.encode_to_vec()))
                .bind(millis(now))
                .bind(&original.id)
                .execute(&mut *tx)
                .await?;
                Some(correction)
            }
            None => None,
        };
        tx.commit().await?;
        if figures == Figures::Deltas {
            self.unfolded.notify_one();
        }
        Ok(correction)
    }

    /// Stores an announcement that belongs to no counted win (a lesson) once; returns the one
    /// stored, new or from an earlier delivery, to publish.
    pub async fn keep_announcement(
        &self,
        announcement: &Announcement,
        kind: &str,
    ) -> Result<Announcement, StoreError> {
        sqlx::query(
            "INSERT INTO announcements (id, win_id, kind, payload, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT DO NOTHING",
        )
        .bind(&announcement.id)
        .bind(&announcement.win_id)
        .bind(kind)
        .bind(pack(announcement.encode_to_vec()))
        .bind(millis(chrono::Utc::now()))
        .execute(&self.pool)
        .await?;
        Ok(self
            .announcement_for_win(&announcement.win_id)
            .await?
            .unwrap_or_else(|| announcement.clone()))
    }

    /// The correction stored for a win's announcement, if one was made.
    async fn correction_for_win(&self, win_id: &str) -> Result<Option<Announcement>, StoreError> {
        let row = sqlx::query(
            "SELECT c.id, c.payload FROM announcements c
             JOIN announcements a ON c.corrects = a.id
             WHERE a.win_id = $1 AND c.kind = 'correction'",
        )
        .bind(win_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let id: String = r.get("id");
            decode_payload(&id, &r.get::<Vec<u8>, _>("payload"))
        })
        .transpose()
    }

    /// Recomputes every rollup and total from the wins still counted and compares them with the
    /// live figures; with `repair`, replaces the live figures by the recomputed ones.
    pub async fn rebuild(&self, tz: Tz, repair: bool) -> Result<rebuild::Report, StoreError> {
        rebuild::run(self, tz, repair).await
    }

    pub async fn announcement_for_win(
        &self,
        win_id: &str,
    ) -> Result<Option<Announcement>, StoreError> {
        let row = sqlx::query("SELECT id, payload FROM announcements WHERE win_id = $1")
            .bind(win_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            let id: String = r.get("id");
            decode_payload(&id, &r.get::<Vec<u8>, _>("payload"))
        })
        .transpose()
    }

    /// The most recent wins, newest first.
    pub async fn latest_wins(&self, limit: i64) -> Result<Vec<Win>, StoreError> {
        let rows =
            sqlx::query("SELECT id, payload FROM wins WHERE status = 'counted' ORDER BY occurred_at DESC, id LIMIT $1")
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        herald_runtime::store::decode_rows(rows)
    }

    pub async fn totals(&self, period: &Period) -> Result<Vec<LabelTotals>, StoreError> {
        self.fold_pending().await?;
        // A quarter or a season is the sum of its months.
        let rows = sqlx::query(
            "SELECT label, CAST(SUM(value_cents) AS BIGINT) AS value_cents,
                    CAST(SUM(hours_milli) AS BIGINT) AS hours_milli,
                    CAST(SUM(people) AS BIGINT) AS people, CAST(SUM(wins) AS BIGINT) AS wins
             FROM totals
             WHERE period = $1 AND period_start >= $2 AND period_start < $3
             GROUP BY label HAVING SUM(wins) > 0 ORDER BY value_cents DESC",
        )
        .bind(period.kind.rolled_up_as().token())
        .bind(period.start.to_string())
        .bind(period.end.to_string())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| LabelTotals {
                label: r.get("label"),
                value: r.get::<i64, _>("value_cents") as f64 / 100.0,
                hours: r.get::<i64, _>("hours_milli") as f64 / 1000.0,
                users: r.get::<i64, _>("people") as f64,
                wins: r.get::<i64, _>("wins"),
            })
            .collect())
    }
}

/// A win to count, when its outcome happened, and the announcement it earned if any.
type Counting<'a> = (&'a Win, DateTime<Utc>, Option<&'a Announcement>);

/// Counts `wins` (no id twice) in one unsynced transaction on `writes`: the wins and their
/// announcements each one multi-row statement, what the new ones add to the rollups and totals
/// merged and written to `figures`. Returns the ids of the wins that were new.
async fn count_in_transaction(
    writes: &mut Unsynced,
    wins: &[Counting<'_>],
    tz: Tz,
    now: DateTime<Utc>,
    figures: Figures,
) -> Result<HashSet<String>, StoreError> {
    let mut tx = writes.begin().await?;
    let inserted = insert_wins(
        &mut tx,
        wins.iter().map(|(win, at, _)| (*win, *at)),
        "counted",
        now,
    )
    .await?;
    let mut merged = Contributions::default();
    let mut announced = Vec::new();
    for (win, occurred_at, announcement) in wins.iter().filter(|(w, _, _)| inserted.contains(&w.id))
    {
        let c = contributions::of(win, *occurred_at, tz);
        merged.rollups.extend(c.rollups);
        merged.totals.extend(c.totals);
        if let Some(announcement) = announcement {
            announced.push((win.id.as_str(), *announcement));
        }
    }
    insert_announcements(&mut tx, &announced, now).await?;
    apply(&mut tx, figures, &merged, 1).await?;
    tx.commit().await?;
    Ok(inserted)
}

/// Inserts the wins not stored before, as `status`; returns the ids inserted (a redelivery's is
/// not). The ids must be distinct.
async fn insert_wins<'w>(
    tx: &mut Transaction<'_, Any>,
    wins: impl IntoIterator<Item = (&'w Win, DateTime<Utc>)>,
    status: &str,
    now: DateTime<Utc>,
) -> Result<HashSet<String>, StoreError> {
    let wins: Vec<(&Win, DateTime<Utc>)> = wins.into_iter().collect();
    let mut inserted = HashSet::new();
    for chunk in wins.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO wins ({WIN_COLUMNS}) VALUES {} ON CONFLICT (id) DO NOTHING",
            value_rows(tx, chunk.len(), 15)
        );
        let ids: Vec<&str> = chunk.iter().map(|(win, _)| win.id.as_str()).collect();
        let bind = |query: AnyQuery<'static>| {
            chunk.iter().fold(query, |query, (win, occurred_at)| {
                let row = WinRow::of(win, *occurred_at, status, now);
                bind_win(query, row, pack(win.encode_to_vec()))
            })
        };
        inserted.extend(insert_new(tx, "wins", sql, &ids, bind).await?);
    }
    Ok(inserted)
}

/// The `wins` columns of a [`WinRow`], in the order [`bind_win`] binds them.
const WIN_COLUMNS: &str = "id, kind, occurred_at, business_service, team, label, amount, hours, users, \
                           headline, payload, counted_at, status, revoked_at, status_reason";

/// A win's `wins` row but its payload (the encoded win, which the caller binds beside it): bound
/// value by value ([`bind_win`]), or as one row of a batch's columns ([`in_one`]), each field the
/// column of its name.
#[derive(serde::Serialize)]
struct WinRow<'a> {
    id: &'a str,
    kind: &'static str,
    occurred_at: i64,
    business_service: Option<&'a str>,
    team: Option<&'a str>,
    label: &'static str,
    amount: f64,
    hours: f64,
    users: f64,
    headline: &'a str,
    counted_at: i64,
    status: &'a str,
    revoked_at: Option<i64>,
    status_reason: Option<&'a str>,
}

impl<'a> WinRow<'a> {
    fn of(win: &'a Win, occurred_at: DateTime<Utc>, status: &'a str, now: DateTime<Utc>) -> Self {
        let value = win.value.as_ref();
        let revoked = status == "revoked";
        Self {
            id: &win.id,
            kind: herald_proto::v1::EventKind::try_from(win.kind)
                .map(|k| k.token())
                .unwrap_or("unspecified"),
            occurred_at: millis(occurred_at),
            business_service: win.business_service.as_deref(),
            team: win.team.as_deref(),
            label: contributions::label_token(win),
            amount: value.map(|v| v.amount).unwrap_or_default(),
            hours: value.map(|v| v.hours).unwrap_or_default(),
            users: value.map(|v| v.users).unwrap_or_default(),
            headline: &win.headline,
            counted_at: millis(now),
            status,
            revoked_at: revoked.then(|| millis(now)),
            status_reason: revoked.then_some(win.status_reason.as_str()),
        }
    }

    /// Whether JSON can carry its numbers (it has no NaN or infinity).
    fn is_finite(&self) -> bool {
        self.amount.is_finite() && self.hours.is_finite() && self.users.is_finite()
    }
}

/// Binds a win's fifteen values in the order of [`WIN_COLUMNS`]: its row and its payload.
fn bind_win<'q>(query: AnyQuery<'q>, row: WinRow<'_>, payload: Vec<u8>) -> AnyQuery<'q> {
    query
        .bind(row.id.to_string())
        .bind(row.kind)
        .bind(row.occurred_at)
        .bind(row.business_service.map(str::to_string))
        .bind(row.team.map(str::to_string))
        .bind(row.label)
        .bind(row.amount)
        .bind(row.hours)
        .bind(row.users)
        .bind(row.headline.to_string())
        .bind(payload)
        .bind(row.counted_at)
        .bind(row.status.to_string())
        .bind(row.revoked_at)
        .bind(row.status_reason.map(str::to_string))
}

/// Keeps each win's headline announcement (a repeat changes nothing).
async fn insert_announcements(
    tx: &mut Transaction<'_, Any>,
    announced: &[(&str, &Announcement)],
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    for chunk in announced.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO announcements (id, win_id, kind, payload, created_at) VALUES {}
             ON CONFLICT DO NOTHING",
            value_rows(tx, chunk.len(), 5)
        );
        let mut query = batch_query(sql);
        for (win_id, announcement) in chunk {
            query = query
                .bind(announcement.id.clone())
                .bind(win_id.to_string())
                .bind("headline_win")
                .bind(pack(announcement.encode_to_vec()))
                .bind(millis(now));
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Rows per statement: at fifteen parameters each, far below either backend's limit.
const ROWS_PER_STATEMENT: usize = 500;

/// Where a batch of figure rows goes: added to the live figures (an upsert per row), or appended
/// to the deltas a fold later adds to them.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Figures {
    Live,
    Deltas,
}

impl Figures {
    /// Where a counting or withdrawing transaction on `conn` writes. On PostgreSQL every lane
    /// appends deltas, so no lane queues on the locks of the rows every win adds to (this week's,
    /// this month's, the organisation's). SQLite has one writer connection and no such queue,
    /// and a fold there would hold that connection while the lanes wait: with a fold at most
    /// every 5 s, `herald up`'s p99 at 200 events/s was 116–126 ms against 8–12 ms at 200 ms
    /// (BENCHMARKS.md, thirty-first sitting). So on SQLite the transaction adds to the figures
    /// itself.
    fn written_by(conn: &sqlx::AnyConnection) -> Self {
        if is_postgres(conn) {
            Self::Deltas
        } else {
            Self::Live
        }
    }
}

/// A rollup row's key (period, period start, scope, subject) and what it adds.
type RollupRow<'a> = ([&'a str; 4], contributions::Amounts);
/// A totals row's key (period, period start, label) and what it adds.
type TotalRow<'a> = ([&'a str; 3], contributions::Amounts);

/// `contributions` times `sign`, one row per key, in key order.
fn merged(contributions: &Contributions, sign: i64) -> (Vec<RollupRow<'_>>, Vec<TotalRow<'_>>) {
    use std::collections::BTreeMap;
    let mut rollups: BTreeMap<[&str; 4], contributions::Amounts> = BTreeMap::new();
    for (key, amounts) in &contributions.rollups {
        rollups
            .entry([key.period, &key.period_start, key.scope, &key.subject_id])
            .or_default()
            .add(*amounts, sign);
    }
    let mut totals: BTreeMap<[&str; 3], contributions::Amounts> = BTreeMap::new();
    for (key, amounts) in &contributions.totals {
        totals
            .entry([key.period, &key.period_start, key.label])
            .or_default()
            .add(*amounts, sign);
    }
    (rollups.into_iter().collect(), totals.into_iter().collect())
}

/// Adds (`sign` 1) or subtracts (`sign` -1) contributions: appended to the deltas when counting
/// on PostgreSQL (no row another lane needs is locked), or to the live figures when counting on
/// SQLite and by the rebuild. Either way each
/// table in as few multi-row statements as fit, with the rows in key order, so two writers
/// sharing live rows wait for each other but never deadlock.
async fn apply(
    tx: &mut Transaction<'_, Any>,
    to: Figures,
    contributions: &Contributions,
    sign: i64,
) -> Result<(), sqlx::Error> {
    let (rollups, totals) = merged(contributions, sign);
    write(tx, to, &rollups, &totals).await
}

/// Binds a rollup row's seven values: `period, period_start, scope, subject_id, value_cents,
/// hours_milli, wins`.
fn bind_rollup<'q>(query: AnyQuery<'q>, row: &RollupRow<'q>) -> AnyQuery<'q> {
    let ([period, start, scope, subject], amounts) = row;
    query
        .bind(*period)
        .bind(*start)
        .bind(*scope)
        .bind(*subject)
        .bind(amounts.value_cents)
        .bind(amounts.hours_milli)
        .bind(amounts.wins)
}

/// Binds a totals row's seven values: `period, period_start, label, value_cents, hours_milli,
/// people, wins`.
fn bind_total<'q>(query: AnyQuery<'q>, row: &TotalRow<'q>) -> AnyQuery<'q> {
    let ([period, start, label], amounts) = row;
    query
        .bind(*period)
        .bind(*start)
        .bind(*label)
        .bind(amounts.value_cents)
        .bind(amounts.hours_milli)
        .bind(amounts.people)
        .bind(amounts.wins)
}

async fn write(
    tx: &mut Transaction<'_, Any>,
    to: Figures,
    rollups: &[RollupRow<'_>],
    totals: &[TotalRow<'_>],
) -> Result<(), sqlx::Error> {
    let (rollups_sql, totals_sql) = match to {
        Figures::Live => (
            "INSERT INTO rollups (period, period_start, scope, subject_id, value_cents, hours_milli, wins)
             VALUES {rows}
             ON CONFLICT (period, period_start, scope, subject_id) DO UPDATE SET
               value_cents = rollups.value_cents + EXCLUDED.value_cents,
               hours_milli = rollups.hours_milli + EXCLUDED.hours_milli,
               wins = rollups.wins + EXCLUDED.wins",
            "INSERT INTO totals (period, period_start, label, value_cents, hours_milli, people, wins)
             VALUES {rows}
             ON CONFLICT (period, period_start, label) DO UPDATE SET
               value_cents = totals.value_cents + EXCLUDED.value_cents,
               hours_milli = totals.hours_milli + EXCLUDED.hours_milli,
               people = totals.people + EXCLUDED.people, wins = totals.wins + EXCLUDED.wins",
        ),
        Figures::Deltas => (
            "INSERT INTO rollup_deltas (period, period_start, scope, subject_id, value_cents, hours_milli, wins)
             VALUES {rows}",
            "INSERT INTO total_deltas (period, period_start, label, value_cents, hours_milli, people, wins)
             VALUES {rows}",
        ),
    };
    for chunk in rollups.chunks(ROWS_PER_STATEMENT) {
        let sql = rollups_sql.replace("{rows}", &value_rows(tx, chunk.len(), 7));
        let mut insert = batch_query(sql);
        for row in chunk {
            insert = bind_rollup(insert, row);
        }
        insert.execute(&mut **tx).await?;
    }
    for chunk in totals.chunks(ROWS_PER_STATEMENT) {
        let sql = totals_sql.replace("{rows}", &value_rows(tx, chunk.len(), 7));
        let mut insert = batch_query(sql);
        for row in chunk {
            insert = bind_total(insert, row);
        }
        insert.execute(&mut **tx).await?;
    }
    Ok(())
}
