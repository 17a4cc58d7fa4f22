//! Spotlight's tables (schema `spotlight`): counted wins, rollups, totals, announcements.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use herald_proto::v1::{Announcement, CreditSubject, ValueLabel, Win};
use herald_runtime::db::millis;
use prost::Message;
use sqlx::{Any, AnyPool, Row, Transaction};

use crate::periods::{Period, PeriodKind};

pub use herald_runtime::store::Error as StoreError;

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
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
        Self { pool }
    }

    /// Counts a win into every rollup once, and keeps its announcement (if it earned one). Returns
    /// the announcement stored for this win, new or from an earlier delivery, so it can be
    /// published (again).
    pub async fn count_win(
        &self,
        win: &Win,
        occurred_at: DateTime<Utc>,
        tz: Tz,
        announcement: Option<&Announcement>,
    ) -> Result<Option<Announcement>, StoreError> {
        let value = win.value.clone().unwrap_or_default();
        let label = ValueLabel::try_from(value.label)
            .map(|l| l.token())
            .unwrap_or("unspecified");
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO wins (id, kind, occurred_at, business_service, team, label, amount, hours, users, headline,
                               payload, counted_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&win.id)
        .bind(herald_proto::v1::EventKind::try_from(win.kind).map(|k| k.token()).unwrap_or("unspecified"))
        .bind(millis(occurred_at))
        .bind(&win.business_service)
        .bind(&win.team)
        .bind(label)
        .bind(value.amount)
        .bind(value.hours)
        .bind(value.users)
        .bind(&win.headline)
        .bind(win.encode_to_vec())
        .bind(millis(chrono::Utc::now()))
        .execute(&mut *tx)
        .await?
        .rows_affected();

        if inserted == 1 {
            for kind in PeriodKind::ALL {
                let period = Period::containing(kind, occurred_at, tz);
                for credit in &win.credits {
                    let scope = if credit.subject == CreditSubject::Team as i32 {
                        "team"
                    } else {
                        "person"
                    };
                    add(
                        &mut tx,
                        &period,
                        scope,
                        &credit.id,
                        credit.amount,
                        value.hours * credit.share,
                    )
                    .await?;
                }
                if let Some(service) = &win.business_service {
                    add(
                        &mut tx,
                        &period,
                        "service",
                        service,
                        value.amount,
                        value.hours,
                    )
                    .await?;
                }
                sqlx::query(
                    "INSERT INTO totals (period, period_start, label, value, hours, users, wins)
                     VALUES ($1, $2, $3, $4, $5, $6, 1)
                     ON CONFLICT (period, period_start, label) DO UPDATE SET
                       value = totals.value + EXCLUDED.value, hours = totals.hours + EXCLUDED.hours,
                       users = totals.users + EXCLUDED.users, wins = totals.wins + 1",
                )
                .bind(kind.token())
                .bind(period.start.to_string())
                .bind(label)
                .bind(value.amount)
                .bind(value.hours)
                .bind(value.users)
                .execute(&mut *tx)
                .await?;
            }
            if let Some(announcement) = announcement {
                sqlx::query(
                    "INSERT INTO announcements (id, win_id, kind, payload, created_at) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT DO NOTHING",
                )
                .bind(&announcement.id)
                .bind(&win.id)
                .bind("headline_win")
                .bind(announcement.encode_to_vec())
                .bind(millis(chrono::Utc::now()))
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        if inserted == 1 {
            return Ok(announcement.cloned());
        }
        // A redelivery: the announcement decided the first time, if any, is the one to publish.
        self.announcement_for_win(&win.id).await
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
            Announcement::decode(r.get::<Vec<u8>, _>("payload").as_slice())
                .map_err(|e| StoreError::Corrupt(id, e))
        })
        .transpose()
    }

    /// The top `limit` subjects of `scope` in a period, most value first.
    pub async fn leaderboard(
        &self,
        period: &Period,
        scope: &str,
        limit: i64,
    ) -> Result<Vec<Ranked>, StoreError> {
        let rows = sqlx::query(
            "SELECT subject_id, value, hours, wins FROM rollups
             WHERE period = $1 AND period_start = $2 AND scope = $3
             ORDER BY value DESC, subject_id LIMIT $4",
        )
        .bind(period.kind.token())
        .bind(period.start.to_string())
        .bind(scope)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| Ranked {
                subject_id: r.get("subject_id"),
                value: r.get("value"),
                hours: r.get("hours"),
                wins: r.get::<i64, _>("wins"),
            })
            .collect())
    }

    /// The most recent wins, newest first.
    pub async fn latest_wins(&self, limit: i64) -> Result<Vec<Win>, StoreError> {
        let rows =
            sqlx::query("SELECT id, payload FROM wins ORDER BY occurred_at DESC, id LIMIT $1")
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter()
            .map(|r| {
                let id: String = r.get("id");
                Win::decode(r.get::<Vec<u8>, _>("payload").as_slice())
                    .map_err(|e| StoreError::Corrupt(id, e))
            })
            .collect()
    }

    pub async fn totals(&self, period: &Period) -> Result<Vec<LabelTotals>, StoreError> {
        let rows = sqlx::query(
            "SELECT label, value, hours, users, wins FROM totals
             WHERE period = $1 AND period_start = $2 ORDER BY value DESC",
        )
        .bind(period.kind.token())
        .bind(period.start.to_string())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| LabelTotals {
                label: r.get("label"),
                value: r.get("value"),
                hours: r.get("hours"),
                users: r.get("users"),
                wins: r.get::<i64, _>("wins"),
            })
            .collect())
    }
}

async fn add(
    tx: &mut Transaction<'_, Any>,
    period: &Period,
    scope: &str,
    subject: &str,
    value: f64,
    hours: f64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO rollups (period, period_start, scope, subject_id, value, hours, wins)
         VALUES ($1, $2, $3, $4, $5, $6, 1)
         ON CONFLICT (period, period_start, scope, subject_id) DO UPDATE SET
           value = rollups.value + EXCLUDED.value, hours = rollups.hours + EXCLUDED.hours,
           wins = rollups.wins + 1",
    )
    .bind(period.kind.token())
    .bind(period.start.to_string())
    .bind(scope)
    .bind(subject)
    .bind(value)
    .bind(hours)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
