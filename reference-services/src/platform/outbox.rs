//! The transactional outbox: a service writes its state change and the event announcing it in one
//! database transaction; a relay publishes pending events with an idempotent producer and marks a
//! row sent only after Kafka acknowledged it. So an order accepted while Kafka is down is
//! published when Kafka returns, and a crash between publish and mark can only re-send an event
//! with the same event id, which consumers skip.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use anyhow::Result;
use futures::future::join_all;
use rdkafka::producer::FutureProducer;
use sqlx::{Any, Transaction};
use tokio::sync::Notify;

use super::{
    events::{self, Envelope},
    metrics::Metrics,
    shutdown::Shutdown,
    storage::Db,
};

const BATCH: i64 = 256;

/// Handle to a service's outbox table.
#[derive(Clone)]
pub struct Outbox {
    db: Db,
    wake: Arc<Notify>,
}

impl Outbox {
    /// Creates the outbox table if needed.
    pub async fn open(db: Db) -> Result<Self> {
        db.migrate(&[
            format!(
                "CREATE TABLE IF NOT EXISTS outbox (
                    seq {},
                    event_id TEXT NOT NULL UNIQUE,
                    topic TEXT NOT NULL,
                    msg_key TEXT NOT NULL,
                    payload TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    sent_at BIGINT
                )",
                db.serial_key()
            ),
            "CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (sent_at, seq)".to_string(),
        ])
        .await?;
        Ok(Self {
            db,
            wake: Arc::new(Notify::new()),
        })
    }

    /// Adds an event to `tx`; it is published after the transaction commits.
    pub async fn enqueue(
        tx: &mut Transaction<'_, Any>,
        topic: &str,
        key: &str,
        envelope: &Envelope,
    ) -> Result<(), sqlx::Error> {
        let payload =
            serde_json::to_string(envelope).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        sqlx::query(
            "INSERT INTO outbox (event_id, topic, msg_key, payload, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&envelope.event_id)
        .bind(topic)
        .bind(key)
        .bind(payload)
        .bind(envelope.occurred_at)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Tells the relay that rows were committed (it also polls, so this only cuts latency).
    pub fn notify(&self) {
        self.wake.notify_one();
    }

    /// Number of rows not yet acknowledged by Kafka.
    pub async fn pending(&self) -> Result<i64, sqlx::Error> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL")
            .fetch_one(&self.db.pool)
            .await?;
        Ok(n)
    }

    /// Rows not yet acknowledged by Kafka, by event type (for accounting).
    pub async fn pending_by_type(&self) -> Result<BTreeMap<String, u64>, sqlx::Error> {
        let event_type = self.db.json_text("payload", "type");
        let rows: Vec<(String, i64)> = sqlx::query_as(&format!(
            "SELECT COALESCE({event_type}, ''), COUNT(*) FROM outbox WHERE sent_at IS NULL GROUP BY 1"
        ))
        .fetch_all(&self.db.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(event_type, n)| (event_type, n.max(0) as u64))
            .collect())
    }

    /// Publishes pending rows until shutdown, then flushes the producer.
    pub fn spawn_relay(
        &self,
        producer: FutureProducer,
        metrics: Arc<Metrics>,
        shutdown: &Shutdown,
    ) {
        let outbox = self.clone();
        let stop = shutdown.clone();
        shutdown.spawn(async move {
            loop {
                let backoff = match outbox.relay_once(&producer, &metrics).await {
                    Ok(sent) if sent as i64 == BATCH => Duration::ZERO,
                    Ok(_) => Duration::from_millis(200),
                    Err(e) => {
                        tracing::warn!(error = %format!("{e:#}"), "outbox relay: will retry");
                        Duration::from_secs(1)
                    }
                };
                tokio::select! {
                    _ = stop.wait() => break,
                    _ = outbox.wake.notified() => {}
                    _ = tokio::time::sleep(backoff) => {}
                }
            }
            events::flush(&producer);
        });
    }

    /// Publishes one batch; returns how many rows were acknowledged and marked.
    pub async fn relay_once(&self, producer: &FutureProducer, metrics: &Metrics) -> Result<usize> {
        let rows: Vec<(i64, String, String, String)> = sqlx::query_as(
            "SELECT seq, topic, msg_key, payload FROM outbox WHERE sent_at IS NULL ORDER BY seq LIMIT $1",
        )
        .bind(BATCH)
        .fetch_all(&self.db.pool)
        .await?;
        let sends = rows.iter().map(|(seq, topic, key, payload)| async move {
            let envelope: Envelope = serde_json::from_str(payload)?;
            events::publish(producer, metrics, topic, key, &envelope).await?;
            anyhow::Ok(*seq)
        });
        let outcomes = join_all(sends).await;
        let now = chrono::Utc::now().timestamp_millis();
        let mut sent = 0;
        let mut first_error = None;
        for outcome in outcomes {
            match outcome {
                Ok(seq) => {
                    sqlx::query("UPDATE outbox SET sent_at = $1 WHERE seq = $2")
                        .bind(now)
                        .bind(seq)
                        .execute(&self.db.pool)
                        .await?;
                    sent += 1;
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        metrics.outbox_pending.set(self.pending().await?);
        match first_error {
            Some(e) => Err(e),
            None => Ok(sent),
        }
    }
}
