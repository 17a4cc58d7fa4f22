//! The Herald under test, started the way an operator runs it: `herald up` on its embedded
//! defaults, or the four services on a throwaway nats-server and PostgreSQL. Both announce every
//! win (no headline threshold) to one signed webhook, the sink, with the hold-back window at 0.

use std::{collections::HashMap, time::Duration};

use anyhow::Context;
use herald_testkit::{NatsCluster, NatsServer, ServiceProcess, TestDatabase, free_port};

use crate::events::SECRET;

/// The configuration both modes share; `addrs` gives each service's listener lines (none for
/// `herald up`, which takes its two listeners on the command line).
pub(crate) fn config(webhook: &str, addrs: &dyn Fn(&str) -> String) -> String {
    let catalog = herald_testkit::repo_root().join("deploy/catalog.toml");
    format!(
        r#"
[catalog]
path = {catalog:?}

[sources.servicenow]
secret = "{SECRET}"

[ingest]
{ingest}
[scoring]
{scoring}
[scoring.verification]
hold_back = "0s"

[spotlight]
headline_min_value = 0
digests = []
{spotlight}
[notify]
allow_private_networks = true
{notify}
[[notify.channels]]
name = "sink"
kind = "webhook"
url = "{webhook}"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

[[notify.routes]]
name = "wins-to-sink"
channel = "sink"
kinds = ["headline_win"]
"#,
        catalog = catalog.display().to_string(),
        ingest = addrs("ingest"),
        scoring = addrs("scoring"),
        spotlight = addrs("spotlight"),
        notify = addrs("notify"),
    )
}

/// Herald's four services, in the order a distributed run starts them.
const SERVICES: [&str; 4] = ["ingest", "scoring", "spotlight", "notify"];

/// A running Herald (or the tool it is compared with): where events go, and its processes by name.
pub struct Target {
    pub name: &'static str,
    pub ingest_url: String,
    /// Whether it takes Alertmanager's alerts rather than ServiceNow's webhooks.
    pub alerts: bool,
    /// Whether it exports its spans (Herald does, for the stage timer; the tools beside it do not).
    pub exports_spans: bool,
    pub processes: Vec<ServiceProcess>,
    /// The nats-server of a distributed run.
    pub nats: Option<NatsServer>,
    /// Or the cluster of a distributed run on replicated streams.
    pub cluster: Option<NatsCluster>,
    /// Each service's gRPC address by service name (`ingest`, `spotlight`, …); one address for
    /// all four under `herald up`, none for Alertmanager.
    grpc: HashMap<&'static str, String>,
    db: Option<TestDatabase>,
    _dir: tempfile::TempDir,
}

impl Target {
    /// The PostgreSQL database the target stores in, if it has one (`herald up` and Alertmanager
    /// do not).
    pub fn database_url(&self) -> Option<&str> {
        self.db.as_ref().map(TestDatabase::url)
    }

    /// Process names and pids, for memory and CPU sampling.
    pub fn pids(&self) -> Vec<(String, u32)> {
        self.processes
            .iter()
            .filter_map(|p| Some((p.name().to_string(), p.pid()?)))
            .collect()
    }

    /// The gRPC address of `service` (`ingest`, `scoring`, `spotlight`, `notify`).
    pub fn grpc_url(&self, service: &str) -> anyhow::Result<&str> {
        self.grpc
            .get(service)
            .map(String::as_str)
            .with_context(|| format!("{} serves no {service} gRPC API", self.name))
    }

    /// The process named `name` (`herald-scoring`, `herald`, …).
    pub fn process(&mut self, name: &str) -> Option<&mut ServiceProcess> {
        self.processes.iter_mut().find(|p| p.name() == name)
    }

    /// Starts one more process of a distributed service (`scoring`, `notify`, …) on the same
    /// configuration with listeners of its own: a replica sharing the stage's work.
    pub async fn add_replica(&mut self, service: &str) -> anyhow::Result<()> {
        let config = self._dir.path().join("herald.toml");
        anyhow::ensure!(config.is_file(), "only a distributed run has replicas");
        let (http, grpc) = (free_port()?, free_port()?);
        let upper = service.to_uppercase();
        let mut envs = env();
        envs.push((
            format!("HERALD_{upper}__HTTP_ADDR"),
            format!("127.0.0.1:{http}"),
        ));
        envs.push((
            format!("HERALD_{upper}__GRPC_ADDR"),
            format!("127.0.0.1:{grpc}"),
        ));
        let args = vec!["--config".to_string(), config.display().to_string()];
        let process = ServiceProcess::spawn(&format!("herald-{service}"), &args, &envs).await?;
        wait_ready(http, &process).await?;
        self.processes.push(process);
        Ok(())
    }

    pub async fn stop(mut self) {
        for process in &mut self.processes {
            let _ = process.terminate(Duration::from_secs(20)).await;
        }
    }

    pub fn logs(&self) -> String {
        self.processes
            .iter()
            .map(|p| format!("--- {} ---\n{}", p.name(), tail(&p.output(), 40)))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

pub(crate) async fn wait_ready(http: u16, process: &ServiceProcess) -> anyhow::Result<()> {
    let url = format!("http://127.0.0.1:{http}/readyz");
    herald_testkit::eventually(
        &format!("{} ready", process.name()),
        Duration::from_secs(60),
        || {
            let url = url.clone();
            async move {
                (herald_testkit::raw_http::get_status(&url).await.ok()? == 200).then_some(())
            }
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", tail(&process.output(), 40)))
}

/// Settings the Herald processes started from now on get on top of the usual ones (the stage
/// timer's span export, for the pipeline runs only).
static EXTRA_ENV: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());

/// Gives every Herald process started from now on `extra` as well (empty: nothing extra).
pub fn set_extra_env(extra: Vec<(String, String)>) {
    let mut env = EXTRA_ENV.lock().unwrap_or_else(|e| e.into_inner());
    *env = extra;
}

pub(crate) fn env() -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        ("RUST_LOG".into(), "warn".into()),
        ("RUST_LIB_BACKTRACE".into(), "0".into()),
    ];
    let extra = EXTRA_ENV.lock().unwrap_or_else(|e| e.into_inner());
    for (name, value) in extra.iter() {
        env.retain(|(n, _)| n != name);
        env.push((name.clone(), value.clone()));
    }
    env
}

/// `herald up` in a temporary data directory.
pub async fn standalone(webhook: &str) -> anyhow::Result<Target> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("herald.toml");
    std::fs::write(&config, self::config(webhook, &|_| String::new()))?;
    let (http, grpc) = (free_port()?, free_port()?);
    let args = herald_testkit::herald_up_args(&config, &dir.path().join("data"), http, grpc);
    let process = ServiceProcess::spawn("herald", &args, &env()).await?;
    wait_ready(http, &process).await?;
    Ok(Target {
        name: "herald up",
        ingest_url: format!("http://127.0.0.1:{http}/v1/events/servicenow"),
        alerts: false,
        exports_spans: true,
        processes: vec![process],
        nats: None,
        cluster: None,
        grpc: SERVICES
            .into_iter()
            .map(|service| (service, format!("http://127.0.0.1:{grpc}")))
            .collect(),
        db: None,
        _dir: dir,
    })
}

/// The four services, each its own process, on a fresh nats-server and PostgreSQL database.
pub async fn distributed(webhook: &str) -> anyhow::Result<Target> {
    let db = TestDatabase::create()
        .await
        .context("the distributed run needs PostgreSQL: run it through scripts/bench")?;
    distributed_on(webhook, db).await
}

/// Where a distributed run's streams live.
pub struct Nats {
    single: Option<NatsServer>,
    cluster: Option<NatsCluster>,
}

impl Nats {
    pub async fn single() -> anyhow::Result<Self> {
        Ok(Self {
            single: Some(NatsServer::start().await?),
            cluster: None,
        })
    }

    /// A three-node JetStream cluster with every stream replicated three times.
    pub async fn cluster() -> anyhow::Result<Self> {
        Ok(Self {
            single: None,
            cluster: Some(NatsCluster::start(3).await?),
        })
    }

    /// `[nats]` for herald.toml.
    fn toml(&self) -> String {
        match (&self.single, &self.cluster) {
            (_, Some(cluster)) => format!(
                "[nats]\nurl = \"{}\"\n[nats.streams]\nreplicas = 3\n",
                cluster.urls()
            ),
            (Some(single), None) => format!("[nats]\nurl = \"{}\"\n", single.url()),
            (None, None) => String::new(),
        }
    }
}

/// The same, on a database the caller made (in a PostgreSQL it controls).
pub async fn distributed_on(webhook: &str, db: TestDatabase) -> anyhow::Result<Target> {
    distributed_with(webhook, db, Nats::single().await?).await
}

/// The same, on the given NATS.
pub async fn distributed_with(
    webhook: &str,
    db: TestDatabase,
    nats: Nats,
) -> anyhow::Result<Target> {
    services(webhook, db, nats, &SERVICES).await
}

/// Ingest by itself on a fresh nats-server and database, with nothing downstream: what a burst
/// meets when ingest has the machine to itself, as it does when it is scaled on machines of its
/// own (the stream keeps what it accepted for the stages to take later).
pub async fn ingest_alone(webhook: &str) -> anyhow::Result<Target> {
    let db = TestDatabase::create()
        .await
        .context("ingest alone needs PostgreSQL: run it through scripts/bench")?;
    let mut target = services(webhook, db, Nats::single().await?, &["ingest"]).await?;
    target.name = "ingest alone";
    Ok(target)
}

/// `chosen` of the four services (in their start order), each its own process.
async fn services(
    webhook: &str,
    db: TestDatabase,
    nats: Nats,
    chosen: &[&'static str],
) -> anyhow::Result<Target> {
    let dir = tempfile::tempdir()?;
    let mut ports = HashMap::new();
    for service in SERVICES {
        ports.insert(service, (free_port()?, free_port()?));
    }
    let addrs = |service: &str| {
        ports.get(service).map_or_else(String::new, |(http, grpc)| {
            format!("http_addr = \"127.0.0.1:{http}\"\ngrpc_addr = \"127.0.0.1:{grpc}\"\n")
        })
    };
    let toml = format!(
        "{}[database]\nurl = \"{}\"\n{}",
        nats.toml(),
        db.url(),
        config(webhook, &addrs)
    );
    let config = dir.path().join("herald.toml");
    std::fs::write(&config, &toml)?;
    let args = vec!["--config".to_string(), config.display().to_string()];
    let mut processes = Vec::new();
    for &service in chosen {
        let process = ServiceProcess::spawn(&format!("herald-{service}"), &args, &env()).await?;
        wait_ready(ports[service].0, &process).await?;
        processes.push(process);
    }
    Ok(Target {
        name: "distributed",
        alerts: false,
        exports_spans: true,
        ingest_url: format!(
            "http://127.0.0.1:{}/v1/events/servicenow",
            ports["ingest"].0
        ),
        processes,
        nats: nats.single,
        cluster: nats.cluster,
        grpc: ports
            .iter()
            .filter(|(service, _)| chosen.contains(service))
            .map(|(service, (_, grpc))| (*service, format!("http://127.0.0.1:{grpc}")))
            .collect(),
        db: Some(db),
        _dir: dir,
    })
}

/// Prometheus Alertmanager as the issue measured it: one notification per alert (each alert its own
/// group, sent at once), to the same sink, in memory, no cluster.
pub async fn alertmanager(webhook: &str) -> anyhow::Result<Target> {
    let program = herald_testkit::alertmanager().context(
        "Alertmanager is not installed: apt-get install prometheus-alertmanager, or set HERALD_ALERTMANAGER",
    )?;
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("alertmanager.yml");
    std::fs::write(
        &config,
        format!(
            "route:\n  receiver: sink\n  group_by: [number]\n  group_wait: 0s\n  group_interval: 1m\n  repeat_interval: 24h\n\
             receivers:\n  - name: sink\n    webhook_configs:\n      - url: {webhook}\n        send_resolved: false\n"
        ),
    )?;
    let port = free_port()?;
    let args: Vec<String> = vec![
        format!("--config.file={}", config.display()),
        format!("--storage.path={}", dir.path().join("data").display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
        // No gossip: one instance, as the comparison runs it.
        "--cluster.listen-address=".into(),
        "--log.level=warn".into(),
    ];
    let process = ServiceProcess::spawn_program("alertmanager", program, &args, &[]).await?;
    let url = format!("http://127.0.0.1:{port}/-/ready");
    herald_testkit::eventually("alertmanager ready", Duration::from_secs(30), || {
        let url = url.clone();
        async move { (herald_testkit::raw_http::get_status(&url).await.ok()? == 200).then_some(()) }
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", tail(&process.output(), 40)))?;
    Ok(Target {
        name: "Alertmanager",
        ingest_url: format!("http://127.0.0.1:{port}/api/v2/alerts"),
        alerts: true,
        exports_spans: false,
        processes: vec![process],
        nats: None,
        cluster: None,
        grpc: HashMap::new(),
        db: None,
        _dir: dir,
    })
}

/// The floor's name in the report.
pub const FLOOR: &str = "floor";

/// The floor's, when it keeps the bodies as well.
pub const FLOOR_KEEPING_BODIES: &str = "floor, bodies kept";

/// The floor (`herald-floor`): Herald's shape with only what its guarantees cost, on a fresh
/// nats-server and PostgreSQL database, delivering to the same sink; with `keep_bodies` its stages
/// keep each message's body beside its key.
pub async fn floor(webhook: &str, keep_bodies: bool) -> anyhow::Result<Target> {
    let db = TestDatabase::create()
        .await
        .context("the floor needs PostgreSQL: run it through scripts/bench")?;
    let nats = NatsServer::start().await?;
    let dir = tempfile::tempdir()?;
    let http = free_port()?;
    let mut args: Vec<String> = vec![
        "--nats".into(),
        nats.url(),
        "--database".into(),
        db.url().to_string(),
        "--webhook".into(),
        webhook.to_string(),
        "--listen".into(),
        format!("127.0.0.1:{http}"),
    ];
    if keep_bodies {
        args.push("--keep-bodies".into());
    }
    let process = ServiceProcess::spawn("herald-floor", &args, &env()).await?;
    wait_ready(http, &process).await?;
    Ok(Target {
        name: if keep_bodies {
            FLOOR_KEEPING_BODIES
        } else {
            FLOOR
        },
        ingest_url: format!("http://127.0.0.1:{http}/v1/events/servicenow"),
        alerts: false,
        exports_spans: false,
        processes: vec![process],
        nats: Some(nats),
        cluster: None,
        grpc: HashMap::new(),
        db: Some(db),
        _dir: dir,
    })
}
