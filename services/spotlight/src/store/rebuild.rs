//! `herald ledger rebuild`: recompute every rollup and total from the wins still counted (each
//! win's payload, exactly as it was counted) and compare with the live figures, or replace them.

use std::collections::BTreeMap;

use chrono_tz::Tz;
use futures::TryStreamExt;
use herald_proto::v1::Win;
use herald_runtime::{db::from_millis, store::decode_payload};
use sqlx::{AnyPool, Row};

use super::{
    Store, StoreError,
    contributions::{self, Amounts, RollupKey, TotalKey},
};

/// One figure that differs between the live tables and the recomputation.
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    pub row: String,
    pub field: &'static str,
    pub live: i64,
    pub rebuilt: i64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// Wins counted (the ledger's live entries) the figures were rebuilt from.
    pub entries: u64,
    pub rows_checked: u64,
    pub differences: Vec<Difference>,
    pub repaired: bool,
}

type Figures = (BTreeMap<RollupKey, Amounts>, BTreeMap<TotalKey, Amounts>);

async fn recompute(pool: &AnyPool, tz: Tz) -> Result<(Figures, u64), StoreError> {
    let mut rollups: BTreeMap<RollupKey, Amounts> = BTreeMap::new();
    let mut totals: BTreeMap<TotalKey, Amounts> = BTreeMap::new();
    let mut entries = 0;
    let mut rows =
        sqlx::query("SELECT id, occurred_at, payload FROM wins WHERE status = 'counted'")
            .fetch(pool);
    while let Some(row) = rows.try_next().await? {
        let id: String = row.get("id");
        let win: Win = decode_payload(&id, &row.get::<Vec<u8>, _>("payload"))?;
        let occurred_at = from_millis(row.get::<i64, _>("occurred_at"));
        let of = contributions::of(&win, occurred_at, tz);
        for (key, amounts) in of.rollups {
            rollups.entry(key).or_default().add(amounts, 1);
        }
        for (key, amounts) in of.totals {
            totals.entry(key).or_default().add(amounts, 1);
        }
        entries += 1;
    }
    Ok(((rollups, totals), entries))
}

async fn live(pool: &AnyPool) -> Result<Figures, StoreError> {
    let mut rollups = BTreeMap::new();
    for row in sqlx::query(
        "SELECT period, period_start, scope, subject_id, value_cents, hours_milli, wins FROM rollups",
    )
    .fetch_all(pool)
    .await?
    {
        let period: String = row.get("period");
        let scope: String = row.get("scope");
        rollups.insert(
            RollupKey {
                period: static_token(&period),
                period_start: row.get("period_start"),
                scope: static_token(&scope),
                subject_id: row.get("subject_id"),
            },
            Amounts::from_row(&row, false)?,
        );
    }
    let mut totals = BTreeMap::new();
    for row in sqlx::query(
        "SELECT period, period_start, label, value_cents, hours_milli, people, wins FROM totals",
    )
    .fetch_all(pool)
    .await?
    {
        let period: String = row.get("period");
        let label: String = row.get("label");
        totals.insert(
            TotalKey {
                period: static_token(&period),
                period_start: row.get("period_start"),
                label: static_token(&label),
            },
            Amounts::from_row(&row, true)?,
        );
    }
    Ok((rollups, totals))
}

/// Tokens stored in the tables, as the `'static` strings the keys use.
fn static_token(token: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "week",
        "month",
        "person",
        "team",
        "service",
        "cash",
        "capacity",
        "avoided",
        "estimate",
        "unspecified",
    ];
    KNOWN
        .iter()
        .find(|k| **k == token)
        .copied()
        .unwrap_or("unknown")
}

fn compare<K: Ord + std::fmt::Debug>(
    live: &BTreeMap<K, Amounts>,
    rebuilt: &BTreeMap<K, Amounts>,
    name: impl Fn(&K) -> String,
    out: &mut Vec<Difference>,
) -> u64 {
    let zero = Amounts::default();
    let keys: std::collections::BTreeSet<&K> = live.keys().chain(rebuilt.keys()).collect();
    for key in &keys {
        let a = live.get(key).unwrap_or(&zero);
        let b = rebuilt.get(key).unwrap_or(&zero);
        for (field, x, y) in [
            ("value_cents", a.value_cents, b.value_cents),
            ("hours_milli", a.hours_milli, b.hours_milli),
            ("people", a.people, b.people),
            ("wins", a.wins, b.wins),
        ] {
            if x != y {
                out.push(Difference {
                    row: name(key),
                    field,
                    live: x,
                    rebuilt: y,
                });
            }
        }
    }
    keys.len() as u64
}

pub async fn run(store: &Store, tz: Tz, repair: bool) -> Result<Report, StoreError> {
    // The live figures are the folded ones: fold what was appended first.
    store.fold().await?;
    let pool = &store.pool;
    let ((rollups, totals), entries) = recompute(pool, tz).await?;
    let (live_rollups, live_totals) = live(pool).await?;
    let mut differences = Vec::new();
    let mut rows_checked = compare(
        &live_rollups,
        &rollups,
        |k| {
            format!(
                "rollup {} {} {} {}",
                k.period, k.period_start, k.scope, k.subject_id
            )
        },
        &mut differences,
    );
    rows_checked += compare(
        &live_totals,
        &totals,
        |k| format!("total {} {} {}", k.period, k.period_start, k.label),
        &mut differences,
    );
    let repaired = repair && !differences.is_empty();
    if repaired {
        let mut tx = pool.begin().await?;
        sqlx::query("DELETE FROM rollups").execute(&mut *tx).await?;
        sqlx::query("DELETE FROM totals").execute(&mut *tx).await?;
        // Deltas appended since the fold go the way of the live rows: the recomputation replaces
        // them all (a repair is for a quiet system, as it always was).
        sqlx::query("DELETE FROM rollup_deltas")
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM total_deltas")
            .execute(&mut *tx)
            .await?;
        let rebuilt = contributions::Contributions {
            rollups: rollups.into_iter().collect(),
            totals: totals.into_iter().collect(),
        };
        super::apply(&mut tx, super::Figures::Live, &rebuilt, 1).await?;
        tx.commit().await?;
    }
    Ok(Report {
        entries,
        rows_checked,
        differences,
        repaired,
    })
}
