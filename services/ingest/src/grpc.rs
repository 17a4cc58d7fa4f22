//! `herald.v1.Ingest`: the webhook path over gRPC.

use std::sync::Arc;

use bytes::Bytes;
use herald_proto::v1::{SubmitRequest, SubmitResponse, ingest_server::Ingest};
use herald_runtime::{ApiError, ErrorCode};
use http::{HeaderMap, HeaderName, HeaderValue};
use tonic::{Request, Response, Status};

use crate::accept::{Accepted, Ingestor};

pub struct IngestApi {
    pub ingestor: Arc<Ingestor>,
    pub max_body_bytes: usize,
}

fn header_map(headers: &std::collections::HashMap<String, String>) -> Result<HeaderMap, ApiError> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            ApiError::new(
                ErrorCode::Malformed,
                "bad_header",
                format!("{name:?} is not a valid header name"),
            )
        })?;
        let value = HeaderValue::from_str(value).map_err(|_| {
            ApiError::new(
                ErrorCode::Malformed,
                "bad_header",
                format!("the value of {name} is not a valid header value"),
            )
        })?;
        map.append(name, value);
    }
    Ok(map)
}

#[tonic::async_trait]
impl Ingest for IngestApi {
    async fn submit(
        &self,
        request: Request<SubmitRequest>,
    ) -> Result<Response<SubmitResponse>, Status> {
        let request = request.into_inner();
        self.ingestor.check_source(&request.source)?;
        if request.body.len() > self.max_body_bytes {
            return Err(ApiError::new(
                ErrorCode::TooLarge,
                "body_too_large",
                format!(
                    "the body is larger than the {} bytes ingest accepts",
                    self.max_body_bytes
                ),
            )
            .into());
        }
        let headers = header_map(&request.headers)?;
        let accepted = self
            .ingestor
            .accept(&request.source, &headers, Bytes::from(request.body))
            .await?;
        Ok(Response::new(match accepted {
            Accepted::Published { id, duplicate } => SubmitResponse {
                id,
                duplicate,
                published: true,
                note: String::new(),
            },
            Accepted::Ignored { id, note } => SubmitResponse {
                id: id.unwrap_or_default(),
                duplicate: false,
                published: false,
                note,
            },
        }))
    }
}
