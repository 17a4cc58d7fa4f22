//! What scoring records beside wins, the same cases on PostgreSQL and SQLite: a requester's praise
//! attaches to the win of the ticket it rates whichever arrives first; a failed change with a
//! postmortem becomes a blameless lesson, published at once; deployments are counted for delivery
//! metrics; the per-person daily cap holds across wins; a closed problem is valued from the drop in
//! related incidents when its window ends.

use chrono::{Duration, Utc};
use herald_proto::{
    time::to_timestamp,
    v1::{CreditSubject, EventKind, ItsmEvent, WinStatus},
};
use herald_runtime::{db::Backend, service::Service};
use herald_scoring::{
    Scoring,
    config::ScoringSettings,
    score::{self, Outcome},
    store::{ProblemCounts, Store},
};
use herald_testkit::stores::TestStore;
use sqlx::Row;

use crate::support::oracle;

async fn store(backend: Backend) -> anyhow::Result<(TestStore, Store)> {
    let test = TestStore::on(backend, Scoring::NAME, &Scoring::migrations()).await?;
    let store = Store::new(test.db.pool.clone());
    Ok((test, store))
}

fn settings() -> ScoringSettings {
    let mut settings = ScoringSettings::default();
    settings.verification.hold_back = std::time::Duration::ZERO;
    settings
}

async fn record(
    store: &Store,
    event: &ItsmEvent,
    settings: &ScoringSettings,
) -> anyhow::Result<Outcome> {
    let outcome = score::outcome(event, &oracle::catalog(), settings);
    store
        .record_outcome(
            event,
            &outcome,
            settings,
            chrono_tz::Europe::Amsterdam,
            Utc::now(),
        )
        .await?;
    Ok(outcome)
}

async fn praise_attaches_to_the_rated_win_in_either_order(backend: Backend) -> anyhow::Result<()> {
    // The P1 incident, rated by its caller in a ServiceNow survey: 5 of 5, with a comment.
    let solved = oracle::event("servicenow/incident-resolved-p1.json");
    let mut rating = oracle::event("zendesk/satisfaction-good.json");
    rating.source = herald_proto::v1::Source::Servicenow as i32;
    if let Some(record) = rating.record.as_mut() {
        record.number = "INC0048213".into();
        if let Some(satisfaction) = record.satisfaction.as_mut() {
            satisfaction.score = "5".into();
        }
    }
    for order in [[&solved, &rating], [&rating, &solved]] {
        let (_db, store) = store(backend).await?;
        for event in order {
            record(&store, event, &settings()).await?;
        }
        let wins = store.wins_of_record("INC0048213").await?;
        let win = wins.first().expect("the solved ticket's win");
        let praise = win.praise.clone().expect("the praise attached");
        assert!(!praise.quote.is_empty());
        assert_eq!(praise.score, "5");
    }
    Ok(())
}

async fn a_failed_change_becomes_a_blameless_lesson(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = store(backend).await?;
    let failed = oracle::event("servicenow/change-failed.json");
    let outcome = score::outcome(&failed, &oracle::catalog(), &settings());
    let recorded = store
        .record_outcome(
            &failed,
            &outcome,
            &settings(),
            chrono_tz::Europe::Amsterdam,
            Utc::now(),
        )
        .await?;
    assert!(outcome.result.is_err(), "a failed change earns no value");
    let lesson = recorded
        .publish
        .first()
        .expect("the lesson, to publish at once");
    let story = lesson.lesson.clone().expect("a lesson story");
    assert_eq!(lesson.status, WinStatus::Confirmed as i32);
    assert!(story.postmortem_url.contains("PM-2025-006"));
    // Its implementer is neither named nor credited.
    for trace in ["Tomás", "Tomas", "Herrera", "tomas.herrera"] {
        assert!(!story.story.contains(trace), "{trace} in {:?}", story.story);
        assert!(!lesson.headline.contains(trace));
    }
    assert!(
        lesson
            .credits
            .iter()
            .all(|c| c.id != "p-tomas-herrera" && c.amount == 0.0)
    );
    // A redelivery publishes nothing new.
    let again = store
        .record_outcome(
            &failed,
            &outcome,
            &settings(),
            chrono_tz::Europe::Amsterdam,
            Utc::now(),
        )
        .await?;
    assert!(!again.new);
    Ok(())
}

async fn deployments_are_counted_for_delivery_metrics(backend: Backend) -> anyhow::Result<()> {
    let (db, store) = store(backend).await?;
    let deployed = oracle::event("github/deployment-status-success.json");
    let outcome = record(&store, &deployed, &settings()).await?;
    assert!(outcome.result.is_err(), "context, no win");
    let row = sqlx::query("SELECT kind, production FROM delivery_metrics WHERE event_id = $1")
        .bind(&deployed.id)
        .fetch_one(&db.db.pool)
        .await?;
    assert_eq!(row.get::<String, _>("kind"), "deployment");
    Ok(())
}

async fn the_daily_cap_holds_across_wins(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = store(backend).await?;
    let mut settings = settings();
    settings.credit.max_credit_per_person_per_day = Some(150_000.0);
    let first = oracle::event("servicenow/incident-resolved-p1.json");
    record(&store, &first, &settings).await?;
    // The same outcome an hour later on another ticket: Ingrid resolved both.
    let mut second = first.clone();
    second.id = "servicenow:incident:another:1".into();
    if let Some(record) = second.record.as_mut() {
        record.number = "INC0048299".into();
        record.resolved_at = record
            .resolved_at
            .and_then(|t| herald_proto::time::from_timestamp(&t))
            .map(|t| to_timestamp(t + Duration::hours(1)));
    }
    record(&store, &second, &settings).await?;
    let mut ingrid = 0.0;
    for number in ["INC0048213", "INC0048299"] {
        for win in store.wins_of_record(number).await? {
            ingrid += win
                .credits
                .iter()
                .filter(|c| {
                    c.subject == CreditSubject::Person as i32 && c.id == "p-ingrid-lindqvist"
                })
                .map(|c| c.amount)
                .sum::<f64>();
        }
    }
    assert!(
        (ingrid - 150_000.0).abs() < 0.01,
        "capped at 150,000 for the day, got {ingrid}"
    );
    Ok(())
}

async fn a_closed_problem_is_valued_from_the_drop_in_incidents(
    backend: Backend,
) -> anyhow::Result<()> {
    let (db, store) = store(backend).await?;
    let closed = oracle::event("servicenow/problem-closed.json");
    let mut settings = ScoringSettings::default();
    settings.verification.kinds.insert(
        "problem_closed".into(),
        herald_scoring::verification::settings::KindWindow {
            hold_back: Some(std::time::Duration::from_secs(30 * 24 * 3600)),
            revoke_within: None,
        },
    );
    let outcome = score::outcome(&closed, &oracle::catalog(), &settings);
    let now = Utc::now();
    store
        .record_outcome(
            &closed,
            &outcome,
            &settings,
            chrono_tz::Europe::Amsterdam,
            now,
        )
        .await?;
    let seen = std::sync::Mutex::new(None);
    let valuer = |win: &herald_proto::v1::Win, counts: ProblemCounts| {
        *seen.lock().expect("lock") = Some(counts);
        let mut valued = win.clone();
        if let Some(value) = valued.value.as_mut() {
            value.amount = 1234.0;
        }
        // The shares follow a new value (the team carries it whole, the people split it): the
        // cap must read these, not the old ones.
        let old_value: f64 = valued.credits.iter().map(|c| c.amount).sum::<f64>() / 2.0;
        for credit in &mut valued.credits {
            credit.amount = if old_value > 0.0 {
                credit.amount / old_value * 617.0
            } else {
                617.0
            };
        }
        Ok(valued)
    };
    let confirmed = store
        .confirm_due_with(now + Duration::days(31), &valuer)
        .await?;
    assert_eq!(confirmed.len(), 1, "confirmed at the end of its window");
    assert_eq!(confirmed[0].value.as_ref().map(|v| v.amount), Some(1234.0));
    let counts = seen.lock().expect("lock").expect("valued with counts");
    assert_eq!(counts.window_days, 30);
    assert_eq!(
        EventKind::try_from(confirmed[0].kind)?,
        EventKind::ProblemClosed
    );
    // What the daily cap reads is the valued win's people, each once, at their new amounts.
    let people: Vec<(String, f64)> = confirmed[0]
        .credits
        .iter()
        .filter(|c| c.subject == herald_proto::v1::CreditSubject::Person as i32)
        .map(|c| (c.id.clone(), c.amount))
        .collect();
    assert!(!people.is_empty(), "the fixture problem credits people");
    let stored: Vec<(String, f64)> =
        sqlx::query("SELECT person, amount FROM person_credits WHERE win_id = $1 ORDER BY person")
            .bind(&confirmed[0].id)
            .fetch_all(&db.db.pool)
            .await?
            .into_iter()
            .map(|r| (r.get::<String, _>("person"), r.get::<f64, _>("amount")))
            .collect();
    let mut expected = people;
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(stored, expected, "the person credits are the valued ones");
    Ok(())
}

herald_testkit::store_cases!(
    praise_attaches_to_the_rated_win_in_either_order,
    a_failed_change_becomes_a_blameless_lesson,
    deployments_are_counted_for_delivery_metrics,
    the_daily_cap_holds_across_wins,
    a_closed_problem_is_valued_from_the_drop_in_incidents,
);
