//! Topology created once, safely: the four services starting at the same instant against an empty
//! nats-server all get their streams and consumers, with the server still up, round after round.

use herald_events::{Bus, ConsumerSpec, JetStreamBus, JetStreamOptions, StreamFamily};
use herald_testkit::NatsServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_services_starting_together_create_the_topology_once() -> anyhow::Result<()> {
    for round in 0..5 {
        let nats = NatsServer::start().await?;
        let services: [(&str, Vec<ConsumerSpec>); 4] = [
            ("ingest", vec![]),
            ("scoring", vec![ConsumerSpec::scoring()]),
            ("spotlight", vec![ConsumerSpec::spotlight()]),
            ("notify", vec![ConsumerSpec::notify()]),
        ];
        let starts = services.into_iter().map(|(name, consumers)| {
            let url = nats.url();
            tokio::spawn(async move {
                let bus = JetStreamBus::connect(JetStreamOptions::new(url, name)).await?;
                bus.ensure_topology(&consumers).await?;
                anyhow::Ok(bus)
            })
        });
        let mut buses = Vec::new();
        for start in futures::future::join_all(starts).await {
            buses.push(start??);
        }
        // Every stream is there once, and the server answers.
        let client = async_nats::connect(nats.url()).await?;
        for family in StreamFamily::ALL {
            let len = herald_testkit::nats::stream_len(&client, family.stream_name()).await;
            assert!(
                len.is_ok(),
                "round {round}: {} missing: {len:?}",
                family.stream_name()
            );
        }
        for bus in &buses {
            bus.check_ready().await?;
        }
        // A second start changes nothing and does not fail.
        buses[1].ensure_topology(&[ConsumerSpec::scoring()]).await?;
    }
    Ok(())
}
