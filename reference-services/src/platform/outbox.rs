//! The transactional outbox: a service writes its state change and the event announcing it in one
//! database transaction; a relay publishes pending events and marks a row sent only after Kafka
//! acknowledged it. So an order accepted while Kafka is down is published when Kafka returns.
//!
//! Several replicas of a service share one database, and each runs a relay. They must not publish
//! the same row twice nor reorder the events of one key (one order's `order.created` before its
//! `order.paid`), so a relay *claims* what it publishes:
//! - only the oldest unsent row of each key is claimable; the next row of that key becomes
//!   claimable once the previous one is marked sent, so the events of a key reach Kafka one at a
//!   time, in the order of their rows (`seq`), whichever replica publishes them;
//! - on PostgreSQL the claim is a row lock (`FOR UPDATE SKIP LOCKED`) held by a transaction that
//!   marks the rows sent and commits only after Kafka acknowledged them. Another relay skips
//!   locked rows, and a relay that dies releases its claims with its connection, so the rows are
//!   published by the next round of any relay: nothing claimed is lost;
//! - SQLite is one process and one relay: the same query without locks.
//!
//! Each event is published once; only a crash (or a lost connection) between Kafka's
//! acknowledgement and the commit sends it again, with the same event id, which consumers skip.
//! Sent rows are purged after a retention ([`DEFAULT_RETENTION`], `OUTBOX_RETENTION_SECS`).

use std::{
    collections::BTreeMap,
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Result;
use futures::future::join_all;
use rdkafka::producer::FutureProducer;
use sqlx::{Any, AnyConnection, Transaction};
use tokio::sync::Notify;

use super::{
    config::parse_env,
    events::{self, Envelope},
    metrics::Metrics,
    shutdown::Shutdown,
    storage::{Db, Dialect},
};

/// How long sent rows are kept by default: a day of "was event X published, and when" for
/// whoever investigates an incident. Replaying events is Kafka's job (its own retention), so
/// there is no reason to keep more.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);

/// How often the relay counts its pending rows for the `outbox_pending` gauge.
const PENDING_GAUGE_EVERY: Duration = Duration::from_secs(1);
/// The variable that overrides [`DEFAULT_RETENTION`], in seconds.
pub const RETENTION_ENV: &str = "OUTBOX_RETENTION_SECS";

/// How the relay and the purge work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RelaySettings {
    /// How long a sent row is kept before the purge deletes it.
    pub retention: Duration,
    /// Most rows (each of another key) one relay claims and publishes in a round.
    pub claim_batch: i64,
    /// Most rows one purge statement deletes: short statements, so the purge never holds many
    /// locks or a long transaction.
    pub purge_batch: i64,
    /// How often the relay purges.
    pub purge_every: Duration,
}

impl Default for RelaySettings {
    fn default() -> Self {
        Self {
            retention: DEFAULT_RETENTION,
            claim_batch: 256,
            purge_batch: 1000,
            purge_every: Duration::from_secs(60),
        }
    }
}

impl RelaySettings {
    /// The defaults, with the retention from `OUTBOX_RETENTION_SECS` if set.
    pub fn from_env() -> Result<Self> {
        let mut settings = Self::default();
        if let Some(secs) = parse_env::<u64>(RETENTION_ENV)? {
            settings.retention = Duration::from_secs(secs);
        }
        Ok(settings)
    }
}

/// Why a publish failed, whatever the publisher's own error type.
pub type PublishError = Box<dyn std::error::Error + Send + Sync>;

/// Where the relay publishes: Kafka in the services ([`KafkaPublisher`]), a recording or failing
/// one in tests.
pub trait Publisher: Send + Sync + 'static {
    /// Publishes one event and resolves once it is acknowledged (then the row is marked sent).
    fn publish(
        &self,
        topic: &str,
        key: &str,
        envelope: &Envelope,
    ) -> impl Future<Output = Result<(), PublishError>> + Send;

    /// Called once when the relay stops, to hand over what is buffered.
    fn flush(&self) {}
}

/// A shared publisher (a test keeps one handle to see what was published).
impl<P: Publisher> Publisher for Arc<P> {
    fn publish(
        &self,
        topic: &str,
        key: &str,
        envelope: &Envelope,
    ) -> impl Future<Output = Result<(), PublishError>> + Send {
        (**self).publish(topic, key, envelope)
    }

    fn flush(&self) {
        (**self).flush();
    }
}

/// The services' publisher: an idempotent Kafka producer, counted in
/// `kafka_events_published_total`.
pub struct KafkaPublisher {
    producer: FutureProducer,
    metrics: Arc<Metrics>,
}

impl KafkaPublisher {
    pub fn new(producer: FutureProducer, metrics: Arc<Metrics>) -> Self {
        Self { producer, metrics }
    }
}

impl Publisher for KafkaPublisher {
    async fn publish(
        &self,
        topic: &str,
        key: &str,
        envelope: &Envelope,
    ) -> Result<(), PublishError> {
        events::publish(&self.producer, &self.metrics, topic, key, envelope)
            .await
            .map_err(Into::into)
    }

    fn flush(&self) {
        events::flush(&self.producer);
    }
}

/// Why a relay round failed. Rows acknowledged before the failure are marked sent all the same.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("outbox database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("outbox row {seq} does not hold an event envelope: {source}")]
    Undecodable {
        seq: i64,
        #[source]
        source: serde_json::Error,
    },
    #[error("publishing event {event_id} to {topic}: {source}")]
    Publish {
        event_id: String,
        topic: String,
        #[source]
        source: PublishError,
    },
}

/// Handle to a service's outbox table.
#[derive(Clone)]
pub struct Outbox {
    db: Db,
    wake: Arc<Notify>,
    settings: RelaySettings,
}

type Row = (i64, String, String, String);

impl Outbox {
    /// Creates the outbox table if needed; settings from the environment.
    pub async fn open(db: Db) -> Result<Self> {
        Self::open_with(db, RelaySettings::from_env()?).await
    }

    /// Like [`Outbox::open`] with explicit settings (tests).
    pub async fn open_with(db: Db, settings: RelaySettings) -> Result<Self> {
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
            // Pending rows in order (the claim), sent rows by age (the purge).
            "CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (sent_at, seq)".to_string(),
            // "Is there an older unsent row of this key?", asked for every claimable row.
            "CREATE INDEX IF NOT EXISTS outbox_pending_by_key ON outbox (msg_key, seq)
                WHERE sent_at IS NULL"
                .to_string(),
        ])
        .await?;
        Ok(Self {
            db,
            wake: Arc::new(Notify::new()),
            settings,
        })
    }

    /// Adds an event to `tx`; it is published after the transaction commits. Events of one
    /// `key` are published in the order they were added, provided the writers of a key
    /// serialise (as they do when they update the key's row first, like the order service).
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

    /// Number of rows not yet acknowledged by Kafka (rows claimed by a relay included: they
    /// are pending until their transaction commits).
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

    /// Publishes pending rows to Kafka with `producer` until shutdown, then flushes it; purges
    /// sent rows past the retention meanwhile.
    pub fn spawn_relay(
        &self,
        producer: FutureProducer,
        metrics: Arc<Metrics>,
        shutdown: &Shutdown,
    ) {
        self.spawn_relay_with(
            KafkaPublisher::new(producer, metrics.clone()),
            metrics,
            shutdown,
        );
    }

    /// Like [`Outbox::spawn_relay`] with any publisher.
    pub fn spawn_relay_with(
        &self,
        publisher: impl Publisher,
        metrics: Arc<Metrics>,
        shutdown: &Shutdown,
    ) {
        let outbox = self.clone();
        let stop = shutdown.clone();
        shutdown.spawn(async move {
            let mut counted_at: Option<Instant> = None;
            loop {
                let pause = match outbox.relay_once(&publisher).await {
                    // Nothing claimable: the rest is pending behind another relay's claims, or
                    // there is nothing.
                    Ok(0) => Duration::from_millis(200),
                    // Publishing a row makes the next row of its key claimable: go on at once.
                    Ok(_) => Duration::ZERO,
                    Err(e) => {
                        tracing::warn!(error = %format!("{e:#}"), "outbox relay: will retry");
                        Duration::from_secs(1)
                    }
                };
                // The gauge is counted at most once a second, not after every round: under load
                // a round runs per event, and the count was a third of the relay's statements.
                if counted_at.is_none_or(|at| at.elapsed() >= PENDING_GAUGE_EVERY) {
                    if let Ok(pending) = outbox.pending().await {
                        metrics.outbox_pending.set(pending);
                    }
                    counted_at = Some(Instant::now());
                }
                tokio::select! {
                    _ = stop.wait() => break,
                    _ = outbox.wake.notified() => {}
                    _ = tokio::time::sleep(pause) => {}
                }
            }
            publisher.flush();
        });
        let outbox = self.clone();
        let stop = shutdown.clone();
        shutdown.spawn(async move {
            let mut every = tokio::time::interval(outbox.settings.purge_every);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.wait() => break,
                    _ = every.tick() => {}
                }
                match outbox.purge(now_ms()).await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(rows = n, "outbox: purged sent rows"),
                    Err(e) => tracing::warn!(error = %e, "outbox purge failed; will retry"),
                }
            }
        });
    }

    /// One round: claims the oldest unsent row of up to `claim_batch` keys, publishes them and
    /// marks those Kafka acknowledged as sent. Returns how many were marked; a failed publish
    /// leaves its row pending for a later round (of this relay or another) and is returned as
    /// the error after the others were marked.
    pub async fn relay_once(&self, publisher: &impl Publisher) -> Result<usize, RelayError> {
        match self.db.dialect() {
            Dialect::Postgres => {
                // The claim is the transaction's row locks: it ends with the commit (rows
                // marked) or with the connection (a crashed relay).
                let mut tx = self.db.pool.begin().await?;
                let rows = self.claim(&mut tx).await?;
                let (acked, failed) = publish_all(publisher, &rows).await;
                mark_sent(&mut tx, &acked).await?;
                tx.commit().await?;
                failed.map_or(Ok(acked.len()), Err)
            }
            Dialect::Sqlite => {
                // One relay per database: nothing to lock against, and a write transaction held
                // while Kafka answers would stall every writer of the service.
                let rows = self.claim(&mut *self.db.pool.acquire().await?).await?;
                let (acked, failed) = publish_all(publisher, &rows).await;
                mark_sent(&mut *self.db.pool.acquire().await?, &acked).await?;
                failed.map_or(Ok(acked.len()), Err)
            }
        }
    }

    /// The oldest unsent row of each key whose row is not claimed by another relay.
    async fn claim(&self, conn: &mut AnyConnection) -> Result<Vec<Row>, sqlx::Error> {
        // An older row of the same key that is unsent (claimed by another relay or not) holds
        // the key back: its events go out one at a time, in order.
        let lock = match self.db.dialect() {
            Dialect::Postgres => "FOR UPDATE SKIP LOCKED",
            Dialect::Sqlite => "",
        };
        sqlx::query_as(&format!(
            "SELECT o.seq, o.topic, o.msg_key, o.payload FROM outbox o
             WHERE o.sent_at IS NULL
               AND NOT EXISTS (SELECT 1 FROM outbox e
                               WHERE e.msg_key = o.msg_key AND e.sent_at IS NULL AND e.seq < o.seq)
             ORDER BY o.seq LIMIT $1 {lock}"
        ))
        .bind(self.settings.claim_batch)
        .fetch_all(conn)
        .await
    }

    /// Deletes the rows sent before `now_ms` minus the retention, in batches; unsent rows are
    /// never deleted. Returns how many were deleted.
    pub async fn purge(&self, now_ms: i64) -> Result<u64, sqlx::Error> {
        let retention_ms = i64::try_from(self.settings.retention.as_millis()).unwrap_or(i64::MAX);
        let cutoff = now_ms.saturating_sub(retention_ms);
        // Another replica purging at the same moment skips what this one deletes, not waits.
        let lock = match self.db.dialect() {
            Dialect::Postgres => "FOR UPDATE SKIP LOCKED",
            Dialect::Sqlite => "",
        };
        let statement = format!(
            "DELETE FROM outbox WHERE seq IN (
                SELECT seq FROM outbox WHERE sent_at < $1 ORDER BY sent_at LIMIT $2 {lock})"
        );
        let mut deleted = 0;
        loop {
            let n = sqlx::query(&statement)
                .bind(cutoff)
                .bind(self.settings.purge_batch)
                .execute(&self.db.pool)
                .await?
                .rows_affected();
            deleted += n;
            if n < self.settings.purge_batch.max(1) as u64 {
                return Ok(deleted);
            }
        }
    }
}

/// Publishes every row concurrently (each is of another key); returns the rows acknowledged and
/// the first failure.
async fn publish_all(publisher: &impl Publisher, rows: &[Row]) -> (Vec<i64>, Option<RelayError>) {
    let sends = rows.iter().map(|(seq, topic, key, payload)| async move {
        let envelope: Envelope = serde_json::from_str(payload)
            .map_err(|source| RelayError::Undecodable { seq: *seq, source })?;
        publisher
            .publish(topic, key, &envelope)
            .await
            .map_err(|source| RelayError::Publish {
                event_id: envelope.event_id.clone(),
                topic: topic.clone(),
                source,
            })?;
        Ok(*seq)
    });
    let mut acked = Vec::new();
    let mut failed = None;
    for outcome in join_all(sends).await {
        match outcome {
            Ok(seq) => acked.push(seq),
            Err(e) => {
                failed.get_or_insert(e);
            }
        }
    }
    (acked, failed)
}

async fn mark_sent(conn: &mut AnyConnection, seqs: &[i64]) -> Result<(), sqlx::Error> {
    if seqs.is_empty() {
        return Ok(());
    }
    // The sequence numbers are integers read from the table: safe to inline, and one statement
    // instead of one per row.
    let list = seqs
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    sqlx::query(&format!(
        "UPDATE outbox SET sent_at = $1 WHERE seq IN ({list})"
    ))
    .bind(now_ms())
    .execute(conn)
    .await?;
    Ok(())
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
