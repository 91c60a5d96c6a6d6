//! The JSON error contract of every HTTP API: `{"error":{"code":"...","message":"..."}}` with a
//! meaningful status. Malformed input is a 400 with the reason, never a 500; gRPC statuses from
//! backends map onto the matching HTTP status.

use axum::{
    Json,
    extract::{
        FromRequest, FromRequestParts, Path, Query, Request,
        rejection::{JsonRejection, PathRejection, QueryRejection},
    },
    http::{StatusCode, request::Parts},
    response::{IntoResponse, Response},
};
use serde::{Serialize, de::DeserializeOwned};

/// An error answered to an HTTP client.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds for a `Retry-After` header (429 and 503 answers that know when to come back).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }
    /// The same error with a `Retry-After: secs` header.
    pub fn with_retry_after(self, secs: u64) -> Self {
        Self {
            retry_after: Some(secs),
            ..self
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: &self.message,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

impl From<tonic::Status> for ApiError {
    fn from(status: tonic::Status) -> Self {
        use tonic::Code;
        let message = status.message().to_string();
        // A backend that refuses for now says when to come back (`retry-after` metadata, in
        // seconds, as the auth service's throttling does); the client gets it as `Retry-After`.
        let retry_after = status
            .metadata()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let error = match status.code() {
            Code::InvalidArgument | Code::OutOfRange => Self::bad_request(message),
            Code::NotFound => Self::not_found(message),
            Code::AlreadyExists | Code::Aborted => Self::conflict(message),
            Code::FailedPrecondition => {
                Self::new(StatusCode::CONFLICT, "failed_precondition", message)
            }
            Code::Unauthenticated => Self::unauthorized(message),
            Code::PermissionDenied => Self::new(StatusCode::FORBIDDEN, "forbidden", message),
            Code::ResourceExhausted => {
                Self::new(StatusCode::TOO_MANY_REQUESTS, "resource_exhausted", message)
            }
            Code::Unavailable => Self::unavailable(message),
            Code::DeadlineExceeded | Code::Cancelled => {
                Self::new(StatusCode::GATEWAY_TIMEOUT, "timeout", message)
            }
            _ => Self::internal(message),
        };
        match retry_after {
            Some(secs) => error.with_retry_after(secs),
            None => error,
        }
    }
}

/// `Json<T>` whose rejections are 400s in the error contract (axum answers 415/422 in plain text).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::bad_request("expected a JSON body with content-type: application/json")
        }
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            other.body_text(),
        ),
        other => ApiError::bad_request(other.body_text()),
    }
}

/// `Path<T>` whose rejections are errors in the error contract (axum answers in plain text):
/// a path segment that does not parse as `T` is a 400.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(Self(value)),
            Err(rejection) => Err(path_rejection(rejection)),
        }
    }
}

fn path_rejection(rejection: PathRejection) -> ApiError {
    if rejection.status().is_client_error() {
        ApiError::bad_request(rejection.body_text())
    } else {
        ApiError::internal(rejection.body_text())
    }
}

/// `Query<T>` whose rejections are 400s in the error contract (axum answers in plain text).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(query_rejection(rejection)),
        }
    }
}

fn query_rejection(rejection: QueryRejection) -> ApiError {
    ApiError::bad_request(rejection.body_text())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backends_retry_after_becomes_the_header() {
        let mut metadata = tonic::metadata::MetadataMap::new();
        metadata.insert("retry-after", 7u64.into());
        let status =
            tonic::Status::with_metadata(tonic::Code::ResourceExhausted, "slow down", metadata);
        let error = ApiError::from(status);
        assert_eq!(error.status, StatusCode::TOO_MANY_REQUESTS);
        let response = error.into_response();
        assert_eq!(response.headers()["retry-after"], "7");
        let plain = ApiError::from(tonic::Status::resource_exhausted("x")).into_response();
        assert!(plain.headers().get("retry-after").is_none());
    }

    #[test]
    fn grpc_codes_map_to_http() {
        assert_eq!(
            ApiError::from(tonic::Status::not_found("x")).status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            ApiError::from(tonic::Status::invalid_argument("x")).status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            ApiError::from(tonic::Status::unavailable("x")).status,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            ApiError::from(tonic::Status::internal("x")).status,
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
