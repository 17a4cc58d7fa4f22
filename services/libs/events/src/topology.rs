//! The streams and durable consumers of a Herald deployment.

use std::time::Duration;

use serde::Deserialize;

use crate::StreamFamily;

/// Retention and de-duplication settings of the streams (`[nats.streams]` in herald.toml).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StreamSettings {
    /// How long JetStream remembers message ids to drop duplicate publishes. Consumers are idempotent
    /// beyond it, so this only decides how long a repeated delivery is *reported* as a duplicate.
    #[serde(with = "humantime_serde")]
    pub duplicate_window: Duration,
    /// How long events are kept for replay.
    #[serde(with = "humantime_serde")]
    pub events_max_age: Duration,
    #[serde(with = "humantime_serde")]
    pub wins_max_age: Duration,
    #[serde(with = "humantime_serde")]
    pub announcements_max_age: Duration,
    #[serde(with = "humantime_serde")]
    pub dead_letters_max_age: Duration,
    /// Stream replicas in a NATS cluster (1 for a single server).
    pub replicas: usize,
}

impl Default for StreamSettings {
    fn default() -> Self {
        const DAY: u64 = 24 * 3600;
        Self {
            duplicate_window: Duration::from_secs(10 * 60),
            events_max_age: Duration::from_secs(90 * DAY),
            wins_max_age: Duration::from_secs(90 * DAY),
            announcements_max_age: Duration::from_secs(30 * DAY),
            dead_letters_max_age: Duration::from_secs(90 * DAY),
            replicas: 1,
        }
    }
}

impl StreamSettings {
    pub fn max_age(&self, family: StreamFamily) -> Duration {
        match family {
            StreamFamily::Events => self.events_max_age,
            StreamFamily::Wins => self.wins_max_age,
            StreamFamily::Announcements => self.announcements_max_age,
            StreamFamily::DeadLetters => self.dead_letters_max_age,
        }
    }
}

/// A durable consumer: one per stage, shared by all replicas of that stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerSpec {
    pub family: StreamFamily,
    pub durable: String,
    /// One subject filter. NATS 2.9 ignores the plural `filter_subjects`, so Herald never uses it.
    pub filter_subject: String,
    /// How long a delivery may go unacknowledged before it is delivered again.
    pub ack_wait: Duration,
    /// How many deliveries may be unacknowledged at once across all replicas.
    pub max_ack_pending: i64,
}

impl ConsumerSpec {
    fn stage(family: StreamFamily, durable: &str) -> Self {
        Self {
            family,
            durable: durable.to_string(),
            filter_subject: family.wildcard().to_string(),
            ack_wait: Duration::from_secs(30),
            max_ack_pending: 1000,
        }
    }

    /// Scoring reads every event.
    pub fn scoring() -> Self {
        Self::stage(StreamFamily::Events, "scoring")
    }

    /// Spotlight reads every win.
    pub fn spotlight() -> Self {
        Self::stage(StreamFamily::Wins, "spotlight")
    }

    /// Notify reads every announcement.
    pub fn notify() -> Self {
        Self::stage(StreamFamily::Announcements, "notify")
    }
}
