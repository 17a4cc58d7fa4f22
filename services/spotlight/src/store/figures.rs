//! Figures for any stretch of time, read from the wins themselves rather than the period rollups:
//! rolling windows ("the last 7 days against the 7 before") and month-to-date comparisons, which
//! the week and month rollups cannot answer. Each label stays apart.

use chrono::{DateTime, Utc};
use herald_proto::v1::Win;
use herald_runtime::{db::millis, store::decode_payload};
use sqlx::Row;

use super::{LabelTotals, Store, StoreError};

impl Store {
    /// Per value label, the counted wins that happened in [from, to): value, hours and how many.
    pub async fn label_sums(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<LabelTotals>, StoreError> {
        let rows = sqlx::query(
            "SELECT label, SUM(amount) AS value, SUM(hours) AS hours, COUNT(*) AS wins FROM wins
             WHERE status = 'counted' AND occurred_at >= $1 AND occurred_at < $2
             GROUP BY label ORDER BY label",
        )
        .bind(millis(from))
        .bind(millis(to))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| LabelTotals {
                label: r.get("label"),
                value: r.get::<Option<f64>, _>("value").unwrap_or(0.0),
                hours: r.get::<Option<f64>, _>("hours").unwrap_or(0.0),
                // People are never added up across wins: the same people are often behind several.
                users: 0.0,
                wins: r.get("wins"),
            })
            .collect())
    }

    /// One win as counted, with its status ("counted" or "revoked") and why it changed.
    pub async fn win(&self, id: &str) -> Result<Option<(Win, String, Option<String>)>, StoreError> {
        let row = sqlx::query("SELECT payload, status, status_reason FROM wins WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            let win: Win = decode_payload(id, &r.get::<Vec<u8>, _>("payload"))?;
            Ok((win, r.get("status"), r.get("status_reason")))
        })
        .transpose()
    }
}
