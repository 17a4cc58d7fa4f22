//! The Bus contract, checked against a real nats-server with JetStream.
//!
//! Each case takes an `Arc<dyn Bus>` so every implementation runs the same cases.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use herald_events::{
    Bus, ConsumerSpec, EmbeddedBus, IncomingMessage, JetStreamBus, JetStreamOptions,
    OutgoingMessage, StreamFamily,
    backoff::Backoff,
    worker::{self, HandleError, Handler, WorkerOptions},
};
use herald_proto::v1::DeadLetter;
use herald_testkit::NatsServer;
use prost::Message;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(10);

async fn jetstream() -> anyhow::Result<(NatsServer, Arc<dyn Bus>)> {
    herald_testkit::init_tracing();
    let nats = NatsServer::start().await?;
    let bus = JetStreamBus::connect(JetStreamOptions::new(nats.url(), "conformance")).await?;
    Ok((nats, Arc::new(bus)))
}

fn events_consumer(name: &str) -> ConsumerSpec {
    ConsumerSpec {
        family: StreamFamily::Events,
        durable: name.to_string(),
        filter_subject: "herald.events.>".to_string(),
        ack_wait: Duration::from_secs(2),
        max_ack_pending: 1000,
    }
}

fn dlq_consumer() -> ConsumerSpec {
    ConsumerSpec {
        family: StreamFamily::DeadLetters,
        durable: "test-dlq".to_string(),
        filter_subject: "herald.dlq.>".to_string(),
        ack_wait: Duration::from_secs(30),
        max_ack_pending: 1000,
    }
}

async fn next(sub: &mut Box<dyn herald_events::Subscription>) -> anyhow::Result<IncomingMessage> {
    match tokio::time::timeout(WAIT, sub.next()).await {
        Ok(Some(Ok(d))) => Ok(d),
        Ok(Some(Err(e))) => Err(e.into()),
        Ok(None) => anyhow::bail!("subscription ended"),
        Err(_) => anyhow::bail!("no delivery within {WAIT:?}"),
    }
}

async fn nothing_within(sub: &mut Box<dyn herald_events::Subscription>, wait: Duration) -> bool {
    loop {
        match tokio::time::timeout(wait, sub.next()).await {
            Err(_) => return true,
            // Transient receive errors (heartbeats) are not deliveries.
            Ok(Some(Err(_))) => continue,
            Ok(_) => return false,
        }
    }
}

// ---------------------------------------------------------------- cases

async fn duplicate_publishes_are_dropped(bus: Arc<dyn Bus>) -> anyhow::Result<()> {
    let spec = events_consumer("dedupe");
    bus.ensure_topology(std::slice::from_ref(&spec)).await?;
    let msg = OutgoingMessage::new("herald.events.servicenow.incident_resolved", "evt-1", "a");
    let first = bus.publish(msg.clone()).await?;
    let second = bus.publish(msg).await?;
    assert!(!first.duplicate);
    assert!(
        second.duplicate,
        "the same message id must be reported as a duplicate"
    );
    assert_eq!(first.sequence, second.sequence);

    let mut sub = bus.subscribe(&spec).await?;
    let d = next(&mut sub).await?;
    assert_eq!(d.msg_id(), Some("evt-1"));
    assert_eq!(d.delivered, 1);
    d.ack().await?;
    assert!(nothing_within(&mut sub, Duration::from_millis(500)).await);
    Ok(())
}

/// Many publishers at once, each message id published twice concurrently, then every message
/// acknowledged at once: each id is stored once (the second is a duplicate even when both share a
/// commit), each delivered once, and none comes back after its ack.
async fn concurrent_publishes_and_acks_each_count_once(bus: Arc<dyn Bus>) -> anyhow::Result<()> {
    let spec = events_consumer("crowd");
    bus.ensure_topology(std::slice::from_ref(&spec)).await?;
    let mut publishers = tokio::task::JoinSet::new();
    for task in 0..32 {
        let bus = bus.clone();
        publishers.spawn(async move {
            let mut fresh = 0;
            // Tasks 2k and 2k+1 publish the same ten ids.
            for i in 0..10 {
                let id = format!("c-{}-{i}", task / 2);
                let receipt = bus
                    .publish(OutgoingMessage::new(
                        "herald.events.servicenow.incident_resolved",
                        id.clone(),
                        id,
                    ))
                    .await?;
                fresh += u32::from(!receipt.duplicate);
            }
            anyhow::Ok(fresh)
        });
    }
    let mut fresh = 0;
    while let Some(done) = publishers.join_next().await {
        fresh += done??;
    }
    assert_eq!(fresh, 160, "each of the 160 ids stored once");
    let mut sub = bus.subscribe(&spec).await?;
    let mut seen = std::collections::HashSet::new();
    let mut acks = tokio::task::JoinSet::new();
    for _ in 0..160 {
        let d = next(&mut sub).await?;
        assert!(
            seen.insert(d.msg_id().unwrap_or_default().to_string()),
            "delivered twice"
        );
        acks.spawn(async move { d.ack().await });
    }
    while let Some(done) = acks.join_next().await {
        done??;
    }
    assert!(
        nothing_within(&mut sub, Duration::from_secs(3)).await,
        "an acknowledged message came back"
    );
    Ok(())
}

async fn deliveries_keep_subject_order(bus: Arc<dyn Bus>) -> anyhow::Result<()> {
    let spec = events_consumer("order");
    bus.ensure_topology(std::slice::from_ref(&spec)).await?;
    for i in 0..50 {
        bus.publish(OutgoingMessage::new(
            "herald.events.jira.incident_resolved",
            format!("o-{i}"),
            format!("{i}"),
        ))
        .await?;
    }
    let mut sub = bus.subscribe(&spec).await?;
    for i in 0..50 {
        let d = next(&mut sub).await?;
        assert_eq!(d.payload.as_ref(), format!("{i}").as_bytes());
        assert_eq!(d.subject, "herald.events.jira.incident_resolved");
        d.ack().await?;
    }
    Ok(())
}

async fn nak_redelivers_with_a_higher_count(bus: Arc<dyn Bus>) -> anyhow::Result<()> {
    let spec = events_consumer("nak");
    bus.ensure_topology(std::slice::from_ref(&spec)).await?;
    bus.publish(OutgoingMessage::new(
        "herald.events.github.deployment_succeeded",
        "n-1",
        "x",
    ))
    .await?;
    let mut sub = bus.subscribe(&spec).await?;
    let first = next(&mut sub).await?;
    assert_eq!(first.delivered, 1);
    first.nak(Duration::from_millis(200)).await?;
    let second = next(&mut sub).await?;
    assert_eq!(second.msg_id(), Some("n-1"));
    assert_eq!(second.delivered, 2);
    second.ack().await?;
    Ok(())
}

async fn unacked_deliveries_return_after_ack_wait(bus: Arc<dyn Bus>) -> anyhow::Result<()> {
    let spec = events_consumer("timeout");
    bus.ensure_topology(std::slice::from_ref(&spec)).await?;
    bus.publish(OutgoingMessage::new(
        "herald.events.pagerduty.page_resolved",
        "t-1",
        "x",
    ))
    .await?;
    let mut sub = bus.subscribe(&spec).await?;
    let first = next(&mut sub).await?;
    drop(first); // never acked: as if the process died while handling it
    let again = next(&mut sub).await?;
    assert_eq!(again.msg_id(), Some("t-1"));
    assert_eq!(again.delivered, 2);
    again.ack().await?;
    Ok(())
}

async fn oversized_messages_are_refused_with_the_limit(bus: Arc<dyn Bus>) -> anyhow::Result<()> {
    let spec = events_consumer("oversized");
    bus.ensure_topology(std::slice::from_ref(&spec)).await?;
    let limit = bus.max_payload();
    let too_big = OutgoingMessage::new(
        "herald.events.servicenow.incident_resolved",
        "big-1",
        vec![b'x'; limit + 1],
    );
    match bus.publish(too_big).await {
        Err(herald_events::BusError::TooLarge {
            size,
            limit: reported,
        }) => {
            assert_eq!((size, reported), (limit + 1, limit));
        }
        other => anyhow::bail!("expected TooLarge, got {other:?}"),
    }
    let mut sub = bus.subscribe(&spec).await?;
    assert!(
        nothing_within(&mut sub, Duration::from_millis(300)).await,
        "nothing was stored"
    );
    Ok(())
}

async fn topology_is_idempotent_and_updatable(bus: Arc<dyn Bus>) -> anyhow::Result<()> {
    let mut spec = events_consumer("topology");
    bus.ensure_topology(std::slice::from_ref(&spec)).await?;
    bus.ensure_topology(std::slice::from_ref(&spec)).await?;
    spec.ack_wait = Duration::from_secs(45);
    spec.max_ack_pending = 50;
    bus.ensure_topology(std::slice::from_ref(&spec)).await?;
    bus.check_ready().await?;
    Ok(())
}

type Answer = Box<dyn Fn(&IncomingMessage) -> Result<(), HandleError> + Send + Sync>;

/// Records what the handler saw and answers from a script.
struct Scripted {
    seen: Mutex<Vec<(String, u32)>>,
    answer: Answer,
    delay: Duration,
}

#[async_trait]
impl Handler for Scripted {
    async fn handle(&self, delivery: &IncomingMessage) -> Result<(), HandleError> {
        tokio::time::sleep(self.delay).await;
        self.seen.lock().expect("not poisoned").push((
            String::from_utf8_lossy(&delivery.payload).into_owned(),
            delivery.delivered,
        ));
        (self.answer)(delivery)
    }
}

fn fast_worker(stage: &str, max_deliveries: u32) -> WorkerOptions {
    WorkerOptions {
        stage: stage.to_string(),
        lanes: 4,
        batch: herald_events::worker::DEFAULT_BATCH,
        max_deliveries,
        backoff: Backoff {
            base: Duration::from_millis(50),
            max: Duration::from_millis(200),
        },
        drain_timeout: Duration::from_secs(5),
    }
}

async fn read_dead_letter(bus: &Arc<dyn Bus>) -> anyhow::Result<DeadLetter> {
    let spec = dlq_consumer();
    bus.ensure_topology(std::slice::from_ref(&spec)).await?;
    let mut sub = bus.subscribe(&spec).await?;
    let d = next(&mut sub).await?;
    d.ack().await?;
    Ok(DeadLetter::decode(d.payload.as_ref())?)
}

async fn failing_messages_are_dead_lettered_with_their_reason(
    bus: Arc<dyn Bus>,
) -> anyhow::Result<()> {
    let spec = events_consumer("scoring");
    bus.ensure_topology(std::slice::from_ref(&spec)).await?;
    bus.publish(OutgoingMessage::new(
        "herald.events.servicenow.incident_resolved",
        "f-1",
        "boom",
    ))
    .await?;
    let handler = Arc::new(Scripted {
        seen: Mutex::default(),
        answer: Box::new(|_| Err(HandleError::Retry("database unavailable".into()))),
        delay: Duration::ZERO,
    });
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(worker::run(
        bus.clone(),
        spec,
        handler.clone(),
        fast_worker("scoring", 3),
        shutdown.clone(),
    ));
    let letter = read_dead_letter(&bus).await?;
    shutdown.cancel();
    task.await?;

    assert_eq!(letter.stage, "scoring");
    assert_eq!(letter.original_msg_id, "f-1");
    assert_eq!(
        letter.original_subject,
        "herald.events.servicenow.incident_resolved"
    );
    assert_eq!(letter.original_payload, b"boom");
    assert_eq!(letter.deliveries, 3);
    assert!(
        letter.reason.contains("database unavailable"),
        "{}",
        letter.reason
    );
    assert!(letter.reason.contains("3 attempts"), "{}", letter.reason);
    let attempts: Vec<u32> = handler
        .seen
        .lock()
        .expect("ok")
        .iter()
        .map(|s| s.1)
        .collect();
    assert_eq!(attempts, vec![1, 2, 3]);
    Ok(())
}

async fn waiting_for_a_dependency_uses_up_no_deliveries(bus: Arc<dyn Bus>) -> anyhow::Result<()> {
    let spec = events_consumer("scoring");
    bus.ensure_topology(std::slice::from_ref(&spec)).await?;
    bus.publish(OutgoingMessage::new(
        "herald.events.servicenow.incident_resolved",
        "u-1",
        "fine",
    ))
    .await?;
    // The database is down for six deliveries (twice the limit of three), then back.
    let handler = Arc::new(Scripted {
        seen: Mutex::default(),
        answer: Box::new(|d| {
            if d.delivered <= 6 {
                Err(HandleError::unavailable("pool timed out"))
            } else {
                Ok(())
            }
        }),
        delay: Duration::ZERO,
    });
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(worker::run(
        bus.clone(),
        spec.clone(),
        handler.clone(),
        fast_worker("scoring", 3),
        shutdown.clone(),
    ));
    herald_testkit::eventually("handled once the dependency is back", WAIT, || async {
        (handler.seen.lock().ok()?.len() >= 7).then_some(())
    })
    .await?;
    // A message that then fails for a reason of its own still has its whole budget.
    shutdown.cancel();
    task.await?;
    let attempts: Vec<u32> = handler
        .seen
        .lock()
        .expect("ok")
        .iter()
        .map(|s| s.1)
        .collect();
    assert_eq!(attempts, (1..=7).collect::<Vec<u32>>());
    let dead = bus
        .list_stored(StreamFamily::DeadLetters, None, 0, 10)
        .await?;
    assert!(
        dead.is_empty(),
        "nothing dead-lettered: {} letters",
        dead.len()
    );
    Ok(())
}

async fn rejected_messages_are_dead_lettered_at_once(bus: Arc<dyn Bus>) -> anyhow::Result<()> {
    let spec = events_consumer("scoring");
    bus.ensure_topology(std::slice::from_ref(&spec)).await?;
    bus.publish(OutgoingMessage::new(
        "herald.events.zendesk.survey_submitted",
        "r-1",
        "junk",
    ))
    .await?;
    let handler = Arc::new(Scripted {
        seen: Mutex::default(),
        answer: Box::new(|_| Err(HandleError::Reject("payload is not an ItsmEvent".into()))),
        delay: Duration::ZERO,
    });
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(worker::run(
        bus.clone(),
        spec,
        handler.clone(),
        fast_worker("scoring", 5),
        shutdown.clone(),
    ));
    let letter = read_dead_letter(&bus).await?;
    shutdown.cancel();
    task.await?;
    assert_eq!(letter.deliveries, 1);
    assert_eq!(letter.reason, "payload is not an ItsmEvent");
    assert_eq!(handler.seen.lock().expect("ok").len(), 1);
    Ok(())
}

async fn same_key_messages_are_handled_in_order(bus: Arc<dyn Bus>) -> anyhow::Result<()> {
    let spec = events_consumer("keyed");
    bus.ensure_topology(std::slice::from_ref(&spec)).await?;
    for i in 0..30 {
        let key = format!("record-{}", i % 3);
        bus.publish(
            OutgoingMessage::new(
                "herald.events.servicenow.incident_resolved",
                format!("k-{i}"),
                format!("{key}:{i}"),
            )
            .with_ordering_key(key),
        )
        .await?;
    }
    let handler = Arc::new(Scripted {
        seen: Mutex::default(),
        answer: Box::new(|_| Ok(())),
        delay: Duration::from_millis(5),
    });
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(worker::run(
        bus.clone(),
        spec,
        handler.clone(),
        fast_worker("keyed", 5),
        shutdown.clone(),
    ));
    herald_testkit::eventually("30 messages handled", WAIT, || {
        let n = handler.seen.lock().expect("ok").len();
        async move { (n >= 30).then_some(()) }
    })
    .await?;
    shutdown.cancel();
    task.await?;
    let seen = handler.seen.lock().expect("ok").clone();
    for key in ["record-0", "record-1", "record-2"] {
        let order: Vec<u32> = seen
            .iter()
            .filter_map(|(p, _)| {
                p.strip_prefix(&format!("{key}:"))
                    .map(|n| n.parse().unwrap_or(0))
            })
            .collect();
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(order, sorted, "{key} handled out of order");
        assert_eq!(order.len(), 10);
    }
    Ok(())
}

async fn nothing_is_lost_across_a_worker_restart(bus: Arc<dyn Bus>) -> anyhow::Result<()> {
    let spec = events_consumer("restart");
    bus.ensure_topology(std::slice::from_ref(&spec)).await?;
    for i in 0..20 {
        bus.publish(OutgoingMessage::new(
            "herald.events.opsgenie.page_resolved",
            format!("s-{i}"),
            format!("{i}"),
        ))
        .await?;
    }
    let handler = Arc::new(Scripted {
        seen: Mutex::default(),
        answer: Box::new(|_| Ok(())),
        delay: Duration::from_millis(50),
    });
    let mut options = fast_worker("restart", 5);
    options.lanes = 1;
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(worker::run(
        bus.clone(),
        spec.clone(),
        handler.clone(),
        options.clone(),
        shutdown.clone(),
    ));
    herald_testkit::eventually("a few handled", WAIT, || {
        let n = handler.seen.lock().expect("ok").len();
        async move { (n >= 3).then_some(()) }
    })
    .await?;
    shutdown.cancel();
    task.await?;
    let before = handler.seen.lock().expect("ok").len();
    assert!(
        before < 20,
        "the first worker should have stopped early ({before} handled)"
    );

    let shutdown = CancellationToken::new();
    let task = tokio::spawn(worker::run(
        bus.clone(),
        spec,
        handler.clone(),
        options,
        shutdown.clone(),
    ));
    herald_testkit::eventually("all 20 handled", Duration::from_secs(20), || {
        let distinct: std::collections::HashSet<String> = handler
            .seen
            .lock()
            .expect("ok")
            .iter()
            .map(|s| s.0.clone())
            .collect();
        async move { (distinct.len() == 20).then_some(()) }
    })
    .await?;
    shutdown.cancel();
    task.await?;
    Ok(())
}

async fn stored_messages_are_listed_and_removed(bus: Arc<dyn Bus>) -> anyhow::Result<()> {
    bus.ensure_topology(&[]).await?;
    let before = chrono::Utc::now() - chrono::Duration::seconds(5);
    bus.publish(OutgoingMessage::new(
        "herald.events.servicenow.incident_resolved",
        "e-1",
        "event",
    ))
    .await?;
    let mut published = Vec::new();
    for (subject, id) in [
        ("herald.dlq.scoring", "d-1"),
        ("herald.dlq.notify", "d-2"),
        ("herald.dlq.scoring", "d-3"),
        ("herald.dlq.scoring", "d-4"),
    ] {
        let receipt = bus
            .publish(
                OutgoingMessage::new(subject, id, format!("payload of {id}"))
                    .with_header("Herald-Dlq-Reason", format!("reason {id}")),
            )
            .await?;
        published.push(receipt.sequence);
    }

    // Every dead letter, oldest first, as stored: subject, headers (with the message id), payload.
    let all = bus
        .list_stored(StreamFamily::DeadLetters, None, 0, 100)
        .await?;
    let ids: Vec<_> = all.iter().map(|m| m.header("Nats-Msg-Id")).collect();
    assert_eq!(ids, [Some("d-1"), Some("d-2"), Some("d-3"), Some("d-4")]);
    assert_eq!(
        all.iter().map(|m| m.sequence).collect::<Vec<_>>(),
        published
    );
    assert_eq!(all[1].subject, "herald.dlq.notify");
    assert_eq!(all[1].payload.as_ref(), b"payload of d-2");
    assert_eq!(all[1].header("herald-dlq-reason"), Some("reason d-2"));
    let after = chrono::Utc::now() + chrono::Duration::seconds(5);
    assert!(
        all.iter()
            .all(|m| m.stored_at > before && m.stored_at < after),
        "stored_at is when the bus stored it: {:?}",
        all.iter().map(|m| m.stored_at).collect::<Vec<_>>()
    );

    // Pages: a limit, then everything after the last sequence seen.
    let first = bus
        .list_stored(StreamFamily::DeadLetters, None, 0, 2)
        .await?;
    assert_eq!(first.len(), 2);
    let rest = bus
        .list_stored(StreamFamily::DeadLetters, None, first[1].sequence, 100)
        .await?;
    assert_eq!(
        rest.iter().map(|m| m.sequence).collect::<Vec<_>>(),
        published[2..]
    );

    // A subject filter skips the other stages.
    let scoring = bus
        .list_stored(
            StreamFamily::DeadLetters,
            Some("herald.dlq.scoring"),
            0,
            100,
        )
        .await?;
    assert_eq!(scoring.len(), 3);
    assert!(scoring.iter().all(|m| m.subject == "herald.dlq.scoring"));

    // Removing one: listed no more, gone by sequence, and removing it again is not an error.
    assert!(
        bus.delete_stored(StreamFamily::DeadLetters, published[2])
            .await?
    );
    assert!(
        !bus.delete_stored(StreamFamily::DeadLetters, published[2])
            .await?
    );
    assert_eq!(
        bus.get_stored(StreamFamily::DeadLetters, published[2])
            .await?,
        None
    );
    let got = bus
        .get_stored(StreamFamily::DeadLetters, published[3])
        .await?
        .ok_or_else(|| anyhow::anyhow!("the last dead letter is still stored"))?;
    assert_eq!(got.header("Nats-Msg-Id"), Some("d-4"));
    let left = bus
        .list_stored(
            StreamFamily::DeadLetters,
            Some("herald.dlq.scoring"),
            0,
            100,
        )
        .await?;
    assert_eq!(
        left.iter().map(|m| m.sequence).collect::<Vec<_>>(),
        [published[0], published[3]],
        "a removed message in the middle is skipped"
    );

    // Other streams are untouched; an empty range is an empty list.
    let events = bus.list_stored(StreamFamily::Events, None, 0, 100).await?;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].payload.as_ref(), b"event");
    assert!(
        bus.list_stored(StreamFamily::DeadLetters, None, published[3], 100)
            .await?
            .is_empty()
    );
    assert!(
        bus.list_stored(StreamFamily::Wins, None, 0, 100)
            .await?
            .is_empty()
    );
    Ok(())
}

async fn publishing_in_order_stores_in_order_and_answers_each(
    bus: Arc<dyn Bus>,
) -> anyhow::Result<()> {
    let spec = events_consumer("in-order");
    bus.ensure_topology(std::slice::from_ref(&spec)).await?;
    bus.publish(OutgoingMessage::new(
        "herald.events.servicenow.incident_resolved",
        "seen-before",
        "x",
    ))
    .await?;
    let limit = bus.max_payload();
    let mut messages: Vec<OutgoingMessage> = (0..300)
        .map(|i| {
            OutgoingMessage::new(
                "herald.events.servicenow.incident_resolved",
                format!("m-{i}"),
                format!("{i}"),
            )
        })
        .collect();
    // A duplicate and an oversized message in the middle answer for themselves only.
    messages[100] = OutgoingMessage::new(
        "herald.events.servicenow.incident_resolved",
        "seen-before",
        "x",
    );
    messages[200] = OutgoingMessage::new(
        "herald.events.servicenow.incident_resolved",
        "too-big",
        vec![b'x'; limit + 1],
    );
    let answers = bus.publish_in_order(messages).await;
    assert_eq!(answers.len(), 300, "one answer per message");
    for (i, answer) in answers.iter().enumerate() {
        match i {
            100 => assert!(matches!(answer, Ok(r) if r.duplicate), "{answer:?}"),
            200 => assert!(
                matches!(answer, Err(herald_events::BusError::TooLarge { .. })),
                "{answer:?}"
            ),
            _ => assert!(matches!(answer, Ok(r) if !r.duplicate), "{i}: {answer:?}"),
        }
    }
    let stored: Vec<String> = bus
        .list_stored(StreamFamily::Events, None, 0, 1000)
        .await?
        .into_iter()
        .map(|m| String::from_utf8_lossy(&m.payload).into_owned())
        .collect();
    let expected: Vec<String> = std::iter::once("x".to_string())
        .chain(
            (0..300)
                .filter(|i| *i != 100 && *i != 200)
                .map(|i| i.to_string()),
        )
        .collect();
    assert_eq!(stored, expected, "stored in the order given");
    Ok(())
}

// ---------------------------------------------------------------- JetStream

macro_rules! jetstream_case {
    ($name:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() -> anyhow::Result<()> {
            let (_nats, bus) = jetstream().await?;
            super::$name(bus).await
        }
    };
}

mod jetstream {
    use super::*;
    jetstream_case!(duplicate_publishes_are_dropped);
    jetstream_case!(concurrent_publishes_and_acks_each_count_once);
    jetstream_case!(deliveries_keep_subject_order);
    jetstream_case!(nak_redelivers_with_a_higher_count);
    jetstream_case!(unacked_deliveries_return_after_ack_wait);
    jetstream_case!(topology_is_idempotent_and_updatable);
    jetstream_case!(oversized_messages_are_refused_with_the_limit);
    jetstream_case!(failing_messages_are_dead_lettered_with_their_reason);
    jetstream_case!(waiting_for_a_dependency_uses_up_no_deliveries);
    jetstream_case!(rejected_messages_are_dead_lettered_at_once);
    jetstream_case!(same_key_messages_are_handled_in_order);
    jetstream_case!(nothing_is_lost_across_a_worker_restart);
    jetstream_case!(stored_messages_are_listed_and_removed);
    jetstream_case!(publishing_in_order_stores_in_order_and_answers_each);

    #[tokio::test]
    async fn connecting_to_nothing_says_where_it_tried() {
        let port = herald_testkit::free_port().expect("port");
        let mut options = JetStreamOptions::new(format!("nats://127.0.0.1:{port}"), "t");
        options.connect_timeout = Duration::from_millis(500);
        let err = JetStreamBus::connect(options)
            .await
            .expect_err("nothing listens");
        assert!(err.to_string().contains(&port.to_string()), "{err}");
    }
}

// ---------------------------------------------------------------- embedded

async fn embedded() -> anyhow::Result<(tempfile::TempDir, Arc<dyn Bus>)> {
    herald_testkit::init_tracing();
    let dir = tempfile::tempdir()?;
    let bus = EmbeddedBus::open(dir.path(), Default::default()).await?;
    Ok((dir, Arc::new(bus)))
}

macro_rules! embedded_case {
    ($name:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() -> anyhow::Result<()> {
            let (_dir, bus) = embedded().await?;
            super::$name(bus).await
        }
    };
}

mod embedded {
    use super::*;
    embedded_case!(duplicate_publishes_are_dropped);
    embedded_case!(concurrent_publishes_and_acks_each_count_once);
    embedded_case!(deliveries_keep_subject_order);
    embedded_case!(nak_redelivers_with_a_higher_count);
    embedded_case!(unacked_deliveries_return_after_ack_wait);
    embedded_case!(topology_is_idempotent_and_updatable);
    embedded_case!(oversized_messages_are_refused_with_the_limit);
    embedded_case!(failing_messages_are_dead_lettered_with_their_reason);
    embedded_case!(waiting_for_a_dependency_uses_up_no_deliveries);
    embedded_case!(rejected_messages_are_dead_lettered_at_once);
    embedded_case!(same_key_messages_are_handled_in_order);
    embedded_case!(nothing_is_lost_across_a_worker_restart);
    embedded_case!(stored_messages_are_listed_and_removed);
    embedded_case!(publishing_in_order_stores_in_order_and_answers_each);

    /// Publishes `{prefix}-0` … `{prefix}-2` (payloads "0" … "2") to a bus in `dir`, acknowledges
    /// the first and closes the bus holding the rest: the process "dies" holding them.
    async fn die_holding_two(
        dir: &std::path::Path,
        spec: &ConsumerSpec,
        prefix: &str,
    ) -> anyhow::Result<()> {
        let bus = EmbeddedBus::open(dir, Default::default()).await?;
        bus.ensure_topology(std::slice::from_ref(spec)).await?;
        for i in 0..3 {
            bus.publish(OutgoingMessage::new(
                "herald.events.servicenow.incident_resolved",
                format!("{prefix}-{i}"),
                format!("{i}"),
            ))
            .await?;
        }
        let mut sub = bus.subscribe(spec).await?;
        next(&mut sub).await?.ack().await?;
        // The second is taken but never acknowledged.
        let _held = next(&mut sub).await?;
        Ok(())
    }

    /// What [`die_holding_two`] left comes back, each as a second delivery, and nothing else.
    async fn the_two_held_come_back(bus: &EmbeddedBus, spec: &ConsumerSpec) -> anyhow::Result<()> {
        let mut sub = bus.subscribe(spec).await?;
        let mut seen = Vec::new();
        for _ in 0..2 {
            let d = next(&mut sub).await?;
            seen.push((
                String::from_utf8_lossy(&d.payload).into_owned(),
                d.delivered,
            ));
            d.ack().await?;
        }
        seen.sort();
        // The subscription had taken the whole batch before the "crash" (as a JetStream pull does),
        // so both unacknowledged messages return as second deliveries, at once (the directory lock
        // proves their holder is gone); the acked one never does.
        assert_eq!(seen, vec![("1".to_string(), 2), ("2".to_string(), 2)]);
        assert!(nothing_within(&mut sub, Duration::from_millis(300)).await);
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn what_was_accepted_survives_closing_and_reopening() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let spec = events_consumer("reopen");
        die_holding_two(dir.path(), &spec, "r").await?;
        let bus = EmbeddedBus::open(dir.path(), Default::default()).await?;
        let dup = bus
            .publish(OutgoingMessage::new(
                "herald.events.servicenow.incident_resolved",
                "r-2",
                "again",
            ))
            .await?;
        assert!(dup.duplicate, "message ids are remembered across a restart");
        the_two_held_come_back(&bus, &spec).await
    }

    /// A bus file from before `pending` was kept in its key's b-tree alone: its held messages come
    /// back after the upgrade, which leaves no trace of the old table or its indexes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_bus_file_of_the_earlier_shape_keeps_what_it_held() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let spec = events_consumer("upgraded");
        die_holding_two(dir.path(), &spec, "u").await?;
        let file = dir.path().join("bus.sqlite");
        {
            // Back to the earlier shape, rows and all.
            let c = rusqlite::Connection::open(&file)?;
            c.execute_batch(
                "BEGIN;
                 CREATE TABLE pending_old (
                     consumer   TEXT NOT NULL,
                     seq        INTEGER NOT NULL,
                     delivered  INTEGER NOT NULL,
                     visible_at INTEGER NOT NULL,
                     PRIMARY KEY (consumer, seq)
                 );
                 INSERT INTO pending_old SELECT consumer, seq, delivered, visible_at FROM pending;
                 DROP TABLE pending;
                 ALTER TABLE pending_old RENAME TO pending;
                 CREATE INDEX pending_due ON pending (consumer, visible_at);
                 COMMIT;",
            )?;
            let held: i64 = c.query_row("SELECT count(*) FROM pending", [], |r| r.get(0))?;
            assert_eq!(held, 2, "the batch taken, less the acknowledged one");
        }
        let bus = EmbeddedBus::open(dir.path(), Default::default()).await?;
        {
            let c = rusqlite::Connection::open(&file)?;
            let objects: Vec<(String, String)> = c
                .prepare("SELECT name, sql FROM sqlite_schema WHERE tbl_name = 'pending'")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            assert_eq!(
                objects.len(),
                1,
                "no index of the old table is left: {objects:?}"
            );
            assert!(objects[0].1.contains("WITHOUT ROWID"), "{objects:?}");
        }
        the_two_held_come_back(&bus, &spec).await?;
        drop(bus);
        // And an upgraded file opens again.
        let _again = EmbeddedBus::open(dir.path(), Default::default()).await?;
        Ok(())
    }

    #[tokio::test]
    async fn one_process_owns_a_data_directory() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let _first = EmbeddedBus::open(dir.path(), Default::default()).await?;
        let err = EmbeddedBus::open(dir.path(), Default::default())
            .await
            .expect_err("in use");
        assert!(
            err.to_string().contains("in use by another herald process"),
            "{err}"
        );
        Ok(())
    }
}
