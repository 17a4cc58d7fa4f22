//! `herald up` as a real process in a temporary data directory, with a webhook receiver as its
//! one channel.

use std::time::Duration;

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
        herald_testkit::init_tracing();
        herald_runtime::install_tls_provider();
        let webhook = HttpReceiver::start().await?;
        let dir = tempfile::tempdir()?;
        let catalog = herald_testkit::fixtures_dir().join("catalog.toml");
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
        let args: Vec<String> = [
            "up",
            "--config",
            &config.display().to_string(),
            "--data-dir",
            &dir.path().join("data").display().to_string(),
            "--http",
            &format!("127.0.0.1:{http_port}"),
            "--grpc",
            &format!("127.0.0.1:{grpc_port}"),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
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
}
