//! Notify's tables (schema `notify`): deliveries and their attempt log.

use std::time::Duration;

use chrono::{DateTime, Utc};
use herald_proto::v1::Announcement;
use prost::Message;
use sha2::{Digest, Sha256};
use sqlx::{PgPool, Row};

use crate::send::AttemptOutcome;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

/// A delivery claimed for an attempt.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: String,
    pub announcement_id: String,
    pub route: String,
    pub channel: String,
    /// This attempt's number, from 1.
    pub attempt: u32,
    /// `None` when the stored announcement cannot be decoded.
    pub announcement: Option<Announcement>,
}

/// A delivery as `ListDeliveries` shows it.
#[derive(Debug, Clone)]
pub struct DeliveryRow {
    pub id: String,
    pub announcement_id: String,
    pub route: String,
    pub channel: String,
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub attempt_log: Vec<AttemptRow>,
}

#[derive(Debug, Clone)]
pub struct AttemptRow {
    pub attempt: i32,
    pub at: DateTime<Utc>,
    pub http_status: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Next {
    Delivered,
    RetryAt(DateTime<Utc>),
    Failed,
}

#[derive(Clone)]
pub struct Store {
    pool: PgPool,
}

/// Stable per (announcement, route): the `webhook-id` receivers de-duplicate on.
pub fn delivery_id(announcement_id: &str, route: &str) -> String {
    let digest = Sha256::digest(format!("{announcement_id}\n{route}").as_bytes());
    format!("d-{}", hex::encode(&digest[..10]))
}

impl Store {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Creates the deliveries of an announcement, one per route; repeats change nothing. Returns how
    /// many are new.
    pub async fn enqueue(
        &self,
        announcement: &Announcement,
        routes: &[(String, String)],
    ) -> Result<u64, StoreError> {
        let payload = announcement.encode_to_vec();
        let mut tx = self.pool.begin().await?;
        let mut created = 0;
        for (route, channel) in routes {
            created += sqlx::query(
                "INSERT INTO deliveries (id, announcement_id, route, channel, status, next_attempt_at, payload)
                 VALUES ($1, $2, $3, $4, 'pending', now(), $5)
                 ON CONFLICT (announcement_id, route) DO NOTHING",
            )
            .bind(delivery_id(&announcement.id, route))
            .bind(&announcement.id)
            .bind(route)
            .bind(channel)
            .bind(&payload)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(created)
    }

    /// Claims up to `limit` due deliveries for `lease`: pending ones whose time has come, and ones
    /// whose previous dispatcher vanished mid-attempt. Replicas never claim the same row.
    pub async fn claim_due(&self, limit: i64, lease: Duration) -> Result<Vec<Claimed>, StoreError> {
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        let rows = sqlx::query(
            "UPDATE deliveries d
             SET status = 'sending', attempts = d.attempts + 1,
                 lease_until = now() + $2 * interval '1 millisecond'
             FROM (SELECT id FROM deliveries
                   WHERE (status = 'pending' AND next_attempt_at <= now())
                      OR (status = 'sending' AND lease_until < now())
                   ORDER BY next_attempt_at
                   LIMIT $1
                   FOR UPDATE SKIP LOCKED) due
             WHERE d.id = due.id
             RETURNING d.id, d.announcement_id, d.route, d.channel, d.attempts, d.payload",
        )
        .bind(limit)
        .bind(lease_ms)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| Claimed {
                id: r.get("id"),
                announcement_id: r.get("announcement_id"),
                route: r.get("route"),
                channel: r.get("channel"),
                attempt: u32::try_from(r.get::<i32, _>("attempts")).unwrap_or(0),
                announcement: Announcement::decode(r.get::<Vec<u8>, _>("payload").as_slice()).ok(),
            })
            .collect())
    }

    /// Logs an attempt and moves the delivery on.
    pub async fn finish_attempt(
        &self,
        claimed: &Claimed,
        outcome: &AttemptOutcome,
        duration: Duration,
        next: Next,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO attempts (delivery_id, attempt, http_status, error, duration_ms)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(&claimed.id)
        .bind(i32::try_from(claimed.attempt).unwrap_or(i32::MAX))
        .bind(outcome.status().map(i32::from))
        .bind(outcome.error())
        .bind(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?;
        let (status, next_at, delivered) = match next {
            Next::Delivered => ("delivered", None, true),
            Next::RetryAt(at) => ("pending", Some(at), false),
            Next::Failed => ("failed", None, false),
        };
        sqlx::query(
            "UPDATE deliveries SET status = $2, next_attempt_at = $3, lease_until = NULL,
                    last_error = $4, delivered_at = CASE WHEN $5 THEN now() ELSE delivered_at END
             WHERE id = $1",
        )
        .bind(&claimed.id)
        .bind(status)
        .bind(next_at)
        .bind(outcome.error())
        .bind(delivered)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// When the next pending delivery falls due, if any.
    pub async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let row = sqlx::query(
            "SELECT min(CASE WHEN status = 'pending' THEN next_attempt_at ELSE lease_until END) AS due
             FROM deliveries WHERE status IN ('pending', 'sending')",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(row.get("due"))
    }

    /// Deliveries, newest first, with their attempts.
    pub async fn list(
        &self,
        announcement_id: Option<&str>,
        statuses: &[&str],
        limit: i64,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        let statuses: Vec<String> = statuses.iter().map(|s| s.to_string()).collect();
        let rows = sqlx::query(
            "SELECT id, announcement_id, route, channel, status, attempts, last_error, created_at,
                    delivered_at, next_attempt_at
             FROM deliveries
             WHERE ($1::text IS NULL OR announcement_id = $1)
               AND (cardinality($2::text[]) = 0 OR status = ANY($2))
             ORDER BY created_at DESC, id LIMIT $3",
        )
        .bind(announcement_id)
        .bind(&statuses)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut deliveries: Vec<DeliveryRow> = rows
            .into_iter()
            .map(|r| DeliveryRow {
                id: r.get("id"),
                announcement_id: r.get("announcement_id"),
                route: r.get("route"),
                channel: r.get("channel"),
                status: r.get("status"),
                attempts: r.get("attempts"),
                last_error: r.get("last_error"),
                created_at: r.get("created_at"),
                delivered_at: r.get("delivered_at"),
                next_attempt_at: r.get("next_attempt_at"),
                attempt_log: Vec::new(),
            })
            .collect();
        let ids: Vec<String> = deliveries.iter().map(|d| d.id.clone()).collect();
        let attempts = sqlx::query(
            "SELECT delivery_id, attempt, at, http_status, error, duration_ms FROM attempts
             WHERE delivery_id = ANY($1) ORDER BY delivery_id, attempt",
        )
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?;
        for row in attempts {
            let id: String = row.get("delivery_id");
            if let Some(d) = deliveries.iter_mut().find(|d| d.id == id) {
                d.attempt_log.push(AttemptRow {
                    attempt: row.get("attempt"),
                    at: row.get("at"),
                    http_status: row.get("http_status"),
                    error: row.get("error"),
                    duration_ms: row.get("duration_ms"),
                });
            }
        }
        Ok(deliveries)
    }
}
