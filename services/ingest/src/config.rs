//! `[ingest]` and `[sources.<name>]`.

use std::{collections::BTreeMap, net::SocketAddr};

use herald_proto::v1::Source;
use herald_runtime::{ConfigLoader, Secret, SharedConfig, config::ConfigError};
use serde::Deserialize;

use crate::verify::Keys;

/// `[ingest]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestSettings {
    pub http_addr: SocketAddr,
    pub grpc_addr: SocketAddr,
    /// Largest body accepted, in bytes (fixtures README §2.1: 2 MiB).
    pub max_body_bytes: usize,
    /// `[ingest.servicenow_poll]`: pull from the ServiceNow Table API (off when absent).
    pub servicenow_poll: Option<crate::poller::PollSettings>,
}

impl Default for IngestSettings {
    fn default() -> Self {
        Self {
            http_addr: ([0, 0, 0, 0], 8080).into(),
            grpc_addr: ([0, 0, 0, 0], 9090).into(),
            max_body_bytes: 2 * 1024 * 1024,
            servicenow_poll: None,
        }
    }
}

/// `[sources.<name>]`: how deliveries from one tool are authenticated. Two values of each kind may
/// be active at once, so a secret can be rotated without losing deliveries.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSettings {
    /// HMAC key.
    pub secret: Option<Secret>,
    /// The key being rotated out; accepted until removed.
    pub previous_secret: Option<Secret>,
    /// Bearer token, for senders that cannot compute an HMAC.
    pub token: Option<Secret>,
    pub previous_token: Option<Secret>,
}

impl SourceSettings {
    pub fn keys(&self) -> Keys {
        let present = |s: &Option<Secret>| s.clone().filter(|s| !s.is_empty());
        Keys {
            secrets: [present(&self.secret), present(&self.previous_secret)]
                .into_iter()
                .flatten()
                .collect(),
            tokens: [present(&self.token), present(&self.previous_token)]
                .into_iter()
                .flatten()
                .collect(),
        }
    }
}

/// Everything ingest reads.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    pub shared: SharedConfig,
    pub ingest: IngestSettings,
    pub sources: BTreeMap<String, SourceSettings>,
}

impl IngestConfig {
    pub fn load(loader: &ConfigLoader) -> Result<Self, ConfigError> {
        let sources: BTreeMap<String, SourceSettings> = loader.section("sources")?;
        if let Some(unknown) = sources
            .keys()
            .find(|name| Source::from_token(name).is_none())
        {
            let known: Vec<&str> = Source::ALL.iter().map(|s| s.token()).collect();
            return Err(ConfigError::Invalid(format!(
                "[sources.{unknown}] is not a source Herald knows; known sources are {}",
                known.join(", ")
            )));
        }
        Ok(Self {
            shared: loader.shared()?,
            ingest: loader.section("ingest")?,
            sources,
        })
    }
}
