//! Runs Herald's four service binaries as separate processes against a real nats-server and
//! PostgreSQL, with HTTP receivers standing in for Slack and a webhook endpoint.

#![allow(dead_code)]

pub mod standalone;

use std::{path::PathBuf, time::Duration};

use herald_testkit::{HttpReceiver, NatsServer, ServiceProcess, TestDatabase, free_port};

pub const SECRET: &str = "herald-test-secret";
pub const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
pub const SLACK_PATH: &str = "/services/T0001/B0001/hooksecret";
pub const WEBHOOK_PATH: &str = "/hooks/herald";

pub struct Ports {
    pub http: u16,
    pub grpc: u16,
}

impl Ports {
    fn new() -> anyhow::Result<Self> {
        Ok(Self {
            http: free_port()?,
            grpc: free_port()?,
        })
    }
}

pub struct Herald {
    pub nats: NatsServer,
    pub db: TestDatabase,
    pub slack: HttpReceiver,
    pub webhook: HttpReceiver,
    pub ingest: ServiceProcess,
    pub scoring: ServiceProcess,
    pub spotlight: ServiceProcess,
    pub notify: ServiceProcess,
    pub ports: [Ports; 4],
    pub client: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// The services in start order, with their configuration section names.
pub const SERVICES: [&str; 4] = ["ingest", "scoring", "spotlight", "notify"];

fn config(
    nats: &NatsServer,
    db: &TestDatabase,
    slack: &HttpReceiver,
    webhook: &HttpReceiver,
    ports: &[Ports; 4],
) -> String {
    let catalog = herald_testkit::fixtures_dir().join("catalog.toml");
    let toml = format!(
        r#"
[nats]
url = "{nats}"

[database]
url = "{db}"

[catalog]
path = {catalog:?}

[sources.servicenow]
secret = "{SECRET}"

[sources.cloudevents]
secret = "{SECRET}"

[spotlight]
headline_min_value = 100
# The fixtures' outcomes are from 2025: they are news here, whatever their age.
announce_max_age = "100000d"
{spotlight_addrs}
[scoring]
{scoring_addrs}
[scoring.consumer]
ack_wait = "3s"

[scoring.verification]
hold_back = "0s"
confirm_every = "200ms"

[ingest]
{ingest_addrs}
[notify]
allow_private_networks = true
retry_base = "200ms"
poll_interval = "200ms"
{notify_addrs}
[[notify.channels]]
name = "slack-wins"
kind = "slack"
url = "{slack}"
min_interval = "50ms"

[[notify.channels]]
name = "bi-webhook"
kind = "webhook"
url = "{webhook}"
secret = "{WEBHOOK_SECRET}"

[[notify.routes]]
name = "headlines-to-slack"
channel = "slack-wins"
kinds = ["headline_win"]

[[notify.routes]]
name = "everything-to-bi"
channel = "bi-webhook"
"#,
        nats = nats.url(),
        db = db.url(),
        catalog = catalog.display().to_string(),
        slack = slack.url(SLACK_PATH),
        webhook = webhook.url(WEBHOOK_PATH),
        ingest_addrs = addrs(&ports[0]),
        scoring_addrs = addrs(&ports[1]),
        spotlight_addrs = addrs(&ports[2]),
        notify_addrs = addrs(&ports[3]),
    );
    toml
}

fn addrs(ports: &Ports) -> String {
    format!(
        "http_addr = \"127.0.0.1:{}\"\ngrpc_addr = \"127.0.0.1:{}\"\n",
        ports.http, ports.grpc
    )
}

impl Herald {
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with_env(&[]).await
    }

    /// Starts the four services with extra environment (`HERALD_…` overrides of the configuration).
    pub async fn start_with_env(extra_env: &[(&str, &str)]) -> anyhow::Result<Self> {
        retry_on_port_clash(|| Self::try_start_with_env(extra_env)).await
    }

    async fn try_start_with_env(extra_env: &[(&str, &str)]) -> anyhow::Result<Self> {
        herald_testkit::init_tracing();
        herald_runtime::install_tls_provider();
        let nats = NatsServer::start().await?;
        let db = TestDatabase::create().await?;
        let slack = HttpReceiver::start().await?;
        let webhook = HttpReceiver::start().await?;
        let ports = [Ports::new()?, Ports::new()?, Ports::new()?, Ports::new()?];
        let dir = tempfile::tempdir()?;
        let config_path: PathBuf = dir.path().join("herald.toml");
        std::fs::write(&config_path, config(&nats, &db, &slack, &webhook, &ports))?;
        let args = vec!["--config".to_string(), config_path.display().to_string()];
        let env: Vec<(String, String)> = [
            ("RUST_LOG".to_string(), "info,sqlx=warn".to_string()),
            ("RUST_LIB_BACKTRACE".to_string(), "0".to_string()),
        ]
        .into_iter()
        .chain(
            extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        )
        .collect::<Vec<_>>();
        let ingest = ServiceProcess::spawn("herald-ingest", &args, &env).await?;
        let scoring = ServiceProcess::spawn("herald-scoring", &args, &env).await?;
        let spotlight = ServiceProcess::spawn("herald-spotlight", &args, &env).await?;
        let notify = ServiceProcess::spawn("herald-notify", &args, &env).await?;
        let mut herald = Self {
            nats,
            db,
            slack,
            webhook,
            ingest,
            scoring,
            spotlight,
            notify,
            ports,
            client: reqwest::Client::new(),
            _dir: dir,
        };
        for i in 0..4 {
            herald.wait_ready(i).await?;
        }
        Ok(herald)
    }

    pub fn http(&self, service: usize) -> String {
        format!("http://127.0.0.1:{}", self.ports[service].http)
    }

    pub fn grpc(&self, service: usize) -> String {
        format!("http://127.0.0.1:{}", self.ports[service].grpc)
    }

    pub fn process(&mut self, service: usize) -> &mut ServiceProcess {
        match service {
            0 => &mut self.ingest,
            1 => &mut self.scoring,
            2 => &mut self.spotlight,
            _ => &mut self.notify,
        }
    }

    /// Waits for `/readyz` of a service; fails at once, with what it printed, if it exits.
    pub async fn wait_ready(&mut self, service: usize) -> anyhow::Result<()> {
        let url = format!("{}/readyz", self.http(service));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = self.client.get(&url).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            let process = self.process(service);
            let exited = process.try_exit_code();
            if exited.is_some() || tokio::time::Instant::now() >= deadline {
                anyhow::bail!(
                    "{} not ready ({}):\n{}",
                    SERVICES[service],
                    match exited {
                        Some(code) => format!("exited with {code:?}"),
                        None => "timed out after 30s".to_string(),
                    },
                    process.output()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until everything accepted so far has gone all the way through: scoring, spotlight and
    /// notify have each acknowledged every message of their stream, and every delivery notify made
    /// is final (delivered or failed). Once this returns, nothing more will be sent unless
    /// something new is published.
    pub async fn wait_settled(&self) -> anyhow::Result<()> {
        use herald_proto::v1::{
            DeliveryStatus, ListDeliveriesRequest, notify_client::NotifyClient,
        };
        let client = async_nats::connect(self.nats.url()).await?;
        for (stream, durable) in [
            ("HERALD_EVENTS", "scoring"),
            ("HERALD_WINS", "spotlight"),
            ("HERALD_ANNOUNCEMENTS", "notify"),
        ] {
            herald_testkit::nats::wait_until_consumed(&client, stream, durable).await?;
        }
        let notify = NotifyClient::connect(self.grpc(3)).await?;
        herald_testkit::eventually("every delivery final", Duration::from_secs(30), || {
            let mut notify = notify.clone();
            async move {
                let pending = notify
                    .list_deliveries(ListDeliveriesRequest {
                        announcement_id: String::new(),
                        status: DeliveryStatus::Pending as i32,
                        limit: 0,
                    })
                    .await
                    .ok()?
                    .into_inner();
                pending.deliveries.is_empty().then_some(())
            }
        })
        .await
    }

    /// Stops every service with SIGTERM.
    pub async fn terminate_all(&mut self) -> anyhow::Result<()> {
        for i in 0..4 {
            self.process(i).terminate(Duration::from_secs(20)).await?;
        }
        Ok(())
    }

    /// Everything the services printed, for a failing test's report.
    pub fn logs(&self) -> String {
        [&self.ingest, &self.scoring, &self.spotlight, &self.notify]
            .iter()
            .map(|p| format!("--- {} ---\n{}", p.name(), p.output()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// POSTs a fixture file with the headers the oracle lists.
    pub async fn post_fixture(&self, file: &str) -> anyhow::Result<reqwest::Response> {
        self.post_fixture_with(file, &[]).await
    }

    /// The same, with `extra` headers (a `traceparent`, say).
    pub async fn post_fixture_with(
        &self,
        file: &str,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<reqwest::Response> {
        let oracle: serde_json::Value = serde_json::from_slice(&std::fs::read(
            herald_testkit::fixtures_dir().join("expected.json"),
        )?)?;
        let entry = oracle["deliveries"]
            .as_array()
            .and_then(|d| d.iter().find(|e| e["file"] == file))
            .ok_or_else(|| anyhow::anyhow!("{file} not in expected.json"))?
            .clone();
        let body = std::fs::read(herald_testkit::fixtures_dir().join(file))?;
        let source = entry["source"].as_str().unwrap_or_default();
        let mut request = self
            .client
            .post(format!("{}/v1/events/{source}", self.http(0)))
            .body(body);
        for (k, v) in entry["headers"].as_object().into_iter().flatten() {
            request = request.header(k.as_str(), v.as_str().unwrap_or_default());
        }
        for (k, v) in extra {
            request = request.header(*k, *v);
        }
        Ok(request.send().await?)
    }

    pub async fn post_signed(
        &self,
        source: &str,
        body: Vec<u8>,
    ) -> anyhow::Result<reqwest::Response> {
        let signature = sign(&body);
        Ok(self
            .client
            .post(format!("{}/v1/events/{source}", self.http(0)))
            .header("content-type", "application/json")
            .header("x-herald-signature", signature)
            .body(body)
            .send()
            .await?)
    }
}

/// Runs the `herald` command line with none of the caller's `HERALD_*` settings (each test names
/// the address it means), colour off.
pub async fn herald_cli(args: &[&str]) -> anyhow::Result<std::process::Output> {
    herald_cli_with(args, &[]).await
}

/// The same, with `envs` set (a token, a certificate authority).
pub async fn herald_cli_with(
    args: &[&str],
    envs: &[(&str, &str)],
) -> anyhow::Result<std::process::Output> {
    let mut command = tokio::process::Command::new(herald_testkit::binary("herald")?);
    command.args(args).env("NO_COLOR", "1");
    for (name, _) in std::env::vars() {
        if name.starts_with("HERALD_") {
            command.env_remove(name);
        }
    }
    command.envs(envs.iter().copied());
    Ok(command.output().await?)
}

/// Runs one of Herald's measuring tools (`herald-bench`, `herald-faults`) with `args`, its results
/// written to a temporary directory; what it printed and the JSON it wrote (an error, with its
/// output, when it wrote none). The services it starts are built before it runs, so their build is
/// not in its timings.
pub async fn run_tool(
    name: &str,
    args: &[&str],
    timeout: std::time::Duration,
) -> anyhow::Result<(std::process::Output, serde_json::Value)> {
    let tool = herald_testkit::binary(name)?;
    herald_testkit::binary("herald")?;
    let out = tempfile::tempdir()?;
    let run = tokio::time::timeout(
        timeout,
        tokio::process::Command::new(&tool)
            .args(args)
            .arg("--out")
            .arg(out.path())
            .env("RUST_LIB_BACKTRACE", "0")
            .output(),
    )
    .await??;
    let json = std::fs::read_dir(out.path())?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .ok_or_else(|| anyhow::anyhow!("{name} wrote no JSON: {}", describe(&run)))?;
    let report = serde_json::from_slice(&std::fs::read(&json)?)?;
    Ok((run, report))
}

/// A finished command as a failed assertion shows it: exit code, stdout, stderr.
pub fn describe(output: &std::process::Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// One row of the ServiceNow export fixture, by ticket number, as ServiceNow would push it.
pub fn export_row(number: &str) -> anyhow::Result<Vec<u8>> {
    let export = std::fs::read_to_string(
        herald_testkit::fixtures_dir().join("servicenow/incidents-export.jsonl"),
    )?;
    export
        .lines()
        .find(|line| line.contains(&format!("\"number\":\"{number}\"")))
        .map(|line| line.as_bytes().to_vec())
        .ok_or_else(|| anyhow::anyhow!("{number} is not in the export fixture"))
}

/// A P2 incident on Warehouse Management resolved inside its SLA: a headline win (requests on
/// time never are: they are told in digests).
pub const HEADLINE_INCIDENT: &str = "INC0047951";

/// `sha256=<Base64 HMAC-SHA256>` under the test secret.
pub fn sign(body: &[u8]) -> String {
    use base64::Engine;
    use hmac::{KeyInit, Mac};
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).expect("any key length");
    mac.update(body);
    format!(
        "sha256={}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

/// Checks a Standard Webhooks signature the way a receiver would.
pub fn verify_standard_webhook(
    request: &herald_testkit::ReceivedRequest,
    secret: &str,
) -> anyhow::Result<()> {
    use base64::Engine;
    use hmac::{KeyInit, Mac};
    let id = request
        .header("webhook-id")
        .ok_or_else(|| anyhow::anyhow!("no webhook-id"))?;
    let timestamp = request
        .header("webhook-timestamp")
        .ok_or_else(|| anyhow::anyhow!("no webhook-timestamp"))?;
    let signatures = request
        .header("webhook-signature")
        .ok_or_else(|| anyhow::anyhow!("no webhook-signature"))?;
    let key =
        base64::engine::general_purpose::STANDARD.decode(secret.trim_start_matches("whsec_"))?;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key)?;
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(&request.body);
    let expected = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    anyhow::ensure!(
        signatures.split(' ').any(|s| s == expected),
        "webhook-signature {signatures} does not verify (expected {expected})"
    );
    let age = chrono::Utc::now().timestamp() - timestamp.parse::<i64>()?;
    anyhow::ensure!(age.abs() < 300, "webhook-timestamp is {age}s off");
    Ok(())
}

/// Runs `start` again (up to three times in all) when what it started could not listen because
/// another test took the port between `free_port` and the bind: a test's own ports are chosen
/// anew each time.
pub async fn retry_on_port_clash<T, F, Fut>(mut start: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let mut attempt = 1;
    loop {
        match start().await {
            Err(e) if attempt < 3 && format!("{e:#}").contains("Address already in use") => {
                eprintln!("a port was taken by another test; starting again on new ports");
                attempt += 1;
            }
            result => return result,
        }
    }
}

/// One more replica of a service as a process, with `config`, on ports of its own (set through
/// `HERALD_<SERVICE>__HTTP_ADDR` and `__GRPC_ADDR`); returns once `/readyz` answers, with its HTTP
/// port.
pub async fn spawn_replica(
    binary: &str,
    section: &str,
    config: &std::path::Path,
) -> anyhow::Result<(ServiceProcess, u16)> {
    retry_on_port_clash(|| try_spawn_replica(binary, section, config)).await
}

async fn try_spawn_replica(
    binary: &str,
    section: &str,
    config: &std::path::Path,
) -> anyhow::Result<(ServiceProcess, u16)> {
    let (http, grpc) = (free_port()?, free_port()?);
    let upper = section.to_uppercase();
    let env = vec![
        ("RUST_LOG".to_string(), "info,sqlx=warn".to_string()),
        (
            format!("HERALD_{upper}__HTTP_ADDR"),
            format!("127.0.0.1:{http}"),
        ),
        (
            format!("HERALD_{upper}__GRPC_ADDR"),
            format!("127.0.0.1:{grpc}"),
        ),
    ];
    let args = vec!["--config".to_string(), config.display().to_string()];
    let process = ServiceProcess::spawn(binary, &args, &env).await?;
    wait_ready_on(http, &process).await?;
    Ok((process, http))
}

/// Waits for `/readyz` on `http`; fails with what `process` printed.
pub async fn wait_ready_on(http: u16, process: &ServiceProcess) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    herald_testkit::eventually(
        &format!("{} ready", process.name()),
        Duration::from_secs(30),
        || async {
            let r = client
                .get(format!("http://127.0.0.1:{http}/readyz"))
                .send()
                .await
                .ok()?;
            r.status().is_success().then_some(())
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", process.output()))
}
