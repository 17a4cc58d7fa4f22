//! Reaching a Herald API: which address a command uses, and errors that say what was tried and how
//! to point the CLI elsewhere. A leaf: every command module uses it, it uses none of them.

use std::fmt::Write as _;

use anyhow::Context;
use tonic::transport::Channel;

/// What `herald up` serves every API on by default.
pub const UP_URL: &str = "http://127.0.0.1:9090";

/// One of the four APIs, with the flag and variable that name its own address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Ingest,
    Scoring,
    Spotlight,
    Notify,
}

impl Api {
    pub fn name(self) -> &'static str {
        match self {
            Api::Ingest => "ingest",
            Api::Scoring => "scoring",
            Api::Spotlight => "spotlight",
            Api::Notify => "notify",
        }
    }

    fn env(self) -> &'static str {
        match self {
            Api::Ingest => "HERALD_INGEST_URL",
            Api::Scoring => "HERALD_SCORING_URL",
            Api::Spotlight => "HERALD_SPOTLIGHT_URL",
            Api::Notify => "HERALD_NOTIFY_URL",
        }
    }
}

/// The address a command talks to: `--url` (or `HERALD_URL`) when given, else the service's own.
#[derive(Debug, Clone)]
pub struct Target {
    pub api: Api,
    /// `--url` / `HERALD_URL`: one address for every API, as `herald up` serves them.
    pub shared: Option<String>,
    /// `--<service>` / `HERALD_<SERVICE>_URL`, or its default.
    pub own: String,
}

impl Target {
    pub fn new(api: Api, shared: Option<String>, own: String) -> Self {
        Self { api, shared, own }
    }

    pub fn url(&self) -> &str {
        self.shared.as_deref().unwrap_or(&self.own)
    }

    /// Where the address came from, for error messages.
    fn origin(&self) -> String {
        if self.shared.is_some() {
            "from --url / HERALD_URL".to_string()
        } else {
            format!("from --{} / {}", self.api.name(), self.api.env())
        }
    }

    /// How to point the CLI somewhere else.
    fn hint(&self) -> String {
        format!(
            "is Herald running? For `herald up` pass --url {UP_URL} (or set HERALD_URL={UP_URL}, \
             or the --grpc address it printed); for a separately deployed {name} pass --{name} \
             (or {env})",
            name = self.api.name(),
            env = self.api.env(),
        )
    }

    /// Connects, or explains which address failed, why, and how to point elsewhere.
    pub async fn connect(&self) -> anyhow::Result<Channel> {
        let url = self.url();
        let endpoint =
            tonic::transport::Endpoint::from_shared(url.to_string()).with_context(|| {
                format!(
                    "{url} ({}) is not a valid address for {}: write it like {UP_URL}",
                    self.origin(),
                    self.api.name()
                )
            })?;
        endpoint.connect().await.map_err(|e| {
            anyhow::anyhow!(
                "cannot reach {} at {url} ({}): {}; {}",
                self.api.name(),
                self.origin(),
                causes(&e),
                self.hint()
            )
        })
    }
}

/// An error's chain on one line, each distinct message once (tonic repeats "tcp connect error").
pub fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut seen: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(e) = next {
        let message = e.to_string();
        if !message.is_empty() && !seen.iter().any(|s| s == &message) {
            seen.push(message);
        }
        next = e.source();
    }
    let mut out = String::new();
    for (i, message) in seen.iter().enumerate() {
        if i > 0 {
            out.push_str(": ");
        }
        let _ = write!(out, "{message}");
    }
    out
}

/// A gRPC error as the CLI shows it: the server's message (which says what to fix) and the code.
pub fn status_error(api: Api, status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!(
        "{} answered {:?}: {}",
        api.name(),
        status.code(),
        status.message()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refused_connection_names_the_url_and_how_to_point_elsewhere() {
        // A port nothing listens on: bind one, note it, and close it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let url = format!("http://127.0.0.1:{port}");
        let target = Target::new(Api::Scoring, None, url.clone());
        let message = target
            .connect()
            .await
            .map(|_| ())
            .expect_err("nothing listens there")
            .to_string();
        assert!(message.contains(&url), "names the URL tried: {message}");
        assert!(message.contains("--scoring"), "{message}");
        assert!(message.contains("HERALD_URL="), "{message}");
        assert_eq!(
            message.matches("tcp connect error").count(),
            1,
            "each cause once: {message}"
        );
    }

    #[test]
    fn the_shared_url_wins() {
        let target = Target::new(
            Api::Notify,
            Some("http://h:9090".into()),
            "http://h:9093".into(),
        );
        assert_eq!(target.url(), "http://h:9090");
        assert!(target.origin().contains("HERALD_URL"));
    }
}
