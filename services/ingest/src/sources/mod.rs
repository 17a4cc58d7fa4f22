//! One module per source: how its deliveries are authenticated and turned into `ItsmEvent`s.

pub mod cloudevents;
pub mod servicenow;

use chrono::{DateTime, Utc};
use herald_catalog::Catalog;
use herald_proto::v1::{ItsmEvent, Source};
use herald_runtime::{ApiError, ErrorCode};
use http::HeaderMap;

use crate::verify::Keys;

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

/// Every source this build of Herald understands.
pub fn handlers() -> Vec<Box<dyn SourceHandler>> {
    vec![
        Box::new(servicenow::ServiceNow),
        Box::new(cloudevents::CloudEvents),
    ]
}

/// 400: the body is not UTF-8 JSON.
pub fn parse_json(body: &[u8]) -> Result<serde_json::Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            ErrorCode::Malformed,
            "malformed_json",
            format!("the body is not valid UTF-8 JSON: {e}"),
        )
    })
}

/// 422 with a message naming what is wrong.
pub fn unusable(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::Unprocessable, "unusable_event", message)
}
