//! The notify store, the same cases on PostgreSQL and SQLite.

use std::time::Duration;

use herald_notify::{
    Notify,
    attempt::AttemptOutcome,
    store::{Next, Store},
};
use herald_proto::v1::Announcement;
use herald_runtime::{db::Backend, service::Service};
use herald_testkit::stores::TestStore;

async fn store(backend: Backend) -> anyhow::Result<(TestStore, Store)> {
    let test = TestStore::on(backend, Notify::NAME, &Notify::migrations()).await?;
    let store = Store::new(test.db.clone());
    Ok((test, store))
}

fn routes() -> Vec<(String, String)> {
    vec![
        ("to-slack".into(), "slack".into()),
        ("to-bi".into(), "bi".into()),
    ]
}

async fn deliveries_are_created_once_per_route(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = store(backend).await?;
    let a = Announcement {
        id: "a-1".into(),
        ..Default::default()
    };
    assert_eq!(store.enqueue(&a, &routes()).await?, 2);
    assert_eq!(
        store.enqueue(&a, &routes()).await?,
        0,
        "a redelivered announcement adds nothing"
    );
    assert_eq!(store.list(None, &[], 10).await?.len(), 2);
    Ok(())
}

async fn a_claimed_delivery_is_leased_and_retried_when_due(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = store(backend).await?;
    store
        .enqueue(
            &Announcement {
                id: "a-1".into(),
                ..Default::default()
            },
            &routes(),
        )
        .await?;
    let claimed = store.claim_due(10, Duration::from_secs(60)).await?;
    assert_eq!(claimed.len(), 2);
    assert!(
        claimed
            .iter()
            .all(|c| c.attempt == 1 && c.announcement.is_some())
    );
    assert!(
        store
            .claim_due(10, Duration::from_secs(60))
            .await?
            .is_empty(),
        "leased rows are not claimed twice"
    );

    let failure = AttemptOutcome::Retry {
        status: Some(503),
        error: "HTTP 503".into(),
        after: None,
    };
    let past = chrono::Utc::now() - chrono::Duration::seconds(1);
    store
        .finish_attempt(
            &claimed[0],
            &failure,
            Duration::from_millis(12),
            Next::RetryAt(past),
        )
        .await?;
    let delivered = AttemptOutcome::Delivered { status: 200 };
    store
        .finish_attempt(
            &claimed[1],
            &delivered,
            Duration::from_millis(8),
            Next::Delivered,
        )
        .await?;

    let again = store.claim_due(10, Duration::from_secs(60)).await?;
    assert_eq!(again.len(), 1);
    assert_eq!(
        (again[0].id.as_str(), again[0].attempt),
        (claimed[0].id.as_str(), 2)
    );

    let list = store.list(Some("a-1"), &["delivered"], 10).await?;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].attempt_log.len(), 1);
    assert_eq!(list[0].attempt_log[0].http_status, Some(200));
    assert!(list[0].delivered_at.is_some());
    let pending = store.list(None, &["pending", "sending"], 10).await?;
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].attempt_log[0].error.as_deref(), Some("HTTP 503"));
    assert!(store.list(Some("a-other"), &[], 10).await?.is_empty());
    Ok(())
}

async fn a_vanished_dispatcher_gives_its_deliveries_back_after_the_lease(
    backend: Backend,
) -> anyhow::Result<()> {
    let (_db, store) = store(backend).await?;
    store
        .enqueue(
            &Announcement {
                id: "a-1".into(),
                ..Default::default()
            },
            &routes()[..1],
        )
        .await?;
    assert_eq!(store.claim_due(10, Duration::ZERO).await?.len(), 1);
    // The lease runs out (a time-based contract: nothing signals it).
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        store
            .claim_due(10, Duration::from_secs(60))
            .await?
            .is_empty(),
        "an interrupted attempt is not simply claimed again: the dispatcher decides per channel"
    );
    let interrupted = store.take_interrupted(Duration::from_secs(60)).await?;
    assert_eq!(interrupted.len(), 1, "an expired lease is handed back");
    assert_eq!(interrupted[0].attempt, 1, "the attempt that was cut short");
    assert!(
        store
            .take_interrupted(Duration::from_secs(60))
            .await?
            .is_empty(),
        "leased to one dispatcher at a time"
    );
    assert!(store.next_due().await?.is_some());
    Ok(())
}

herald_testkit::store_cases!(
    deliveries_are_created_once_per_route,
    a_claimed_delivery_is_leased_and_retried_when_due,
    a_vanished_dispatcher_gives_its_deliveries_back_after_the_lease,
);
