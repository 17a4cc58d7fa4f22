//! One module per source: how its deliveries are authenticated and turned into `ItsmEvent`s.

mod borrowed;
pub mod cloudevents;
pub mod fields;
pub mod github;
pub mod jira;
pub mod opsgenie;
pub mod pagerduty;
pub mod servicenow;
pub mod settings;
pub mod zendesk;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use herald_catalog::Catalog;
use herald_proto::v1::{EventKind, ItsmEvent, Record, Source};
use herald_runtime::{ApiError, ErrorKind};
use http::HeaderMap;

use crate::verify::Keys;

pub use settings::SourceSettings;

/// What a delivery turned into.
#[derive(Debug)]
pub enum Normalised {
    /// An outcome to publish. The ordering key groups events about the same record.
    Event {
        event: Box<ItsmEvent>,
        ordering_key: String,
    },
    /// Valid, but nothing Herald uses (an unused state, a ping). Answered 202, not published.
    Ignored { id: Option<String>, note: String },
    /// Several events in one delivery (CloudEvents batched mode), each with its own bytes kept for
    /// audit. Every item was valid, or the whole delivery was refused.
    Batch(Vec<(Normalised, Vec<u8>)>),
}

impl Normalised {
    /// An outcome of `source` to publish.
    pub fn event(
        source: Source,
        kind: EventKind,
        id: String,
        occurred_at: DateTime<Utc>,
        record: Record,
        ordering_key: String,
    ) -> Self {
        Normalised::Event {
            event: Box::new(ItsmEvent {
                id,
                source: source as i32,
                kind: kind as i32,
                occurred_at: Some(herald_proto::time::to_timestamp(occurred_at)),
                record: Some(record),
                ..Default::default()
            }),
            ordering_key,
        }
    }
}

/// What a normaliser may consult.
pub struct Context<'a> {
    pub catalog: &'a Catalog,
    pub received_at: DateTime<Utc>,
}

/// A source Herald accepts deliveries from.
pub trait SourceHandler: Send + Sync {
    fn source(&self) -> Source;
    /// Checks authenticity over the raw bytes; 401 when it fails. `now` is for schemes that sign a
    /// timestamp.
    fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        keys: &Keys,
        now: DateTime<Utc>,
    ) -> Result<(), ApiError>;
    /// Parses (400) and normalises (422) a verified delivery.
    fn normalise(
        &self,
        ctx: &Context<'_>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Normalised, ApiError>;
}

/// Every source this build of Herald understands, with the per-source settings that shape
/// normalisation.
pub fn handlers(settings: &BTreeMap<String, SourceSettings>) -> Vec<Box<dyn SourceHandler>> {
    let jira = settings
        .get(Source::Jira.token())
        .and_then(|s| s.team_field.clone())
        .map(|team_field| jira::Jira { team_field })
        .unwrap_or_default();
    vec![
        Box::new(servicenow::ServiceNow),
        Box::new(jira),
        Box::new(pagerduty::PagerDuty),
        Box::new(opsgenie::Opsgenie),
        Box::new(zendesk::Zendesk),
        Box::new(github::GitHub),
        Box::new(cloudevents::CloudEvents),
    ]
}

/// 400: the body is not UTF-8 JSON.
pub fn parse_json(body: &[u8]) -> Result<serde_json::Value, ApiError> {
    serde_json::from_slice(body).map_err(malformed_json)
}

/// 400 `malformed_json`, with what the reader found wrong.
fn malformed_json(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        ErrorKind::Malformed,
        "malformed_json",
        format!("the body is not valid UTF-8 JSON: {e}"),
    )
}

/// 422 with a message naming what is wrong.
pub fn unusable(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorKind::Unprocessable, "unusable_event", message)
}
