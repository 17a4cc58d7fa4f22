//! `POST /v1/events/{source}`: the webhook route every source posts to.
//!
//! Checks run in the documented order: unknown source 404, size 413, authenticity 401, syntax 400,
//! shape 422, then 202 once the bus stored the event (503 when it could not be stored).

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Json, Router,
    body::Body,
    extract::{ConnectInfo, Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
};
use bytes::Bytes;
use herald_runtime::{ApiError, ErrorKind};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tracing::Instrument;

use crate::{
    accept::{Accepted, Ingestor},
    rejections::{Rejection, RejectionLog},
};

/// What the HTTP routes need.
pub struct HttpState {
    pub max_body_bytes: usize,
    pub ingestor: Arc<Ingestor>,
    pub rejections: RejectionLog,
}

pub fn router(state: Arc<HttpState>) -> Router {
    Router::new()
        .route("/v1/events/{source}", post(receive))
        .with_state(state)
}

async fn receive(
    State(state): State<Arc<HttpState>>,
    Path(source): Path<String>,
    request: axum::extract::Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    // Present when served with connect info (the services are); absent in bare router tests.
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let span = tracing::info_span!("ingest.receive", source = %source);
    herald_events::trace::set_parent_from_pairs(
        &span,
        headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?))),
    );
    let result = async { receive_inner(&state, &source, &headers, body).await }
        .instrument(span)
        .await;
    let status = match &result {
        Ok(_) => StatusCode::ACCEPTED,
        Err((e, _)) => e.kind.http_status(),
    };
    metrics::counter!(
        "herald_ingest_deliveries_total",
        "source" => if state.ingestor.check_source(&source).is_ok() { source.clone() } else { "unknown".to_string() },
        "status" => status.as_u16().to_string()
    )
    .increment(1);
    match result {
        Ok(accepted) => {
            if let Accepted::Published { id, duplicate } = &accepted {
                tracing::info!(%source, %id, duplicate, "event accepted");
            }
            (StatusCode::ACCEPTED, Json(accepted.body())).into_response()
        }
        Err((error, size)) => {
            tracing::info!(%source, code = error.code, status = status.as_u16(), "delivery rejected");
            if error.kind != ErrorKind::Unavailable {
                state.rejections.record(Rejection {
                    source: source.clone(),
                    status: status.as_u16(),
                    code: error.code,
                    message: error.message.clone(),
                    body_bytes: size,
                    remote: peer.map(|addr| addr.ip().to_string()),
                });
            }
            error.into_response()
        }
    }
}

async fn receive_inner(
    state: &HttpState,
    source: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Accepted, (ApiError, Option<usize>)> {
    state.ingestor.check_source(source).map_err(|e| (e, None))?;
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(length) = declared
        && length > state.max_body_bytes
    {
        return Err((too_large(state.max_body_bytes), Some(length)));
    }
    let body = read_limited(body, state.max_body_bytes)
        .await
        .map_err(|e| (e, declared))?;
    let size = Some(body.len());
    state
        .ingestor
        .accept(source, headers, body)
        .await
        .map_err(|e| (e, size))
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        ErrorKind::TooLarge,
        "body_too_large",
        format!("the body is larger than the {limit} bytes ingest accepts"),
    )
}

/// Reads at most `limit` bytes; never buffers or hashes more.
async fn read_limited(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large(limit)),
        Err(e) => Err(ApiError::new(
            ErrorKind::Malformed,
            "body_unreadable",
            format!("the request body could not be read: {e}"),
        )),
    }
}
