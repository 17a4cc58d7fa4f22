//! A real SMTP server standing in for a mail relay: Python's `aiosmtpd`, run as a process on a free
//! port, writing every accepted message to a directory. Its answers to DATA can be scripted (a
//! `451` then a `250`, a `550`) to exercise retries. `scripts/test` installs aiosmtpd; when it is
//! missing the error says how to get it.

use std::{
    path::PathBuf,
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader};

const SCRIPT: &str = include_str!("smtp_sink.py");

/// How the sink protects its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkTls {
    None,
    Starttls,
    Implicit,
}

/// A CA (`ca.pem`) and a certificate for 127.0.0.1 it signed (`sink.pem`, `sink.key`), made with
/// the `openssl` command.
async fn make_certificates(dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::write(
        dir.join("sink.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )?;
    let steps: [&[&str]; 3] = [
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=Herald test CA",
        ],
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "sink.key",
            "-out",
            "sink.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
        &[
            "x509",
            "-req",
            "-in",
            "sink.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "sink.pem",
            "-days",
            "2",
            "-extfile",
            "sink.ext",
        ],
    ];
    for args in steps {
        let output = tokio::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .await
            .context("the TLS SMTP sink needs the openssl command (apt-get install openssl)")?;
        if !output.status.success() {
            bail!(
                "openssl {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
    Ok(())
}

/// One DATA answered by the sink.
#[derive(Debug, Clone)]
pub struct SmtpExchange {
    /// The reply given, `250 OK` or a scripted one.
    pub reply: String,
    /// Envelope sender and recipients.
    pub from: String,
    pub to: Vec<String>,
    /// The message as received, when it was accepted.
    pub message: Option<String>,
}

#[derive(Default)]
struct Shared {
    exchanges: Mutex<Vec<SmtpExchange>>,
    notify: tokio::sync::Notify,
}

pub struct SmtpSink {
    port: u16,
    shared: Arc<Shared>,
    _dir: tempfile::TempDir,
    _child: tokio::process::Child,
}

impl SmtpSink {
    /// Starts a sink that accepts everything.
    pub async fn start() -> anyhow::Result<Self> {
        Self::with_replies(&[]).await
    }

    /// Starts a sink that answers the first messages' DATA with `replies` (e.g. `"451 4.3.0 try
    /// again later"`), then accepts.
    pub async fn with_replies(replies: &[&str]) -> anyhow::Result<Self> {
        Self::launch(replies, SinkTls::None).await
    }

    /// Starts a sink that speaks TLS (`starttls`: required before MAIL; `implicit`: from the
    /// first byte) with a certificate for 127.0.0.1 signed by a CA made for it: see [`Self::ca`].
    pub async fn with_tls(tls: SinkTls) -> anyhow::Result<Self> {
        Self::launch(&[], tls).await
    }

    /// The PEM file of the CA that signed the sink's certificate (with TLS).
    pub fn ca(&self) -> PathBuf {
        self._dir.path().join("ca.pem")
    }

    async fn launch(replies: &[&str], tls: SinkTls) -> anyhow::Result<Self> {
        let python = std::env::var("HERALD_PYTHON").unwrap_or_else(|_| "python3".into());
        let check = tokio::process::Command::new(&python)
            .args(["-c", "import aiosmtpd"])
            .output()
            .await
            .with_context(|| format!("cannot run {python}: the SMTP sink needs Python 3"))?;
        if !check.status.success() {
            bail!(
                "the SMTP sink needs aiosmtpd: run `{python} -m pip install aiosmtpd` (scripts/test does), or set HERALD_PYTHON to a Python that has it"
            );
        }
        let dir = tempfile::tempdir()?;
        let mut command = tokio::process::Command::new(&python);
        let mode = match tls {
            SinkTls::None => "none",
            SinkTls::Starttls => "starttls",
            SinkTls::Implicit => "implicit",
        };
        if tls != SinkTls::None {
            make_certificates(dir.path()).await?;
            command
                .env("HERALD_SINK_CERT", dir.path().join("sink.pem"))
                .env("HERALD_SINK_KEY", dir.path().join("sink.key"));
        }
        let mut child = command
            .env("HERALD_SINK_TLS", mode)
            .arg("-c")
            .arg(SCRIPT)
            .arg(dir.path())
            .args(replies)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start the SMTP sink")?;
        let stdout = child.stdout.take().context("the sink's stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .context("the SMTP sink did not start within 20 s")??
            .context("the SMTP sink exited before listening")?;
        let port: u16 = first
            .strip_prefix("PORT ")
            .and_then(|p| p.trim().parse().ok())
            .with_context(|| format!("unexpected first line from the SMTP sink: {first}"))?;
        let shared = Arc::new(Shared::default());
        let reader = shared.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                let message = json["path"]
                    .as_str()
                    .and_then(|p| std::fs::read(PathBuf::from(p)).ok())
                    .map(|b| String::from_utf8_lossy(&b).into_owned());
                let exchange = SmtpExchange {
                    reply: json["reply"].as_str().unwrap_or("").to_string(),
                    from: json["from"].as_str().unwrap_or("").to_string(),
                    to: json["to"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|v| v.as_str().map(String::from))
                                .collect()
                        })
                        .unwrap_or_default(),
                    message,
                };
                reader
                    .exchanges
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(exchange);
                reader.notify.notify_waiters();
            }
        });
        Ok(Self {
            port,
            shared,
            _dir: dir,
            _child: child,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every DATA answered so far, accepted or not.
    pub fn exchanges(&self) -> Vec<SmtpExchange> {
        self.shared
            .exchanges
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits until at least `count` DATA commands were answered, then returns all of them.
    pub async fn wait_for(
        &self,
        count: usize,
        timeout: Duration,
    ) -> anyhow::Result<Vec<SmtpExchange>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.notify.notified();
            let got = self.exchanges();
            if got.len() >= count {
                return Ok(got);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                bail!(
                    "timed out after {timeout:?}: {} of {count} expected messages reached the SMTP sink",
                    got.len()
                );
            }
        }
    }
}
