//! One error type for HTTP and gRPC APIs: its kind decides both statuses, its code is a stable
//! machine-readable name, its message tells the caller what to fix.
//!
//! HTTP body: `{"error": {"code": "...", "message": "..."}}`.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};

/// The class of failure, which fixes the HTTP and gRPC status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 400 / INVALID_ARGUMENT: the request cannot be parsed.
    Malformed,
    /// 401 / UNAUTHENTICATED: signature or token missing or wrong.
    Unauthenticated,
    /// 404 / NOT_FOUND.
    NotFound,
    /// 413 / RESOURCE_EXHAUSTED: the body is over the limit.
    TooLarge,
    /// 415 / INVALID_ARGUMENT: a content type Herald does not read.
    UnsupportedMediaType,
    /// 422 / INVALID_ARGUMENT: well-formed, but not a usable request.
    Unprocessable,
    /// 503 / UNAVAILABLE: a dependency is down; retry later.
    Unavailable,
    /// 500 / INTERNAL.
    Internal,
}

impl ErrorKind {
    pub fn http_status(self) -> StatusCode {
        match self {
            ErrorKind::Malformed => StatusCode::BAD_REQUEST,
            ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorKind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn grpc_code(self) -> tonic::Code {
        match self {
            ErrorKind::Malformed | ErrorKind::UnsupportedMediaType | ErrorKind::Unprocessable => {
                tonic::Code::InvalidArgument
            }
            ErrorKind::Unauthenticated => tonic::Code::Unauthenticated,
            ErrorKind::NotFound => tonic::Code::NotFound,
            ErrorKind::TooLarge => tonic::Code::ResourceExhausted,
            ErrorKind::Unavailable => tonic::Code::Unavailable,
            ErrorKind::Internal => tonic::Code::Internal,
        }
    }
}

/// An error answered to a caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub kind: ErrorKind,
    /// Stable snake_case name, e.g. `signature_mismatch`.
    pub code: &'static str,
    /// What went wrong and what to do about it, in lower case.
    pub message: String,
}

impl ApiError {
    pub fn new(kind: ErrorKind, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            code,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, "not_found", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, "internal", message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, "unavailable", message)
    }

    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({ "error": { "code": self.code, "message": self.message } })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.kind.http_status(), Json(self.body())).into_response();
        if self.kind == ErrorKind::Unavailable {
            // Tells well-behaved senders to come back rather than give up.
            response
                .headers_mut()
                .insert("retry-after", axum::http::HeaderValue::from_static("5"));
        }
        response
    }
}

impl From<ApiError> for tonic::Status {
    fn from(e: ApiError) -> Self {
        let mut status = tonic::Status::new(e.kind.grpc_code(), e.message);
        if let Ok(code) = e.code.parse() {
            status.metadata_mut().insert("herald-error-code", code);
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_maps_to_the_documented_statuses() {
        let cases = [
            (ErrorKind::Malformed, 400, tonic::Code::InvalidArgument),
            (
                ErrorKind::Unauthenticated,
                401,
                tonic::Code::Unauthenticated,
            ),
            (ErrorKind::NotFound, 404, tonic::Code::NotFound),
            (ErrorKind::TooLarge, 413, tonic::Code::ResourceExhausted),
            (ErrorKind::Unprocessable, 422, tonic::Code::InvalidArgument),
            (ErrorKind::Unavailable, 503, tonic::Code::Unavailable),
        ];
        for (kind, http, grpc) in cases {
            assert_eq!(kind.http_status().as_u16(), http);
            assert_eq!(kind.grpc_code(), grpc);
        }
    }

    #[test]
    fn the_body_has_code_and_message() {
        let e = ApiError::new(
            ErrorKind::Unauthenticated,
            "signature_mismatch",
            "check the secret",
        );
        assert_eq!(
            e.body(),
            serde_json::json!({"error": {"code": "signature_mismatch", "message": "check the secret"}})
        );
        let status = tonic::Status::from(e);
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
        assert_eq!(status.message(), "check the secret");
    }
}
