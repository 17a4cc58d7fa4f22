//! `herald.v1.Ingest`: the webhook path over gRPC.

use std::sync::Arc;
use tracing::Instrument;

use bytes::Bytes;
use futures::StreamExt;
use herald_proto::v1::{
    Origin, SubmitBatchResponse, SubmitError, SubmitRequest, SubmitResponse, SubmitResult,
    ingest_server::Ingest, submit_result::Outcome,
};
use herald_runtime::{ApiError, ErrorKind};
use http::{HeaderMap, HeaderName, HeaderValue};
use tonic::{Request, Response, Status, Streaming};

use crate::accept::{Accepted, Delivery, Ingestor, no_answer};

pub struct IngestApi {
    pub ingestor: Arc<Ingestor>,
    pub max_body_bytes: usize,
}

fn header_map(headers: &std::collections::HashMap<String, String>) -> Result<HeaderMap, ApiError> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            ApiError::new(
                ErrorKind::Malformed,
                "bad_header",
                format!("{name:?} is not a valid header name"),
            )
        })?;
        let value = HeaderValue::from_str(value).map_err(|_| {
            ApiError::new(
                ErrorKind::Malformed,
                "bad_header",
                format!("the value of {name} is not a valid header value"),
            )
        })?;
        map.append(name, value);
    }
    Ok(map)
}

/// Most items one SubmitBatch call may carry, so the response stays bounded.
pub const MAX_BATCH_ITEMS: usize = 10_000;

/// Items of one SubmitBatch call verified and published together at most: enough to keep the
/// bus's writes grouped, few enough that the bodies held at once stay a few megabytes.
const ITEMS_AT_ONCE: usize = 256;

fn response_of(accepted: Accepted) -> SubmitResponse {
    match accepted {
        Accepted::Published { id, duplicate } => SubmitResponse {
            id,
            duplicate,
            published: true,
            ..Default::default()
        },
        Accepted::Ignored { id, note } => SubmitResponse {
            id: id.unwrap_or_default(),
            note,
            ..Default::default()
        },
        Accepted::Batch(items) => {
            let events: Vec<SubmitResponse> = items.into_iter().map(response_of).collect();
            SubmitResponse {
                published: events.iter().any(|e| e.published),
                note: format!("a batch of {} events", events.len()),
                events,
                ..Default::default()
            }
        }
    }
}

impl IngestApi {
    async fn submit_one(&self, request: SubmitRequest) -> Result<SubmitResponse, ApiError> {
        let headers = self.admit(&request)?;
        let origin = origin_of(&request);
        let accepted = self
            .ingestor
            .accept_from(&request.source, &headers, Bytes::from(request.body), origin)
            .await?;
        Ok(response_of(accepted))
    }

    /// The checks a gRPC item gets before it is verified: a known source, the body size, valid
    /// headers.
    fn admit(&self, request: &SubmitRequest) -> Result<HeaderMap, ApiError> {
        self.ingestor.check_source(&request.source)?;
        if request.body.len() > self.max_body_bytes {
            return Err(ApiError::new(
                ErrorKind::TooLarge,
                "body_too_large",
                format!(
                    "the body is larger than the {} bytes ingest accepts",
                    self.max_body_bytes
                ),
            ));
        }
        header_map(&request.headers)
    }

    async fn submit_stream(
        &self,
        stream: Streaming<SubmitRequest>,
    ) -> Result<Response<SubmitBatchResponse>, Status> {
        let mut answer = SubmitBatchResponse::default();
        // The items that have arrived are verified in order and their events published together,
        // in order: waiting for each item's acknowledgement before reading the next made a
        // backfill as slow as one bus commit per row.
        let chunks = stream.ready_chunks(ITEMS_AT_ONCE);
        futures::pin_mut!(chunks);
        while let Some(chunk) = chunks.next().await {
            let mut items = Vec::with_capacity(chunk.len());
            for item in chunk {
                let item = item?;
                if answer.results.len() + items.len() >= MAX_BATCH_ITEMS {
                    return Err(Status::invalid_argument(format!(
                        "a SubmitBatch call carries at most {MAX_BATCH_ITEMS} items: split the stream into several calls"
                    )));
                }
                let admitted = self.admit(&item);
                items.push((item, admitted));
            }
            let deliveries: Vec<Delivery<'_>> = items
                .iter()
                .filter_map(|(item, admitted)| {
                    let headers = admitted.as_ref().ok()?;
                    Some(Delivery {
                        source: &item.source,
                        headers,
                        body: Bytes::from(item.body.clone()),
                        origin: origin_of(item),
                    })
                })
                .collect();
            let mut accepted = self.ingestor.accept_many(deliveries).await.into_iter();
            for (_, admitted) in &items {
                let result = match admitted {
                    Ok(_) => accepted.next().unwrap_or_else(|| Err(no_answer())),
                    Err(e) => Err(e.clone()),
                };
                let outcome = match result.map(response_of) {
                    Ok(response) => {
                        if !response.published {
                            answer.ignored += 1;
                        } else if response.duplicate {
                            answer.duplicates += 1;
                        } else {
                            answer.accepted += 1;
                        }
                        Outcome::Response(response)
                    }
                    // Nothing after this item can be stored either: fail the call so the client
                    // retries it (items already stored come back as duplicates) rather than count
                    // the rest as refused.
                    Err(e) if e.kind == ErrorKind::Unavailable => return Err(e.into()),
                    Err(e) => {
                        answer.rejected += 1;
                        Outcome::Error(SubmitError {
                            code: e.code.to_string(),
                            http_status: u32::from(e.kind.http_status().as_u16()),
                            message: e.message,
                        })
                    }
                };
                answer.results.push(SubmitResult {
                    outcome: Some(outcome),
                });
            }
        }
        Ok(Response::new(answer))
    }
}

fn origin_of(request: &SubmitRequest) -> Origin {
    if request.historical {
        Origin::Backfill
    } else {
        Origin::Live
    }
}

#[tonic::async_trait]
impl Ingest for IngestApi {
    async fn submit(
        &self,
        request: Request<SubmitRequest>,
    ) -> Result<Response<SubmitResponse>, Status> {
        let span = call_span("ingest.submit", &request);
        Ok(Response::new(
            self.submit_one(request.into_inner())
                .instrument(span)
                .await?,
        ))
    }

    async fn submit_batch(
        &self,
        request: Request<Streaming<SubmitRequest>>,
    ) -> Result<Response<SubmitBatchResponse>, Status> {
        let span = call_span("ingest.submit_batch", &request);
        self.submit_stream(request.into_inner())
            .instrument(span)
            .await
    }
}

/// A span for a gRPC call, a child of the trace its caller sent in the metadata (W3C
/// `traceparent`), if any.
fn call_span<T>(name: &'static str, request: &Request<T>) -> tracing::Span {
    let span = tracing::info_span!("grpc", otel.name = name);
    let metadata = request.metadata().clone().into_headers();
    herald_events::trace::set_parent_from_pairs(
        &span,
        metadata
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?))),
    );
    span
}
