//! The fault suite: a steady stream of signed incidents into a running Herald, one fault in the
//! middle of it, then a count of what came out. Each scenario gets a fresh Herald and a fresh
//! receiver; the driver behaves like an ITSM tool (it retries a POST that got a 5xx, a 429 or no
//! answer), so every event is eventually accepted and "lost" means accepted and never announced.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use serde::Serialize;

use crate::{
    events::{Generator, Spread},
    sink::Sink,
    targets::{self, Target},
};

/// One fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// kill -9 of herald-ingest, restarted 2 s later.
    KillIngest,
    /// kill -9 of herald-scoring, restarted 2 s later.
    KillScoring,
    /// kill -9 of herald-spotlight, restarted 2 s later.
    KillSpotlight,
    /// kill -9 of herald-notify, restarted 2 s later.
    KillNotify,
    /// nats-server stopped and started again on the same store.
    NatsRestart,
    /// nats-server frozen (SIGSTOP) for the outage length with every connection open, then
    /// resumed: the clients see silence, not a disconnect.
    NatsPaused,
    /// PostgreSQL stopped (connections cut) for the outage length, then started.
    PostgresStop,
    /// The webhook receiver takes every request of a 10 s window and answers a minute later.
    ChannelHangs,
    /// `herald up` killed with -9 and started again on its data directory.
    HeraldUpKill,
    /// A three-node JetStream cluster with R3 streams; one node killed with -9 and left down.
    ClusterNodeKilled,
    /// Three scoring and two notify processes share the work; one of each killed with -9 and left
    /// down.
    ReplicaKilled,
}

impl Scenario {
    pub const ALL: [Scenario; 11] = [
        Scenario::KillIngest,
        Scenario::KillScoring,
        Scenario::KillSpotlight,
        Scenario::KillNotify,
        Scenario::NatsRestart,
        Scenario::NatsPaused,
        Scenario::PostgresStop,
        Scenario::ChannelHangs,
        Scenario::HeraldUpKill,
        Scenario::ClusterNodeKilled,
        Scenario::ReplicaKilled,
    ];

    fn label(self, outage: Duration) -> String {
        match self {
            Scenario::KillIngest => "kill -9 ingest".into(),
            Scenario::KillScoring => "kill -9 scoring".into(),
            Scenario::KillSpotlight => "kill -9 spotlight".into(),
            Scenario::KillNotify => "kill -9 notify (sends in flight)".into(),
            Scenario::NatsRestart => "nats-server restarted".into(),
            Scenario::NatsPaused => format!("nats-server frozen {} s", outage.as_secs()),
            Scenario::PostgresStop => format!("PostgreSQL stopped {} s", outage.as_secs()),
            Scenario::ChannelHangs => "the webhook receiver hangs for 10 s".into(),
            Scenario::HeraldUpKill => "kill -9 herald up".into(),
            Scenario::ClusterNodeKilled => "kill -9 of one of three NATS nodes (R3 streams)".into(),
            Scenario::ReplicaKilled => {
                "3 scoring + 2 notify replicas, one of each killed with -9".into()
            }
        }
    }
}

/// What came out of one scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub scenario: String,
    pub sent: u64,
    pub accepted: u64,
    /// POSTs answered 5xx, 429 or not at all, then sent again (as a tool would).
    pub retried_posts: u64,
    pub delivered: u64,
    pub lost: u64,
    pub duplicates: u64,
    /// Announcements received again under the same `webhook-id` (a receiver drops these).
    pub repeats: u64,
    /// Dead letters: messages Herald gave up on (read from JetStream; `None` for `herald up`).
    pub dead_letters: Option<u64>,
    pub seconds: f64,
    /// The processes' last lines, when something was lost or doubled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logs: Option<String>,
}

/// How a run goes.
#[derive(Debug, Clone)]
pub struct Plan {
    pub events: u64,
    pub rate: f64,
    pub connections: usize,
    pub outage: Duration,
    pub drain: Duration,
}

/// Runs one scenario from start to finish.
pub async fn run(scenario: Scenario, plan: &Plan) -> anyhow::Result<Row> {
    let started = Instant::now();
    let sink = Sink::start().await?;
    let webhook = sink.url("/hooks/herald");
    let cluster = match scenario {
        Scenario::PostgresStop => Some(Arc::new(
            tokio::task::spawn_blocking(herald_testkit::postgres::ThrowawayCluster::start)
                .await??,
        )),
        _ => None,
    };
    let mut target = match (scenario, &cluster) {
        (Scenario::HeraldUpKill, _) => targets::standalone(&webhook).await?,
        (Scenario::ClusterNodeKilled, _) => {
            let db = herald_testkit::TestDatabase::create().await?;
            targets::distributed_with(&webhook, db, targets::Nats::cluster().await?).await?
        }
        (_, Some(cluster)) => {
            let db = herald_testkit::TestDatabase::create_on(cluster.url()).await?;
            targets::distributed_on(&webhook, db).await?
        }
        _ => targets::distributed(&webhook).await?,
    };
    if scenario == Scenario::ReplicaKilled {
        for service in ["scoring", "scoring", "notify"] {
            target.add_replica(service).await?;
        }
    }
    let generator = Generator::new(Spread::Organisation)?;
    let requests: Vec<_> = (0..plan.events)
        .map(|i| generator.event(i))
        .collect::<anyhow::Result<_>>()?;
    let counts = Arc::new(Counts::default());
    let driver = tokio::spawn(drive(
        target.ingest_url.clone(),
        Arc::new(requests),
        plan.connections,
        plan.rate,
        counts.clone(),
    ));
    // The fault lands a quarter of the way through the stream.
    tokio::time::sleep(Duration::from_secs_f64(
        plan.events as f64 / plan.rate / 4.0,
    ))
    .await;
    inject(scenario, &mut target, &sink, cluster.clone(), plan).await?;
    driver.await??;

    let accepted = counts.accepted.load(Ordering::Relaxed);
    let deadline = Instant::now() + plan.drain;
    while sink.arrived(0..plan.events) < accepted && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Late repeats or duplicates still in flight get a moment to show themselves.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let delivered = sink.arrived(0..plan.events);
    // The cluster's node 0 is the one killed.
    let nats_url = match (&target.nats, &target.cluster) {
        (Some(nats), _) => Some(nats.url()),
        (None, Some(cluster)) => Some(cluster.url(1)),
        (None, None) => None,
    };
    let dead_letters = match nats_url {
        Some(url) => Some(dead_letters_on(&url).await?),
        None => None,
    };
    let logs = (delivered < accepted || sink.duplicates() > 0).then(|| target.logs());
    target.stop().await;
    Ok(Row {
        scenario: scenario.label(plan.outage),
        sent: plan.events,
        accepted,
        retried_posts: counts.retried.load(Ordering::Relaxed),
        delivered,
        lost: accepted.saturating_sub(delivered),
        duplicates: sink.duplicates(),
        repeats: sink.repeats(),
        dead_letters,
        seconds: started.elapsed().as_secs_f64(),
        logs,
    })
}

async fn inject(
    scenario: Scenario,
    target: &mut Target,
    sink: &Sink,
    cluster: Option<Arc<herald_testkit::postgres::ThrowawayCluster>>,
    plan: &Plan,
) -> anyhow::Result<()> {
    let kill = |name: &'static str| (name, Duration::from_secs(2));
    let (process, pause) = match scenario {
        Scenario::KillIngest => kill("herald-ingest"),
        Scenario::KillScoring => kill("herald-scoring"),
        Scenario::KillSpotlight => kill("herald-spotlight"),
        Scenario::KillNotify => kill("herald-notify"),
        Scenario::HeraldUpKill => kill("herald"),
        Scenario::NatsRestart => {
            let nats = target
                .nats
                .as_mut()
                .ok_or_else(|| anyhow::anyhow!("no nats-server in this run"))?;
            nats.restart().await?;
            return Ok(());
        }
        Scenario::NatsPaused => {
            let nats = target
                .nats
                .as_ref()
                .ok_or_else(|| anyhow::anyhow!("no nats-server in this run"))?;
            return nats.pause(plan.outage).await;
        }
        Scenario::PostgresStop => {
            let cluster = cluster.ok_or_else(|| anyhow::anyhow!("no PostgreSQL of our own"))?;
            // Both wait on the server with blocking calls.
            let stopping = cluster.clone();
            tokio::task::spawn_blocking(move || stopping.stop()).await??;
            tokio::time::sleep(plan.outage).await;
            tokio::task::spawn_blocking(move || cluster.start_again()).await??;
            return Ok(());
        }
        Scenario::ChannelHangs => {
            sink.hang_for(Duration::from_secs(10));
            return Ok(());
        }
        Scenario::ReplicaKilled => {
            // The first of each: the others carry on without a restart.
            for name in ["herald-scoring", "herald-notify"] {
                target
                    .process(name)
                    .ok_or_else(|| anyhow::anyhow!("no process {name} in this run"))?
                    .kill()
                    .await?;
            }
            return Ok(());
        }
        Scenario::ClusterNodeKilled => {
            let cluster = target
                .cluster
                .as_mut()
                .ok_or_else(|| anyhow::anyhow!("no NATS cluster in this run"))?;
            cluster.kill(0).await;
            return Ok(());
        }
    };
    let service = target
        .process(process)
        .ok_or_else(|| anyhow::anyhow!("no process {process} in this run"))?;
    service.kill().await?;
    tokio::time::sleep(pause).await;
    service.restart().await?;
    Ok(())
}

/// How many messages the dead-letter stream holds. Asked again for a while: after a node of a
/// cluster is killed, JetStream's API can time out until the remaining nodes have elected new
/// leaders, and that says nothing about what Herald lost.
async fn dead_letters_on(url: &str) -> anyhow::Result<u64> {
    const FOR: Duration = Duration::from_secs(30);
    let give_up = Instant::now() + FOR;
    loop {
        let asked = async {
            let client = async_nats::connect(url).await?;
            herald_testkit::nats::stream_len(&client, "HERALD_DLQ").await
        };
        match asked.await {
            Ok(n) => return Ok(n),
            Err(e) if Instant::now() > give_up => {
                return Err(e.context(format!(
                    "cannot read the dead-letter stream HERALD_DLQ at {url} for {FOR:?}"
                )));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

#[derive(Default)]
struct Counts {
    accepted: AtomicU64,
    retried: AtomicU64,
}

/// POSTs every request at `rate`, each until it is answered 2xx (or 4xx, which a tool would not
/// retry and the run reports as not accepted).
async fn drive(
    url: String,
    requests: Arc<Vec<(bytes::Bytes, String)>>,
    connections: usize,
    rate: f64,
    counts: Arc<Counts>,
) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections.max(1) {
        let (client, url, next, requests, counts) = (
            client.clone(),
            url.clone(),
            next.clone(),
            requests.clone(),
            counts.clone(),
        );
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((body, signature)) = requests.get(i as usize) else {
                    break;
                };
                let due = started + Duration::from_secs_f64(i as f64 / rate);
                tokio::time::sleep_until(due.into()).await;
                let give_up = Instant::now() + Duration::from_secs(300);
                loop {
                    let answer = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .header("x-herald-signature", signature)
                        .body(body.clone())
                        .send()
                        .await;
                    match answer.map(|r| r.status()) {
                        Ok(status) if status.is_success() => {
                            counts.accepted.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        Ok(status) if status.is_client_error() && status.as_u16() != 429 => break,
                        _ if Instant::now() > give_up => break,
                        _ => {
                            counts.retried.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(250)).await;
                        }
                    }
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done?;
    }
    Ok(())
}

/// The rows as a Markdown table.
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::from(
        "| scenario | sent | accepted | POSTs retried | delivered | lost | duplicates | repeats (same webhook-id) | dead letters | seconds |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | **{}** | **{}** | {} | {} | {:.0} |\n",
            r.scenario,
            r.sent,
            r.accepted,
            r.retried_posts,
            r.delivered,
            r.lost,
            r.duplicates,
            r.repeats,
            r.dead_letters.map_or_else(|| "–".into(), |n| n.to_string()),
            r.seconds
        ));
    }
    out
}
