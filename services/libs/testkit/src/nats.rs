//! A real `nats-server -js` per test, on a free port with a temporary store.

use std::{path::PathBuf, process::Stdio, time::Duration};

use anyhow::{Context, bail};
use tokio::{io::AsyncReadExt, net::TcpStream, process::Child};

use crate::locate::find_program;

const INSTALL_HINT: &str = "nats-server was not found. Install it (Debian/Ubuntu: `apt-get install nats-server`; \
     macOS: `brew install nats-server`; or download from https://github.com/nats-io/nats-server/releases) \
     or set HERALD_NATS_SERVER to its path. `scripts/test` installs it on Debian.";

/// Settings added to the `jetstream` block of every server started here, from
/// `HERALD_TEST_NATS_JETSTREAM`, separated by `;` (e.g. `sync_interval: always`, nats-server 2.10
/// and later): for measuring a benchmark under the settings a deployment uses.
fn extra_jetstream_settings() -> Vec<String> {
    std::env::var("HERALD_TEST_NATS_JETSTREAM")
        .map(|v| {
            v.split(';')
                .map(str::trim)
                .filter(|setting| !setting.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The extra settings as lines of a `jetstream` block.
fn jetstream_lines() -> String {
    extra_jetstream_settings()
        .iter()
        .map(|setting| format!("  {setting}\n"))
        .collect()
}

/// How the servers started here sync JetStream's files, in words for a benchmark's report: on one
/// server, what an acknowledgement survives depends on it.
pub fn jetstream_sync() -> String {
    sync_described(&extra_jetstream_settings())
}

fn sync_described(settings: &[String]) -> String {
    const UNSYNCED: &str = "on one server an acknowledgement survives a crash of nats-server but \
                            not a power cut. `deploy/nats.conf` syncs every write";
    let setting = settings
        .iter()
        .find_map(|setting| setting.strip_prefix("sync_interval:"))
        .map(str::trim);
    match setting {
        Some("always") => "JetStream syncs every write to disk before it acknowledges \
                           (`sync_interval: always`), as `deploy/nats.conf` does."
            .to_string(),
        Some(interval) => {
            format!("**JetStream syncs its files every {interval} (`sync_interval`): {UNSYNCED}.**")
        }
        None => format!(
            "**JetStream syncs its files every two minutes (nats-server's default): {UNSYNCED} \
             (`sync_interval: always`, nats-server 2.10 and later; set \
             `HERALD_TEST_NATS_JETSTREAM=\"sync_interval: always\"` to measure that).**"
        ),
    }
}

/// A running nats-server with JetStream. Killed when dropped.
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    program: PathBuf,
    /// The server's largest message, as in its `max_payload` setting.
    max_payload: String,
}

impl NatsServer {
    /// Starts a fresh server with an empty store and the 8 MB message limit Herald's deployments set.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with_max_payload("8MB").await
    }

    /// Starts a fresh server whose largest message is `max_payload` (`1MB` is nats-server's default).
    pub async fn start_with_max_payload(max_payload: &str) -> anyhow::Result<Self> {
        let program = find_program(
            "nats-server",
            "HERALD_NATS_SERVER",
            &["/usr/sbin", "/usr/local/bin"],
        )
        .context(INSTALL_HINT)?;
        let mut last_error = None;
        // The free port may be taken between choosing and binding it; try a few.
        for _ in 0..5 {
            let mut server = Self {
                child: None,
                port: crate::free_port()?,
                dir: tempfile::Builder::new().prefix("herald-nats-").tempdir()?,
                program: program.clone(),
                max_payload: max_payload.to_string(),
            };
            match server.spawn().await {
                Ok(()) => return Ok(server),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("nats-server did not start")))
    }

    fn config(&self) -> String {
        let store = self.dir.path().join("jetstream");
        format!(
            "listen: 127.0.0.1:{port}\n\
             max_payload: {max_payload}\n\
             jetstream {{\n  store_dir: {store:?}\n{extra}}}\n",
            port = self.port,
            max_payload = self.max_payload,
            extra = jetstream_lines(),
        )
    }

    async fn spawn(&mut self) -> anyhow::Result<()> {
        let config_path = self.dir.path().join("nats.conf");
        std::fs::write(&config_path, self.config())?;
        let log_path = self.dir.path().join("nats.log");
        self.child = Some(run_server(&self.program, &config_path, &log_path)?);
        match wait_for_info(self.port, Duration::from_secs(10)).await {
            Ok(()) => Ok(()),
            Err(e) => {
                self.kill().await;
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                bail!(
                    "nats-server did not come up on port {}: {e}\n{log}",
                    self.port
                )
            }
        }
    }

    /// `nats://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Stops the server abruptly (SIGKILL), keeping its store.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Freezes the server for `outage` (SIGSTOP, then SIGCONT): its connections stay open and
    /// nothing is answered, as when a host stalls. Clients see no disconnect, only silence.
    pub async fn pause(&self, outage: std::time::Duration) -> anyhow::Result<()> {
        let pid = self
            .child
            .as_ref()
            .and_then(|c| c.id())
            .ok_or_else(|| anyhow::anyhow!("nats-server is not running"))?;
        crate::process::signal(pid, "-STOP")?;
        tokio::time::sleep(outage).await;
        crate::process::signal(pid, "-CONT")
    }

    /// Starts the server again on the same port and store, as after a crash.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill().await;
        self.spawn().await
    }
}

/// The server is up once it sends its INFO line on a new connection.
/// Starts `program` on `config`, logging to `log`; killed when dropped.
fn run_server(
    program: &std::path::Path,
    config: &std::path::Path,
    log: &std::path::Path,
) -> anyhow::Result<Child> {
    tokio::process::Command::new(program)
        .arg("-c")
        .arg(config)
        .arg("-l")
        .arg(log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("could not run {}", program.display()))
}

async fn wait_for_info(port: u16, timeout: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)).await {
            let mut buf = [0u8; 4];
            if tokio::time::timeout(Duration::from_secs(2), stream.read_exact(&mut buf))
                .await
                .is_ok_and(|r| r.is_ok())
                && &buf == b"INFO"
            {
                return Ok(());
            }
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("no INFO from 127.0.0.1:{port} within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Subscribes and waits until the server has registered the subscription, so nothing published
/// afterwards (from any connection) is missed. `flush` alone only empties the client's buffer.
pub async fn subscribe(
    client: &async_nats::Client,
    subject: &str,
) -> anyhow::Result<async_nats::Subscriber> {
    let subscriber = client.subscribe(subject.to_string()).await?;
    // The server handles one connection's operations in order: once a request made after the
    // subscription is answered, the subscription is in place.
    client
        .request("$JS.API.INFO", bytes::Bytes::new())
        .await
        .context("round trip to nats-server after subscribing")?;
    Ok(subscriber)
}

/// Publishes to JetStream with a message id and waits until the stream stored it.
pub async fn publish(
    client: &async_nats::Client,
    subject: &str,
    msg_id: &str,
    payload: Vec<u8>,
) -> anyhow::Result<()> {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", msg_id);
    async_nats::jetstream::new(client.clone())
        .publish_with_headers(subject.to_string(), headers, payload.into())
        .await?
        .await?;
    Ok(())
}

/// Waits until the durable consumer `durable` exists on `stream` (the stage under test creates it
/// at start-up), so what is published next is consumed.
pub async fn wait_for_consumer(
    client: &async_nats::Client,
    stream: &str,
    durable: &str,
) -> anyhow::Result<()> {
    let js = async_nats::jetstream::new(client.clone());
    crate::eventually(
        &format!("consumer {durable} on {stream}"),
        Duration::from_secs(20),
        || {
            let js = js.clone();
            async move {
                js.get_stream(stream)
                    .await
                    .ok()?
                    .consumer_info(durable)
                    .await
                    .ok()
                    .map(|_| ())
            }
        },
    )
    .await
}

/// How many messages `stream` holds.
pub async fn stream_len(client: &async_nats::Client, stream: &str) -> anyhow::Result<u64> {
    let js = async_nats::jetstream::new(client.clone());
    Ok(js.get_stream(stream).await?.info().await?.state.messages)
}

/// Waits until the durable consumer `durable` on `stream` has been handed every message the stream
/// holds and has had each acknowledged: what was published before this call has been handled (a
/// stage acknowledges only after its work is committed). The deterministic way to say "a
/// redelivery has been dealt with" before checking that it changed nothing.
pub async fn wait_until_consumed(
    client: &async_nats::Client,
    stream: &str,
    durable: &str,
) -> anyhow::Result<()> {
    let js = async_nats::jetstream::new(client.clone());
    let backlog = || async {
        let mut consumer: async_nats::jetstream::consumer::PullConsumer = js
            .get_stream(stream)
            .await?
            .get_consumer(durable)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let info = consumer.info().await?;
        anyhow::Ok((info.num_pending, info.num_ack_pending))
    };
    let settled = crate::eventually(
        &format!("consumer {durable} on {stream} to acknowledge everything"),
        Duration::from_secs(30),
        || async { (backlog().await.ok()? == (0, 0)).then_some(()) },
    )
    .await;
    if settled.is_err() {
        let (pending, ack_pending) = backlog().await?;
        bail!(
            "consumer {durable} on {stream} still has {pending} undelivered and {ack_pending} \
             unacknowledged messages after 30s"
        );
    }
    Ok(())
}

/// A JetStream cluster of nats-servers on this machine, each with its own port and store, joined
/// by routes: for replicated (R3) streams and for losing a node mid-stream.
pub struct NatsCluster {
    nodes: Vec<ClusterNode>,
    program: PathBuf,
    _dir: tempfile::TempDir,
}

struct ClusterNode {
    child: Option<Child>,
    port: u16,
    config: PathBuf,
    log: PathBuf,
}

impl NatsCluster {
    /// Starts `size` nodes and waits until each answers.
    pub async fn start(size: usize) -> anyhow::Result<Self> {
        let program = find_program(
            "nats-server",
            "HERALD_NATS_SERVER",
            &["/usr/sbin", "/usr/local/bin"],
        )
        .context(INSTALL_HINT)?;
        let dir = tempfile::Builder::new()
            .prefix("herald-nats-cluster-")
            .tempdir()?;
        let ports: Vec<(u16, u16)> = (0..size)
            .map(|_| Ok((crate::free_port()?, crate::free_port()?)))
            .collect::<std::io::Result<_>>()?;
        let routes = ports
            .iter()
            .map(|(_, route)| format!("\"nats-route://127.0.0.1:{route}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let extra = jetstream_lines();
        let mut nodes = Vec::new();
        for (i, (port, route)) in ports.iter().enumerate() {
            let store = dir.path().join(format!("n{i}"));
            let config = dir.path().join(format!("n{i}.conf"));
            std::fs::write(
                &config,
                format!(
                    "server_name: n{i}\nlisten: 127.0.0.1:{port}\nmax_payload: 8MB\n\
                     jetstream {{\n  store_dir: {store:?}\n{extra}}}\n\
                     cluster {{\n  name: herald-test\n  listen: 127.0.0.1:{route}\n  routes: [{routes}]\n}}\n"
                ),
            )?;
            nodes.push(ClusterNode {
                child: None,
                port: *port,
                config,
                log: dir.path().join(format!("n{i}.log")),
            });
        }
        let mut cluster = Self {
            nodes,
            program,
            _dir: dir,
        };
        for i in 0..size {
            cluster.spawn(i)?;
        }
        for i in 0..size {
            cluster.wait(i).await?;
        }
        Ok(cluster)
    }

    fn spawn(&mut self, i: usize) -> anyhow::Result<()> {
        let node = &mut self.nodes[i];
        node.child = Some(run_server(&self.program, &node.config, &node.log)?);
        Ok(())
    }

    async fn wait(&self, i: usize) -> anyhow::Result<()> {
        let node = &self.nodes[i];
        wait_for_info(node.port, Duration::from_secs(15))
            .await
            .with_context(|| {
                format!(
                    "cluster node n{i} did not come up:\n{}",
                    std::fs::read_to_string(&node.log).unwrap_or_default()
                )
            })
    }

    /// The client URL of node `i`.
    pub fn url(&self, i: usize) -> String {
        format!("nats://127.0.0.1:{}", self.nodes[i].port)
    }

    /// Every node's URL, comma-separated, as `[nats] url` takes a cluster.
    pub fn urls(&self) -> String {
        (0..self.nodes.len())
            .map(|i| self.url(i))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// SIGKILL of node `i`: its clients move to the others.
    pub async fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts node `i` again on its store; it catches up from the others.
    pub async fn restart(&mut self, i: usize) -> anyhow::Result<()> {
        self.kill(i).await;
        self.spawn(i)?;
        self.wait(i).await
    }
}

#[cfg(test)]
mod tests {
    use super::sync_described;

    #[test]
    fn the_report_says_how_jetstream_syncs() {
        let default = sync_described(&[]);
        assert!(default.contains("every two minutes"), "{default}");
        assert!(default.contains("not a power cut"), "{default}");

        let always = sync_described(&[
            "max_file_store: 1G".to_string(),
            "sync_interval: always".to_string(),
        ]);
        assert!(always.contains("every write"), "{always}");
        assert!(!always.contains("power cut"), "{always}");

        let interval = sync_described(&["sync_interval: 10s".to_string()]);
        assert!(interval.contains("every 10s"), "{interval}");
        assert!(interval.contains("not a power cut"), "{interval}");
    }
}
