//! Audit service: an append-only log of every event on every platform topic, for compliance
//! questions ("what happened to order X, and in which trace?") and for checking end to end that
//! what services announced actually went through Kafka.
//!
//! Rows are never updated or deleted. The event id is unique, so a redelivered event is stored
//! once and counted as a duplicate. A read API lists events by type and counts them.

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
    accounting,
    api::ApiError,
    events::{self, ALL_TOPICS, Envelope, ORDER_CREATED},
    http::Runtime,
    metrics::{HttpRoute, Metrics, TopicLabels},
    storage::Db,
};

pub const CONSUMER_GROUP: &str = "audit-group";
pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 1000;

/// Runs the audit consumer and its read API until shutdown.
pub async fn run(mut rt: Runtime) -> Result<()> {
    let db = Db::connect(&rt.config).await?;
    db.migrate(&schema(&db)).await?;
    let bootstrap = rt.config.require_kafka()?;
    let consumer = events::consumer(bootstrap, CONSUMER_GROUP, &ALL_TOPICS)?;

    let ping_db = db.clone();
    rt.readiness.add("database", move || {
        let db = ping_db.clone();
        async move { db.ping().await }
    });
    rt.readiness.add(
        "kafka",
        events::metadata_check(events::producer(bootstrap)?),
    );

    let count_db = db.clone();
    rt.accounting
        .count(accounting::ORDER_CREATED_EVENTS, move || {
            let db = count_db.clone();
            async move {
                let order_id = db.json_text("payload", "order_id");
                let query = format!(
                    "SELECT COUNT(DISTINCT {order_id}) FROM audit_log WHERE event_type = $1"
                );
                accounting::count_rows(&db.pool, &query, Some(ORDER_CREATED)).await
            }
        });

    let log = AuditLog {
        db: db.clone(),
        metrics: rt.metrics.clone(),
    };
    rt.shutdown.spawn(events::consume(
        consumer,
        rt.metrics.clone(),
        rt.shutdown.clone(),
        move |topic, envelope| {
            let log = log.clone();
            async move { log.append(&topic, &envelope).await }
        },
    ));
    let router = Router::new()
        .route("/v1/audit/events", get(list))
        .route("/v1/audit/stats", get(stats))
        .with_state(db);
    rt.metrics.declare_http_routes(
        &[
            HttpRoute::new("GET", "/v1/audit/events", 200),
            HttpRoute::new("GET", "/v1/audit/stats", 200),
        ],
        &[],
    );
    rt.serve(router).await
}

fn schema(db: &Db) -> Vec<String> {
    vec![
        // seq keeps arrival order; event_id is what makes a redelivery recognisable.
        format!(
            "CREATE TABLE IF NOT EXISTS audit_log (
                seq {},
                event_id TEXT NOT NULL UNIQUE,
                topic TEXT NOT NULL,
                event_type TEXT NOT NULL,
                occurred_at BIGINT NOT NULL,
                trace_id TEXT,
                payload TEXT NOT NULL,
                recorded_at BIGINT NOT NULL
            )",
            db.serial_key()
        ),
        "CREATE INDEX IF NOT EXISTS audit_log_by_type ON audit_log (event_type, seq)".to_string(),
    ]
}

#[derive(Clone)]
struct AuditLog {
    db: Db,
    metrics: std::sync::Arc<Metrics>,
}

impl AuditLog {
    /// Appends the event once; a redelivery is skipped and counted.
    async fn append(&self, topic: &str, envelope: &Envelope) -> Result<()> {
        let inserted = sqlx::query(
            "INSERT INTO audit_log
                (event_id, topic, event_type, occurred_at, trace_id, payload, recorded_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(&envelope.event_id)
        .bind(topic)
        .bind(&envelope.event_type)
        .bind(envelope.occurred_at)
        .bind(envelope.trace_id.clone())
        .bind(envelope.data.to_string())
        .bind(chrono::Utc::now().timestamp_millis())
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
        }
        Ok(())
    }
}

/// One audited event as the read API shows it.
#[derive(Debug, Serialize)]
struct AuditedEvent {
    event_id: String,
    topic: String,
    #[serde(rename = "type")]
    event_type: String,
    occurred_at: i64,
    trace_id: Option<String>,
    payload: Value,
}

type AuditRow = (String, String, String, i64, Option<String>, String);

impl From<AuditRow> for AuditedEvent {
    fn from((event_id, topic, event_type, occurred_at, trace_id, payload): AuditRow) -> Self {
        Self {
            event_id,
            topic,
            event_type,
            occurred_at,
            trace_id,
            // Stored from a serde_json::Value, so it parses; Null only if a row was edited by hand.
            payload: serde_json::from_str(&payload).unwrap_or(Value::Null),
        }
    }
}

#[derive(Deserialize)]
struct ListParams {
    #[serde(rename = "type")]
    event_type: Option<String>,
    limit: Option<i64>,
}

/// `GET /v1/audit/events?type=T&limit=N`: the newest events (of type T), and how many match.
async fn list(
    State(db): State<Db>,
    Query(params): Query<ListParams>,
) -> Result<Json<Value>, ApiError> {
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be 1 to {MAX_LIMIT}"
        )));
    }
    let event_type = params.event_type.unwrap_or_default();
    let (total,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM audit_log WHERE ($1 = '' OR event_type = $1)")
            .bind(&event_type)
            .fetch_one(&db.pool)
            .await
            .map_err(internal)?;
    let rows: Vec<AuditRow> = sqlx::query_as(
        "SELECT event_id, topic, event_type, occurred_at, trace_id, payload FROM audit_log
         WHERE ($1 = '' OR event_type = $1) ORDER BY seq DESC LIMIT $2",
    )
    .bind(&event_type)
    .bind(limit)
    .fetch_all(&db.pool)
    .await
    .map_err(internal)?;
    let events: Vec<AuditedEvent> = rows.into_iter().map(AuditedEvent::from).collect();
    Ok(Json(json!({ "total": total, "events": events })))
}

/// `GET /v1/audit/stats`: how many events, by type.
async fn stats(State(db): State<Db>) -> Result<Json<Value>, ApiError> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT event_type, COUNT(*) FROM audit_log GROUP BY event_type ORDER BY event_type",
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
