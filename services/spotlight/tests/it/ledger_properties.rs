//! Properties of the figures, over random sets of wins: taking a withdrawn win out restores every
//! rollup and total exactly, and the figures rebuilt from the wins still counted equal the live
//! ones. On SQLite. PostgreSQL counts a batch of wins in one statement of its own
//! (`store/in_one.rs`); the conformance cases check it leaves the same figures, ledger and
//! announcements.

use chrono::{DateTime, Duration, TimeZone, Utc};
use herald_proto::v1::{Credit, CreditSubject, Value, ValueLabel, Win};
use herald_runtime::{db::Backend, service::Service};
use herald_spotlight::{Spotlight, store::Store};
use herald_testkit::stores::TestStore;
use proptest::prelude::*;
use sqlx::Row;

#[derive(Debug, Clone)]
struct Spec {
    amount: f64,
    hours: f64,
    users: f64,
    people: Vec<(usize, f64)>,
    service: usize,
    label: usize,
    day: i64,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        0.01f64..2_000_000.0,
        0.0f64..10_000.0,
        0.0f64..12_000.0,
        prop::collection::vec((0usize..6, 0.01f64..1.0), 0..5),
        0usize..3,
        0usize..4,
        0i64..70,
    )
        .prop_map(|(amount, hours, users, people, service, label, day)| Spec {
            amount,
            hours,
            users,
            people,
            service,
            label,
            day,
        })
}

fn win(id: usize, spec: &Spec) -> (Win, DateTime<Utc>) {
    let labels = [
        ValueLabel::Cash,
        ValueLabel::Capacity,
        ValueLabel::Avoided,
        ValueLabel::Estimate,
    ];
    let total: f64 = spec.people.iter().map(|(_, w)| w).sum();
    let mut credits = vec![Credit {
        subject: CreditSubject::Team as i32,
        id: format!("team-{}", spec.service),
        share: 1.0,
        amount: spec.amount,
        ..Default::default()
    }];
    for (person, weight) in &spec.people {
        let share = weight / total;
        credits.push(Credit {
            subject: CreditSubject::Person as i32,
            id: format!("p-{person}"),
            share,
            amount: spec.amount * share,
            ..Default::default()
        });
    }
    let at = Utc
        .with_ymd_and_hms(2026, 9, 28, 10, 0, 0)
        .single()
        .expect("time")
        + Duration::days(spec.day)
        + Duration::minutes(id as i64);
    let win = Win {
        id: format!("w-{id}"),
        occurred_at: Some(herald_proto::time::to_timestamp(at)),
        business_service: Some(format!("svc-{}", spec.service)),
        value: Some(Value {
            label: labels[spec.label] as i32,
            amount: spec.amount,
            hours: spec.hours,
            users: spec.users,
            ..Default::default()
        }),
        credits,
        ..Default::default()
    };
    (win, at)
}

/// Every non-empty rollup and total row, in order.
async fn figures(test: &TestStore) -> anyhow::Result<Vec<String>> {
    let mut rows = Vec::new();
    for row in sqlx::query(
        "SELECT period, period_start, scope, subject_id, value_cents, hours_milli, wins FROM rollups
         WHERE value_cents <> 0 OR hours_milli <> 0 OR wins <> 0
         ORDER BY period, period_start, scope, subject_id",
    )
    .fetch_all(&test.db.pool)
    .await?
    {
        rows.push(format!(
            "{} {} {} {} {} {} {}",
            row.get::<String, _>(0),
            row.get::<String, _>(1),
            row.get::<String, _>(2),
            row.get::<String, _>(3),
            row.get::<i64, _>(4),
            row.get::<i64, _>(5),
            row.get::<i64, _>(6)
        ));
    }
    for row in sqlx::query(
        "SELECT period, period_start, label, value_cents, hours_milli, people, wins FROM totals
         WHERE value_cents <> 0 OR hours_milli <> 0 OR people <> 0 OR wins <> 0
         ORDER BY period, period_start, label",
    )
    .fetch_all(&test.db.pool)
    .await?
    {
        rows.push(format!(
            "{} {} {} {} {} {} {}",
            row.get::<String, _>(0),
            row.get::<String, _>(1),
            row.get::<String, _>(2),
            row.get::<i64, _>(3),
            row.get::<i64, _>(4),
            row.get::<i64, _>(5),
            row.get::<i64, _>(6)
        ));
    }
    Ok(rows)
}

async fn revoke_restores_exactly(kept: Vec<Spec>, withdrawn: Spec) -> anyhow::Result<()> {
    let test = TestStore::on(Backend::Sqlite, Spotlight::NAME, &Spotlight::migrations()).await?;
    let store = Store::new(test.db.pool.clone());
    let tz = chrono_tz::Europe::Amsterdam;
    for (i, spec) in kept.iter().enumerate() {
        let (win, at) = win(i, spec);
        store.count_win(&win, at, tz, None).await?;
    }
    store.fold().await?;
    let before = figures(&test).await?;
    let (extra, at) = win(kept.len(), &withdrawn);
    store.count_win(&extra, at, tz, None).await?;
    store.revoke_win(&extra, at, tz, |a| a.clone()).await?;
    store.fold().await?;
    let after = figures(&test).await?;
    anyhow::ensure!(before == after, "figures changed:\n{before:#?}\n{after:#?}");
    let report = store.rebuild(tz, false).await?;
    anyhow::ensure!(
        report.differences.is_empty(),
        "rebuilt figures differ: {:?}",
        report.differences
    );
    anyhow::ensure!(report.entries == kept.len() as u64);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn a_revoke_restores_every_total_and_the_ledger_rebuilds_them(
        kept in prop::collection::vec(spec(), 0..12),
        withdrawn in spec(),
    ) {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let result = runtime.block_on(revoke_restores_exactly(kept, withdrawn));
        prop_assert!(result.is_ok(), "{:?}", result.err());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_figure_is_found_and_repaired_from_the_ledger() -> anyhow::Result<()> {
    let test = TestStore::on(Backend::Sqlite, Spotlight::NAME, &Spotlight::migrations()).await?;
    let store = Store::new(test.db.pool.clone());
    let tz = chrono_tz::Europe::Amsterdam;
    let spec = Spec {
        amount: 1234.56,
        hours: 3.5,
        users: 12.0,
        people: vec![(1, 0.5), (2, 0.5)],
        service: 0,
        label: 2,
        day: 3,
    };
    let (w, at) = win(0, &spec);
    store.count_win(&w, at, tz, None).await?;
    store.fold().await?;
    sqlx::query("UPDATE rollups SET value_cents = value_cents + 1 WHERE scope = 'person'")
        .execute(&test.db.pool)
        .await?;
    let report = store.rebuild(tz, false).await?;
    assert_eq!(report.differences.len(), 4, "{report:?}");
    assert!(!report.repaired);
    let repaired = store.rebuild(tz, true).await?;
    assert!(repaired.repaired);
    assert!(store.rebuild(tz, false).await?.differences.is_empty());
    Ok(())
}
