//! Kafka events: the envelope every event travels in, an idempotent producer, and a consumer loop
//! that commits only offsets whose handler succeeded (at-least-once; handlers deduplicate by
//! event id, which makes processing effectively once).
//!
//! Topics of the platform: `orders` (order.created / order.cancelled / order.paid),
//! `payments` (payment.succeeded / payment.refunded), `page.viewed`, `analytics-results`.

use std::time::Duration;

use anyhow::{Context, Result};
use rdkafka::{
    ClientConfig, Message,
    consumer::{CommitMode, Consumer, StreamConsumer},
    error::KafkaError,
    producer::{FutureProducer, FutureRecord, Producer},
    types::RDKafkaErrorCode,
};
use serde::{Deserialize, Serialize};

use super::{
    metrics::{Metrics, TopicLabels, TopicStatus},
    shutdown::Shutdown,
    trace::TraceParent,
};

pub const TOPIC_ORDERS: &str = "orders";
pub const TOPIC_PAYMENTS: &str = "payments";
pub const TOPIC_PAGE_VIEWED: &str = "page.viewed";
pub const TOPIC_ANALYTICS_RESULTS: &str = "analytics-results";
/// The event announcing a new order (on [`TOPIC_ORDERS`]).
pub const ORDER_CREATED: &str = "order.created";
/// Every topic of the platform (what the stack creates and audit consumes).
pub const ALL_TOPICS: [&str; 4] = [
    TOPIC_ORDERS,
    TOPIC_PAYMENTS,
    TOPIC_PAGE_VIEWED,
    TOPIC_ANALYTICS_RESULTS,
];

/// An event as published: a unique id for deduplication, a type, when it happened, the trace it
/// belongs to, and the payload.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Envelope {
    pub event_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// Milliseconds since the Unix epoch.
    pub occurred_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    pub data: serde_json::Value,
}

impl Envelope {
    pub fn new(event_type: &str, data: serde_json::Value) -> Self {
        Self {
            event_id: uuid::Uuid::now_v7().to_string(),
            event_type: event_type.to_string(),
            occurred_at: chrono::Utc::now().timestamp_millis(),
            trace_id: TraceParent::current().map(|t| t.trace_id),
            data,
        }
    }
}

/// An idempotent producer: acks from all in-sync replicas, retries without duplicates.
pub fn producer(bootstrap: &str) -> Result<FutureProducer> {
    // Give up on a message after 30 s; the outbox keeps it and tries again later.
    producer_with_timeout(bootstrap, Duration::from_secs(30))
}

/// Like [`producer`], but a message not acknowledged within `message_timeout` fails instead of
/// staying queued: for callers without an outbox that answer "not accepted" after a deadline, so
/// a refused event is not delivered behind the client's back.
pub fn producer_with_timeout(bootstrap: &str, message_timeout: Duration) -> Result<FutureProducer> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("socket.timeout.ms", SOCKET_TIMEOUT_MS)
        .set(
            "message.timeout.ms",
            message_timeout.as_millis().to_string(),
        )
        .create()
        .with_context(|| format!("creating Kafka producer for {bootstrap}"))
}

/// Publishes one envelope and waits for the broker's acknowledgement.
pub async fn publish(
    producer: &FutureProducer,
    metrics: &Metrics,
    topic: &str,
    key: &str,
    envelope: &Envelope,
) -> Result<()> {
    let payload = serde_json::to_vec(envelope)?;
    let record = FutureRecord::to(topic).key(key).payload(&payload);
    let outcome = producer.send(record, Duration::from_secs(0)).await;
    let status = if outcome.is_ok() { "ok" } else { "error" };
    metrics
        .events_published
        .get_or_create(&TopicStatus {
            topic: topic.to_string(),
            status: status.to_string(),
        })
        .inc();
    outcome
        .map(|_| ())
        .map_err(|(e, _)| anyhow::anyhow!("publishing to {topic}: {e}"))
}

/// Flushes the producer on shutdown so nothing acknowledged to a caller stays in memory.
pub fn flush(producer: &FutureProducer) {
    if let Err(e) = producer.flush(Duration::from_secs(10)) {
        tracing::warn!(error = %e, "producer flush incomplete");
    }
}

/// How long a request to a broker may go unanswered before librdkafka fails it and retries
/// elsewhere (librdkafka's default is 60 s): a lost broker is noticed within seconds.
const SOCKET_TIMEOUT_MS: &str = "10000";

/// A consumer in `group` that starts from the earliest offset and commits manually.
pub fn consumer(bootstrap: &str, group: &str, topics: &[&str]) -> Result<StreamConsumer> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .set("topic.metadata.refresh.interval.ms", "5000")
        // A fetch in flight when its broker dies is otherwise only given up after the default
        // 60 s, which stalls that partition's events for a minute after the broker is back.
        .set("socket.timeout.ms", SOCKET_TIMEOUT_MS)
        .create()
        .with_context(|| format!("creating Kafka consumer {group} for {bootstrap}"))?;
    consumer
        .subscribe(topics)
        .with_context(|| format!("subscribing {group} to {topics:?}"))?;
    Ok(consumer)
}

/// Feeds every event to `handle` until shutdown, one at a time; commits the position reached
/// once a second and at shutdown. A failing handler is retried (the position does not move past
/// its event) after a pause.
pub async fn consume<F, Fut>(
    consumer: StreamConsumer,
    metrics: std::sync::Arc<Metrics>,
    shutdown: Shutdown,
    mut handle: F,
) where
    F: FnMut(String, Envelope) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    // The position is committed once a second rather than once per event: a commit per event
    // was one OffsetCommit round trip per event and consumer group, a good share of the
    // consumers' CPU under load, for nothing the handlers need (they deduplicate, so what a
    // crash or a rebalance redelivers — at most the last second — is harmless). Committing on a
    // timer also repairs a commit lost while the group coordinator's broker was down, which
    // would otherwise leave the group's lag growing once traffic stops. Between two messages
    // every received one has been handled, so the position is safe to commit.
    let mut recommit = tokio::time::interval(Duration::from_secs(1));
    recommit.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let message = tokio::select! {
            _ = shutdown.wait() => break,
            _ = recommit.tick() => {
                if let Err(e) = consumer.commit_consumer_state(CommitMode::Async) {
                    tracing::debug!(error = %e, "periodic commit skipped");
                }
                continue;
            }
            m = consumer.recv() => m,
        };
        let message = match message {
            Ok(m) => m,
            Err(e) if is_transient(&e) => {
                tracing::warn!(error = %e, "Kafka unavailable; waiting for brokers");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "Kafka consumer error");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let topic = message.topic().to_string();
        let envelope = match message.payload().map(serde_json::from_slice::<Envelope>) {
            Some(Ok(envelope)) => Some(envelope),
            other => {
                tracing::error!(
                    topic,
                    offset = message.offset(),
                    ?other,
                    "skipping undecodable event"
                );
                None
            }
        };
        if let Some(envelope) = envelope {
            loop {
                match handle(topic.clone(), envelope.clone()).await {
                    Ok(()) => break,
                    Err(e) => {
                        tracing::error!(topic, event_id = %envelope.event_id, error = %format!("{e:#}"), "handler failed; retrying");
                        tokio::select! {
                            _ = shutdown.wait() => return,
                            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        }
                    }
                }
            }
            metrics
                .events_consumed
                .get_or_create(&TopicLabels {
                    topic: topic.clone(),
                })
                .inc();
        }
    }
    // Commit synchronously what was handled, so a restart does not redo it.
    if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
        tracing::debug!(error = %e, "final commit skipped");
    }
}

/// Errors that mean "brokers are down for now" rather than "this consumer is broken".
pub fn is_transient(err: &KafkaError) -> bool {
    matches!(
        err.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::BrokerNotAvailable
                | RDKafkaErrorCode::LeaderNotAvailable
                | RDKafkaErrorCode::NotLeaderForPartition
                | RDKafkaErrorCode::OperationTimedOut
                | RDKafkaErrorCode::RequestTimedOut
                | RDKafkaErrorCode::NetworkException
                | RDKafkaErrorCode::CoordinatorNotAvailable
                | RDKafkaErrorCode::NotCoordinator
                | RDKafkaErrorCode::UnknownTopicOrPartition
        )
    )
}

/// Why [`metadata_check`] failed; the messages are what `/ready` shows.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// The cluster did not answer the metadata request.
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    /// The blocking task that asks was cancelled or panicked.
    #[error(transparent)]
    Task(#[from] tokio::task::JoinError),
}

/// Readiness check: the cluster answers a metadata request.
pub fn metadata_check(
    producer: FutureProducer,
) -> impl Fn() -> std::pin::Pin<Box<dyn Future<Output = Result<(), MetadataError>> + Send>>
+ Send
+ Sync
+ 'static {
    move || {
        let producer = producer.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                producer
                    .client()
                    .fetch_metadata(None, Duration::from_secs(1))
                    .map(|_| ())
            })
            .await??;
            Ok(())
        })
    }
}
