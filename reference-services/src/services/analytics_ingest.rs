//! Analytics ingest (HTTP): the front door for clickstream events. `POST /v1/events` validates a
//! page view and publishes it to Kafka topic `page.viewed`.
//!
//! Page views are high volume and worth little one by one, so there is no database and no
//! outbox: the event goes straight to Kafka and the client gets 202 only once the broker
//! acknowledged it. If Kafka does not acknowledge within [`PUBLISH_DEADLINE`] (plus the
//! producer's timer granularity) the answer is 503. The producer itself gives up on the message
//! at that deadline, so a refused event normally does not arrive later behind the client's back
//! and a client retry does not count the view twice; only a message already on the wire when
//! the deadline passes can still land (at-least-once, as for any Kafka producer).

use std::{sync::Arc, time::Duration};

use anyhow::Result;
use axum::{Json, Router, extract::State, http::StatusCode, routing::post};
use rdkafka::producer::FutureProducer;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::platform::{
    api::{ApiError, ApiJson},
    events::{self, Envelope, TOPIC_PAGE_VIEWED},
    http::Runtime,
    metrics::{HttpRoute, Metrics},
};

/// How long a client waits for Kafka's acknowledgement before it is told 503.
pub const PUBLISH_DEADLINE: Duration = Duration::from_secs(2);
/// The one event type accepted.
pub const PAGE_VIEWED: &str = "page.viewed";
pub const MAX_URL_CHARS: usize = 2048;
/// Longest session or user id.
pub const MAX_ID_CHARS: usize = 200;

/// Runs the ingest API until shutdown.
pub async fn run(mut rt: Runtime) -> Result<()> {
    let producer = events::producer_with_timeout(rt.config.require_kafka()?, PUBLISH_DEADLINE)?;
    rt.readiness
        .add("kafka", events::metadata_check(producer.clone()));
    // Graceful shutdown drains in-flight requests, and each waits for its acknowledgement, so
    // nothing is left in the producer's queue to flush when serving ends.
    let ingest = Ingest {
        producer,
        metrics: rt.metrics.clone(),
    };
    let router = Router::new()
        .route("/v1/events", post(ingest_event))
        .with_state(ingest);
    rt.metrics
        .declare_http_routes(&[HttpRoute::new("POST", "/v1/events", 202)], &[]);
    rt.serve(router).await
}

#[derive(Clone)]
struct Ingest {
    producer: FutureProducer,
    metrics: Arc<Metrics>,
}

/// What is wrong with a [`PageView`]; the message is the 400 response's.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPageView {
    #[error("type must be {PAGE_VIEWED:?}")]
    Type,
    #[error("url must be 1 to {MAX_URL_CHARS} characters")]
    Url,
    #[error("product_id must be positive")]
    ProductId,
    /// `field` is `session_id` or `user_id`.
    #[error("{field} must be at most {MAX_ID_CHARS} characters")]
    IdTooLong { field: &'static str },
}

/// The body of `POST /v1/events`.
#[derive(Debug, Deserialize)]
pub struct PageView {
    #[serde(rename = "type")]
    pub event_type: String,
    pub url: String,
    pub product_id: Option<i64>,
    pub session_id: Option<String>,
    pub user_id: Option<String>,
}

impl PageView {
    /// Checks the event; the error says what is wrong.
    pub fn validate(&self) -> Result<(), InvalidPageView> {
        if self.event_type != PAGE_VIEWED {
            return Err(InvalidPageView::Type);
        }
        let url = self.url.trim();
        if url.is_empty() || url.chars().count() > MAX_URL_CHARS {
            return Err(InvalidPageView::Url);
        }
        if self.product_id.is_some_and(|id| id <= 0) {
            return Err(InvalidPageView::ProductId);
        }
        for (name, value) in [("session_id", &self.session_id), ("user_id", &self.user_id)] {
            if value
                .as_ref()
                .is_some_and(|v| v.chars().count() > MAX_ID_CHARS)
            {
                return Err(InvalidPageView::IdTooLong { field: name });
            }
        }
        Ok(())
    }

    /// The partition key: a session's (else a user's) views stay in order on one partition.
    fn key<'a>(&'a self, event_id: &'a str) -> &'a str {
        self.session_id
            .as_deref()
            .or(self.user_id.as_deref())
            .unwrap_or(event_id)
    }
}

/// `POST /v1/events`: 202 `{event_id}` once Kafka acknowledged, 400 for a bad event, 503 when
/// Kafka does not acknowledge in time.
async fn ingest_event(
    State(ingest): State<Ingest>,
    ApiJson(view): ApiJson<PageView>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    view.validate()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let envelope = Envelope::new(
        PAGE_VIEWED,
        json!({
            "url": view.url.trim(),
            "product_id": view.product_id,
            "session_id": view.session_id,
            "user_id": view.user_id,
        }),
    );
    let key = view.key(&envelope.event_id);
    let publish = events::publish(
        &ingest.producer,
        &ingest.metrics,
        TOPIC_PAGE_VIEWED,
        key,
        &envelope,
    );
    // The producer fails the message at the deadline, checked on a scan of about a second, so
    // the guard leaves that much slack: the answer comes from the producer's verdict, and a
    // refused message is really dropped. The guard itself only protects against a hang.
    match tokio::time::timeout(PUBLISH_DEADLINE + Duration::from_millis(1500), publish).await {
        Ok(Ok(())) => Ok((
            StatusCode::ACCEPTED,
            Json(json!({ "event_id": envelope.event_id })),
        )),
        Ok(Err(e)) => {
            tracing::warn!(error = %format!("{e:#}"), "page view not accepted by Kafka");
            Err(ApiError::unavailable(
                "event stream unavailable; retry later",
            ))
        }
        Err(_) => Err(ApiError::unavailable(
            "event stream did not acknowledge in time",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(event_type: &str, url: &str) -> PageView {
        PageView {
            event_type: event_type.into(),
            url: url.into(),
            product_id: None,
            session_id: None,
            user_id: None,
        }
    }

    #[test]
    fn accepts_page_views_only() {
        assert!(view("page.viewed", "/products/1").validate().is_ok());
        let wrong_type = view("order.created", "/products/1").validate().unwrap_err();
        assert_eq!(wrong_type, InvalidPageView::Type);
        assert_eq!(wrong_type.to_string(), r#"type must be "page.viewed""#);
        assert_eq!(
            view("page.viewed", " ").validate(),
            Err(InvalidPageView::Url)
        );
        assert_eq!(
            view("page.viewed", &"u".repeat(MAX_URL_CHARS + 1)).validate(),
            Err(InvalidPageView::Url)
        );
        let bad_product = PageView {
            product_id: Some(0),
            ..view("page.viewed", "/p")
        };
        let error = bad_product.validate().unwrap_err();
        assert_eq!(error, InvalidPageView::ProductId);
        assert_eq!(error.to_string(), "product_id must be positive");
        let long_session = PageView {
            session_id: Some("s".repeat(MAX_ID_CHARS + 1)),
            ..view("page.viewed", "/p")
        };
        assert_eq!(
            long_session.validate().unwrap_err().to_string(),
            format!("session_id must be at most {MAX_ID_CHARS} characters")
        );
    }

    #[test]
    fn keys_by_session_then_user_then_event() {
        let mut v = view("page.viewed", "/");
        assert_eq!(v.key("e1"), "e1");
        v.user_id = Some("u1".into());
        assert_eq!(v.key("e1"), "u1");
        v.session_id = Some("s1".into());
        assert_eq!(v.key("e1"), "s1");
    }
}
