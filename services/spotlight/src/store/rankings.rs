//! Rankings read from the rollups: a period's leaderboard (a quarter or a season summed from its
//! months), one subject's own position, who was credited at all, and the wins of quiet work.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use herald_proto::v1::{EventKind, Win};
use sqlx::Row;

use super::{Ranked, Store, StoreError};
use crate::periods::Period;

/// Work nobody sees when it goes well: a change with no incident after it, a problem eliminated
/// at its root, toil automated away.
pub const INVISIBLE_KINDS: [EventKind; 3] = [
    EventKind::ChangeImplemented,
    EventKind::ProblemClosed,
    EventKind::AutomationRun,
];

/// The counted wins of [`INVISIBLE_KINDS`] in a time range; `payloads_between` wants its SQL
/// fixed, so the kinds are written out (a test keeps the two lists the same).
const INVISIBLE_SQL: &str = "SELECT id, payload FROM wins
     WHERE status = 'counted' AND kind IN ('change_implemented', 'problem_closed', 'automation_run')
       AND occurred_at >= $1 AND occurred_at < $2
     ORDER BY amount DESC, id LIMIT 500";

/// What a ranking orders by. People are ranked by the working hours they gave back unless money
/// per person is shown ([`crate::config::RecognitionSettings::people_money`]); teams and services
/// by value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RankBy {
    Value,
    Hours,
}

impl RankBy {
    /// The summed column, then the other one: only these two literals ever reach the SQL.
    fn columns(self) -> (&'static str, &'static str) {
        match self {
            RankBy::Value => ("value_cents", "hours_milli"),
            RankBy::Hours => ("hours_milli", "value_cents"),
        }
    }
}

/// A subject's place among everyone credited in a period.
#[derive(Debug, Clone, PartialEq)]
pub struct Position {
    pub rank: u64,
    pub of: u64,
    pub figures: Ranked,
}

/// The rollup rows a period is summed from: its own, or its months'.
fn bounds(period: &Period) -> (&'static str, String, String) {
    (
        period.kind.rolled_up_as().token(),
        period.start.to_string(),
        period.end.to_string(),
    )
}

/// Every subject of `scope` credited in the period, summed, as a derived table.
const SUMMED: &str =
    "SELECT subject_id, SUM(value_cents) AS value_cents, SUM(hours_milli) AS hours_milli,
                             SUM(wins) AS wins
                      FROM rollups
                      WHERE period = $1 AND period_start >= $2 AND period_start < $3 AND scope = $4
                      GROUP BY subject_id
                      HAVING SUM(wins) > 0";

fn ranked(r: &sqlx::any::AnyRow) -> Ranked {
    Ranked {
        subject_id: r.get("subject_id"),
        value: r.get::<i64, _>("value_cents") as f64 / 100.0,
        hours: r.get::<i64, _>("hours_milli") as f64 / 1000.0,
        wins: r.get::<i64, _>("wins"),
    }
}

impl Store {
    /// The top `limit` subjects of `scope` ("person", "team", "service") in the period, by value.
    pub async fn leaderboard(
        &self,
        period: &Period,
        scope: &str,
        limit: i64,
    ) -> Result<Vec<Ranked>, StoreError> {
        self.ranking(period, scope, RankBy::Value, limit).await
    }

    /// The top `limit` subjects of `scope` in the period, ordered `by` (then the other figure,
    /// then id).
    pub async fn ranking(
        &self,
        period: &Period,
        scope: &str,
        by: RankBy,
        limit: i64,
    ) -> Result<Vec<Ranked>, StoreError> {
        self.fold_pending().await?;
        let (kind, from, to) = bounds(period);
        let (first, second) = by.columns();
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT subject_id, CAST(value_cents AS BIGINT) AS value_cents,
                    CAST(hours_milli AS BIGINT) AS hours_milli, CAST(wins AS BIGINT) AS wins
             FROM ({SUMMED}) summed
             ORDER BY {first} DESC, {second} DESC, subject_id LIMIT $5"
        )))
        .bind(kind)
        .bind(from)
        .bind(to)
        .bind(scope)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(ranked).collect())
    }

    /// Where `subject` stands in the period: its rank in [`Store::ranking`]'s order `by` and how
    /// many were credited; `None` when it was not credited.
    pub async fn position(
        &self,
        period: &Period,
        scope: &str,
        by: RankBy,
        subject: &str,
    ) -> Result<Option<Position>, StoreError> {
        self.fold_pending().await?;
        let (kind, from, to) = bounds(period);
        let (first, second) = by.columns();
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "WITH summed AS ({SUMMED}),
                  me AS (SELECT * FROM summed WHERE subject_id = $5)
             SELECT me.subject_id, CAST(me.value_cents AS BIGINT) AS value_cents,
                    CAST(me.hours_milli AS BIGINT) AS hours_milli, CAST(me.wins AS BIGINT) AS wins,
                    CAST((SELECT COUNT(*) FROM summed s
                          WHERE s.{first} > me.{first}
                             OR (s.{first} = me.{first} AND s.{second} > me.{second})
                             OR (s.{first} = me.{first} AND s.{second} = me.{second}
                                 AND s.subject_id < me.subject_id)) AS BIGINT) AS ahead,
                    CAST((SELECT COUNT(*) FROM summed) AS BIGINT) AS credited
             FROM me"
        )))
        .bind(kind)
        .bind(from)
        .bind(to)
        .bind(scope)
        .bind(subject)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| Position {
            rank: u64::try_from(r.get::<i64, _>("ahead")).unwrap_or(0) + 1,
            of: u64::try_from(r.get::<i64, _>("credited")).unwrap_or(0),
            figures: ranked(&r),
        }))
    }

    /// Everyone of `scope` credited with at least one counted win in the period.
    pub async fn credited(
        &self,
        period: &Period,
        scope: &str,
    ) -> Result<HashSet<String>, StoreError> {
        self.fold_pending().await?;
        let (kind, from, to) = bounds(period);
        let rows = sqlx::query(
            "SELECT DISTINCT subject_id FROM rollups
             WHERE period = $1 AND period_start >= $2 AND period_start < $3 AND scope = $4 AND wins > 0",
        )
        .bind(kind)
        .bind(from)
        .bind(to)
        .bind(scope)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| r.get("subject_id")).collect())
    }

    /// Counted wins of quiet work (see [`INVISIBLE_KINDS`]) whose outcome happened in [from, to),
    /// most valuable first.
    pub async fn invisible_wins_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Win>, StoreError> {
        herald_runtime::store::payloads_between(&self.pool, INVISIBLE_SQL, from, to).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_for_quiet_work_names_every_invisible_kind() {
        for kind in INVISIBLE_KINDS {
            assert!(
                INVISIBLE_SQL.contains(&format!("'{}'", kind.token())),
                "{}",
                kind.token()
            );
        }
        assert_eq!(
            INVISIBLE_SQL.matches('\'').count(),
            INVISIBLE_KINDS.len() * 2 + 2
        );
    }
}
