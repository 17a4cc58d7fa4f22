//! Reaching a Herald API: which address a command uses, and errors that say what was tried and how
//! to point the CLI elsewhere. A leaf: every command module uses it, it uses none of them.

use std::fmt::Write as _;

use anyhow::Context;
use tonic::{
    metadata::AsciiMetadataValue, service::interceptor::InterceptedService, transport::Channel,
};

/// A connection that sends `$HERALD_TOKEN` with every call.
pub type Connection = InterceptedService<Channel, Bearer>;

/// Adds `authorization: Bearer <token>` to each call when a token is set.
#[derive(Clone)]
pub struct Bearer(Option<AsciiMetadataValue>);

impl std::fmt::Debug for Bearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Bearer([redacted])"
        } else {
            "Bearer(none)"
        })
    }
}

impl Bearer {
    /// The token in `HERALD_TOKEN`, if set and not empty.
    pub fn from_env() -> anyhow::Result<Self> {
        match std::env::var("HERALD_TOKEN") {
            Ok(token) if !token.trim().is_empty() => Self::token(token.trim()),
            _ => Ok(Self(None)),
        }
    }

    pub fn token(token: &str) -> anyhow::Result<Self> {
        let value = format!("Bearer {token}")
            .parse::<AsciiMetadataValue>()
            .map_err(|_| anyhow::anyhow!("HERALD_TOKEN holds characters a header cannot carry"))?;
        Ok(Self(Some(value)))
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

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

/// The address flags of a command that talks to one API: `--url` / `HERALD_URL` (every API at one
/// address, as `herald up` serves them) and the service's own flag and variable with its default
/// port. Flattened into each command's arguments; global, so they may follow a subcommand.
macro_rules! address_args {
    ($name:ident, $api:expr, $field:ident, $env:literal, $default:literal, $doc:literal) => {
        #[derive(clap::Args, Debug, Clone)]
        pub struct $name {
            /// One gRPC address for every API (what `herald up` serves); overrides the service's own.
            #[arg(long, env = "HERALD_URL", global = true)]
            pub url: Option<String>,
            #[doc = $doc]
            #[arg(long, env = $env, default_value = $default, global = true)]
            pub $field: String,
        }

        impl $name {
            pub fn target(&self) -> Target {
                Target::new($api, self.url.clone(), self.$field.clone())
            }
        }
    };
}

address_args!(
    IngestAddress,
    Api::Ingest,
    ingest,
    "HERALD_INGEST_URL",
    "http://127.0.0.1:9090",
    "Ingest's gRPC address (it also serves herald.v1.DeadLetters)."
);
address_args!(
    ScoringAddress,
    Api::Scoring,
    scoring,
    "HERALD_SCORING_URL",
    "http://127.0.0.1:9091",
    "Scoring's gRPC address."
);
address_args!(
    SpotlightAddress,
    Api::Spotlight,
    spotlight,
    "HERALD_SPOTLIGHT_URL",
    "http://127.0.0.1:9092",
    "Spotlight's gRPC address."
);
address_args!(
    NotifyAddress,
    Api::Notify,
    notify,
    "HERALD_NOTIFY_URL",
    "http://127.0.0.1:9093",
    "Notify's gRPC address."
);

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

    /// Connects, or explains which address failed, why, and how to point elsewhere. Every call
    /// carries `$HERALD_TOKEN` when it is set.
    pub async fn connect(&self) -> anyhow::Result<Connection> {
        let bearer = Bearer::from_env()?;
        let url = self.url();
        let endpoint =
            tonic::transport::Endpoint::from_shared(url.to_string()).with_context(|| {
                format!(
                    "{url} ({}) is not a valid address for {}: write it like {UP_URL}",
                    self.origin(),
                    self.api.name()
                )
            })?;
        let endpoint = if url.starts_with("https://") {
            endpoint
                .tls_config(tls_for_cli()?)
                .with_context(|| format!("cannot set up TLS for {url}"))?
        } else {
            endpoint
        };
        let channel = endpoint.connect().await.map_err(|e| {
            anyhow::anyhow!(
                "cannot reach {} at {url} ({}): {}; {}",
                self.api.name(),
                self.origin(),
                causes(&e),
                self.hint()
            )
        })?;
        Ok(InterceptedService::new(channel, bearer))
    }
}

/// TLS for an `https://` address: the system's trusted roots, and the certificate authority in
/// `HERALD_CA_FILE` (PEM) when Herald's certificate is signed by a private one.
fn tls_for_cli() -> anyhow::Result<tonic::transport::ClientTlsConfig> {
    let config = tonic::transport::ClientTlsConfig::new().with_native_roots();
    match std::env::var_os("HERALD_CA_FILE") {
        Some(path) => {
            let pem = std::fs::read(&path).with_context(|| {
                format!(
                    "cannot read HERALD_CA_FILE {}",
                    std::path::Path::new(&path).display()
                )
            })?;
            Ok(config.ca_certificate(tonic::transport::Certificate::from_pem(pem)))
        }
        None => Ok(config),
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
    if status.code() == tonic::Code::Unauthenticated && std::env::var_os("HERALD_TOKEN").is_none() {
        return anyhow::anyhow!(
            "{} answered {:?}: {} (set HERALD_TOKEN to a read token, or an admin token for this call)",
            api.name(),
            status.code(),
            status.message()
        );
    }
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
