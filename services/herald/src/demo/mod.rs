//! `herald up --demo`: the sample organisation (Larkspur Logistics), console and file channels, a
//! secret (or token) for every source, and a realistic month of ITSM deliveries from every tool
//! replayed through ingest's own gRPC API, each in its tool's payload shape and signed the way that
//! tool signs.
//!
//! The month is generated, not stored: the same seed gives the same records, with times relative to
//! the month's anchor, the moment of the first `--demo` start on a data directory (kept in
//! `demo-month.json` there), so this week's and this month's figures are populated. A later start
//! on the same data directory finds the month loaded and sends nothing again.
//!
//! - [`config`]: the demo's herald.toml, with a key for each source;
//! - [`organisation`]: the sample catalog's people, teams and services, and the generator;
//! - [`month`]: the month of deliveries, and ServiceNow's among them;
//! - [`jira`], [`pages`] (PagerDuty, Opsgenie), [`zendesk`], [`github`], [`automation`]
//!   (CloudEvents): each other tool's deliveries;
//! - [`replay`]: signing them and sending them to ingest, and what to say afterwards.

pub mod automation;
pub mod channels;
pub mod config;
pub mod github;
pub mod jira;
pub mod month;
pub mod organisation;
pub mod pages;
pub mod replay;
pub mod zendesk;

use chrono::{DateTime, Utc};
use herald_proto::v1::Source;

pub use channels::DemoChannels;
pub use config::{SECRET, TOKEN, config_loader};
pub use replay::replay;

/// The sample organisation, as shipped in `deploy/catalog.toml`.
pub const CATALOG: &str = include_str!("../../../../deploy/catalog.toml");
const INSTANCE: &str = "https://larkspur.service-now.com";

/// One delivery of the sample month, as its tool would submit it (not notify's `Delivery`, which
/// is an announcement on its way to a channel).
#[derive(Debug, Clone)]
pub struct Submission {
    pub source: Source,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// When the outcome happened; submissions are replayed in this order.
    pub at: DateTime<Utc>,
    /// Sent only once the win of this record has been confirmed and its headline announced (or
    /// withdrawn): a reopen the next morning must find yesterday's headline out, as it would live,
    /// however fast the month is replayed.
    pub wait_for: Option<String>,
}
