//! The notify stage hands a delivery due now to a webhook straight to the channel's stream,
//! claimed in the statement that queues it; anything else (a paced channel, a full stream) is
//! queued pending and the dispatcher woken for it.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use herald_events::{Acker, BusError, IncomingMessage, worker::Handler};
use herald_notify::{
    Notify,
    config::NotifySettings,
    handler::NotifyHandler,
    store::Store,
    unpaced::{Inlet, Streams},
};
use herald_proto::v1::Announcement;
use herald_runtime::{db::Backend, service::Service};
use herald_testkit::stores::TestStore;
use prost::Message;
use tokio::sync::Notify as Wake;

/// Acknowledgements go nowhere: the handler's answers are what these tests read.
struct NoAck;

#[async_trait::async_trait]
impl Acker for NoAck {
    async fn ack(&self) -> Result<(), BusError> {
        Ok(())
    }
    async fn nak(&self, _delay: Duration) -> Result<(), BusError> {
        Ok(())
    }
    async fn in_progress(&self) -> Result<(), BusError> {
        Ok(())
    }
}

fn message(id: &str) -> IncomingMessage {
    let announcement = Announcement {
        id: id.into(),
        ..Default::default()
    };
    IncomingMessage::new(
        "herald.announcements.win".into(),
        Bytes::from(announcement.encode_to_vec()),
        Vec::new(),
        1,
        1,
        Box::new(NoAck),
    )
}

/// A signed webhook (a stream that takes claimed deliveries) and a paced Slack channel, each with
/// a route that takes every announcement.
fn settings() -> anyhow::Result<NotifySettings> {
    Ok(serde_json::from_value(serde_json::json!({
        "allow_private_networks": true,
        "channels": [
            {"name": "bi-hook", "kind": "webhook", "url": "http://127.0.0.1:9/herald", "secret": "s3cret-for-tests-only"},
            {"name": "slack-wins", "kind": "slack", "url": "http://127.0.0.1:9/services/T/B/X"}
        ],
        "routes": [
            {"name": "to-bi", "channel": "bi-hook"},
            {"name": "to-slack", "channel": "slack-wins"}
        ]
    }))?)
}

fn woken(wake: &Wake) -> bool {
    futures::FutureExt::now_or_never(wake.notified()).is_some()
}

/// The stage's handler on a fresh store, with its streams' own ends and its wake-up; the store's
/// database lasts as long as `_test`.
struct Stage {
    _test: TestStore,
    store: Store,
    inlets: Vec<Inlet>,
    wake: Arc<Wake>,
    handler: NotifyHandler,
}

async fn stage(backend: Backend) -> anyhow::Result<Stage> {
    let test = TestStore::on(backend, Notify::NAME, &Notify::migrations()).await?;
    let store = Store::new(test.db.clone());
    let settings = settings()?;
    let (streams, inlets) = Streams::of(&settings);
    let wake = Arc::new(Wake::new());
    let handler = NotifyHandler::new(
        store.clone(),
        settings,
        herald_catalog::Catalog::default(),
        wake.clone(),
        streams,
    );
    Ok(Stage {
        _test: test,
        store,
        inlets,
        wake,
        handler,
    })
}

async fn a_webhook_delivery_is_handed_over_claimed(backend: Backend) -> anyhow::Result<()> {
    let Stage {
        store,
        mut inlets,
        wake,
        handler,
        _test,
    } = stage(backend).await?;
    assert_eq!(
        inlets
            .iter()
            .map(|i| i.channel.as_str())
            .collect::<Vec<_>>(),
        vec!["bi-hook"],
        "only the unpaced channel is a stream"
    );

    let answers = handler.handle_batch(&[message("a-1")]).await;
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    let handed = inlets[0]
        .try_recv()
        .ok_or_else(|| anyhow::anyhow!("the webhook's delivery was not handed to its stream"))?;
    assert_eq!(
        (
            handed.announcement_id.as_str(),
            handed.route.as_str(),
            handed.attempt
        ),
        ("a-1", "to-bi", 1)
    );
    assert!(inlets[0].try_recv().is_none(), "handed over once");
    assert!(
        woken(&wake),
        "Slack's delivery is pending: the dispatcher is woken for it"
    );
    let pending: Vec<String> = store
        .claim_due(10, Duration::from_secs(60))
        .await?
        .into_iter()
        .map(|c| c.route)
        .collect();
    assert_eq!(
        pending,
        vec!["to-slack".to_string()],
        "the dispatcher finds only the paced channel's delivery; the webhook's is already claimed"
    );

    let answers = handler.handle_batch(&[message("a-1")]).await;
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    assert!(
        inlets[0].try_recv().is_none(),
        "a redelivered announcement hands nothing over again"
    );
    assert!(!woken(&wake), "and queues nothing new");
    Ok(())
}

herald_testkit::store_cases!(a_webhook_delivery_is_handed_over_claimed);

async fn a_batch_larger_than_the_stream_has_room_for_is_queued_pending(
    backend: Backend,
) -> anyhow::Result<()> {
    let Stage {
        store,
        mut inlets,
        wake,
        handler,
        _test,
    } = stage(backend).await?;
    let batch: Vec<IncomingMessage> = (0..600).map(|n| message(&format!("a-{n}"))).collect();
    let answers = handler.handle_batch(&batch).await;
    assert!(answers.iter().all(Result::is_ok));
    assert!(
        inlets[0].try_recv().is_none(),
        "no room for all of them: none is handed over"
    );
    assert!(woken(&wake), "the dispatcher is woken for them");
    let mut webhook = 0;
    loop {
        let claimed = store.claim_due(128, Duration::from_secs(60)).await?;
        if claimed.is_empty() {
            break;
        }
        webhook += claimed.iter().filter(|c| c.channel == "bi-hook").count();
    }
    assert_eq!(webhook, 600, "every webhook delivery is pending, none lost");
    Ok(())
}

herald_testkit::store_cases!(a_batch_larger_than_the_stream_has_room_for_is_queued_pending);
