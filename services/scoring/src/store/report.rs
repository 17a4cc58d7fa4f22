//! What the monthly report reads: the month's events as received (every resolution, change,
//! survey and deployment, whether or not it earned anything) and its confirmed wins.

use chrono::{DateTime, Utc};
use herald_proto::v1::{ItsmEvent, Win};

use super::{Store, StoreError};

impl Store {
    /// Events that happened in [from, to) whose payload is kept, oldest first.
    pub async fn events_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<ItsmEvent>, StoreError> {
        herald_runtime::store::payloads_between(
            &self.pool,
            "SELECT id, payload FROM events
             WHERE occurred_at >= $1 AND occurred_at < $2 AND payload IS NOT NULL
             ORDER BY occurred_at, id",
            from,
            to,
        )
        .await
    }

    /// Incident resolutions that happened in [from, to), oldest first: what the restore-time
    /// trend reads, without the month's other events.
    pub async fn resolutions_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<ItsmEvent>, StoreError> {
        herald_runtime::store::payloads_between(
            &self.pool,
            "SELECT id, payload FROM events
             WHERE kind = 'incident_resolved' AND occurred_at >= $1 AND occurred_at < $2
               AND payload IS NOT NULL
             ORDER BY occurred_at, id",
            from,
            to,
        )
        .await
    }

    /// Confirmed wins (and lessons) whose outcome happened in [from, to), most valuable first.
    pub async fn confirmed_wins_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Win>, StoreError> {
        herald_runtime::store::payloads_between(
            &self.pool,
            "SELECT id, payload FROM wins
             WHERE status = 'confirmed' AND occurred_at >= $1 AND occurred_at < $2
             ORDER BY amount DESC, id",
            from,
            to,
        )
        .await
    }
}
