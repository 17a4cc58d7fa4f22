//! Verified outcomes in scoring's store, the same cases on PostgreSQL and SQLite: a win stays
//! provisional through its hold-back, a reopen (or a rollback, or a related incident) inside the
//! window withdraws it whatever the order of arrival, and due wins are confirmed once, by the one
//! replica holding the lease.

use chrono::{DateTime, Duration, Utc};
use herald_proto::{
    time::{opt_from_timestamp, to_timestamp},
    v1::{EventKind, ItsmEvent, Value, ValueLabel, Win, WinStatus},
};
use herald_runtime::{db::Backend, service::Service};
use herald_scoring::{
    Scoring,
    config::ScoringSettings,
    score::{self, Scored},
    store::{Lease, Recorded, Store},
    verification::{LedgerLine, VerificationSettings},
};
use herald_testkit::stores::TestStore;
use sqlx::Row;

use crate::support::oracle;

async fn store(backend: Backend) -> anyhow::Result<(TestStore, Store)> {
    let test = TestStore::on(backend, Scoring::NAME, &Scoring::migrations()).await?;
    let store = Store::new(test.db.pool.clone());
    Ok((test, store))
}

fn resolved() -> ItsmEvent {
    oracle::event("servicenow/incident-resolved-p1.json")
}

fn resolved_at(event: &ItsmEvent) -> DateTime<Utc> {
    event
        .record
        .as_ref()
        .and_then(|r| opt_from_timestamp(r.resolved_at.as_ref()))
        .expect("a resolution time")
}

/// The same ticket reopened `after` its resolution.
fn reopened(resolved: &ItsmEvent, after: Duration) -> ItsmEvent {
    ItsmEvent {
        id: format!("{}:reopened", resolved.id),
        kind: EventKind::IncidentReopened as i32,
        occurred_at: Some(to_timestamp(resolved_at(resolved) + after)),
        ..resolved.clone()
    }
}

fn settings(hold_back: &str) -> VerificationSettings {
    toml::from_str(&format!(
        "hold_back = \"{hold_back}\"\nrevoke_within = \"72h\"\n"
    ))
    .expect("valid settings")
}

async fn record(
    store: &Store,
    event: &ItsmEvent,
    verification: &VerificationSettings,
    now: DateTime<Utc>,
) -> anyhow::Result<Recorded> {
    let result = score::score(event, &oracle::catalog(), &ScoringSettings::default());
    Ok(store
        .record_event(event, &result, verification, now)
        .await?)
}

/// What an event's row says became of it: its outcome and the win it points at.
async fn event_row(
    pool: &sqlx::AnyPool,
    event_id: &str,
) -> anyhow::Result<(String, Option<String>)> {
    Ok(
        sqlx::query_as("SELECT outcome, win_id FROM events WHERE id = $1")
            .bind(event_id)
            .fetch_one(pool)
            .await?,
    )
}

fn status(win: &Win) -> WinStatus {
    WinStatus::try_from(win.status).unwrap_or(WinStatus::Unspecified)
}

async fn a_reopen_inside_the_window_withdraws_a_provisional_win(
    backend: Backend,
) -> anyhow::Result<()> {
    let (_db, store) = store(backend).await?;
    let event = resolved();
    let now = Utc::now();
    let held = record(&store, &event, &settings("72h"), now).await?;
    let win = held.win.clone().expect("a win");
    assert_eq!(status(&win), WinStatus::Provisional);
    assert!(
        held.publish.is_empty() && held.publish_own().is_none(),
        "a provisional win is never published"
    );

    let reopen = record(
        &store,
        &reopened(&event, Duration::days(1)),
        &settings("72h"),
        now,
    )
    .await?;
    assert!(
        reopen.publish.is_empty(),
        "it was never public, so nothing to withdraw publicly"
    );
    let stored = store.win(&win.id).await?.expect("stored");
    assert_eq!(status(&stored), WinStatus::Revoked);
    assert!(
        stored.status_reason.contains("reopened"),
        "{}",
        stored.status_reason
    );
    // Its hold-back passing later confirms nothing.
    assert!(store.confirm_due(now + Duration::days(4)).await?.is_empty());
    let entries: Vec<String> = store
        .ledger_of(&win.id)
        .await?
        .into_iter()
        .map(|(entry, ..)| entry)
        .collect();
    assert_eq!(entries, ["credited", "revoked"]);
    Ok(())
}

async fn a_reopen_that_arrives_first_withdraws_the_win_on_arrival(
    backend: Backend,
) -> anyhow::Result<()> {
    let (_db, store) = store(backend).await?;
    let event = resolved();
    let now = Utc::now();
    record(
        &store,
        &reopened(&event, Duration::hours(30)),
        &settings("0s"),
        now,
    )
    .await?;
    let late = record(&store, &event, &settings("0s"), now).await?;
    let win = late.win.clone().expect("a win");
    assert_eq!(status(&win), WinStatus::Revoked, "withdrawn on arrival");
    assert!(
        late.publish.is_empty() && late.publish_own().is_none(),
        "never confirmed, never published"
    );
    Ok(())
}

async fn with_no_hold_back_a_win_is_public_at_once_and_its_withdrawal_too(
    backend: Backend,
) -> anyhow::Result<()> {
    let (_db, store) = store(backend).await?;
    let event = resolved();
    let now = Utc::now();
    let recorded = record(&store, &event, &settings("0s"), now).await?;
    let win = recorded.win.clone().expect("a win");
    assert_eq!(status(&win), WinStatus::Confirmed);
    assert_eq!(
        recorded.publish_own().map(|w| &w.id),
        Some(&win.id),
        "confirmed at once: its event publishes it"
    );
    assert!(recorded.publish.is_empty(), "nothing waits in the outbox");

    let reopen = record(
        &store,
        &reopened(&event, Duration::hours(20)),
        &settings("0s"),
        now,
    )
    .await?;
    assert_eq!(
        reopen.publish.len(),
        1,
        "the withdrawal of a public win is published"
    );
    assert_eq!(status(&reopen.publish[0]), WinStatus::Revoked);
    assert_eq!(reopen.publish[0].id, win.id);
    // A reopen after the window is a new story, not a withdrawal.
    let (_db2, other) = self::store(backend).await?;
    let kept = record(&other, &event, &settings("0s"), now).await?;
    let late = record(
        &other,
        &reopened(&event, Duration::hours(80)),
        &settings("0s"),
        now,
    )
    .await?;
    assert!(late.publish.is_empty());
    let stored = other
        .win(&kept.win.expect("a win").id)
        .await?
        .expect("stored");
    assert_eq!(status(&stored), WinStatus::Confirmed);
    Ok(())
}

async fn due_wins_are_confirmed_once_by_the_lease_holder(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = store(backend).await?;
    let now = Utc::now();
    let win = record(&store, &resolved(), &settings("72h"), now)
        .await?
        .win
        .expect("a win");
    let (a, b) = (lease("replica-a"), lease("replica-b"));
    assert!(store.hold(&a, now).await?);
    assert!(!store.hold(&b, now).await?, "one replica at a time");
    assert!(store.hold(&a, now).await?, "the holder renews");
    assert!(
        store
            .confirm_due(now + Duration::hours(71))
            .await?
            .is_empty()
    );
    let confirmed = store.confirm_due(now + Duration::hours(73)).await?;
    assert_eq!(
        confirmed.iter().map(|w| &w.id).collect::<Vec<_>>(),
        [&win.id]
    );
    assert!(
        store
            .confirm_due(now + Duration::hours(74))
            .await?
            .is_empty(),
        "once"
    );
    let outbox = store.unpublished(DateTime::<Utc>::MAX_UTC).await?;
    assert_eq!(outbox.len(), 1);
    store.mark_published(&outbox).await?;
    assert!(
        store
            .unpublished(DateTime::<Utc>::MAX_UTC)
            .await?
            .is_empty()
    );
    // A lease nobody renews passes to another replica.
    assert!(store.hold(&b, now + Duration::minutes(5)).await?);
    let (pending, total) = store.list_wins(Some(WinStatus::Provisional), 10).await?;
    assert!(pending.is_empty() && total == 0);
    let (confirmed, total) = store.list_wins(Some(WinStatus::Confirmed), 10).await?;
    assert_eq!((confirmed.len(), total), (1, 1));
    Ok(())
}

/// The confirmer's outbox pass and a lane can mark the same wins at once; a mark that waited on
/// another transaction's row lock could deadlock with it. A mark leaves a locked row to whoever
/// holds it, marks the rest, and returns at once; the row left stays in the outbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mark_does_not_wait_for_a_win_another_transaction_holds() -> anyhow::Result<()> {
    let (test, store) = store(Backend::Postgres).await?;
    let now = Utc::now();
    record(&store, &resolved(), &settings("72h"), now).await?;
    let mut other = resolved();
    other.id = format!("{}:another", other.id);
    if let Some(record) = other.record.as_mut() {
        record.number = format!("{}-another", record.number);
    }
    record(&store, &other, &settings("72h"), now).await?;
    let wins = store.confirm_due(now + Duration::hours(73)).await?;
    assert_eq!(
        wins.len(),
        2,
        "both confirmed, both in the outbox to publish"
    );

    let mut holder = test.db.pool.begin().await?;
    sqlx::query("SELECT win_id FROM outbox WHERE win_id = $1 FOR UPDATE")
        .bind(&wins[0].id)
        .fetch_one(&mut *holder)
        .await?;
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        store.mark_published(&wins),
    )
    .await
    .map_err(|_| anyhow::anyhow!("the mark waited for the row another transaction holds"))??;
    holder.commit().await?;
    let left: Vec<String> = store
        .unpublished(DateTime::<Utc>::MAX_UTC)
        .await?
        .into_iter()
        .map(|w| w.id)
        .collect();
    assert_eq!(
        left,
        [wins[0].id.clone()],
        "the held win stays in the outbox, the other is marked"
    );
    Ok(())
}

/// The outbox takes over what a lane committed but did not publish, and only that: a change newer
/// than the lanes' time to publish is left to the lane that made it (under load the outbox had been
/// publishing again nearly every change a lane had just published). The change here is the
/// withdrawal of a public win.
async fn the_outbox_leaves_a_fresh_change_to_the_lane_that_made_it(
    backend: Backend,
) -> anyhow::Result<()> {
    let (_test, store) = store(backend).await?;
    let now = Utc::now();
    let event = resolved();
    record(&store, &event, &settings("0s"), now).await?;
    let recorded = record(
        &store,
        &reopened(&event, Duration::hours(20)),
        &settings("0s"),
        now,
    )
    .await?;
    let ids = |wins: Vec<Win>| wins.into_iter().map(|w| w.id).collect::<Vec<_>>();
    assert_eq!(
        ids(recorded.publish.clone()).len(),
        1,
        "a public win withdrawn"
    );
    assert!(
        store
            .unpublished(now - Duration::seconds(3))
            .await?
            .is_empty(),
        "a change made after the cut-off is the lane's to publish"
    );
    assert_eq!(
        ids(store.unpublished(now + Duration::milliseconds(1)).await?),
        ids(recorded.publish),
        "a change made before the cut-off is the outbox's"
    );
    Ok(())
}

/// A redelivered event publishes its win again as it stands now, since the first delivery may have
/// stopped between its commit and its publish: a win confirmed on arrival (which has no outbox
/// row) as confirmed, one withdrawn since as its withdrawal (which the outbox holds), and a
/// provisional one not at all.
async fn a_redelivered_event_publishes_its_win_again_as_it_stands_now(
    backend: Backend,
) -> anyhow::Result<()> {
    let (_test, store) = store(backend).await?;
    let now = Utc::now();
    let event = resolved();
    let first = record(&store, &event, &settings("0s"), now).await?;
    let win = first.win.expect("a win");
    assert!(
        store
            .unpublished(DateTime::<Utc>::MAX_UTC)
            .await?
            .is_empty(),
        "a win its event publishes waits in no outbox"
    );
    let again = record(&store, &event, &settings("0s"), now).await?;
    assert!(!again.new, "a redelivery");
    assert_eq!(
        again.publish_own().map(|w| (status(w), w.id.clone())),
        Some((WinStatus::Confirmed, win.id.clone())),
        "published again, with no outbox row"
    );
    assert!(again.publish.is_empty());

    record(
        &store,
        &reopened(&event, Duration::hours(20)),
        &settings("0s"),
        now,
    )
    .await?;
    let after_withdrawal = record(&store, &event, &settings("0s"), now).await?;
    assert!(after_withdrawal.publish_own().is_none());
    assert_eq!(
        after_withdrawal
            .publish
            .iter()
            .map(|w| (w.id.clone(), status(w)))
            .collect::<Vec<_>>(),
        [(win.id.clone(), WinStatus::Revoked)],
        "its withdrawal, still in the outbox, is what is published"
    );

    let (_test, held) = self::store(backend).await?;
    record(&held, &event, &settings("72h"), now).await?;
    let redelivered = record(&held, &event, &settings("72h"), now).await?;
    assert!(
        redelivered.publish.is_empty() && redelivered.publish_own().is_none(),
        "a provisional win is not published on a redelivery either"
    );
    Ok(())
}

/// An event is inserted pointing at the win it scored; when no win is made after all (here: the
/// event says when nothing happened, so no window can be set), it points at none.
async fn an_event_whose_win_is_not_made_points_at_no_win(backend: Backend) -> anyhow::Result<()> {
    let (test, store) = store(backend).await?;
    let mut event = oracle::event("servicenow/change-implemented.json");
    event.occurred_at = None;
    if let Some(record) = event.record.as_mut() {
        record.resolved_at = None;
    }
    let result = score::score(&event, &oracle::catalog(), &ScoringSettings::default());
    assert!(result.is_ok(), "the event scores a win: {result:?}");
    let recorded = record(&store, &event, &settings("0s"), Utc::now()).await?;
    assert!(recorded.win.is_none(), "no window, no win");
    let (_, linked) = event_row(&test.db.pool, &event.id).await?;
    assert_eq!(linked, None);
    Ok(())
}

fn lease(holder: &str) -> Lease {
    Lease {
        name: "confirm",
        holder: holder.into(),
        ttl: Duration::seconds(60),
    }
}

/// How the tool tells of the incident on the change's service.
#[derive(Clone, Copy, Debug)]
enum Told {
    /// When it is opened.
    Opened,
    /// Only once it is resolved, an hour after it was opened: its signal is kept under an id of
    /// its own (the event's with `#opened`).
    OnlyResolved,
}

/// A quiet change on the Warehouse Management service, and an incident on it opened `after` later.
fn change_and_incident(after: Duration, told: Told) -> (ItsmEvent, Scored, ItsmEvent) {
    let incident = resolved();
    let service = incident
        .record
        .as_ref()
        .and_then(|r| r.business_service.clone())
        .expect("the fixture names its service");
    let implemented = resolved_at(&incident) - Duration::days(3);
    let change = ItsmEvent {
        id: "servicenow:change_request:test:4".into(),
        kind: EventKind::ChangeImplemented as i32,
        occurred_at: Some(to_timestamp(implemented)),
        record: Some(herald_proto::v1::Record {
            number: "CHG0099001".into(),
            business_service: Some(service.clone()),
            resolved_at: Some(to_timestamp(implemented)),
            ..Default::default()
        }),
        ..incident.clone()
    };
    let scored = Scored {
        outcome_key: "servicenow:CHG0099001:change_implemented".into(),
        win: Win {
            id: "w-change".into(),
            event_id: change.id.clone(),
            source: change.source,
            kind: EventKind::ChangeImplemented as i32,
            occurred_at: change.occurred_at,
            record_number: "CHG0099001".into(),
            business_service: Some(service),
            value: Some(Value {
                label: ValueLabel::Estimate as i32,
                amount: 1000.0,
                ..Default::default()
            }),
            headline: "Warehouse Management changed with no disruption".into(),
            ..Default::default()
        },
    };
    let opened_at = implemented + after;
    let related = match told {
        Told::Opened => ItsmEvent {
            id: "servicenow:incident:related:1".into(),
            kind: EventKind::IncidentOpened as i32,
            occurred_at: Some(to_timestamp(opened_at)),
            ..incident
        },
        Told::OnlyResolved => ItsmEvent {
            id: "servicenow:incident:related:2".into(),
            kind: EventKind::IncidentResolved as i32,
            occurred_at: Some(to_timestamp(opened_at + Duration::hours(1))),
            record: incident.record.clone().map(|r| herald_proto::v1::Record {
                opened_at: Some(to_timestamp(opened_at)),
                resolved_at: Some(to_timestamp(opened_at + Duration::hours(1))),
                ..r
            }),
            ..incident
        },
    };
    (change, scored, related)
}

async fn an_incident_on_the_same_service_withdraws_a_quiet_change(
    backend: Backend,
) -> anyhow::Result<()> {
    change_withdrawn_by_an_incident(backend, false, Told::Opened).await
}

/// A tool that sends only the resolution: the incident's signal, kept under an id of its own,
/// withdraws the change all the same, in either order.
async fn an_incident_told_only_once_resolved_withdraws_a_quiet_change(
    backend: Backend,
) -> anyhow::Result<()> {
    change_withdrawn_by_an_incident(backend, false, Told::OnlyResolved).await?;
    change_withdrawn_by_an_incident(backend, true, Told::OnlyResolved).await
}

/// The other order: the incident is kept as a signal before the change arrives, and the change is
/// withdrawn on arrival when the incident falls inside its window, on its service.
async fn an_incident_seen_before_its_change_arrives_withdraws_it_on_arrival(
    backend: Backend,
) -> anyhow::Result<()> {
    change_withdrawn_by_an_incident(backend, true, Told::Opened).await
}

/// A change and an incident on its service two days after it (inside the change's window: the
/// change is withdrawn) or eight (outside: it stands), recorded in either order.
async fn change_withdrawn_by_an_incident(
    backend: Backend,
    incident_first: bool,
    told: Told,
) -> anyhow::Result<()> {
    let settings = VerificationSettings::default();
    for (after, withdrawn) in [(Duration::days(2), true), (Duration::days(8), false)] {
        let (_db, store) = store(backend).await?;
        let (change, scored, incident) = change_and_incident(after, told);
        let now = Utc::now();
        let opened = Err(herald_scoring::value::NoValue("opened".into()));
        let events = [(&change, Ok(scored.clone())), (&incident, opened)];
        let order: Vec<_> = if incident_first {
            events.iter().rev().collect()
        } else {
            events.iter().collect()
        };
        for (event, result) in order {
            store.record_event(event, result, &settings, now).await?;
        }
        let stored = store.win(&scored.win.id).await?.expect("stored");
        assert_eq!(
            status(&stored) == WinStatus::Revoked,
            withdrawn,
            "incident {after} after the change, {told:?}, recorded first: {incident_first}: {}",
            stored.status_reason
        );
    }
    Ok(())
}

/// Migration 0014 takes the signals table's key away: a signal kept before the upgrade is still
/// there, once, and still withdraws the win it concerns.
async fn a_signal_kept_before_the_upgrade_still_withdraws_on_arrival(
    backend: Backend,
) -> anyhow::Result<()> {
    let migrations = Scoring::migrations();
    let before = TestStore::before_upgrade(backend, Scoring::NAME, &migrations, 13).await?;
    let event = resolved();
    let now = Utc::now();
    let reopen = reopened(&event, Duration::hours(30));
    record(
        &Store::new(before.db.pool.clone()),
        &reopen,
        &settings("0s"),
        now,
    )
    .await?;

    let db = before.upgrade(&migrations).await?;
    let kept: Vec<(String, String)> = sqlx::query("SELECT event_id, kind FROM signals")
        .fetch_all(&db.pool)
        .await?
        .iter()
        .map(|row| (row.get("event_id"), row.get("kind")))
        .collect();
    assert_eq!(kept, [(reopen.id.clone(), "reopen".to_string())]);
    let late = record(&Store::new(db.pool.clone()), &event, &settings("0s"), now).await?;
    let win = late.win.expect("a win");
    assert_eq!(status(&win), WinStatus::Revoked, "withdrawn on arrival");
    assert!(
        win.status_reason.contains("reopen"),
        "{}",
        win.status_reason
    );
    Ok(())
}

/// Migration 0015 files each ledger line under when its win arrived: lines an earlier release
/// wrote are still read after the upgrade, each win's own and in order, and a line written after
/// it joins them.
async fn ledger_lines_written_before_the_upgrade_are_still_read_in_order(
    backend: Backend,
) -> anyhow::Result<()> {
    let migrations = Scoring::migrations();
    let before = TestStore::before_upgrade(backend, Scoring::NAME, &migrations, 14).await?;
    let arrived = Utc::now() - Duration::days(1);
    for (n, id) in ["w-old-1", "w-old-2"].into_iter().enumerate() {
        sqlx::query(
            "INSERT INTO wins (id, outcome_key, event_id, source, kind, record_number, label,
                               amount, currency, hours, headline, payload, created_at, status)
             VALUES ($1, $2, $3, 'servicenow', 'incident_resolved', $4, 'downtime_cost_avoided',
                     100.0, 'USD', 1.0, 'A service back', $5, $6, 'confirmed')",
        )
        .bind(id)
        .bind(format!("servicenow:INC{n}:incident_resolved:"))
        .bind(format!("e-{n}"))
        .bind(format!("INC{n}"))
        .bind(Vec::<u8>::new())
        .bind(herald_runtime::db::millis(arrived))
        .execute(&before.db.pool)
        .await?;
    }
    // The two wins' lines interleaved, as two lanes wrote them.
    for (id, entry) in [
        ("w-old-1", "credited"),
        ("w-old-2", "credited"),
        ("w-old-1", "confirmed"),
        ("w-old-2", "confirmed"),
        ("w-old-1", "revoked"),
    ] {
        sqlx::query("INSERT INTO ledger (win_id, entry, at, amount) VALUES ($1, $2, $3, 100.0)")
            .bind(id)
            .bind(entry)
            .bind(herald_runtime::db::millis(arrived))
            .execute(&before.db.pool)
            .await?;
    }

    let db = before.upgrade(&migrations).await?;
    let unfiled: i64 = sqlx::query("SELECT COUNT(*) AS n FROM ledger WHERE win_at IS NULL")
        .fetch_one(&db.pool)
        .await?
        .get("n");
    assert_eq!(
        unfiled, 0,
        "every line kept is filed under its win's arrival"
    );
    let store = Store::new(db.pool.clone());
    let entries = |lines: Vec<LedgerLine>| lines.into_iter().map(|(e, ..)| e).collect::<Vec<_>>();
    assert_eq!(
        entries(store.ledger_of("w-old-1").await?),
        ["credited", "confirmed", "revoked"]
    );
    assert_eq!(
        entries(store.ledger_of("w-old-2").await?),
        ["credited", "confirmed"]
    );

    // A win made after the upgrade, and withdrawn: both its lines are read back, the second
    // written by another statement than the first.
    let event = resolved();
    let now = Utc::now();
    let held = record(&store, &event, &settings("72h"), now).await?;
    let win = held.win.expect("a win");
    record(
        &store,
        &reopened(&event, Duration::days(1)),
        &settings("72h"),
        now,
    )
    .await?;
    assert_eq!(
        entries(store.ledger_of(&win.id).await?),
        ["credited", "revoked"]
    );
    assert_eq!(
        entries(store.ledger_of("w-old-1").await?),
        ["credited", "confirmed", "revoked"],
        "the new win's lines stay its own"
    );
    Ok(())
}

/// Migration 0017 takes away the unique index on a win's outcome key: a win made before the
/// upgrade still keeps its outcome from being credited again (the "closed" push after the
/// "resolved" one points at it), and the key alone no longer refuses a row.
async fn an_outcome_credited_before_the_upgrade_is_not_credited_again(
    backend: Backend,
) -> anyhow::Result<()> {
    let migrations = Scoring::migrations();
    let before = TestStore::before_upgrade(backend, Scoring::NAME, &migrations, 17).await?;
    let resolved = resolved();
    let now = Utc::now();
    let first = record(
        &Store::new(before.db.pool.clone()),
        &resolved,
        &settings("0s"),
        now,
    )
    .await?;
    let win = first.win.expect("a win");

    let db = before.upgrade(&migrations).await?;
    let store = Store::new(db.pool.clone());
    let closed = ItsmEvent {
        id: format!("{}:closed", resolved.id),
        ..resolved.clone()
    };
    let again = record(&store, &closed, &settings("0s"), now).await?;
    assert!(again.win.is_none(), "no second win for one outcome");
    assert!(
        again.publish.is_empty() && again.publish_own().is_none(),
        "nothing published again"
    );
    assert_eq!(
        event_row(&db.pool, &closed.id).await?,
        ("same_outcome".to_string(), Some(win.id.clone()))
    );

    let key: String = sqlx::query("SELECT outcome_key FROM wins WHERE id = $1")
        .bind(&win.id)
        .fetch_one(&db.pool)
        .await?
        .get("outcome_key");
    assert_eq!(key, score::outcome_key(&resolved), "the key is kept");
    // The key alone refuses nothing now: another row with it goes in.
    sqlx::query(
        "INSERT INTO wins (id, outcome_key, event_id, source, kind, record_number, label, amount,
                           currency, hours, headline, payload, created_at, status)
         SELECT 'w-another', outcome_key, 'e-another', source, kind, record_number, label, amount,
                currency, hours, headline, payload, created_at, status
         FROM wins WHERE id = $1",
    )
    .bind(&win.id)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// A win's id is a hash of its outcome key, so two outcomes could in principle share one: the
/// later is then not taken for the earlier. Its event points at no win, and the earlier win is
/// left as it was.
async fn an_outcome_whose_win_id_is_taken_is_not_pointed_at_another_outcome(
    backend: Backend,
) -> anyhow::Result<()> {
    let (db, store) = store(backend).await?;
    let now = Utc::now();
    let resolved = resolved();
    let first = record(&store, &resolved, &settings("0s"), now).await?;
    let win = first.win.expect("a win");

    let other = ItsmEvent {
        id: "servicenow:incident:test:another-outcome".into(),
        ..resolved.clone()
    };
    let mut scored = score::score(&other, &oracle::catalog(), &ScoringSettings::default())
        .map_err(|e| anyhow::anyhow!("the fixture scores: {e:?}"))?;
    scored.outcome_key = format!("{}:another", scored.outcome_key);
    assert_eq!(scored.win.id, win.id, "the same id, another outcome");
    let recorded = store
        .record_event(&other, &Ok(scored), &settings("0s"), now)
        .await?;
    assert!(recorded.win.is_none(), "no win made under a taken id");
    assert_eq!(
        event_row(&db.db.pool, &other.id).await?,
        ("same_outcome".to_string(), None),
        "not pointed at another outcome's win"
    );
    let kept = store.win(&win.id).await?.expect("the earlier win");
    assert_eq!(kept, win);
    Ok(())
}

herald_testkit::store_cases!(
    an_outcome_credited_before_the_upgrade_is_not_credited_again,
    an_outcome_whose_win_id_is_taken_is_not_pointed_at_another_outcome,
    ledger_lines_written_before_the_upgrade_are_still_read_in_order,
    a_signal_kept_before_the_upgrade_still_withdraws_on_arrival,
    a_reopen_inside_the_window_withdraws_a_provisional_win,
    a_reopen_that_arrives_first_withdraws_the_win_on_arrival,
    with_no_hold_back_a_win_is_public_at_once_and_its_withdrawal_too,
    due_wins_are_confirmed_once_by_the_lease_holder,
    an_incident_on_the_same_service_withdraws_a_quiet_change,
    an_incident_told_only_once_resolved_withdraws_a_quiet_change,
    an_incident_seen_before_its_change_arrives_withdraws_it_on_arrival,
    the_outbox_leaves_a_fresh_change_to_the_lane_that_made_it,
    a_redelivered_event_publishes_its_win_again_as_it_stands_now,
    an_event_whose_win_is_not_made_points_at_no_win,
);
