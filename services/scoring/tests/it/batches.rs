//! A batch written as sets ends exactly where recording its events one at a time ends: the same
//! events, wins, statuses, credits (daily cap included), signals, praise and ledger, and the same
//! answer for each event. The events are built to meet inside a batch: reopens and the wins they
//! withdraw, related incidents and the changes they withdraw (in both orders), the "closed" push
//! of an outcome already credited, redeliveries, praise, lessons and deployments, and people
//! credited several times on one day under a cap.

use std::fmt::Write as _;

use chrono::{DateTime, Duration, Utc};
use herald_proto::{
    time::{opt_from_timestamp, to_timestamp},
    v1::{EventKind, ItsmEvent, Win},
};
use herald_runtime::{db::Backend, service::Service};
use herald_scoring::{
    Scoring,
    config::ScoringSettings,
    score,
    store::{Recorded, Store},
};
use herald_testkit::stores::TestStore;
use prost::Message;
use sqlx::Row;

use crate::support::oracle;

const SERVICES: [&str; 3] = ["svc-warehouse", "svc-shipping-portal", "svc-remote-access"];

fn at(event: &ItsmEvent) -> DateTime<Utc> {
    opt_from_timestamp(event.occurred_at.as_ref()).expect("a time")
}

fn shifted(
    base: &ItsmEvent,
    id: String,
    number: String,
    service: &str,
    when: DateTime<Utc>,
) -> ItsmEvent {
    let mut event = base.clone();
    event.id = id;
    event.occurred_at = Some(to_timestamp(when));
    if let Some(record) = event.record.as_mut() {
        record.number = number;
        record.business_service = Some(service.to_string());
        record.opened_at = Some(to_timestamp(when - Duration::minutes(50)));
        if record.resolved_at.is_some() {
            record.resolved_at = Some(to_timestamp(when));
        }
    }
    event
}

/// Every fixture's event, then incidents and changes on a few services an hour or so apart (so
/// related incidents fall inside changes' windows), reopens, "closed" pushes and redeliveries.
fn events() -> Vec<ItsmEvent> {
    let oracle: serde_json::Value = serde_json::from_slice(
        &std::fs::read(herald_testkit::fixtures_dir().join("expected.json"))
            .expect("expected.json"),
    )
    .expect("json");
    let mut events: Vec<ItsmEvent> = oracle["deliveries"]
        .as_array()
        .expect("deliveries")
        .iter()
        .filter(|d| d["event"]["kind"].is_string())
        .map(|d| oracle::event_from_json(&d["event"]))
        .collect();
    let incident = oracle::event("servicenow/incident-resolved-p1.json");
    let change = oracle::event("servicenow/change-implemented.json");
    let start = at(&incident);
    for k in 0..48_i64 {
        let service = SERVICES[usize::try_from(k).unwrap_or(0) % SERVICES.len()];
        let when = start + Duration::minutes(41 * k);
        let resolved = shifted(
            &incident,
            format!("servicenow:incident:gen{k}:1"),
            format!("INC9{k:05}"),
            service,
            when,
        );
        if k % 5 == 0 {
            let mut reopened = resolved.clone();
            reopened.id = format!("servicenow:incident:gen{k}:reopened");
            reopened.kind = EventKind::IncidentReopened as i32;
            reopened.occurred_at = Some(to_timestamp(when + Duration::hours(3)));
            events.push(reopened);
        }
        if k % 7 == 0 {
            let mut closed = resolved.clone();
            closed.id = format!("servicenow:incident:gen{k}:2");
            events.push(closed);
        }
        if k % 9 == 0 {
            events.push(resolved.clone());
        }
        events.push(resolved);
        if k % 3 == 0 {
            events.push(shifted(
                &change,
                format!("servicenow:change_request:gen{k}:1"),
                format!("CHG9{k:05}"),
                service,
                when - Duration::minutes(20),
            ));
        }
    }
    events
}

/// The same events in an order decided by `seed` (a small linear congruential shuffle: the test
/// must be repeatable).
fn shuffled(mut events: Vec<ItsmEvent>, seed: u64) -> Vec<ItsmEvent> {
    let mut state = seed;
    for i in (1..events.len()).rev() {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let j = usize::try_from((state >> 33) % (i as u64 + 1)).unwrap_or(0);
        events.swap(i, j);
    }
    events
}

fn settings(hold_back: &str, cap: Option<f64>) -> ScoringSettings {
    let mut settings = ScoringSettings {
        verification: toml::from_str(&format!(
            "hold_back = \"{hold_back}\"\nrevoke_within = \"72h\"\n"
        ))
        .expect("valid settings"),
        ..ScoringSettings::default()
    };
    settings.credit.max_credit_per_person_per_day = cap;
    settings
}

/// What a store holds, as text to compare.
async fn dump(db: &TestStore) -> anyhow::Result<String> {
    let pool = &db.db.pool;
    let mut out = String::new();
    let tables: [(&str, &str); 6] = [
        (
            "events",
            "SELECT id, outcome, note, win_id FROM events ORDER BY id",
        ),
        (
            "wins",
            "SELECT id, outcome_key, event_id, status, status_reason, CAST(amount AS TEXT) AS amount,
                    CAST((SELECT COUNT(*) FROM outbox o WHERE o.win_id = wins.id) AS TEXT) AS pending, configuration_item,
                    CAST(outcome_at AS TEXT) AS outcome_at, CAST(confirm_at AS TEXT) AS confirm_at
             FROM wins ORDER BY id",
        ),
        (
            "person_credits",
            "SELECT win_id, person, CAST(outcome_at AS TEXT) AS outcome_at,
                    CAST(amount AS TEXT) AS amount
             FROM person_credits ORDER BY win_id, person",
        ),
        (
            "ledger",
            "SELECT win_id, entry, CAST(amount AS TEXT) AS amount, reason FROM ledger ORDER BY win_id, seq",
        ),
        (
            "signals",
            "SELECT event_id, kind, record_number, CAST(at AS TEXT) AS at FROM signals ORDER BY event_id",
        ),
        (
            "praise",
            "SELECT event_id, record_number, quote FROM praise ORDER BY event_id",
        ),
    ];
    for (table, sql) in tables {
        writeln!(out, "-- {table}")?;
        for row in sqlx::query(sql).fetch_all(pool).await? {
            let cells: Vec<String> = (0..row.len())
                .map(|i| {
                    row.try_get::<Option<String>, _>(i)
                        .map(|v| v.unwrap_or_else(|| "NULL".into()))
                        .unwrap_or_else(|e| format!("<{e}>"))
                })
                .collect();
            writeln!(out, "{}", cells.join(" | "))?;
        }
    }
    writeln!(out, "-- win payloads")?;
    for row in sqlx::query("SELECT id, payload FROM wins ORDER BY id")
        .fetch_all(pool)
        .await?
    {
        let id: String = row.get("id");
        let payload: Vec<u8> = row.get("payload");
        let win: Win = herald_runtime::store::decode_payload(&id, &payload)?;
        writeln!(out, "{win:?}")?;
    }
    let metrics: i64 = sqlx::query("SELECT COUNT(*) AS n FROM delivery_metrics")
        .fetch_one(pool)
        .await?
        .get("n");
    writeln!(out, "-- delivery metrics: {metrics}")?;
    Ok(out)
}

fn answer(recorded: &Recorded) -> String {
    format!(
        "new={} win={:?} publish={:?} publish_own={:?}",
        recorded.new,
        recorded.win.as_ref().map(|w| (&w.id, w.status, &w.credits)),
        recorded
            .publish
            .iter()
            .map(|w| (&w.id, w.status))
            .collect::<Vec<_>>(),
        recorded.publish_own().map(|w| (&w.id, w.status))
    )
}

async fn batches_end_where_one_at_a_time_ends(backend: Backend) -> anyhow::Result<()> {
    let catalog = oracle::catalog();
    let tz = chrono_tz::Europe::Amsterdam;
    let now = at(&oracle::event("servicenow/incident-resolved-p1.json")) + Duration::days(1);
    let cases = [
        (1_u64, settings("0s", Some(20_000.0))),
        (2, settings("0s", Some(20_000.0))),
        (3, settings("24h", None)),
    ];
    let mut compared_runs = 0;
    for (seed, settings) in cases {
        let events = shuffled(events(), seed);
        let outcomes: Vec<_> = events
            .iter()
            .map(|e| score::outcome(e, &catalog, &settings))
            .collect();

        let one_db = TestStore::on(backend, Scoring::NAME, &Scoring::migrations()).await?;
        let one = Store::new(one_db.db.pool.clone());
        let mut one_answers = Vec::new();
        for (event, outcome) in events.iter().zip(&outcomes) {
            one_answers.push(answer(
                &one.record_outcome(event, outcome, &settings, tz, now)
                    .await?,
            ));
        }

        let set_db = TestStore::on(backend, Scoring::NAME, &Scoring::migrations()).await?;
        let set = Store::new(set_db.db.pool.clone());
        let pairs: Vec<_> = events.iter().zip(&outcomes).collect();
        let mut set_answers = Vec::new();
        for chunk in pairs.chunks(64) {
            let recorded = set.record_outcomes(chunk, &settings, tz, now, &[]).await?;
            assert_eq!(recorded.len(), chunk.len(), "one answer per event");
            set_answers.extend(recorded.iter().map(answer));
        }

        let (one_dump, set_dump) = (dump(&one_db).await?, dump(&set_db).await?);
        for (i, (a, b)) in one_answers.iter().zip(&set_answers).enumerate() {
            assert_eq!(
                a, b,
                "seed {seed}: the answer for event {} ({i})",
                events[i].id
            );
        }
        if one_dump != set_dump {
            let diff: Vec<String> = one_dump
                .lines()
                .zip(set_dump.lines())
                .filter(|(a, b)| a != b)
                .take(10)
                .map(|(a, b)| format!("one at a time: {a}\n       as sets: {b}"))
                .collect();
            anyhow::bail!("seed {seed}: the stores differ:\n{}", diff.join("\n"));
        }
        // The events must have met: withdrawals, repeated outcomes and caps all happened.
        for needle in ["| revoked |", "same_outcome", "reopened", "was raised"] {
            assert!(
                one_dump.contains(needle),
                "seed {seed}: the sample never produced {needle:?}; the test would prove nothing"
            );
        }
        if settings.credit.max_credit_per_person_per_day.is_some() {
            let capped: i64 =
                sqlx::query("SELECT COUNT(*) AS n FROM person_credits WHERE amount = 0")
                    .fetch_one(&one_db.db.pool)
                    .await?
                    .get("n");
            assert!(capped > 0, "seed {seed}: the daily cap never bit");
        }
        compared_runs += 1;
    }
    assert_eq!(compared_runs, 3);
    Ok(())
}

herald_testkit::store_cases!(batches_end_where_one_at_a_time_ends);

/// A fresh store, the fixture's resolved P1 incident and a day after it, with no hold-back: what
/// the tests of one or two recorded outcomes start from.
struct OneIncident {
    catalog: herald_catalog::Catalog,
    tz: chrono_tz::Tz,
    settings: ScoringSettings,
    db: TestStore,
    store: Store,
    incident: ItsmEvent,
    now: DateTime<Utc>,
}

async fn one_incident(backend: Backend) -> anyhow::Result<OneIncident> {
    let db = TestStore::on(backend, Scoring::NAME, &Scoring::migrations()).await?;
    let store = Store::new(db.db.pool.clone());
    let incident = oracle::event("servicenow/incident-resolved-p1.json");
    let now = at(&incident) + Duration::days(1);
    Ok(OneIncident {
        catalog: oracle::catalog(),
        tz: chrono_tz::Europe::Amsterdam,
        settings: settings("0s", None),
        db,
        store,
        incident,
        now,
    })
}

/// A lane's published changes leave the outbox in the transaction of the next batch, whichever
/// lane's it is: clearing the mark costs no commit of its own. (The changes here are withdrawals of
/// public wins: a win confirmed on arrival is its own event's to publish and has no outbox row.)
async fn the_next_batch_clears_the_outbox_marks_of_wins_published_before_it(
    backend: Backend,
) -> anyhow::Result<()> {
    let OneIncident {
        catalog,
        tz,
        settings,
        db: _db,
        store,
        incident,
        now,
    } = one_incident(backend).await?;
    let other = shifted(
        &incident,
        "servicenow:incident:other:1".into(),
        "INC9999999".into(),
        SERVICES[1],
        at(&incident) + Duration::hours(2),
    );
    let record = |event: &ItsmEvent, published: Vec<Win>| {
        let store = &store;
        let outcome = score::outcome(event, &catalog, &settings);
        let event = event.clone();
        let settings = &settings;
        async move {
            anyhow::Ok(
                store
                    .record_outcomes(&[(&event, &outcome)], settings, tz, now, &published)
                    .await?,
            )
        }
    };
    let ids = |wins: &[Win]| wins.iter().map(|w| w.id.clone()).collect::<Vec<_>>();

    let reopen = |event: &ItsmEvent| ItsmEvent {
        id: format!("{}:reopened", event.id),
        kind: EventKind::IncidentReopened as i32,
        occurred_at: Some(to_timestamp(at(event) + Duration::hours(3))),
        ..event.clone()
    };
    for event in [&incident, &other] {
        let made = record(event, Vec::new()).await?;
        assert!(made[0].publish_own().is_some(), "confirmed at once");
        assert!(
            made[0].publish.is_empty(),
            "its event publishes it, not the outbox"
        );
    }
    assert!(
        store
            .unpublished(DateTime::<Utc>::MAX_UTC)
            .await?
            .is_empty()
    );

    let first = record(&reopen(&incident), Vec::new()).await?;
    let published = first[0].publish.clone();
    assert_eq!(published.len(), 1, "a public win withdrawn, so published");
    assert_eq!(
        ids(&store.unpublished(DateTime::<Utc>::MAX_UTC).await?),
        ids(&published),
        "in the outbox until its mark is cleared"
    );
    let second = record(&reopen(&other), published).await?;
    assert_eq!(second[0].publish.len(), 1);
    assert_eq!(
        ids(&store.unpublished(DateTime::<Utc>::MAX_UTC).await?),
        ids(&second[0].publish),
        "the next batch cleared the first withdrawal's mark; its own waits for the batch after it"
    );
    Ok(())
}

herald_testkit::store_cases!(the_next_batch_clears_the_outbox_marks_of_wins_published_before_it);

/// Text with everything a list of values could trip on (quotes, backslashes, commas, braces, a
/// newline, the word NULL, letters beyond ASCII) is kept as it came, in the columns and the win.
async fn awkward_text_is_kept_as_it_came(backend: Backend) -> anyhow::Result<()> {
    let OneIncident {
        catalog,
        tz,
        settings,
        db,
        store,
        incident,
        now,
    } = one_incident(backend).await?;
    let awkward = "INC \"quoted\", {braced} \\ back\\slash\nNULL ünïcödé ✓";
    let event = shifted(
        &incident,
        "servicenow:incident:awkward:1".into(),
        awkward.into(),
        SERVICES[0],
        at(&incident),
    );
    let outcome = score::outcome(&event, &catalog, &settings);
    let recorded = store
        .record_outcomes(&[(&event, &outcome)], &settings, tz, now, &[])
        .await?;
    let win = recorded[0].win.clone().expect("the incident is a win");
    assert_eq!(win.record_number, awkward);
    let row =
        sqlx::query("SELECT record_number, headline, business_service FROM wins WHERE id = $1")
            .bind(&win.id)
            .fetch_one(&db.db.pool)
            .await?;
    assert_eq!(row.get::<String, _>("record_number"), awkward);
    assert_eq!(row.get::<String, _>("headline"), win.headline);
    assert_eq!(
        row.get::<Option<String>, _>("business_service"),
        win.business_service
    );
    assert_eq!(store.win(&win.id).await?, Some(win.clone()));
    assert_eq!(store.wins_of_record(awkward).await?, vec![win]);
    Ok(())
}

herald_testkit::store_cases!(awkward_text_is_kept_as_it_came);

/// A win's payload (and its event's) is kept packed, smaller than its encoding, and read back
/// whole; a payload an earlier release kept as it was encoded is read as before.
async fn win_payloads_are_kept_packed_and_those_kept_whole_still_read(
    backend: Backend,
) -> anyhow::Result<()> {
    let OneIncident {
        catalog,
        tz,
        settings,
        db,
        store,
        incident,
        now,
    } = one_incident(backend).await?;
    let outcome = score::outcome(&incident, &catalog, &settings);
    let recorded = store
        .record_outcomes(&[(&incident, &outcome)], &settings, tz, now, &[])
        .await?;
    let win = recorded[0]
        .publish_own()
        .cloned()
        .expect("confirmed at once");
    let encoded = win.encode_to_vec();

    let stored: Vec<u8> = sqlx::query("SELECT payload FROM wins WHERE id = $1")
        .bind(&win.id)
        .fetch_one(&db.db.pool)
        .await?
        .get("payload");
    assert_eq!(stored.first(), Some(&0u8), "kept packed");
    assert!(
        stored.len() < encoded.len(),
        "packed {} bytes, encoded {}",
        stored.len(),
        encoded.len()
    );
    assert_eq!(store.win(&win.id).await?, Some(win.clone()));
    let event: Vec<u8> = sqlx::query("SELECT payload FROM events WHERE id = $1")
        .bind(&incident.id)
        .fetch_one(&db.db.pool)
        .await?
        .get("payload");
    assert_eq!(event.first(), Some(&0u8), "the kept event is packed too");
    let kept = store.event_payload(&incident.id).await?.expect("kept");
    assert_eq!(kept.record, incident.record, "and read back for a rescore");

    // As a release before packing kept it.
    sqlx::query("UPDATE wins SET payload = $2 WHERE id = $1")
        .bind(&win.id)
        .bind(&encoded)
        .execute(&db.db.pool)
        .await?;
    assert_eq!(store.win(&win.id).await?, Some(win.clone()));
    let explained = store
        .event_outcome(&incident.id)
        .await?
        .and_then(|o| o.win)
        .expect("the event's win");
    assert_eq!(explained, win);

    // Damage is an error naming the win, not a panic or a win made up.
    sqlx::query("UPDATE wins SET payload = $2 WHERE id = $1")
        .bind(&win.id)
        .bind(&stored[..stored.len() / 2])
        .execute(&db.db.pool)
        .await?;
    let err = store.win(&win.id).await.expect_err("a cut payload");
    assert!(err.is_permanent(), "{err}");
    assert!(err.to_string().contains(&win.id), "{err}");
    Ok(())
}

herald_testkit::store_cases!(win_payloads_are_kept_packed_and_those_kept_whole_still_read);

/// The release that began packing payloads added migration 16, which changes nothing but
/// makes a release before it refuse this store at start (a migration it does not know) rather
/// than fail on every packed payload it reads.
async fn a_release_before_packing_refuses_to_start_on_a_store_that_packs(
    backend: Backend,
) -> anyhow::Result<()> {
    let migrations = Scoring::migrations();
    TestStore::on(backend, Scoring::NAME, &migrations)
        .await?
        .refuses_a_release_before(&migrations, 16)
        .await
}

herald_testkit::store_cases!(a_release_before_packing_refuses_to_start_on_a_store_that_packs);

/// On PostgreSQL a batch's record commits without waiting for the log's flush (the stage publishes
/// what it released first), [`Store::sync`] flushes it before the events are acknowledged, and a
/// record outside a batch still commits synchronously.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_batch_commits_unsynced_until_the_stage_syncs() -> anyhow::Result<()> {
    herald_testkit::init_tracing();
    let OneIncident {
        catalog,
        tz,
        settings,
        db: test,
        incident,
        now,
        ..
    } = one_incident(Backend::Postgres).await?;
    let db = test.noting_commit_settings("events").await?;
    let store = Store::new(db.pool.clone());
    let event = |n: u32| {
        shifted(
            &incident,
            format!("servicenow:incident:unsynced:{n}"),
            format!("INC-UNSYNCED-{n}"),
            SERVICES[0],
            at(&incident),
        )
    };
    let (first, second, third) = (event(1), event(2), event(3));
    let outcome = |e: &ItsmEvent| score::outcome(e, &catalog, &settings);
    let (o1, o2, o3) = (outcome(&first), outcome(&second), outcome(&third));

    store
        .record_outcomes(&[(&first, &o1), (&second, &o2)], &settings, tz, now, &[])
        .await?;
    assert_eq!(test.commit_settings().await?, ["off", "off"]);
    test.check_flushed_by(store.sync()).await?;

    store.record(&third, &o3, &[], None, None, now).await?;
    assert_eq!(
        test.commit_settings().await?,
        ["on"],
        "a record outside a batch commits synchronously"
    );
    Ok(())
}
