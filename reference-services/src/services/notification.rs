//! Notification service: turns order and payment events into customer notifications (order
//! confirmation, cancellation, payment receipt, refund).
//!
//! It only consumes Kafka (topics `orders` and `payments`); no real e-mail leaves the process.
//! The event id is the notification's primary key, so a redelivered event never notifies a
//! customer twice: it is skipped and counted as a duplicate. A small read API lets operators and
//! tests see what was sent.

use std::collections::BTreeMap;

use anyhow::Result;
use axum::{
    Json, Router,
    extract::{Query, State},
    routing::get,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::platform::{
    api::ApiError,
    events::{self, Envelope, TOPIC_ORDERS, TOPIC_PAYMENTS},
    http::Runtime,
    metrics::{HttpRoute, Metrics, TopicLabels},
    storage::Db,
};

pub const CONSUMER_GROUP: &str = "notification-group";
/// Most notifications the read API returns (the most recent ones).
const LIST_LIMIT: i64 = 100;

/// Runs the notification consumer and its read API until shutdown.
pub async fn run(mut rt: Runtime) -> Result<()> {
    let db = Db::connect(&rt.config).await?;
    db.migrate(&schema()).await?;
    let bootstrap = rt.config.require_kafka()?;
    let consumer = events::consumer(bootstrap, CONSUMER_GROUP, &[TOPIC_ORDERS, TOPIC_PAYMENTS])?;

    let ping_db = db.clone();
    rt.readiness.add("database", move || {
        let db = ping_db.clone();
        async move { db.ping().await }
    });
    rt.readiness.add(
        "kafka",
        events::metadata_check(events::producer(bootstrap)?),
    );

    let store = Store {
        db: db.clone(),
        metrics: rt.metrics.clone(),
    };
    rt.shutdown.spawn(events::consume(
        consumer,
        rt.metrics.clone(),
        rt.shutdown.clone(),
        move |topic, envelope| {
            let store = store.clone();
            async move { store.record(&topic, &envelope).await }
        },
    ));
    let router = Router::new()
        .route("/v1/notifications", get(list))
        .route("/v1/notifications/stats", get(stats))
        .with_state(db);
    rt.metrics.declare_http_routes(
        &[
            HttpRoute::new("GET", "/v1/notifications", 200),
            HttpRoute::new("GET", "/v1/notifications/stats", 200),
        ],
        &[],
    );
    rt.serve(router).await
}

fn schema() -> Vec<String> {
    vec![
        "CREATE TABLE IF NOT EXISTS notifications (
            event_id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            event_type TEXT NOT NULL,
            message TEXT NOT NULL,
            created_at BIGINT NOT NULL
        )"
        .to_string(),
        "CREATE INDEX IF NOT EXISTS notifications_by_user ON notifications (user_id, created_at)"
            .to_string(),
    ]
}

/// A notification as stored and listed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Notification {
    pub event_id: String,
    pub user_id: String,
    pub kind: String,
    pub event_type: String,
    pub message: String,
    /// When the event happened, in milliseconds since the Unix epoch.
    pub created_at: i64,
}

/// The notification an event calls for, if any (other event types notify nobody).
pub fn notification_for(envelope: &Envelope) -> Option<Notification> {
    let data = &envelope.data;
    let order_id = data["order_id"].as_str().unwrap_or("?");
    let (kind, message) = match envelope.event_type.as_str() {
        "order.created" => (
            "order_confirmation",
            format!(
                "Your order {order_id} is confirmed: {} item(s), total {}.",
                item_count(data),
                dollars(data["total_cents"].as_i64().unwrap_or(0))
            ),
        ),
        "order.cancelled" => (
            "order_cancelled",
            format!("Your order {order_id} was cancelled."),
        ),
        "payment.succeeded" => (
            "payment_receipt",
            format!(
                "We received your payment of {} for order {order_id} ({}).",
                dollars(data["amount_cents"].as_i64().unwrap_or(0)),
                data["method"].as_str().unwrap_or("unknown method")
            ),
        ),
        "payment.refunded" => (
            "payment_refund",
            format!(
                "Your payment of {} for order {order_id} was refunded.",
                dollars(data["amount_cents"].as_i64().unwrap_or(0))
            ),
        ),
        _ => return None,
    };
    let user_id = data["user_id"].as_str().filter(|u| !u.is_empty())?;
    Some(Notification {
        event_id: envelope.event_id.clone(),
        user_id: user_id.to_string(),
        kind: kind.to_string(),
        event_type: envelope.event_type.clone(),
        message,
        created_at: envelope.occurred_at,
    })
}

fn item_count(data: &Value) -> i64 {
    let items = data["items"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    items.iter().filter_map(|i| i["quantity"].as_i64()).sum()
}

/// `1234` cents as `$12.34`.
fn dollars(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    format!("{sign}${}.{:02}", cents.abs() / 100, cents.abs() % 100)
}

#[derive(Clone)]
struct Store {
    db: Db,
    metrics: std::sync::Arc<Metrics>,
}

impl Store {
    /// Stores the event's notification once; a redelivery is skipped and counted.
    async fn record(&self, topic: &str, envelope: &Envelope) -> Result<()> {
        let Some(n) = notification_for(envelope) else {
            return Ok(());
        };
        let inserted = sqlx::query(
            "INSERT INTO notifications (event_id, user_id, kind, event_type, message, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(&n.event_id)
        .bind(&n.user_id)
        .bind(&n.kind)
        .bind(&n.event_type)
        .bind(&n.message)
        .bind(n.created_at)
        .execute(&self.db.pool)
        .await?
        .rows_affected();
        if inserted == 0 {
            self.metrics
                .events_duplicate
                .get_or_create(&TopicLabels {
                    topic: topic.to_string(),
                })
                .inc();
        } else {
            tracing::info!(user_id = %n.user_id, kind = %n.kind, "notification sent");
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct ListParams {
    user_id: Option<String>,
}

/// `GET /v1/notifications?user_id=X`: the user's most recent notifications, newest first.
async fn list(
    State(db): State<Db>,
    Query(params): Query<ListParams>,
) -> Result<Json<Value>, ApiError> {
    let user_id = params
        .user_id
        .filter(|u| !u.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request("query parameter user_id is required"))?;
    let rows: Vec<(String, String, String, String, String, i64)> = sqlx::query_as(
        "SELECT event_id, user_id, kind, event_type, message, created_at FROM notifications
         WHERE user_id = $1 ORDER BY created_at DESC, event_id LIMIT $2",
    )
    .bind(&user_id)
    .bind(LIST_LIMIT)
    .fetch_all(&db.pool)
    .await
    .map_err(internal)?;
    let notifications: Vec<Notification> = rows
        .into_iter()
        .map(
            |(event_id, user_id, kind, event_type, message, created_at)| Notification {
                event_id,
                user_id,
                kind,
                event_type,
                message,
                created_at,
            },
        )
        .collect();
    Ok(Json(json!({ "notifications": notifications })))
}

/// `GET /v1/notifications/stats`: how many notifications, by event type.
async fn stats(State(db): State<Db>) -> Result<Json<Value>, ApiError> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT event_type, COUNT(*) FROM notifications GROUP BY event_type ORDER BY event_type",
    )
    .fetch_all(&db.pool)
    .await
    .map_err(internal)?;
    let total: i64 = rows.iter().map(|(_, n)| n).sum();
    let by_type: BTreeMap<String, i64> = rows.into_iter().collect();
    Ok(Json(json!({ "total": total, "by_type": by_type })))
}

fn internal(err: sqlx::Error) -> ApiError {
    tracing::error!(error = %err, "database error");
    ApiError::internal("database error")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(event_type: &str, data: Value) -> Envelope {
        Envelope::new(event_type, data)
    }

    #[test]
    fn each_customer_event_has_its_notification() {
        let created = envelope(
            "order.created",
            json!({"order_id": "o1", "user_id": "u1", "total_cents": 2507,
                   "items": [{"product_id": 1, "quantity": 2}, {"product_id": 2, "quantity": 1}]}),
        );
        let n = notification_for(&created).unwrap();
        assert_eq!(
            (n.kind.as_str(), n.user_id.as_str()),
            ("order_confirmation", "u1")
        );
        assert_eq!(
            n.message,
            "Your order o1 is confirmed: 3 item(s), total $25.07."
        );

        let paid = envelope(
            "payment.succeeded",
            json!({"order_id": "o1", "user_id": "u1", "amount_cents": 5, "method": "card"}),
        );
        let n = notification_for(&paid).unwrap();
        assert_eq!(n.kind, "payment_receipt");
        assert!(n.message.contains("$0.05"), "{}", n.message);

        let cancelled = envelope(
            "order.cancelled",
            json!({"order_id": "o1", "user_id": "u1"}),
        );
        assert_eq!(
            notification_for(&cancelled).unwrap().kind,
            "order_cancelled"
        );

        let refunded = envelope(
            "payment.refunded",
            json!({"order_id": "o1", "user_id": "u1", "amount_cents": 2507}),
        );
        let n = notification_for(&refunded).unwrap();
        assert_eq!(n.kind, "payment_refund");
        assert_eq!(
            n.message,
            "Your payment of $25.07 for order o1 was refunded."
        );
    }

    #[test]
    fn other_events_and_events_without_a_user_notify_nobody() {
        assert!(notification_for(&envelope("order.paid", json!({"user_id": "u1"}))).is_none());
        assert!(notification_for(&envelope("order.created", json!({"order_id": "o1"}))).is_none());
    }
}
