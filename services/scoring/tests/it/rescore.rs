//! Replaying history under another catalog, on PostgreSQL and SQLite: each event's payload is kept
//! beside its row, and a rescore compares without writing anything.

use herald_catalog::Catalog;
use herald_proto::v1::{ItsmEvent, RescoreChange, RescoreEffect, RescoreSummary, ValueLabel};
use herald_runtime::{db::Backend, service::Service};
use herald_scoring::{
    Scoring,
    config::ScoringSettings,
    rescore::Rescore,
    score,
    store::{Recorded, Store},
    verification::VerificationSettings,
};
use herald_testkit::stores::TestStore;

use crate::support::oracle;

async fn store(backend: Backend) -> anyhow::Result<(TestStore, Store)> {
    let test = TestStore::on(backend, Scoring::NAME, &Scoring::migrations()).await?;
    let store = Store::new(test.db.pool.clone());
    Ok((test, store))
}

fn fixture_text() -> String {
    std::fs::read_to_string(herald_testkit::fixtures_dir().join("catalog.toml"))
        .expect("the fixture catalog")
}

/// The fixture catalog with Warehouse Management's loaded hourly rate replaced.
fn with_warehouse_rate(rate: f64) -> Catalog {
    let text = fixture_text();
    let start = text
        .find("id = \"svc-warehouse\"")
        .expect("the warehouse entry");
    let at = start + text[start..].find("loaded_hourly_rate").expect("its rate");
    let end = at + text[at..].find('\n').expect("end of line");
    let changed = format!(
        "{}loaded_hourly_rate = {rate:?}{}",
        &text[..at],
        &text[end..]
    );
    Catalog::from_toml_str(&changed).expect("a valid catalog")
}

/// Records an event as the stage does (its payload with it).
async fn record(store: &Store, event: &ItsmEvent) -> anyhow::Result<Recorded> {
    let settings = ScoringSettings::default();
    let result = score::score(event, &oracle::catalog(), &settings);
    let recorded = store
        .record_event(
            event,
            &result,
            &VerificationSettings::default(),
            chrono::Utc::now(),
        )
        .await?;
    Ok(recorded)
}

async fn rescore(
    store: &Store,
    catalog: &Catalog,
) -> anyhow::Result<(Vec<RescoreChange>, RescoreSummary)> {
    let settings = ScoringSettings::default();
    let mut replay = Rescore::new(store, catalog, &settings);
    let mut changes = Vec::new();
    while let Some(page) = replay.next_page().await? {
        changes.extend(page);
    }
    Ok((changes, replay.finish().await?))
}

async fn an_events_payload_is_kept_once_and_read_back(backend: Backend) -> anyhow::Result<()> {
    let (db, store) = store(backend).await?;
    let incident = ItsmEvent {
        raw_payload: br#"{"number": "INC0010042", "state": "6"}"#.to_vec(),
        raw_content_type: "application/json".into(),
        ..oracle::event("servicenow/incident-resolved-p1.json")
    };
    let Recorded { win: Some(win), .. } = record(&store, &incident).await? else {
        anyhow::bail!("the incident must earn a win");
    };
    // Kept without the delivery's raw body, which scoring never reads.
    let kept = ItsmEvent {
        raw_payload: Vec::new(),
        raw_content_type: String::new(),
        ..incident.clone()
    };
    assert_eq!(store.event_payload(&incident.id).await?, Some(kept.clone()));
    // A redelivery keeps the first payload.
    let mut changed = incident.clone();
    changed.record.get_or_insert_default().title = Some("another title".into());
    record(&store, &changed).await?;
    assert_eq!(store.event_payload(&incident.id).await?, Some(kept.clone()));

    // An event recorded before payloads were kept is counted, and never replayed.
    let request = oracle::event("servicenow/ritm-fulfilled.json");
    record(&store, &request).await?;
    sqlx::query("UPDATE events SET payload = NULL WHERE id = $1")
        .bind(&request.id)
        .execute(&db.db.pool)
        .await?;
    assert_eq!(store.event_payload(&request.id).await?, None);
    assert_eq!(store.events_without_payload().await?, 1);

    let page = store.replay_page(None, 10).await?;
    assert_eq!(page.len(), 1, "only the event with a payload");
    assert_eq!(page[0].event, kept);
    assert_eq!(page[0].outcome, "win");
    assert_eq!(page[0].win.as_ref().map(|w| &w.id), Some(&win.id));
    assert!(store.replay_page(Some(&incident.id), 10).await?.is_empty());
    Ok(())
}

async fn a_rescore_shows_the_changed_win_and_totals_and_writes_nothing(
    backend: Backend,
) -> anyhow::Result<()> {
    let (_db, store) = store(backend).await?;
    let incident = oracle::event("servicenow/incident-resolved-p1.json");
    let Recorded { win: Some(win), .. } = record(&store, &incident).await? else {
        anyhow::bail!("the incident must earn a win");
    };
    let old = win.value.clone().expect("a value").amount;
    assert!(old > 0.0);

    // The same catalog changes nothing.
    let (changes, summary) = rescore(&store, &oracle::catalog()).await?;
    assert!(changes.is_empty(), "{changes:?}");
    assert_eq!((summary.events, summary.wins_compared), (1, 1));
    assert_eq!(summary.changed, 0);
    let avoided = ValueLabel::Avoided as i32;
    let total = summary
        .totals
        .iter()
        .find(|t| t.label == avoided)
        .expect("the avoided total");
    assert_eq!((total.before, total.after), (old, old));

    // Doubling the warehouse's hourly rate doubles the win.
    let doubled = with_warehouse_rate(76.0);
    let (changes, summary) = rescore(&store, &doubled).await?;
    assert_eq!(changes.len(), 1, "{changes:?}");
    let change = &changes[0];
    assert_eq!(change.win_id, win.id);
    assert_eq!(change.effect, RescoreEffect::Changed as i32);
    assert_eq!((change.old_label, change.new_label), (avoided, avoided));
    assert!((change.old_amount - old).abs() < 0.005);
    assert!((change.new_amount - 2.0 * old).abs() < 0.01, "{change:?}");
    assert_eq!(summary.changed, 1);
    assert_eq!(summary.catalog_version, doubled.version());
    let total = summary
        .totals
        .iter()
        .find(|t| t.label == avoided)
        .expect("the avoided total");
    assert!((total.before - old).abs() < 0.005);
    assert!((total.after - 2.0 * old).abs() < 0.01);

    // Nothing was written: the stored win is the same, byte for byte.
    assert_eq!(store.win(&win.id).await?, Some(win));
    Ok(())
}

herald_testkit::store_cases!(
    an_events_payload_is_kept_once_and_read_back,
    a_rescore_shows_the_changed_win_and_totals_and_writes_nothing,
);
