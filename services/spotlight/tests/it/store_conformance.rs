//! The spotlight store, the same cases on PostgreSQL and SQLite.

use herald_proto::v1::{Announcement, Credit, CreditSubject, Value, ValueLabel, Win};
use herald_runtime::{db::Backend, service::Service};
use herald_spotlight::{
    Spotlight,
    periods::{Period, PeriodKind},
    store::Store,
};
use herald_testkit::stores::TestStore;
use sqlx::Row;

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

/// A digest is claimed by one owner; another takes it over only when the lease ran out before it
/// was published; once published (or found empty) nobody claims it again.
async fn a_digest_is_claimed_once(backend: Backend) -> anyhow::Result<()> {
    use herald_spotlight::store::digests::Claim;
    use std::time::Duration;
    let test = TestStore::on(backend, Spotlight::NAME, &Spotlight::migrations()).await?;
    let store = Store::new(test.db.pool.clone());
    let long = Duration::from_secs(60);
    assert_eq!(
        store
            .claim_digest("d-1", "weekly", "2026-11-23", "a", long)
            .await?,
        Claim::Ours
    );
    assert_eq!(
        store
            .claim_digest("d-1", "weekly", "2026-11-23", "b", long)
            .await?,
        Claim::Held,
        "a running lease is respected"
    );
    assert_eq!(
        store
            .claim_digest("d-2", "weekly", "2026-11-30", "a", Duration::ZERO)
            .await?,
        Claim::Ours
    );
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(
        store
            .claim_digest("d-2", "weekly", "2026-11-30", "b", long)
            .await?,
        Claim::Ours,
        "a claimer that died loses its lease"
    );
    store
        .digest_published("d-1", &Announcement::default())
        .await?;
    store.digest_empty("d-2").await?;
    for id in ["d-1", "d-2"] {
        assert_eq!(
            store
                .claim_digest(id, "weekly", "x", "c", Duration::ZERO)
                .await?,
            Claim::Published
        );
    }
    Ok(())
}

herald_testkit::store_cases!(
    a_win_is_counted_once_however_often_it_arrives,
    a_digest_is_claimed_once
);

/// Wins counted at once by many writers, crediting the same people in opposite orders, all count:
/// every writer takes the shared rows in the same order, so none waits for another in a cycle
/// (PostgreSQL would otherwise abort one as a deadlock, and the stage would retry it, a second
/// later, over and over).
async fn concurrent_wins_on_the_same_rows_never_deadlock(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = store(backend).await?;
    let tz = chrono_tz::Europe::Amsterdam;
    let when = at("2025-03-11T08:04:37Z");
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..8 {
        let store = store.clone();
        writers.spawn(async move {
            for n in 0..15 {
                let mut w = win(&format!("w-{writer}-{n}"), 10.0, "p-a");
                let mut second = w.credits[1].clone();
                second.id = "p-b".into();
                // Half the writers credit p-a first, half p-b first.
                if writer % 2 == 0 {
                    w.credits.push(second);
                } else {
                    w.credits.insert(0, second);
                }
                store.count_win(&w, when, tz, None).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = writers.join_next().await {
        done??;
    }
    let week = Period::containing(PeriodKind::Week, when, tz);
    let people = store.leaderboard(&week, "person", 10).await?;
    let wins: Vec<(&str, i64)> = people
        .iter()
        .map(|r| (r.subject_id.as_str(), r.wins))
        .collect();
    assert_eq!(wins, vec![("p-a", 120), ("p-b", 120)]);
    Ok(())
}

herald_testkit::store_cases!(concurrent_wins_on_the_same_rows_never_deadlock);

/// A batch holding a repeat of one of its own wins, a redelivery of a win counted earlier and a win
/// withdrawn before it arrived counts each new win once and answers each with the announcement
/// kept for it.
async fn a_batch_counts_each_new_win_once(backend: Backend) -> anyhow::Result<()> {
    let (db, store) = store(backend).await?;
    let tz = chrono_tz::Europe::Amsterdam;
    let when = at("2025-03-11T08:04:37Z");
    let announced = |id: &str| Announcement {
        id: format!("a-{id}"),
        win_id: id.into(),
        ..Default::default()
    };
    store
        .count_win(
            &win("w-old", 10.0, "p-a"),
            when,
            tz,
            Some(&announced("w-old")),
        )
        .await?;
    store
        .revoke_win(&win("w-gone", 70.0, "p-b"), when, tz, |a| a.clone())
        .await?;

    let batch = vec![
        (win("w-1", 100.0, "p-a"), when, Some(announced("w-1"))),
        (win("w-old", 10.0, "p-a"), when, Some(announced("w-old"))),
        (win("w-2", 50.0, "p-b"), when, None),
        (win("w-1", 100.0, "p-a"), when, Some(announced("w-1"))),
        (win("w-gone", 70.0, "p-b"), when, Some(announced("w-gone"))),
        (win("w-3", 5.0, "p-b"), when, Some(announced("w-3"))),
    ];
    let answers = store.count_wins(&batch, tz).await?;
    let ids: Vec<Option<String>> = answers
        .iter()
        .map(|a| a.as_ref().map(|a| a.id.clone()))
        .collect();
    assert_eq!(
        ids,
        vec![
            Some("a-w-1".into()),
            Some("a-w-old".into()),
            None,
            Some("a-w-1".into()),
            None,
            Some("a-w-3".into()),
        ],
        "each win answered in its place: new, redelivered, repeated, withdrawn"
    );
    let week = Period::containing(PeriodKind::Week, when, tz);
    let people = store.leaderboard(&week, "person", 10).await?;
    let ranked: Vec<(&str, f64, i64)> = people
        .iter()
        .map(|r| (r.subject_id.as_str(), r.value, r.wins))
        .collect();
    assert_eq!(ranked, vec![("p-a", 110.0, 2), ("p-b", 55.0, 2)]);
    let totals = store.totals(&week).await?;
    assert_eq!((totals[0].value, totals[0].wins), (165.0, 4));
    assert!(store.announcement_for_win("w-gone").await?.is_none());
    // PostgreSQL counts a batch in one statement and SQLite in a transaction: both leave one row
    // for each win, counted or withdrawn (the ledger the figures are rebuilt from), and at most
    // one announcement for each win counted, none for the rest.
    let ledger: Vec<(String, String, bool)> =
        sqlx::query("SELECT id, status, revoked_at FROM wins ORDER BY id")
            .fetch_all(&db.db.pool)
            .await?
            .iter()
            .map(|r| {
                let revoked_at: Option<i64> = r.get("revoked_at");
                (r.get("id"), r.get("status"), revoked_at.is_some())
            })
            .collect();
    let counted = |id: &str| (id.to_string(), "counted".to_string(), false);
    assert_eq!(
        ledger,
        vec![
            counted("w-1"),
            counted("w-2"),
            counted("w-3"),
            ("w-gone".to_string(), "revoked".to_string(), true),
            counted("w-old")
        ]
    );
    let announced: Vec<String> = sqlx::query("SELECT win_id FROM announcements ORDER BY win_id")
        .fetch_all(&db.db.pool)
        .await?
        .iter()
        .map(|r| r.get("win_id"))
        .collect();
    assert_eq!(announced, vec!["w-1", "w-3", "w-old"]);
    Ok(())
}

herald_testkit::store_cases!(a_batch_counts_each_new_win_once);

/// On PostgreSQL counted wins reach the shared rows through folds; folds running at once
/// (another replica's, a read's, the background one's) add every delta exactly once, while wins
/// keep arriving. On SQLite counting adds to the shared rows itself, and the folds find nothing.
async fn folds_at_once_add_each_delta_once(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = store(backend).await?;
    let tz = chrono_tz::Europe::Amsterdam;
    let when = at("2025-03-11T08:04:37Z");
    let counting = tokio_util::sync::CancellationToken::new();
    let mut folders = tokio::task::JoinSet::new();
    for _ in 0..3 {
        let (store, counting) = (store.clone(), counting.clone());
        folders.spawn(async move {
            let mut taken = 0;
            while !counting.is_cancelled() {
                taken += store.fold().await?;
                tokio::task::yield_now().await;
            }
            anyhow::Ok(taken)
        });
    }
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..4 {
        let store = store.clone();
        writers.spawn(async move {
            for n in 0..20 {
                let id = format!("w-{writer}-{n}");
                store
                    .count_win(&win(&id, 10.0, "p-a"), when, tz, None)
                    .await?;
                if n % 5 == 0 {
                    // Withdrawn again: what it added comes out through the same deltas.
                    store
                        .revoke_win(&win(&id, 10.0, "p-a"), when, tz, |a| a.clone())
                        .await?;
                }
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = writers.join_next().await {
        done??;
    }
    counting.cancel();
    let mut taken = 0;
    while let Some(done) = folders.join_next().await {
        taken += done??;
    }
    match backend {
        Backend::Postgres => assert!(taken > 0, "the folders took no delta: nothing was tested"),
        Backend::Sqlite => assert_eq!(taken, 0, "SQLite counted through deltas"),
    }
    let week = Period::containing(PeriodKind::Week, when, tz);
    // The read folds whatever the folders left.
    let people = store.leaderboard(&week, "person", 10).await?;
    let figures: Vec<(&str, f64, i64)> = people
        .iter()
        .map(|r| (r.subject_id.as_str(), r.value, r.wins))
        .collect();
    assert_eq!(figures, vec![("p-a", 640.0, 64)]);
    let totals = store.totals(&week).await?;
    assert_eq!((totals[0].value, totals[0].wins), (640.0, 64));
    assert_eq!(store.fold().await?, 0, "the read left deltas behind");
    let rebuilt = store.rebuild(tz, false).await?;
    assert!(rebuilt.differences.is_empty(), "{:?}", rebuilt.differences);
    Ok(())
}

herald_testkit::store_cases!(folds_at_once_add_each_delta_once);

/// A win's payload is kept packed and read back whole, whichever statement wrote it (a batch's,
/// or a withdrawal's of a win never counted); one an earlier release kept as it was encoded is
/// still read, and still withdrawn exactly.
async fn win_payloads_are_kept_packed_and_those_kept_whole_still_read(
    backend: Backend,
) -> anyhow::Result<()> {
    use prost::Message;
    let (db, store) = store(backend).await?;
    let tz = chrono_tz::Europe::Amsterdam;
    let when = at("2025-03-11T08:04:37Z");
    let worded = |id: &str| {
        let mut w = win(id, 250.0, "p-a");
        w.headline = "Users cannot reach Warehouse Management from the Tilburg office".into();
        if let Some(v) = w.value.as_mut() {
            v.formula = "people affected × blocked share × working hours saved × loaded hourly \
                         rate; working hours saved = baseline restore time − actual restore time"
                .into();
        }
        w
    };
    let stored = |id: &'static str| {
        let pool = db.db.pool.clone();
        async move {
            let payload: Vec<u8> = sqlx::query("SELECT payload FROM wins WHERE id = $1")
                .bind(id)
                .fetch_one(&pool)
                .await?
                .get("payload");
            anyhow::Ok(payload)
        }
    };

    store.count_wins(&[(worded("w-1"), when, None)], tz).await?;
    store
        .revoke_win(&worded("w-never-counted"), when, tz, |a| a.clone())
        .await?;
    for id in ["w-1", "w-never-counted"] {
        let payload = stored(id).await?;
        assert_eq!(payload.first(), Some(&0u8), "{id} kept packed");
        assert!(payload.len() < worded(id).encode_to_vec().len(), "{id}");
        let (read, ..) = store.win(id).await?.expect("kept");
        assert_eq!(read, worded(id));
    }

    // As a release before packing kept it: read as before, and withdrawn exactly.
    sqlx::query("UPDATE wins SET payload = $2 WHERE id = $1")
        .bind("w-1")
        .bind(worded("w-1").encode_to_vec())
        .execute(&db.db.pool)
        .await?;
    let (read, status, _) = store.win("w-1").await?.expect("kept");
    assert_eq!((read, status.as_str()), (worded("w-1"), "counted"));
    store
        .revoke_win(&worded("w-1"), when, tz, |a| a.clone())
        .await?;
    let week = Period::containing(PeriodKind::Week, when, tz);
    let people = store.leaderboard(&week, "person", 10).await?;
    assert!(
        people.iter().all(|r| r.value == 0.0 && r.wins == 0),
        "the withdrawal subtracted what the unpacked win had added: {people:?}"
    );
    Ok(())
}

herald_testkit::store_cases!(win_payloads_are_kept_packed_and_those_kept_whole_still_read);

/// The release that began packing payloads added migration 7, which changes nothing but
/// makes a release before it refuse this store at start (a migration it does not know) rather
/// than fail on every packed payload it reads.
async fn a_release_before_packing_refuses_to_start_on_a_store_that_packs(
    backend: Backend,
) -> anyhow::Result<()> {
    let migrations = Spotlight::migrations();
    TestStore::on(backend, Spotlight::NAME, &migrations)
        .await?
        .refuses_a_release_before(&migrations, 7)
        .await
}

herald_testkit::store_cases!(a_release_before_packing_refuses_to_start_on_a_store_that_packs);

/// On PostgreSQL a batch's count commits without waiting for the log's flush (the stage publishes
/// its announcements first), [`Store::sync`] flushes it before the wins are acknowledged, and
/// every other write still commits synchronously.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_counted_batch_commits_unsynced_until_the_stage_syncs() -> anyhow::Result<()> {
    herald_testkit::init_tracing();
    let test = TestStore::on(Backend::Postgres, Spotlight::NAME, &Spotlight::migrations()).await?;
    let db = test.noting_commit_settings("wins").await?;
    let store = Store::new(db.pool.clone());
    let tz = chrono_tz::Europe::Amsterdam;
    let when = at("2025-03-11T08:04:37Z");

    let batch = [
        (win("w-1", 100.0, "p-a"), when, None),
        (win("w-2", 50.0, "p-b"), when, None),
    ];
    store.count_wins(&batch, tz).await?;
    assert_eq!(test.commit_settings().await?, ["off", "off"]);
    test.check_flushed_by(store.sync()).await?;

    store
        .revoke_win(&win("w-3", 10.0, "p-c"), when, tz, Clone::clone)
        .await?;
    assert_eq!(
        test.commit_settings().await?,
        ["on"],
        "a revocation commits synchronously"
    );
    store
        .count_wins(&[(win("w-4", 10.0, "p-d"), when, None)], tz)
        .await?;
    assert_eq!(
        test.commit_settings().await?,
        ["off"],
        "the next batch again"
    );
    Ok(())
}
