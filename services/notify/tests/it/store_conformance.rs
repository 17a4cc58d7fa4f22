//! The notify store, the same cases on PostgreSQL and SQLite.

use std::time::Duration;

use herald_notify::{
    Notify,
    attempt::AttemptOutcome,
    store::{Enqueue, Next, Planned, Store},
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
    let delivered = AttemptOutcome::Delivered {
        status: 200,
        answer: "ok".into(),
    };
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

async fn one_delivery_per_route_and_channel_each_due_when_planned(
    backend: Backend,
) -> anyhow::Result<()> {
    let (_db, store) = store(backend).await?;
    let now = chrono::Utc::now();
    let later = now + chrono::Duration::hours(3);
    let planned = |route: &str, channel: &str, not_before| Planned {
        route: route.into(),
        channel: channel.into(),
        not_before,
    };
    let plan = [
        planned("wins", "slack", now),
        planned("wins", "teams", now),
        planned("quiet", "slack", later),
    ];
    let a = Announcement {
        id: "a-1".into(),
        ..Default::default()
    };
    assert_eq!(store.enqueue_planned(&a, &plan).await?, 3);
    assert_eq!(
        store.enqueue_planned(&a, &plan).await?,
        0,
        "repeats add nothing"
    );
    let claimed = store.claim_due(10, Duration::from_secs(60)).await?;
    let mut due: Vec<(String, String)> = claimed
        .iter()
        .map(|c| (c.route.clone(), c.channel.clone()))
        .collect();
    due.sort();
    assert_eq!(
        due,
        [
            ("wins".to_string(), "slack".to_string()),
            ("wins".to_string(), "teams".to_string())
        ],
        "the held delivery is not due"
    );
    assert_ne!(claimed[0].id, claimed[1].id);
    let held = store.list(None, &["pending"], 10).await?;
    assert_eq!(held.len(), 1);
    assert_eq!(
        held[0].next_attempt_at.map(|t| t.timestamp_millis()),
        Some(later.timestamp_millis())
    );
    // A correction follows the route's own window.
    let correction = Announcement {
        id: "c-1".into(),
        corrects: "a-1".into(),
        ..Default::default()
    };
    store
        .enqueue_correction_held(
            &correction,
            |route| if route == "wins" { later } else { now },
        )
        .await?;
    let corrections = store.list(Some("c-1"), &[], 10).await?;
    assert_eq!(corrections.len(), 2, "one per channel that carried a-1");
    assert!(
        corrections
            .iter()
            .all(|d| d.next_attempt_at.map(|t| t.timestamp_millis())
                == Some(later.timestamp_millis()))
    );
    Ok(())
}

/// A database made before routes had several channels keeps its deliveries and their attempts when
/// the unique key becomes (announcement, route, channel).
async fn the_per_channel_key_keeps_existing_deliveries(backend: Backend) -> anyhow::Result<()> {
    use prost::Message;
    let dir = tempfile::tempdir()?;
    let sub = match backend {
        Backend::Postgres => "postgres",
        Backend::Sqlite => "sqlite",
    };
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(sub)
            .join("0001_deliveries.sql"),
        dir.path().join("0001_deliveries.sql"),
    )?;
    let first: &'static sqlx::migrate::Migrator =
        Box::leak(Box::new(sqlx::migrate::Migrator::new(dir.path()).await?));
    let only_first = herald_runtime::db::Migrations {
        postgres: first,
        sqlite: first,
    };
    let test = TestStore::on(backend, Notify::NAME, &only_first).await?;
    let a = Announcement {
        id: "a-1".into(),
        ..Default::default()
    };
    sqlx::query(
        "INSERT INTO deliveries (id, announcement_id, route, channel, status, attempts, created_at, payload)
         VALUES ('d-old', 'a-1', 'wins', 'slack', 'delivered', 1, 0, $1)",
    )
    .bind(a.encode_to_vec())
    .execute(&test.db.pool)
    .await?;
    sqlx::query(
        "INSERT INTO attempts (delivery_id, attempt, at, http_status, duration_ms)
         VALUES ('d-old', 1, 0, 200, 5)",
    )
    .execute(&test.db.pool)
    .await?;
    // The upgrade is a new process opening the old database.
    test.db.pool.close().await;
    let upgraded = test.reopen().await?;
    herald_runtime::db::migrate(&upgraded, Notify::NAME, &Notify::migrations()).await?;
    let store = Store::new(upgraded);
    let kept = store.list(None, &[], 10).await?;
    assert_eq!(kept.len(), 1);
    assert_eq!(
        (kept[0].id.as_str(), kept[0].status.as_str()),
        ("d-old", "delivered")
    );
    assert_eq!(kept[0].attempt_log.len(), 1, "the attempt log is kept");
    assert_eq!(kept[0].attempt_log[0].http_status, Some(200));
    // The same announcement and route on the old channel adds nothing; on another channel, one.
    let routes = [
        ("wins".to_string(), "slack".to_string()),
        ("wins".to_string(), "teams".to_string()),
    ];
    assert_eq!(store.enqueue(&a, &routes).await?, 1);
    Ok(())
}

/// Two replicas reserving slots of one channel get slots an interval apart, whoever asks.
async fn sending_slots_are_spaced_across_replicas(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = store(backend).await?;
    let other = store.clone();
    let interval = Duration::from_millis(400);
    let mut slots = Vec::new();
    for s in [&store, &other, &store, &other] {
        slots.push(s.reserve_slot("slack", interval).await?);
    }
    for pair in slots.windows(2) {
        let gap = (pair[1] - pair[0]).num_milliseconds();
        assert_eq!(gap, 400, "{slots:?}");
    }
    let elsewhere = store.reserve_slot("teams", interval).await?;
    assert!(elsewhere < slots[1], "each channel has its own pace");
    Ok(())
}

/// A finished delivery replays with a fresh budget and its log kept; a pending one does not; a
/// claim given back is untried.
async fn replay_and_release(backend: Backend) -> anyhow::Result<()> {
    use herald_notify::store::ReplayError;
    let (_db, store) = store(backend).await?;
    let a = Announcement {
        id: "a-1".into(),
        ..Default::default()
    };
    store.enqueue(&a, &routes()).await?;
    let claimed = store.claim_due(10, Duration::from_secs(60)).await?;
    let failed = AttemptOutcome::Failed {
        status: Some(400),
        error: "HTTP 400".into(),
    };
    store
        .finish_attempt(&claimed[0], &failed, Duration::ZERO, Next::Failed)
        .await?;
    store.release(&claimed[1..]).await?;
    assert!(matches!(
        store.replay(&claimed[1].id).await,
        Err(ReplayError::NotFinished { .. })
    ));
    assert!(matches!(
        store.replay("d-none").await,
        Err(ReplayError::NotFound(_))
    ));
    let replayed = store.replay(&claimed[0].id).await?;
    assert_eq!(replayed.status, "pending");
    assert_eq!(replayed.attempt_log.len(), 1, "the log is kept");
    let again = store.claim_due(10, Duration::from_secs(60)).await?;
    assert_eq!(again.len(), 2, "the replayed and the released");
    for c in &again {
        if c.id == claimed[0].id {
            assert_eq!(
                (c.attempt, c.try_number),
                (2, 1),
                "fresh budget, log goes on"
            );
        } else {
            assert_eq!(
                (c.attempt, c.try_number),
                (1, 1),
                "a release is not an attempt"
            );
        }
    }
    Ok(())
}

/// A merged summary's attempt is logged on every delivery it carried, in one go.
async fn a_merged_send_is_logged_on_every_delivery(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = store(backend).await?;
    for id in ["a-1", "a-2", "a-3"] {
        let a = Announcement {
            id: id.into(),
            ..Default::default()
        };
        store
            .enqueue(&a, &[("wins".to_string(), "slack".to_string())])
            .await?;
    }
    let claimed = store.claim_due(10, Duration::from_secs(60)).await?;
    let delivered = AttemptOutcome::Delivered {
        status: 200,
        answer: "ok".into(),
    };
    store
        .finish_merged(
            &claimed[0],
            &claimed[1..],
            &delivered,
            Duration::from_millis(3),
            Next::Delivered,
        )
        .await?;
    let listed = store.list(None, &[], 10).await?;
    assert!(listed.iter().all(|d| d.status == "delivered"));
    for d in &listed {
        if d.id == claimed[0].id {
            assert_eq!(d.merged_into, None);
            assert_eq!(d.attempt_log[0].answer.as_deref(), Some("ok"));
        } else {
            assert_eq!(d.merged_into.as_deref(), Some(claimed[0].id.as_str()));
            assert!(
                d.attempt_log[0]
                    .answer
                    .as_deref()
                    .is_some_and(|a| a.contains(&claimed[0].id))
            );
        }
    }
    Ok(())
}

/// Opt-outs are per mailbox, however it is spelt.
async fn digest_opt_outs_are_per_mailbox(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = store(backend).await?;
    store.opt_out_of_digests("Ingrid@Larkspur.example").await?;
    store.opt_out_of_digests("ingrid@larkspur.example").await?;
    let out = store
        .digest_optouts(&[
            "INGRID@larkspur.example".into(),
            "jonas@larkspur.example".into(),
        ])
        .await?;
    assert_eq!(out.len(), 1);
    assert!(out.contains("ingrid@larkspur.example"));
    Ok(())
}

herald_testkit::store_cases!(
    sending_slots_are_spaced_across_replicas,
    replay_and_release,
    a_merged_send_is_logged_on_every_delivery,
    digest_opt_outs_are_per_mailbox,
    deliveries_are_created_once_per_route,
    the_per_channel_key_keeps_existing_deliveries,
    one_delivery_per_route_and_channel_each_due_when_planned,
    a_claimed_delivery_is_leased_and_retried_when_due,
    a_vanished_dispatcher_gives_its_deliveries_back_after_the_lease,
);

/// Several announcements queued in one call: each (announcement, route, channel) once, a repeat in
/// the same call or a later one adds nothing, and each delivery keeps its own announcement's trace
/// and due time.
async fn many_announcements_are_queued_at_once_each_once(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = store(backend).await?;
    let now = chrono::Utc::now();
    let later = now + chrono::Duration::hours(3);
    let announcement = |id: &str| Announcement {
        id: id.into(),
        ..Default::default()
    };
    let (a1, a2) = (announcement("a-1"), announcement("a-2"));
    let both = vec![
        Planned {
            route: "to-slack".into(),
            channel: "slack".into(),
            not_before: now,
        },
        Planned {
            route: "to-bi".into(),
            channel: "bi".into(),
            not_before: now,
        },
    ];
    let held = vec![Planned {
        route: "quiet".into(),
        channel: "slack".into(),
        not_before: later,
    }];
    let trace = |n: u8| Some(format!("00-{:032x}-{:016x}-01", n, n));
    let items = [
        Enqueue {
            announcement: &a1,
            planned: &both,
            traceparent: trace(1),
        },
        Enqueue {
            announcement: &a2,
            planned: &held,
            traceparent: trace(2),
        },
        Enqueue {
            announcement: &a1,
            planned: &both,
            traceparent: trace(3),
        },
    ];
    assert_eq!(
        store.enqueue_many(&items).await?,
        3,
        "a repeat in the same call adds nothing"
    );
    assert_eq!(
        store.enqueue_many(&items[..2]).await?,
        0,
        "nor does a redelivery"
    );

    let claimed = store.claim_due(10, Duration::from_secs(60)).await?;
    let mut got: Vec<(&str, &str, Option<&str>)> = claimed
        .iter()
        .map(|c| {
            (
                c.announcement_id.as_str(),
                c.route.as_str(),
                c.traceparent.as_deref(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("a-1", "to-bi", trace(1).as_deref()),
            ("a-1", "to-slack", trace(1).as_deref()),
        ],
        "only what is due now is claimed, under its own announcement's trace"
    );
    let quiet = store.list(None, &[], 10).await?;
    let held_row = quiet
        .iter()
        .find(|d| d.announcement_id == "a-2")
        .ok_or_else(|| anyhow::anyhow!("a-2's delivery was not queued"))?;
    assert_eq!(held_row.status, "pending");
    assert!(
        held_row
            .next_attempt_at
            .is_some_and(|due| (due - later).num_seconds().abs() <= 1),
        "held until its window opens: {:?}",
        held_row.next_attempt_at
    );
    Ok(())
}

herald_testkit::store_cases!(many_announcements_are_queued_at_once_each_once);

/// A delivery queued already claimed is the caller's alone: attempt 1, not claimed again, not
/// claimed a second time by a redelivery, given back only once its lease runs out (the process
/// that held it stopped), and finished like any other.
async fn a_delivery_queued_claimed_is_the_callers_until_its_lease_runs_out(
    backend: Backend,
) -> anyhow::Result<()> {
    let (_db, store) = store(backend).await?;
    let now = chrono::Utc::now();
    let a = Announcement {
        id: "a-1".into(),
        ..Default::default()
    };
    let planned = vec![
        Planned {
            route: "to-slack".into(),
            channel: "slack".into(),
            not_before: now,
        },
        Planned {
            route: "to-bi".into(),
            channel: "bi".into(),
            not_before: now,
        },
    ];
    let trace = Some("00-0000000000000000000000000000000a-000000000000000a-01".to_string());
    // The same announcement twice in one call, as a redelivery in the same batch would be.
    let items = [
        Enqueue {
            announcement: &a,
            planned: &planned,
            traceparent: trace.clone(),
        },
        Enqueue {
            announcement: &a,
            planned: &planned,
            traceparent: None,
        },
    ];
    let lease = Duration::from_millis(300);
    let queued = store
        .enqueue_claiming(&items, |p| p.channel == "bi", lease)
        .await?;
    assert_eq!(queued.created, 2);
    let got: Vec<String> = queued
        .claimed
        .iter()
        .map(|c| {
            format!(
                "{} {} attempt {} try {} readable {} trace {:?}",
                c.announcement_id,
                c.route,
                c.attempt,
                c.try_number,
                c.announcement.is_some(),
                c.traceparent
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![format!(
            "a-1 to-bi attempt 1 try 1 readable true trace {:?}",
            trace
        )],
        "only the delivery picked is claimed, once, as its first attempt, under its first trace"
    );

    let again = store
        .enqueue_claiming(&items, |p| p.channel == "bi", lease)
        .await?;
    assert_eq!(
        (again.created, again.claimed.len()),
        (0, 0),
        "a redelivered announcement neither adds nor claims anything"
    );
    let others: Vec<String> = store
        .claim_due(10, Duration::from_secs(60))
        .await?
        .into_iter()
        .map(|c| c.route)
        .collect();
    assert_eq!(
        others,
        vec!["to-slack".to_string()],
        "the claimed one is not claimed again"
    );
    assert!(
        store.take_interrupted(lease).await?.is_empty(),
        "nobody takes it back while its lease holds"
    );

    tokio::time::sleep(lease + Duration::from_millis(50)).await;
    let back = store.take_interrupted(Duration::from_secs(60)).await?;
    assert_eq!(
        back.iter()
            .map(|c| (c.route.as_str(), c.attempt))
            .collect::<Vec<_>>(),
        vec![("to-bi", 1)],
        "once the lease has run out, it is taken back as an attempt cut short"
    );
    // The first holder, late, gives back what it no longer holds: nothing changes.
    store.release(&queued.claimed).await?;
    let row = store
        .get(&back[0].id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the delivery is gone"))?;
    assert_eq!(
        (row.status.as_str(), row.attempts),
        ("sending", 1),
        "a claim that ran out gives back nothing of the claim taken after it"
    );
    store
        .finish_attempt(
            &back[0],
            &AttemptOutcome::Delivered {
                status: 200,
                answer: String::new(),
            },
            Duration::from_millis(3),
            Next::Delivered,
        )
        .await?;
    let row = store
        .get(&back[0].id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the delivery is gone"))?;
    assert_eq!((row.status.as_str(), row.attempts), ("delivered", 1));
    Ok(())
}

herald_testkit::store_cases!(a_delivery_queued_claimed_is_the_callers_until_its_lease_runs_out);

/// The dispatcher sleeps until the earliest of two times: the next held delivery's due time and
/// the next attempt's lease running out (an attempt cut short is taken back then).
async fn next_due_is_the_earliest_due_time_or_lease(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = store(backend).await?;
    assert_eq!(store.next_due().await?, None, "nothing queued, nothing due");
    let now = chrono::Utc::now();
    let later = now + chrono::Duration::hours(3);
    let held = Announcement {
        id: "a-held".into(),
        ..Default::default()
    };
    let planned = |not_before| {
        vec![Planned {
            route: "wins".into(),
            channel: "slack".into(),
            not_before,
        }]
    };
    store.enqueue_planned(&held, &planned(later)).await?;
    assert_eq!(
        store.next_due().await?.map(|t| t.timestamp_millis()),
        Some(later.timestamp_millis()),
        "the held delivery's due time"
    );
    let due = Announcement {
        id: "a-due".into(),
        ..Default::default()
    };
    store.enqueue_planned(&due, &planned(now)).await?;
    let claimed = store.claim_due(10, Duration::from_secs(60)).await?;
    assert_eq!(claimed.len(), 1, "only the due one is claimed");
    let next = store
        .next_due()
        .await?
        .ok_or_else(|| anyhow::anyhow!("a lease runs out, so something is due"))?;
    let lease_ends = next - chrono::Utc::now();
    assert!(
        lease_ends > chrono::Duration::seconds(50) && lease_ends <= chrono::Duration::seconds(60),
        "the attempt's lease (60 s) comes before the held delivery (3 h): {lease_ends}"
    );
    Ok(())
}

herald_testkit::store_cases!(next_due_is_the_earliest_due_time_or_lease);

/// An announcement is kept packed (its card repeats the value model's words) and comes back whole
/// from a claim and from the list; one written before packing is read as it is.
async fn announcements_are_kept_packed_and_read_back(backend: Backend) -> anyhow::Result<()> {
    use herald_proto::v1::{Card, ValueLine};
    use prost::Message;
    use sqlx::Row;
    let (db, store) = store(backend).await?;
    let formula = "people affected × blocked share × working hours saved × loaded hourly rate; \
                   working hours saved = baseline restore time − actual restore time";
    let card = Card {
        title: "Warehouse Management restored in 41 min, 7 h 19 min inside its 8 h target".into(),
        summary: "INC0048213: RF scanners cannot reach Warehouse Management in Tilburg.".into(),
        value_lines: vec![ValueLine {
            text: "€42,180 of lost work avoided (1,110 working hours given back)".into(),
            formula: formula.into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let a = Announcement {
        id: "a-packed".into(),
        card: Some(card),
        ..Default::default()
    };
    assert_eq!(store.enqueue(&a, &routes()).await?, 2);
    let stored: Vec<u8> = sqlx::query("SELECT payload FROM deliveries WHERE announcement_id = $1")
        .bind("a-packed")
        .fetch_one(&db.db.pool)
        .await?
        .get("payload");
    assert_eq!(stored.first(), Some(&0u8), "kept packed");
    assert!(
        stored.len() < a.encoded_len(),
        "{} ≥ {}",
        stored.len(),
        a.encoded_len()
    );
    let claimed = store.claim_due(10, Duration::from_secs(60)).await?;
    assert_eq!(claimed.len(), 2);
    assert!(claimed.iter().all(|c| c.announcement.as_ref() == Some(&a)));
    let listed = store.list(None, &[], 10).await?;
    assert!(listed.iter().all(|d| d.announcement.as_ref() == Some(&a)));

    let before = Announcement {
        id: "a-before".into(),
        ..a.clone()
    };
    sqlx::query(
        "INSERT INTO deliveries (id, announcement_id, route, channel, status, attempts, next_attempt_at,
                                 created_at, payload)
         VALUES ('d-before', 'a-before', 'to-slack', 'slack', 'pending', 0, 0, 0, $1)",
    )
    .bind(before.encode_to_vec())
    .execute(&db.db.pool)
    .await?;
    let claimed = store.claim_due(10, Duration::from_secs(60)).await?;
    assert_eq!(claimed.len(), 1, "the delivery written before packing");
    assert_eq!(claimed[0].announcement.as_ref(), Some(&before));
    Ok(())
}

herald_testkit::store_cases!(announcements_are_kept_packed_and_read_back);
