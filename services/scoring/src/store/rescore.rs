//! What replaying history needs from the store: each event's payload kept beside its row, and the
//! stored events read back page by page with the win each produced. Reading only: a rescore never
//! writes.

use herald_proto::v1::{ItsmEvent, Win};
use sqlx::Row;

use super::{Store, StoreError, decode};

/// A stored event as it can be replayed: the event itself, what it became, and its win.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub event: ItsmEvent,
    /// `win`, `same_outcome` or `no_value`.
    pub outcome: String,
    /// The win this event produced (only for `win`).
    pub win: Option<Win>,
}

impl Store {
    /// The kept payload of an event, when scoring has one.
    pub async fn event_payload(&self, event_id: &str) -> Result<Option<ItsmEvent>, StoreError> {
        let row = sqlx::query("SELECT payload FROM events WHERE id = $1")
            .bind(event_id)
            .fetch_optional(&self.pool)
            .await?;
        row.and_then(|r| r.get::<Option<Vec<u8>>, _>("payload"))
            .map(|bytes| decode_event(event_id, &bytes))
            .transpose()
    }

    /// Stored events with a payload, in id order after `after`, at most `limit`; each with the win
    /// it produced. Pages by key, so a long history is read in constant memory.
    pub async fn replay_page(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT e.id, e.outcome, e.payload AS event, w.id AS win_id, w.payload AS win
             FROM events e LEFT JOIN wins w ON w.id = e.win_id AND e.outcome = 'win'
             WHERE e.payload IS NOT NULL AND e.id > $1
             ORDER BY e.id LIMIT $2",
        )
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                let id: String = row.get("id");
                let event = decode_event(&id, &row.get::<Vec<u8>, _>("event"))?;
                let win = match row.get::<Option<Vec<u8>>, _>("win") {
                    Some(bytes) => Some(decode(&row.get::<String, _>("win_id"), bytes)?),
                    None => None,
                };
                Ok(StoredEvent {
                    event,
                    outcome: row.get("outcome"),
                    win,
                })
            })
            .collect()
    }

    /// Events recorded before payloads were kept: they cannot be replayed.
    pub async fn events_without_payload(&self) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM events WHERE payload IS NULL")
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(row.get::<i64, _>("n")).unwrap_or(0))
    }
}

fn decode_event(id: &str, bytes: &[u8]) -> Result<ItsmEvent, StoreError> {
    herald_runtime::store::decode_payload(id, bytes)
}
