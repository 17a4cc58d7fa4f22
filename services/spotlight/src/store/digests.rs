//! Digest claims, and what a digest is made of: the wins counted in a period and its lessons.

use std::time::Duration;

use chrono::{DateTime, Utc};
use herald_proto::v1::{Announcement, Win};
use herald_runtime::db::millis;
use prost::Message;
use sqlx::Row;

use super::{Store, StoreError};

/// What claiming a digest came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This replica builds and publishes it.
    Ours,
    /// Another replica holds it, its lease still running.
    Held,
    /// Already published: nothing to do, ever.
    Published,
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Store {
    /// Claims digest `id` for `owner` for `lease`: new, or taken over from a claimer whose lease ran
    /// out before it published.
    pub async fn claim_digest(
        &self,
        id: &str,
        name: &str,
        period_start: &str,
        owner: &str,
        lease: Duration,
    ) -> Result<Claim, StoreError> {
        let now = millis(Utc::now());
        let until = now + duration_ms(lease);
        let inserted = sqlx::query(
            "INSERT INTO digests (id, name, period_start, status, owner, lease_until, created_at)
             VALUES ($1, $2, $3, 'building', $4, $5, $6) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(name)
        .bind(period_start)
        .bind(owner)
        .bind(until)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if inserted == 1 {
            return Ok(Claim::Ours);
        }
        let taken = sqlx::query(
            "UPDATE digests SET owner = $2, lease_until = $3
             WHERE id = $1 AND status = 'building' AND lease_until < $4",
        )
        .bind(id)
        .bind(owner)
        .bind(until)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if taken == 1 {
            return Ok(Claim::Ours);
        }
        let status: Option<String> = sqlx::query("SELECT status FROM digests WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.get("status"));
        Ok(match status.as_deref() {
            Some("published" | "empty") => Claim::Published,
            _ => Claim::Held,
        })
    }

    /// Records that digest `id` was published, with what it said.
    pub async fn digest_published(
        &self,
        id: &str,
        announcement: &Announcement,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE digests SET status = 'published', payload = $2, published_at = $3 WHERE id = $1",
        )
        .bind(id)
        .bind(announcement.encode_to_vec())
        .bind(millis(Utc::now()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records that digest `id` had nothing to tell (no win, no lesson): it is not sent, and not
    /// looked at again.
    pub async fn digest_empty(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE digests SET status = 'empty', published_at = $2 WHERE id = $1")
            .bind(id)
            .bind(millis(Utc::now()))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The wins counted (not withdrawn) that happened in [from, to), most valuable first.
    pub async fn wins_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Win>, StoreError> {
        herald_runtime::store::payloads_between(
            &self.pool,
            "SELECT id, payload FROM wins
             WHERE status = 'counted' AND occurred_at >= $1 AND occurred_at < $2
             ORDER BY amount DESC, id",
            from,
            to,
        )
        .await
    }

    /// The 200 most valuable counted wins in [from, to): enough to find each leader's best win
    /// without reading a whole month on every dashboard refresh.
    pub async fn most_valuable_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Win>, StoreError> {
        herald_runtime::store::payloads_between(
            &self.pool,
            "SELECT id, payload FROM wins
             WHERE status = 'counted' AND occurred_at >= $1 AND occurred_at < $2
             ORDER BY amount DESC, id LIMIT 200",
            from,
            to,
        )
        .await
    }

    /// The lessons announced in [from, to), newest first.
    pub async fn lessons_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Announcement>, StoreError> {
        herald_runtime::store::payloads_between(
            &self.pool,
            "SELECT id, payload FROM announcements
             WHERE kind = 'lesson' AND created_at >= $1 AND created_at < $2
             ORDER BY created_at DESC, id",
            from,
            to,
        )
        .await
    }
}
