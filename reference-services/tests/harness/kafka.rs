//! The in-process Kafka of the tests: librdkafka's mock cluster with the platform's topics, a
//! producer for injecting events, and a reader that collects what a topic holds.
//!
//! The mock cluster is not `Send`: it stays on the test's own task, services only get its
//! bootstrap address.

use std::{collections::HashMap, time::Duration};

use rdkafka::{
    ClientConfig, Message, Offset, TopicPartitionList,
    consumer::{Consumer, StreamConsumer},
    mocking::MockCluster,
    producer::{DefaultProducerContext, FutureProducer},
};
use shop::platform::{
    events::{self, ALL_TOPICS, Envelope},
    metrics::Metrics,
};

use shop::testkit::RECOVERY_DEADLINE;

pub type Cluster = MockCluster<'static, DefaultProducerContext>;

/// Broker ids of the mock cluster.
pub const BROKERS: std::ops::RangeInclusive<i32> = 1..=3;

/// A 3-broker mock cluster with every platform topic (3 partitions each).
pub fn cluster() -> Cluster {
    let cluster = MockCluster::new(3).expect("mock Kafka cluster");
    for topic in ALL_TOPICS {
        cluster.create_topic(topic, 3, 1).expect("creating topic");
    }
    cluster
}

pub fn all_brokers_down(cluster: &Cluster) {
    for id in BROKERS {
        cluster.broker_down(id).expect("broker down");
    }
}

pub fn all_brokers_up(cluster: &Cluster) {
    for id in BROKERS {
        cluster.broker_up(id).expect("broker up");
    }
}

/// Publishes envelopes the way services do (what a consumer under test is fed).
pub struct TestProducer(FutureProducer);

impl TestProducer {
    pub fn new(bootstrap: &str) -> Self {
        Self(events::producer(bootstrap).expect("producer"))
    }

    pub async fn send(&self, topic: &str, key: &str, envelope: &Envelope) {
        events::publish(&self.0, &Metrics::global(), topic, key, envelope)
            .await
            .expect("publishing a test event");
    }
}

/// Reads one topic from the beginning of every partition, outside any consumer group.
pub struct TopicReader {
    consumer: StreamConsumer,
    topic: String,
    /// Everything read so far, in arrival order.
    pub events: Vec<Envelope>,
    /// Next offset to read, by partition.
    next: HashMap<i32, i64>,
}

impl TopicReader {
    pub fn new(bootstrap: &str, topic: &str) -> Self {
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", format!("test-reader-{}", uuid::Uuid::new_v4()))
            .set("enable.auto.commit", "false")
            .create()
            .expect("test consumer");
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .expect("topic metadata");
        let mut assignment = TopicPartitionList::new();
        for partition in metadata.topics()[0].partitions() {
            assignment
                .add_partition_offset(topic, partition.id(), Offset::Beginning)
                .expect("assignment");
        }
        consumer.assign(&assignment).expect("assigning partitions");
        Self {
            consumer,
            topic: topic.to_string(),
            events: Vec::new(),
            next: HashMap::new(),
        }
    }

    /// Reads until `done` holds for what was read, then on to the current end of every
    /// partition, so nothing published before that point is missed (duplicates included).
    pub async fn read_until(
        &mut self,
        what: &str,
        done: impl Fn(&[Envelope]) -> bool,
    ) -> &[Envelope] {
        let started = std::time::Instant::now();
        while !done(&self.events) {
            self.read_one(what, started).await;
        }
        let ends = self.high_watermarks();
        while ends
            .iter()
            .any(|(p, end)| self.next.get(p).copied().unwrap_or(0) < *end)
        {
            self.read_one(what, started).await;
        }
        &self.events
    }

    async fn read_one(&mut self, what: &str, started: std::time::Instant) {
        let left = RECOVERY_DEADLINE.saturating_sub(started.elapsed());
        let message = tokio::time::timeout(left, self.consumer.recv())
            .await
            .unwrap_or_else(|_| panic!("gave up reading {}: {what}", self.topic));
        let Ok(message) = message else { return };
        self.next.insert(message.partition(), message.offset() + 1);
        let payload = message.payload().expect("event payload");
        self.events
            .push(serde_json::from_slice(payload).expect("an event envelope"));
    }

    /// The offset after the last message of every partition (0 for an empty one).
    fn high_watermarks(&self) -> Vec<(i32, i64)> {
        let metadata = self
            .consumer
            .fetch_metadata(Some(&self.topic), Duration::from_secs(10))
            .expect("topic metadata");
        metadata.topics()[0]
            .partitions()
            .iter()
            .map(|p| {
                let (_, high) = self
                    .consumer
                    .fetch_watermarks(&self.topic, p.id(), Duration::from_secs(10))
                    .expect("watermarks");
                (p.id(), high)
            })
            .collect()
    }
}

/// Waits until the `/ready` of the service at `url` reports Kafka down (librdkafka notices a
/// lost broker within moments), then checks that the service is nevertheless ready: Kafka is
/// behind its outbox, so only `degraded` says so. Returns the body.
pub async fn assert_ready_while_kafka_down(url: &str) -> serde_json::Value {
    let ready = format!("{url}/ready");
    let (status, body) =
        shop::testkit::eventually("/ready reports Kafka down", RECOVERY_DEADLINE, || async {
            let (status, body) = shop::testkit::get_json(&ready).await;
            (body["checks"]["kafka"] != "ok").then_some((status, body))
        })
        .await;
    assert_eq!(status, 200, "ready while Kafka is down: {body}");
    assert_eq!(body["status"], "ready", "{body}");
    assert_eq!(body["checks"]["database"], "ok", "{body}");
    assert_eq!(body["degraded"], serde_json::json!(["kafka"]), "{body}");
    body
}

/// Waits until the `/ready` of the service at `url` reports Kafka up and nothing degraded.
pub async fn wait_kafka_ok(url: &str) {
    let ready = format!("{url}/ready");
    shop::testkit::eventually("/ready reports Kafka up", RECOVERY_DEADLINE, || async {
        let (status, body) = shop::testkit::get_json(&ready).await;
        (status == 200
            && body["checks"]["kafka"] == "ok"
            && body["degraded"] == serde_json::json!([]))
        .then_some(())
    })
    .await;
}
