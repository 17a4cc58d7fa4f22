//! `[ingest]` and `[sources.<name>]`.

use std::{collections::BTreeMap, net::SocketAddr};

use herald_proto::v1::Source;
use herald_runtime::{ConfigLoader, SharedConfig, config::ConfigError};
use serde::Deserialize;

pub use crate::sources::settings::SourceSettings;

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
        for (name, settings) in &sources {
            settings.check(name).map_err(ConfigError::Invalid)?;
        }
        Ok(Self {
            shared: loader.shared()?,
            ingest: loader.section("ingest")?,
            sources,
        })
    }
}
