//! `[scoring]`

use std::net::SocketAddr;

use herald_runtime::{ConfigLoader, SharedConfig, config::ConfigError};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScoringSettings {
    pub http_addr: SocketAddr,
    pub grpc_addr: SocketAddr,
    /// `[scoring.consumer]`: lanes, deliveries before dead-lettering, ack wait.
    pub consumer: herald_events::worker::StageSettings,
    /// Incident priorities that mean the service itself was down for its users (an outage), so
    /// all its users count. Other priorities count the one person who reported it.
    pub outage_priorities: Vec<u32>,
    /// Working hours in a day: saved wall-clock time counts at most this much per 24 hours.
    pub working_hours_per_day: f64,
    /// Loaded hourly rate used when an event names no business service. Absent: no value is claimed.
    pub default_hourly_rate: Option<f64>,
    /// At most this many people are credited on one win.
    pub max_credited_people: usize,
    /// Share of a win that goes to whoever resolved it; the rest is split among the others.
    pub resolver_share: f64,
    /// `[scoring.verification]`: hold-back and revocation windows.
    pub verification: crate::verification::VerificationSettings,
    /// `[scoring.credit]`: how credit is split, what earns nothing, the daily cap per person.
    pub credit: crate::credit::CreditRules,
    /// `[scoring.stories]`: requester praise and lessons learned.
    pub stories: crate::value::StorySettings,
    /// `[[scoring.plan]]`: the 90-day plan, three to five KPIs with baseline, goal and dates.
    pub plan: Vec<crate::report::plan::PlanGoal>,
}

impl Default for ScoringSettings {
    fn default() -> Self {
        Self {
            http_addr: ([0, 0, 0, 0], 8081).into(),
            grpc_addr: ([0, 0, 0, 0], 9091).into(),
            consumer: Default::default(),
            outage_priorities: vec![1, 2],
            working_hours_per_day: 8.0,
            default_hourly_rate: None,
            max_credited_people: 10,
            resolver_share: 0.5,
            verification: Default::default(),
            credit: Default::default(),
            stories: Default::default(),
            plan: Vec::new(),
        }
    }
}

impl ScoringSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: &str| Err(ConfigError::Invalid(format!("[scoring] {m}")));
        if !(self.working_hours_per_day > 0.0 && self.working_hours_per_day <= 24.0) {
            return invalid("working_hours_per_day must be more than 0 and at most 24");
        }
        if !(0.0..=1.0).contains(&self.resolver_share) {
            return invalid("resolver_share must be between 0 and 1");
        }
        if let Err(e) = crate::report::plan::validate(&self.plan) {
            return Err(ConfigError::Invalid(format!("[[scoring.plan]] {e}")));
        }
        self.verification.validate().map_err(ConfigError::Invalid)?;
        self.credit
            .validate(self.resolver_share)
            .map_err(ConfigError::Invalid)?;
        self.stories.validate().map_err(ConfigError::Invalid)?;
        if self.max_credited_people == 0 {
            return invalid("max_credited_people must be at least 1");
        }
        if self
            .default_hourly_rate
            .is_some_and(|r| !(r.is_finite() && r >= 0.0))
        {
            return invalid("default_hourly_rate must be zero or more");
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct ScoringConfig {
    pub shared: SharedConfig,
    pub scoring: ScoringSettings,
}

impl ScoringConfig {
    pub fn load(loader: &ConfigLoader) -> Result<Self, ConfigError> {
        let scoring: ScoringSettings = loader.section("scoring")?;
        scoring.validate()?;
        Ok(Self {
            shared: loader.shared()?,
            scoring,
        })
    }
}
