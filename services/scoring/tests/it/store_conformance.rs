//! The scoring store, the same cases on PostgreSQL and SQLite.

use herald_runtime::{db::Backend, service::Service};
use herald_scoring::{
    Scoring,
    config::ScoringSettings,
    score,
    store::{Recorded, Store},
    value::NoValue,
    verification::VerificationSettings,
};
use herald_testkit::stores::TestStore;
use sqlx::Row;

use crate::support::oracle;

fn verification() -> VerificationSettings {
    VerificationSettings::default()
}

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

async fn store(backend: Backend) -> anyhow::Result<(TestStore, Store)> {
    let test = TestStore::on(backend, Scoring::NAME, &Scoring::migrations()).await?;
    let store = Store::new(test.db.pool.clone());
    Ok((test, store))
}

async fn an_event_is_recorded_once_with_its_win(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = store(backend).await?;
    let catalog = oracle::catalog();
    let event = oracle::event("servicenow/incident-resolved-p1.json");
    let scored = score::score(&event, &catalog, &ScoringSettings::default());
    let Recorded {
        new: true,
        win: Some(win),
        ..
    } = store
        .record_event(&event, &scored, &verification(), now())
        .await?
    else {
        anyhow::bail!("the first recording must create the win");
    };
    assert_eq!(
        store.win(&win.id).await?.as_ref(),
        Some(&win),
        "the win reads back byte for byte"
    );
    let Recorded {
        new: false,
        win: Some(again),
        ..
    } = store
        .record_event(&event, &scored, &verification(), now())
        .await?
    else {
        anyhow::bail!("a redelivery must find the event seen, with its win");
    };
    assert_eq!(again, win);
    let outcome = store.event_outcome(&event.id).await?.expect("recorded");
    assert_eq!(outcome.outcome, "win");
    assert_eq!(outcome.win.map(|w| w.id), Some(win.id));
    Ok(())
}

async fn a_second_event_for_the_same_outcome_adds_no_win(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = store(backend).await?;
    let catalog = oracle::catalog();
    let resolved = oracle::event("servicenow/incident-resolved-p1.json");
    let mut closed = resolved.clone();
    closed.id = "servicenow:incident:de67bddaeb083f8fbf5aa0a6fa7222c2:25".into();
    let settings = ScoringSettings::default();
    store
        .record_event(
            &resolved,
            &score::score(&resolved, &catalog, &settings),
            &settings.verification,
            now(),
        )
        .await?;
    let Recorded {
        new: true,
        win: None,
        ..
    } = store
        .record_event(
            &closed,
            &score::score(&closed, &catalog, &settings),
            &settings.verification,
            now(),
        )
        .await?
    else {
        anyhow::bail!("the closed push must not create a second win");
    };
    let outcome = store.event_outcome(&closed.id).await?.expect("recorded");
    assert_eq!(outcome.outcome, "same_outcome");
    Ok(())
}

async fn an_event_without_value_keeps_its_reason(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = store(backend).await?;
    let event = oracle::event("servicenow/incident-reopened.json");
    let result = Err(NoValue("no value model for incident_reopened".into()));
    let Recorded {
        new: true,
        win: None,
        ..
    } = store
        .record_event(&event, &result, &verification(), now())
        .await?
    else {
        anyhow::bail!("no win expected");
    };
    let outcome = store.event_outcome(&event.id).await?.expect("recorded");
    assert_eq!(outcome.outcome, "no_value");
    assert_eq!(
        outcome.note.as_deref(),
        Some("no value model for incident_reopened")
    );
    assert!(store.event_outcome("never-seen").await?.is_none());
    Ok(())
}

async fn wins_and_events_are_found_by_record_number(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = store(backend).await?;
    let catalog = oracle::catalog();
    let settings = ScoringSettings::default();
    let event = oracle::event("servicenow/incident-resolved-p1.json");
    let record = event.record.clone().unwrap_or_default().number;
    assert!(store.wins_of_record(&record).await?.is_empty());
    assert!(store.latest_event_of_record(&record).await?.is_none());
    let Recorded {
        new: true,
        win: Some(win),
        ..
    } = store
        .record_event(
            &event,
            &score::score(&event, &catalog, &settings),
            &settings.verification,
            now(),
        )
        .await?
    else {
        anyhow::bail!("the first recording must create the win");
    };
    let found = store.wins_of_record(&record).await?;
    assert_eq!(
        found.iter().map(|w| &w.id).collect::<Vec<_>>(),
        vec![&win.id]
    );
    let (event_id, outcome) = store
        .latest_event_of_record(&record)
        .await?
        .expect("the record's event");
    assert_eq!(event_id, event.id);
    assert_eq!(outcome.win.map(|w| w.id), Some(win.id));
    // A record with an event but no win: the reason is found by its number.
    let reopened = oracle::event("servicenow/incident-reopened.json");
    let reopened_record = reopened.record.clone().unwrap_or_default().number;
    store
        .record_event(
            &reopened,
            &Err(NoValue("no value model for incident_reopened".into())),
            &verification(),
            now(),
        )
        .await?;
    let (_, outcome) = store
        .latest_event_of_record(&reopened_record)
        .await?
        .expect("the reopened record's event");
    assert_eq!(outcome.outcome, "no_value");
    assert!(store.wins_of_record("INC-never").await?.is_empty());
    Ok(())
}

/// A win confirmed on arrival gets one ledger line ("confirmed"), read back as its credit and its
/// confirmation in that order, and its people's credit rows, and is its event's to publish, with
/// no outbox row; the "closed" push of the same outcome, recorded after it, adds none of them and
/// publishes nothing. (PostgreSQL writes these in one statement joined to the wins it inserted,
/// SQLite in statements of their own.)
async fn only_a_win_made_gets_ledger_lines_and_credits_and_none_an_outbox_row(
    backend: Backend,
) -> anyhow::Result<()> {
    let (db, store) = store(backend).await?;
    let catalog = oracle::catalog();
    let resolved = oracle::event("servicenow/incident-resolved-p1.json");
    let mut closed = resolved.clone();
    closed.id = "servicenow:incident:de67bddaeb083f8fbf5aa0a6fa7222c2:25".into();
    let settings = ScoringSettings {
        verification: toml::from_str("hold_back = \"0s\"\n")?,
        ..ScoringSettings::default()
    };
    let mut win_ids = Vec::new();
    let mut to_publish = Vec::new();
    for event in [&resolved, &closed] {
        let recorded = store
            .record_event(
                event,
                &score::score(event, &catalog, &settings),
                &settings.verification,
                now(),
            )
            .await?;
        assert!(recorded.publish.is_empty(), "nothing for the outbox");
        to_publish.push(recorded.publish_own().map(|w| w.id.clone()));
        win_ids.extend(recorded.win.map(|w| w.id));
    }
    let [win] = win_ids.as_slice() else {
        anyhow::bail!("expected one win, got {win_ids:?}");
    };
    assert_eq!(
        to_publish,
        [Some(win.clone()), None],
        "the event that made the win publishes it; the repeat publishes nothing"
    );
    let pool = &db.db.pool;
    let ledger: Vec<(String, String)> =
        sqlx::query("SELECT win_id, entry FROM ledger ORDER BY seq")
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| (r.get("win_id"), r.get("entry")))
            .collect();
    assert_eq!(
        ledger,
        vec![(win.clone(), "confirmed".to_string())],
        "one line stored for a win confirmed on arrival"
    );
    let read: Vec<(String, f64)> = store
        .ledger_of(win)
        .await?
        .into_iter()
        .map(|(entry, _, amount, _)| (entry, amount))
        .collect();
    let [(credited, credit), (confirmed, confirmation)] = read.as_slice() else {
        anyhow::bail!("expected the credit and the confirmation, got {read:?}");
    };
    assert_eq!(
        (credited.as_str(), confirmed.as_str()),
        ("credited", "confirmed")
    );
    assert!(
        *credit > 0.0 && credit == confirmation,
        "both lines carry the win's value: {read:?}"
    );
    let credited: Vec<String> = sqlx::query("SELECT win_id FROM person_credits")
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| r.get("win_id"))
        .collect();
    assert!(!credited.is_empty(), "the win credits people");
    assert!(
        credited.iter().all(|id| id == win),
        "only the win made has credit rows: {credited:?}"
    );
    let outbox: Vec<String> = sqlx::query("SELECT win_id FROM outbox")
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| r.get("win_id"))
        .collect();
    assert!(
        outbox.is_empty(),
        "a win its own event publishes has no outbox row: {outbox:?}"
    );
    Ok(())
}

herald_testkit::store_cases!(
    an_event_is_recorded_once_with_its_win,
    a_second_event_for_the_same_outcome_adds_no_win,
    only_a_win_made_gets_ledger_lines_and_credits_and_none_an_outbox_row,
    an_event_without_value_keeps_its_reason,
    wins_and_events_are_found_by_record_number,
);
