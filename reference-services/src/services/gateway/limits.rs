//! What keeps the gateway answering under overload: a bound on requests in flight beyond which
//! requests are shed at once (503 with `Retry-After`) instead of queueing without end, and a time
//! budget per request after which it is answered 504. The budget (or the client's smaller one,
//! see [`deadline::client_budget`]) is also the deadline of every backend call the request makes.
//!
//! Only the API routes are guarded: `/health`, `/ready` and `/metrics` keep answering under load,
//! so probes do not restart a pod for being busy and its metrics can still be scraped.

use std::time::{Duration, Instant};

use axum::{
    BoxError, Router,
    error_handling::HandleErrorLayer,
    extract::{Request, State},
    http::StatusCode,
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use tower::{ServiceBuilder, limit::GlobalConcurrencyLimitLayer, load_shed::LoadShedLayer};

use crate::platform::{api::ApiError, config::parse_env, deadline};

/// Default time budget of a request: ten times the platform's 500 ms latency objective, so a
/// slow-but-working request still succeeds, and half the 10 s deadline of the gRPC channels, so
/// the gateway answers before any backend call times out on its own.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Default bound on requests in flight: 2.5 times the 100 concurrent virtual users of the
/// platform's reference load, so that load is never shed even by a single gateway pod.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 256;
/// Default `Retry-After` of a shed request, in seconds (the header's unit).
pub const DEFAULT_RETRY_AFTER_SECS: u64 = 1;

/// The gateway's limits (environment variables in brackets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Time budget of a request (`GATEWAY_REQUEST_TIMEOUT_MS`).
    pub request_timeout: Duration,
    /// Requests served at once; more are answered 503 (`GATEWAY_MAX_IN_FLIGHT`).
    pub max_in_flight: usize,
    /// `Retry-After` of a 503 from shedding, in seconds (`GATEWAY_RETRY_AFTER_SECS`).
    pub retry_after_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            retry_after_secs: DEFAULT_RETRY_AFTER_SECS,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LimitsError(String);

impl Limits {
    /// The defaults, overridden by the variables that are set.
    pub fn from_env() -> Result<Self, LimitsError> {
        let read = |name| parse_env::<u64>(name).map_err(|e| LimitsError(format!("{e:#}")));
        let positive = |name, value: Option<u64>| match value {
            Some(0) => Err(LimitsError(format!("{name} must be at least 1"))),
            other => Ok(other),
        };
        let defaults = Self::default();
        let timeout_ms = positive(
            "GATEWAY_REQUEST_TIMEOUT_MS",
            read("GATEWAY_REQUEST_TIMEOUT_MS")?,
        )?;
        let in_flight = positive("GATEWAY_MAX_IN_FLIGHT", read("GATEWAY_MAX_IN_FLIGHT")?)?;
        Ok(Self {
            request_timeout: timeout_ms.map_or(defaults.request_timeout, Duration::from_millis),
            max_in_flight: in_flight.map_or(Ok(defaults.max_in_flight), |n| {
                usize::try_from(n)
                    .map_err(|_| LimitsError("GATEWAY_MAX_IN_FLIGHT is too large".into()))
            })?,
            retry_after_secs: read("GATEWAY_RETRY_AFTER_SECS")?
                .unwrap_or(defaults.retry_after_secs),
        })
    }
}

/// `api` with the limits applied to each of its routes (and its fallbacks). The bound on
/// requests in flight is one semaphore shared by every route, not one per route.
pub fn guard(api: Router, limits: Limits) -> Router {
    let retry_after = limits.retry_after_secs;
    api.layer(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(move |error: BoxError| async move {
                shed(error, retry_after)
            }))
            .layer(LoadShedLayer::new())
            .layer(GlobalConcurrencyLimitLayer::new(limits.max_in_flight))
            .layer(middleware::from_fn_with_state(
                limits.request_timeout,
                within_budget,
            )),
    )
}

/// Answers a request refused by the layers: 503 with `Retry-After` when shed for overload.
fn shed(error: BoxError, retry_after_secs: u64) -> Response {
    if error.is::<tower::load_shed::error::Overloaded>() {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "the gateway is serving as many requests as it can; retry later",
        )
        .with_retry_after(retry_after_secs)
        .into_response();
    }
    tracing::error!(%error, "request failed in the gateway's middleware");
    ApiError::internal("the request could not be served").into_response()
}

/// Serves the request within its budget (the gateway's, or the client's if smaller), with that
/// deadline on every backend call it makes; past it, 504.
async fn within_budget(State(budget): State<Duration>, req: Request, next: Next) -> Response {
    let budget = deadline::client_budget(req.headers()).map_or(budget, |asked| asked.min(budget));
    let work = deadline::scope(Instant::now() + budget, next.run(req));
    match tokio::time::timeout(budget, work).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            format!(
                "the request did not complete within its {} ms budget",
                budget.as_millis()
            ),
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use axum::{body::Body, http::header, routing::get};
    use serde_json::Value;
    use tower::ServiceExt;

    use super::*;
    use crate::testkit::DEADLINE;

    /// A route that never answers: only the budget can end its requests.
    fn never_answers(limits: Limits) -> Router {
        guard(
            Router::new().route("/slow", get(std::future::pending::<&'static str>)),
            limits,
        )
    }

    async fn send(app: Router, request: axum::http::Request<Body>) -> (StatusCode, Value) {
        let response = tokio::time::timeout(DEADLINE, app.oneshot(request))
            .await
            .expect("the request was not answered")
            .unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 64 * 1024)
            .await
            .unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn a_request_past_its_budget_gets_a_504() {
        let limits = Limits {
            request_timeout: Duration::from_millis(50),
            ..Limits::default()
        };
        let request = axum::http::Request::get("/slow")
            .body(Body::empty())
            .unwrap();
        let (status, body) = send(never_answers(limits), request).await;
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
        assert_eq!(body["error"]["code"], "timeout", "{body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains("50 ms"),
            "{body}"
        );
    }

    #[tokio::test]
    async fn the_clients_smaller_budget_wins() {
        let limits = Limits {
            request_timeout: Duration::from_secs(3600),
            ..Limits::default()
        };
        let request = axum::http::Request::get("/slow")
            .header(deadline::REQUEST_TIMEOUT_HEADER, "40")
            .body(Body::empty())
            .unwrap();
        let (status, body) = send(never_answers(limits), request).await;
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains("40 ms"),
            "{body}"
        );
    }

    #[test]
    fn shed_requests_are_503s_with_retry_after_in_the_error_contract() {
        let response = shed(tower::load_shed::error::Overloaded::new().into(), 7);
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "7");
        let other = shed("something else".into(), 7);
        assert_eq!(other.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(other.headers().get(header::RETRY_AFTER).is_none());
    }
}
