//! `herald up` as a real process in a temporary data directory, with a webhook receiver as its
//! one channel.

use std::{path::Path, time::Duration};

use herald_testkit::{HttpReceiver, ServiceProcess, free_port};

use super::{SECRET, WEBHOOK_PATH, WEBHOOK_SECRET, sign};

pub struct Standalone {
    pub process: ServiceProcess,
    pub http: String,
    pub grpc: String,
    pub webhook: HttpReceiver,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
}

impl Standalone {
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with("").await
    }

    /// The same, with more herald.toml appended (sections the base config does not set).
    pub async fn start_with(extra_toml: &str) -> anyhow::Result<Self> {
        Self::start_with_catalog(
            &herald_testkit::fixtures_dir().join("catalog.toml"),
            extra_toml,
        )
        .await
    }

    /// The same, with another catalog than the fixtures' one.
    pub async fn start_with_catalog(catalog: &Path, extra_toml: &str) -> anyhow::Result<Self> {
        super::retry_on_port_clash(|| Self::try_start_with_catalog(catalog, extra_toml)).await
    }

    async fn try_start_with_catalog(catalog: &Path, extra_toml: &str) -> anyhow::Result<Self> {
        herald_testkit::init_tracing();
        herald_runtime::install_tls_provider();
        let webhook = HttpReceiver::start().await?;
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("herald.toml");
        std::fs::write(
            &config,
            format!(
                r#"
[catalog]
path = {catalog:?}
[sources.servicenow]
secret = "{SECRET}"
[spotlight]
headline_min_value = 100
# The fixtures' outcomes are from 2025: they are news here, whatever their age.
announce_max_age = "100000d"
[scoring.verification]
hold_back = "0s"
confirm_every = "200ms"
[notify]
allow_private_networks = true
retry_base = "200ms"
poll_interval = "200ms"
[[notify.channels]]
name = "bi"
kind = "webhook"
url = "{url}"
secret = "{WEBHOOK_SECRET}"
[[notify.routes]]
name = "everything-to-bi"
channel = "bi"
{extra_toml}
"#,
                catalog = catalog.display().to_string(),
                url = webhook.url(WEBHOOK_PATH),
            ),
        )?;
        let (http_port, grpc_port) = (free_port()?, free_port()?);
        let args =
            herald_testkit::herald_up_args(&config, &dir.path().join("data"), http_port, grpc_port);
        let env = vec![("RUST_LIB_BACKTRACE".to_string(), "0".to_string())];
        let process = ServiceProcess::spawn("herald", &args, &env).await?;
        let standalone = Self {
            process,
            http: format!("http://127.0.0.1:{http_port}"),
            grpc: format!("http://127.0.0.1:{grpc_port}"),
            webhook,
            client: reqwest::Client::new(),
            dir,
        };
        standalone.wait_ready().await?;
        Ok(standalone)
    }

    pub async fn wait_ready(&self) -> anyhow::Result<()> {
        let url = format!("{}/readyz", self.http);
        herald_testkit::eventually("herald up ready", Duration::from_secs(30), || {
            let url = url.clone();
            async move { (herald_testkit::raw_http::get_status(&url).await.ok()? == 200).then_some(()) }
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}\n{}", self.process.output()))
    }

    pub async fn post(&self, body: Vec<u8>) -> anyhow::Result<reqwest::Response> {
        Ok(self
            .client
            .post(format!("{}/v1/events/servicenow", self.http))
            .header("content-type", "application/json")
            .header("x-herald-signature", sign(&body))
            .body(body)
            .send()
            .await?)
    }

    /// Freezes the process (SIGSTOP): from here on it does nothing until it is killed.
    pub fn freeze(&self) -> anyhow::Result<()> {
        let pid = self
            .process
            .pid()
            .ok_or_else(|| anyhow::anyhow!("herald up is not running"))?;
        let status = std::process::Command::new("kill")
            .args(["-STOP", &pid.to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill -STOP {pid}: {status}");
        Ok(())
    }

    /// Waits until everything accepted so far has gone all the way through: every consumer of the
    /// embedded bus has taken every message of its stream and acknowledged each, and every
    /// delivery notify made of them is final (delivered or failed). Once this returns, nothing
    /// more will be sent unless something new is published.
    pub async fn wait_settled(&self) -> anyhow::Result<()> {
        wait_settled(&self.dir.path().join("data"), &self.grpc)
            .await
            .map_err(|e| anyhow::anyhow!("{e}\n{}", self.process.output()))
    }
}

/// `herald up --demo` as a process on free ports with its data in `data`; returns the process and
/// its gRPC URL.
pub async fn start_demo(data: &Path) -> anyhow::Result<(ServiceProcess, String)> {
    start_demo_with_env(data, &[]).await
}

/// [`start_demo`] with extra environment (`HERALD_DEMO_TEAMS_URL`, `HERALD_DEMO_SMTP`, …).
pub async fn start_demo_with_env(
    data: &Path,
    env: &[(&str, &str)],
) -> anyhow::Result<(ServiceProcess, String)> {
    let (process, grpc, _http) = start_demo_serving(data, env).await?;
    Ok((process, grpc))
}

/// [`start_demo_with_env`], also returning the HTTP address (the dashboard's).
pub async fn start_demo_serving(
    data: &Path,
    env: &[(&str, &str)],
) -> anyhow::Result<(ServiceProcess, String, String)> {
    let grpc = format!("http://127.0.0.1:{}", free_port()?);
    let http = format!("127.0.0.1:{}", free_port()?);
    let args: Vec<String> = [
        "up",
        "--demo",
        "--data-dir",
        &data.display().to_string(),
        "--http",
        &http,
        "--grpc",
        grpc.trim_start_matches("http://"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Ok((
        ServiceProcess::spawn("herald", &args, &env).await?,
        grpc,
        format!("http://{http}"),
    ))
}

/// [`Standalone::wait_settled`] for any `herald up`: its data directory and gRPC address.
pub async fn wait_settled(data_dir: &Path, grpc: &str) -> anyhow::Result<()> {
    let bus = data_dir.join("bus.sqlite");
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&bus)
        .read_only(true)
        .busy_timeout(Duration::from_secs(10));
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?;
    // Scoring's outbox: a win confirmed but not yet published is on no stream yet.
    let scoring = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            sqlx::sqlite::SqliteConnectOptions::new()
                .filename(data_dir.join("scoring.sqlite"))
                .read_only(true)
                .busy_timeout(Duration::from_secs(10)),
        )
        .await?;
    let settled =
        herald_testkit::eventually("herald up to settle", Duration::from_secs(60), || {
            let (pool, scoring) = (pool.clone(), scoring.clone());
            async move {
                // In the order a win travels, so one that moves on between two looks is seen by
                // the later one: due for confirmation (the confirmer's next pass confirms and
                // publishes it), in scoring's outbox (confirmed, not yet on a stream), on a
                // stream not yet consumed, a delivery not yet final.
                if due_wins(grpc).await.ok()? > 0 {
                    return None;
                }
                let unpublished: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
                    .fetch_one(&scoring)
                    .await
                    .ok()?;
                if unpublished > 0 {
                    return None;
                }
                // A consumer is behind while its cursor is short of its stream's last message or
                // while it holds a message it has not acknowledged.
                let behind: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM consumers c
                 WHERE c.cursor < (SELECT coalesce(max(seq), 0) FROM messages m
                                   WHERE m.stream = c.stream)
                    OR EXISTS (SELECT 1 FROM pending p WHERE p.consumer = c.name)",
                )
                .fetch_one(&pool)
                .await
                .ok()?;
                if behind > 0 {
                    return None;
                }
                (unfinished_deliveries(grpc).await.ok()? == 0).then_some(())
            }
        })
        .await;
    pool.close().await;
    scoring.close().await;
    settled
}

/// How many provisional wins have reached their confirmation time (or have nothing scheduled)
/// and are not confirmed yet (a confirmed or withdrawn win still waiting to be published is in
/// scoring's outbox, checked beside the bus).
async fn due_wins(grpc: &str) -> anyhow::Result<usize> {
    use herald_proto::v1::{ListWinsRequest, WinStatus, scoring_client::ScoringClient};
    let mut scoring = ScoringClient::connect(grpc.to_string()).await?;
    let pending = scoring
        .list_wins(ListWinsRequest {
            status: WinStatus::Provisional as i32,
            limit: 1000,
        })
        .await?
        .into_inner();
    let now = chrono::Utc::now();
    Ok(pending
        .wins
        .iter()
        .filter(|w| {
            herald_proto::time::opt_from_timestamp(w.confirm_at.as_ref()).is_none_or(|at| at <= now)
        })
        .count())
}

/// How many of notify's deliveries are not final yet (pending, or being sent).
async fn unfinished_deliveries(grpc: &str) -> anyhow::Result<usize> {
    use herald_proto::v1::{DeliveryStatus, ListDeliveriesRequest, notify_client::NotifyClient};
    let mut notify = NotifyClient::connect(grpc.to_string()).await?;
    let pending = notify
        .list_deliveries(ListDeliveriesRequest {
            announcement_id: String::new(),
            status: DeliveryStatus::Pending as i32,
            limit: 0,
        })
        .await?
        .into_inner();
    Ok(pending.deliveries.len())
}

/// A day in the middle of the demo's 30 days (`--at` for the CLI's periods): its month and
/// quarter hold demo wins whatever today's date, the first of a month included.
pub fn demo_day() -> String {
    (chrono::Utc::now() - chrono::Duration::days(15))
        .format("%Y-%m-%d")
        .to_string()
}
