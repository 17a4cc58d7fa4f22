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
