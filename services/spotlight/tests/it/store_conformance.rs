//! The spotlight store, the same cases on PostgreSQL and SQLite.

use herald_proto::v1::{Announcement, Credit, CreditSubject, Value, ValueLabel, Win};
use herald_runtime::{db::Backend, service::Service};
use herald_spotlight::{
    Spotlight,
    periods::{Period, PeriodKind},
    store::Store,
};
use herald_testkit::stores::TestStore;

fn at(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(s)
        .expect("time")
        .with_timezone(&chrono::Utc)
}

fn win(id: &str, amount: f64, person: &str) -> Win {
    Win {
        id: id.into(),
        business_service: Some("svc-warehouse".into()),
        value: Some(Value {
            label: ValueLabel::Avoided as i32,
            amount,
            hours: 10.0,
            users: 5.0,
            ..Default::default()
        }),
        credits: vec![
            Credit {
                subject: CreditSubject::Team as i32,
                id: "team-platform".into(),
                share: 1.0,
                amount,
                ..Default::default()
            },
            Credit {
                subject: CreditSubject::Person as i32,
                id: person.into(),
                share: 1.0,
                amount,
                ..Default::default()
            },
        ],
        ..Default::default()
    }
}

async fn store(backend: Backend) -> anyhow::Result<(TestStore, Store)> {
    let test = TestStore::on(backend, Spotlight::NAME, &Spotlight::migrations()).await?;
    let store = Store::new(test.db.pool.clone());
    Ok((test, store))
}

async fn a_win_is_counted_once_however_often_it_arrives(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = store(backend).await?;
    let tz = chrono_tz::Europe::Amsterdam;
    let when = at("2025-03-11T08:04:37Z");
    let announcement = Announcement {
        id: "a-1".into(),
        win_id: "w-1".into(),
        ..Default::default()
    };
    let first = store
        .count_win(&win("w-1", 100.0, "p-a"), when, tz, Some(&announcement))
        .await?;
    assert_eq!(
        first.as_ref(),
        Some(&announcement),
        "the announcement is kept"
    );
    let again = store
        .count_win(&win("w-1", 100.0, "p-a"), when, tz, Some(&announcement))
        .await?;
    assert_eq!(
        again.as_ref(),
        Some(&announcement),
        "a redelivery finds it again"
    );
    store
        .count_win(&win("w-2", 50.0, "p-b"), when, tz, None)
        .await?;
    assert!(store.announcement_for_win("w-2").await?.is_none());

    let week = Period::containing(PeriodKind::Week, when, tz);
    let people = store.leaderboard(&week, "person", 10).await?;
    let ranked: Vec<(&str, f64, i64)> = people
        .iter()
        .map(|r| (r.subject_id.as_str(), r.value, r.wins))
        .collect();
    assert_eq!(ranked, vec![("p-a", 100.0, 1), ("p-b", 50.0, 1)]);
    let teams = store.leaderboard(&week, "team", 10).await?;
    assert_eq!((teams[0].value, teams[0].wins), (150.0, 2));
    let totals = store.totals(&week).await?;
    assert_eq!(totals.len(), 1);
    assert_eq!(
        (totals[0].label.as_str(), totals[0].value, totals[0].wins),
        ("avoided", 150.0, 2)
    );
    assert!((totals[0].users - 10.0).abs() < 1e-9);

    let month = Period::containing(PeriodKind::Month, when, tz);
    assert_eq!(
        store.leaderboard(&month, "service", 10).await?[0].value,
        150.0
    );
    let other_week = Period::containing(PeriodKind::Week, at("2025-03-20T08:00:00Z"), tz);
    assert!(
        store
            .leaderboard(&other_week, "person", 10)
            .await?
            .is_empty()
    );
    Ok(())
}

herald_testkit::store_cases!(a_win_is_counted_once_however_often_it_arrives);
