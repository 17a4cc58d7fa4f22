//! `[spotlight]`

use std::net::SocketAddr;

use herald_runtime::{ConfigLoader, SharedConfig, config::ConfigError};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpotlightSettings {
    pub http_addr: SocketAddr,
    pub grpc_addr: SocketAddr,
    /// A win worth at least this much (organisation currency) is announced at once; smaller wins
    /// wait for the digests.
    pub headline_min_value: f64,
    /// Seconds between automatic refreshes of the dashboard page.
    pub dashboard_refresh_seconds: u32,
    /// A win confirmed more than this long after its outcome is history: counted in its period,
    /// never a live headline (so are backfilled and caught-up outcomes, whatever their age).
    #[serde(with = "humantime_serde")]
    pub announce_max_age: std::time::Duration,
    /// `[spotlight.consumer]`: lanes, deliveries before dead-lettering, ack wait.
    pub consumer: herald_events::worker::StageSettings,
}

impl Default for SpotlightSettings {
    fn default() -> Self {
        Self {
            http_addr: ([0, 0, 0, 0], 8082).into(),
            grpc_addr: ([0, 0, 0, 0], 9092).into(),
            headline_min_value: 1000.0,
            dashboard_refresh_seconds: 30,
            announce_max_age: std::time::Duration::from_secs(7 * 24 * 60 * 60),
            consumer: Default::default(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SpotlightConfig {
    pub shared: SharedConfig,
    pub spotlight: SpotlightSettings,
}

impl SpotlightConfig {
    pub fn load(loader: &ConfigLoader) -> Result<Self, ConfigError> {
        let spotlight: SpotlightSettings = loader.section("spotlight")?;
        if !(spotlight.headline_min_value.is_finite() && spotlight.headline_min_value >= 0.0) {
            return Err(ConfigError::Invalid(
                "[spotlight] headline_min_value must be zero or more".into(),
            ));
        }
        Ok(Self {
            shared: loader.shared()?,
            spotlight,
        })
    }
}
