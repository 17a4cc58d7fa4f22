//! The machine's own limits, measured in the same run: JetStream publishes with their acks
//! pipelined (nothing of Herald in the way), and the same HTTP driver against a server that only
//! answers 200.

use std::time::Instant;

use herald_testkit::NatsServer;

/// Messages per second JetStream stores with acks pipelined (`in_flight` awaited at a time), for
/// `count` messages of `size` bytes.
pub async fn jetstream_publish(count: u64, size: usize, in_flight: usize) -> anyhow::Result<f64> {
    let nats = NatsServer::start().await?;
    let client = async_nats::connect(nats.url()).await?;
    let js = async_nats::jetstream::new(client);
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "BENCH".into(),
        subjects: vec!["bench.>".into()],
        ..Default::default()
    })
    .await?;
    let payload = bytes::Bytes::from(vec![b'x'; size]);
    let started = Instant::now();
    let mut pending = std::collections::VecDeque::with_capacity(in_flight);
    for i in 0..count {
        let ack = js
            .publish(format!("bench.{}", i % 64), payload.clone())
            .await?;
        pending.push_back(ack);
        if pending.len() >= in_flight
            && let Some(ack) = pending.pop_front()
        {
            ack.await?;
        }
    }
    for ack in pending {
        ack.await?;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

/// Messages per second through `hops` JetStream streams in a row with no work between them: the
/// shape of Herald's pipeline (ingest stores an event, scoring consumes it and stores a win,
/// spotlight consumes that and stores an announcement, notify consumes the announcement) with
/// nothing but the bus. Each relay has its own connection, as each service does; it takes what its
/// pull consumer has ready (up to 100, the services' pull size), stores it on the next stream with
/// the acks awaited together, then acks what it took. `count` messages of `size` bytes, timed
/// from the first publish to the last message taken from the last stream; with the machine's CPU
/// over that time (nats-server's included: it is still running when measured).
pub async fn jetstream_relay(
    count: u64,
    size: usize,
    hops: usize,
) -> anyhow::Result<(f64, crate::cpu::Usage)> {
    use futures::StreamExt as _;
    use tokio::task::JoinSet;

    anyhow::ensure!(hops >= 1, "a relay needs at least one stream");
    let nats = NatsServer::start().await?;
    let admin = async_nats::jetstream::new(async_nats::connect(nats.url()).await?);
    let mut consumers = Vec::with_capacity(hops);
    for hop in 0..hops {
        let stream = admin
            .create_stream(async_nats::jetstream::stream::Config {
                name: format!("RELAY{hop}"),
                subjects: vec![format!("relay.{hop}.>")],
                ..Default::default()
            })
            .await?;
        let consumer: async_nats::jetstream::consumer::PullConsumer = stream
            .create_consumer(async_nats::jetstream::consumer::pull::Config {
                durable_name: Some(format!("hop{hop}")),
                ack_policy: async_nats::jetstream::consumer::AckPolicy::Explicit,
                ..Default::default()
            })
            .await?;
        consumers.push(consumer);
    }

    let mut tasks: JoinSet<anyhow::Result<()>> = JoinSet::new();
    for (hop, consumer) in consumers.into_iter().enumerate() {
        let url = nats.url().to_string();
        tasks.spawn(async move {
            let js = async_nats::jetstream::new(async_nats::connect(url).await?);
            let mut taken = consumer
                .stream()
                .max_messages_per_batch(100)
                .messages()
                .await?
                .ready_chunks(100);
            let last = hop + 1 == hops;
            let mut seen = 0;
            while seen < count {
                let Some(batch) = taken.next().await else {
                    anyhow::bail!("hop {hop}: the consumer ended after {seen} messages");
                };
                let mut messages = Vec::with_capacity(batch.len());
                for message in batch {
                    messages.push(message.map_err(|e| anyhow::anyhow!("hop {hop}: {e}"))?);
                }
                if !last {
                    let mut acks = Vec::with_capacity(messages.len());
                    for message in &messages {
                        acks.push(
                            js.publish(
                                format!(
                                    "relay.{}.{}",
                                    hop + 1,
                                    message.subject.rsplit('.').next().unwrap_or("0")
                                ),
                                message.payload.clone(),
                            )
                            .await
                            .map_err(|e| anyhow::anyhow!("hop {hop}: publish: {e}"))?,
                        );
                    }
                    for ack in acks {
                        ack.await
                            .map_err(|e| anyhow::anyhow!("hop {hop}: publish's ack: {e}"))?;
                    }
                }
                for message in &messages {
                    message
                        .ack()
                        .await
                        .map_err(|e| anyhow::anyhow!("hop {hop}: {e}"))?;
                }
                seen += messages.len() as u64;
            }
            Ok(())
        });
    }

    let payload = bytes::Bytes::from(vec![b'x'; size]);
    let machine_before = crate::cpu::Snapshot::take();
    let started = Instant::now();
    let mut pending = std::collections::VecDeque::with_capacity(1024);
    for i in 0..count {
        pending.push_back(
            admin
                .publish(format!("relay.0.{}", i % 64), payload.clone())
                .await?,
        );
        if pending.len() >= 1024
            && let Some(ack) = pending.pop_front()
        {
            ack.await?;
        }
    }
    for ack in pending {
        ack.await?;
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let per_second = count as f64 / started.elapsed().as_secs_f64();
    Ok((per_second, machine_before.usage_since()))
}
