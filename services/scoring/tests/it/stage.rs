//! Scoring as a running stage: events in over JetStream, wins out, idempotent, dead letters, gRPC.

use std::time::Duration;

use futures::StreamExt;
use herald_proto::v1::{
    ExplainRequest, GetWinRequest, ItsmEvent, Win, WinStatus, scoring_client::ScoringClient,
};
use herald_runtime::{Secret, config::DatabaseConfig, service::Service};
use herald_scoring::{Scoring, config::ScoringSettings, score, store::Store};
use herald_testkit::InProcess;
use prost::Message;

use crate::support::oracle;

const WAIT: Duration = Duration::from_secs(10);

/// Scoring in-process, with the fixture catalog and at most two deliveries before a dead letter.
struct Stage(InProcess);

impl std::ops::Deref for Stage {
    type Target = InProcess;
    fn deref(&self) -> &InProcess {
        &self.0
    }
}

async fn start() -> anyhow::Result<Stage> {
    start_holding("0s").await
}

/// Scoring whose wins are held `hold_back` before they are confirmed and published.
async fn start_holding(hold_back: &str) -> anyhow::Result<Stage> {
    Ok(Stage(
        InProcess::start::<Scoring>(&config(hold_back), &herald_testkit::fixtures_dir()).await?,
    ))
}

fn config(hold_back: &str) -> String {
    format!(
        "[catalog]\npath = \"catalog.toml\"\n[scoring.consumer]\nmax_deliveries = 2\n\
         [scoring.verification]\nhold_back = \"{hold_back}\"\nrevoke_within = \"72h\"\nconfirm_every = \"100ms\"\n"
    )
}

impl Stage {
    async fn publish(&self, event: &ItsmEvent, msg_id: &str) -> anyhow::Result<()> {
        let kind = herald_proto::v1::EventKind::try_from(event.kind)?.token();
        let subject = format!("herald.events.servicenow.{kind}");
        herald_testkit::nats::publish(&self.client, &subject, msg_id, event.encode_to_vec()).await
    }

    async fn stream_count(&self, stream: &str) -> anyhow::Result<u64> {
        herald_testkit::nats::stream_len(&self.client, stream).await
    }

    async fn outcome(&self, event_id: &str) -> anyhow::Result<Option<(String, Option<String>)>> {
        let pool = self.db.pool().await?;
        Ok(
            sqlx::query_as("SELECT outcome, win_id FROM scoring.events WHERE id = $1")
                .bind(event_id)
                .fetch_optional(&pool)
                .await?,
        )
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.0.stop().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_becomes_one_win_however_often_it_arrives() -> anyhow::Result<()> {
    let stage = start().await?;
    let mut wins = herald_testkit::nats::subscribe(&stage.client, "herald.wins.>").await?;
    let event = oracle::event("servicenow/incident-resolved-p1.json");
    stage.publish(&event, &event.id).await?;

    let msg = tokio::time::timeout(WAIT, wins.next())
        .await?
        .expect("a win");
    assert_eq!(msg.subject.as_str(), "herald.wins.incident_resolved");
    let win = Win::decode(msg.payload)?;
    assert_eq!(win.event_id, event.id);
    assert!((win.value.as_ref().map(|v| v.amount).unwrap_or(0.0) - 216_474.6).abs() < 0.01);

    // The same event redelivered under another message id (as after a crash): the win is
    // published again under its own id, and JetStream keeps one.
    stage.publish(&event, "redelivered").await?;
    // The "closed" push of the same incident: same outcome, no second win.
    let mut closed = event.clone();
    closed.id = "servicenow:incident:de67bddaeb083f8fbf5aa0a6fa7222c2:25".into();
    stage.publish(&closed, &closed.id).await?;
    herald_testkit::eventually("the closed push recorded", WAIT, || async {
        stage.outcome(&closed.id).await.ok().flatten()
    })
    .await
    .map(|(outcome, win_id)| {
        assert_eq!(outcome, "same_outcome");
        assert_eq!(win_id.as_deref(), Some(win.id.as_str()));
    })?;
    assert_eq!(
        stage.stream_count("HERALD_WINS").await?,
        1,
        "exactly one win stored"
    );

    let pool = stage.db.pool().await?;
    let (wins_rows,): (i64,) = sqlx::query_as("SELECT count(*) FROM scoring.wins")
        .fetch_one(&pool)
        .await?;
    let (credit_rows,): (i64,) = sqlx::query_as("SELECT count(*) FROM scoring.person_credits")
        .fetch_one(&pool)
        .await?;
    assert_eq!(
        (wins_rows, credit_rows),
        (1, 4),
        "one win, four people credited (the team's share stays in the win)"
    );
    stage.stop().await
}

/// A lane that stopped between its commit and its publish left a win confirmed on arrival recorded
/// and unpublished, and (since its own event publishes it) with no outbox row. The event was never
/// acked, so it comes back, and its redelivery publishes the win.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_win_committed_but_not_published_is_published_when_its_event_comes_back()
-> anyhow::Result<()> {
    let (nats, db) = start().await?.0.stop_keeping_state().await?;
    let event = oracle::event("servicenow/incident-resolved-p1.json");
    let scoring_db = herald_runtime::db::connect(
        &DatabaseConfig {
            url: Secret::new(db.url()),
            max_connections: 2,
        },
        Scoring::NAME,
    )
    .await?;
    let recorded = Store::new(scoring_db.pool.clone())
        .record_event(
            &event,
            &score::score(&event, &oracle::catalog(), &ScoringSettings::default()),
            &toml::from_str("hold_back = \"0s\"\n")?,
            chrono::Utc::now(),
        )
        .await?;
    let win = recorded.win.expect("a win");
    let (outbox,): (i64,) = sqlx::query_as("SELECT count(*) FROM scoring.outbox")
        .fetch_one(&db.pool().await?)
        .await?;
    assert_eq!(outbox, 0, "nothing for the outbox to publish");
    scoring_db.pool.close().await;

    let stage = Stage(
        InProcess::start_with::<Scoring>(nats, db, &config("0s"), &herald_testkit::fixtures_dir())
            .await?,
    );
    let mut wins = herald_testkit::nats::subscribe(&stage.client, "herald.wins.>").await?;
    stage.publish(&event, &event.id).await?;
    let msg = tokio::time::timeout(WAIT, wins.next())
        .await?
        .expect("the win, published by the redelivery");
    let published = Win::decode(msg.payload)?;
    assert_eq!(published.id, win.id);
    assert_eq!(published.status, WinStatus::Confirmed as i32);
    // A subscriber can hear the message before the stream's count includes it.
    let stored = herald_testkit::eventually("the win stored on its stream", WAIT, || async {
        stage
            .stream_count("HERALD_WINS")
            .await
            .ok()
            .filter(|n| *n > 0)
    })
    .await?;
    assert_eq!(stored, 1);
    stage.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_win_is_published_only_once_its_hold_back_has_passed() -> anyhow::Result<()> {
    let stage = start_holding("3s").await?;
    let mut wins = herald_testkit::nats::subscribe(&stage.client, "herald.wins.>").await?;
    let event = oracle::event("servicenow/incident-resolved-p1.json");
    let received = std::time::Instant::now();
    stage.publish(&event, &event.id).await?;
    let (outcome, win_id) = herald_testkit::eventually("recorded", WAIT, || async {
        stage.outcome(&event.id).await.ok().flatten()
    })
    .await?;
    assert_eq!(outcome, "win");
    let mut client = ScoringClient::connect(stage.grpc.clone()).await?;
    let pending = client
        .list_wins(herald_proto::v1::ListWinsRequest {
            status: herald_proto::v1::WinStatus::Provisional as i32,
            limit: 0,
        })
        .await?
        .into_inner();
    assert_eq!(pending.total, 1, "pending verification");
    assert_eq!(pending.wins[0].id, win_id.clone().unwrap_or_default());
    let msg = tokio::time::timeout(WAIT, wins.next())
        .await?
        .expect("the win, once confirmed");
    assert!(
        received.elapsed() >= Duration::from_secs(3),
        "published before its hold-back passed"
    );
    let win = Win::decode(msg.payload)?;
    assert_eq!(win.status, herald_proto::v1::WinStatus::Confirmed as i32);
    let explained = client
        .explain(ExplainRequest { id: win.id.clone() })
        .await?
        .into_inner();
    assert!(
        explained.text.contains("Status: confirmed"),
        "{}",
        explained.text
    );
    assert!(explained.text.contains("credited"), "{}", explained.text);
    stage.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_change_with_a_postmortem_is_published_as_a_lesson() -> anyhow::Result<()> {
    let stage = start().await?;
    let mut wins = herald_testkit::nats::subscribe(&stage.client, "herald.wins.>").await?;
    let event = oracle::event("servicenow/change-failed.json");
    stage.publish(&event, &event.id).await?;
    let msg = tokio::time::timeout(WAIT, wins.next())
        .await?
        .expect("the lesson");
    assert_eq!(msg.subject.as_str(), "herald.wins.change_failed");
    let lesson = Win::decode(msg.payload)?;
    let story = lesson.lesson.clone().expect("a lesson story");
    assert!(story.postmortem_url.contains("PM-2025-006"));
    assert!(!story.story.contains("Herrera"), "{}", story.story);
    assert!(
        !lesson.catalog_version.is_empty(),
        "the catalog it was told under"
    );
    stage.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_without_value_are_recorded_with_the_reason() -> anyhow::Result<()> {
    let stage = start().await?;
    let event = oracle::event("servicenow/incident-reopened.json");
    stage.publish(&event, &event.id).await?;
    let (outcome, win) = herald_testkit::eventually("recorded", WAIT, || async {
        stage.outcome(&event.id).await.ok().flatten()
    })
    .await?;
    assert_eq!(outcome, "no_value");
    assert_eq!(win, None);
    let mut client = ScoringClient::connect(stage.grpc.clone()).await?;
    let status = client
        .explain(ExplainRequest {
            id: event.id.clone(),
        })
        .await
        .expect_err("no win");
    assert_eq!(status.code(), tonic::Code::NotFound);
    assert!(
        status.message().contains("a reopen undoes an outcome"),
        "{}",
        status.message()
    );
    stage.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_event_is_dead_lettered_with_the_reason() -> anyhow::Result<()> {
    let stage = start().await?;
    herald_testkit::nats::publish(
        &stage.client,
        "herald.events.servicenow.incident_resolved",
        "garbage-1",
        vec![0xff, 0x01, 0x02],
    )
    .await?;
    herald_testkit::eventually("a dead letter", WAIT, || async {
        (stage.stream_count("HERALD_DLQ").await.ok()? == 1).then_some(())
    })
    .await?;
    let stream = async_nats::jetstream::new(stage.client.clone())
        .get_stream("HERALD_DLQ")
        .await?;
    let raw = stream.get_raw_message(1).await?;
    let letter = herald_proto::v1::DeadLetter::decode(raw.payload)?;
    assert_eq!(letter.stage, "scoring");
    assert_eq!(letter.original_msg_id, "garbage-1");
    assert!(
        letter.reason.contains("not a valid ItsmEvent"),
        "{}",
        letter.reason
    );
    stage.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wins_can_be_fetched_and_explained_over_grpc() -> anyhow::Result<()> {
    let stage = start().await?;
    let event = oracle::event("servicenow/ritm-fulfilled.json");
    stage.publish(&event, &event.id).await?;
    let (_, win_id) = herald_testkit::eventually("scored", WAIT, || async {
        stage.outcome(&event.id).await.ok().flatten()
    })
    .await?;
    let win_id = win_id.expect("a win");
    let mut client = ScoringClient::connect(stage.grpc.clone()).await?;
    let win = client
        .get_win(GetWinRequest {
            win_id: win_id.clone(),
        })
        .await?
        .into_inner();
    assert_eq!(win.record_number, "RITM0102934");
    let by_event = client
        .explain(ExplainRequest {
            id: event.id.clone(),
        })
        .await?
        .into_inner();
    let by_win = client
        .explain(ExplainRequest { id: win_id.clone() })
        .await?
        .into_inner();
    assert_eq!(by_event.text, by_win.text);
    assert!(by_win.text.contains("Daniel Brooks"), "{}", by_win.text);
    assert!(by_win.text.contains("capacity"), "{}", by_win.text);
    let missing = client
        .get_win(GetWinRequest {
            win_id: "w-nope".into(),
        })
        .await
        .expect_err("missing");
    assert_eq!(missing.code(), tonic::Code::NotFound);
    stage.stop().await
}
