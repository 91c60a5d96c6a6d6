//! The kafka source on librdkafka's mock cluster: a consumer group commits part of a topic,
//! stops (the measured lag must equal what is left, in messages, or in time the age of the
//! oldest message left), then resumes (the lag must recover and the time to recover must match
//! when the consumer came back).
//!
//! The mock cluster is not `Send`, so it stays on the test's own task; the consumer's blocking
//! calls run on blocking threads.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, DefaultProducerContext, Producer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use slo::sources::KafkaSource;
use slo::{CheckContext, CheckOutcome, Marks, Problem, SloStatus, Sources, Window};

const TOPIC: &str = "orders";
const GROUP: &str = "notification-group";
const PARTITIONS: i32 = 2;
const PER_PARTITION: i64 = 50;

fn cluster() -> MockCluster<'static, DefaultProducerContext> {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic(TOPIC, PARTITIONS, 1).expect("topic");
    cluster
}

fn produce(bootstrap: &str) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("producer");
    for partition in 0..PARTITIONS {
        for i in 0..PER_PARTITION {
            let payload = format!("order {partition}-{i}");
            producer
                .send(
                    BaseRecord::<(), str>::to(TOPIC)
                        .partition(partition)
                        .payload(&payload),
                )
                .expect("queued");
        }
    }
    producer.flush(Duration::from_secs(10)).expect("delivered");
}

/// A member of the group reading both partitions from the start, committing by hand.
struct GroupMember {
    consumer: BaseConsumer,
    /// Next offset to commit, by partition.
    next: [i64; PARTITIONS as usize],
}

impl GroupMember {
    fn new(bootstrap: &str) -> GroupMember {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", GROUP)
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let mut assignment = TopicPartitionList::new();
        for partition in 0..PARTITIONS {
            assignment
                .add_partition_offset(TOPIC, partition, Offset::Beginning)
                .unwrap();
        }
        consumer.assign(&assignment).expect("assign");
        GroupMember {
            consumer,
            next: [0; PARTITIONS as usize],
        }
    }

    /// Consumes `count` messages, then commits exactly what it consumed.
    fn consume_and_commit(&mut self, count: usize) {
        let mut consumed = 0;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while consumed < count {
            assert!(
                std::time::Instant::now() < deadline,
                "consumed only {consumed} of {count}"
            );
            if let Some(Ok(message)) = self.consumer.poll(Duration::from_millis(100)) {
                self.next[message.partition() as usize] = message.offset() + 1;
                consumed += 1;
            }
        }
        let mut offsets = TopicPartitionList::new();
        for (partition, next) in self.next.iter().enumerate() {
            offsets
                .add_partition_offset(TOPIC, partition as i32, Offset::Offset(*next))
                .unwrap();
        }
        self.consumer
            .commit(&offsets, CommitMode::Sync)
            .expect("commit");
    }
}

fn slo_set(slos: &str) -> slo::SloSet {
    let text = format!(
        "apiVersion: shakedown/v1\nkind: SLOSet\nmetadata: {{name: kafka}}\ndefaults: {{sample_every: 100ms}}\nslos:\n{slos}"
    );
    slo::parse(&text, Path::new("kafka.yaml")).unwrap()
}

async fn check(set: &slo::SloSet, bootstrap: &str, window: Window) -> CheckOutcome {
    let sources = Sources::new().with(KafkaSource::new(bootstrap));
    slo::check(set, &CheckContext { window, sources }).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_is_measured_while_the_group_stops_and_its_recovery_when_it_resumes() {
    let cluster = cluster();
    let bootstrap = cluster.bootstrap_servers();
    produce(&bootstrap);
    let total = PER_PARTITION * PARTITIONS as i64;

    let mut member = GroupMember::new(&bootstrap);
    member.consume_and_commit(40);
    let source = KafkaSource::new(bootstrap.clone());
    let topics = vec![TOPIC.to_string()];
    assert_eq!(source.lag_now(GROUP, &topics).unwrap(), total - 40);
    // A group that never committed lags by everything the topic holds.
    assert_eq!(source.lag_now("never-committed", &topics).unwrap(), total);

    // Stopped: the lag stays at what was left over a short live window.
    let set = slo_set(
        "  - name: stopped-lag\n    sli: {kafka_lag: {group: notification-group, topics: [orders], measure: max_lag}}\n    objective: {lt: 50}\n    source: kafka\n",
    );
    let now = Utc::now();
    let window = Window::new(now, now + chrono::Duration::seconds(2), &set.defaults).unwrap();
    let outcome = check(&set, &bootstrap, window).await;
    let stopped = &outcome.results[0].verdict;
    assert_eq!(stopped.measured, Some((total - 40) as f64), "{stopped:?}");
    assert_eq!(stopped.status, SloStatus::Fail);
    assert!(
        stopped
            .query
            .as_deref()
            .unwrap()
            .contains("group notification-group")
    );

    // Resumes one second after the mark: recovery below 1 message takes about that long.
    let set = slo_set(
        "  - name: recovery\n    sli: {kafka_lag: {group: notification-group, topics: [orders], measure: recovery_time, below: 1, after: load_end}}\n    objective: {lte: 5s}\n    source: kafka\n",
    );
    let mark = Utc::now();
    let window = Window::new(mark, mark + chrono::Duration::seconds(20), &set.defaults)
        .unwrap()
        .with_marks(Marks {
            load_end: Some(mark),
            events: Vec::new(),
        });
    let resume_after = Duration::from_secs(1);
    let member = Arc::new(std::sync::Mutex::new(member));
    let resumed = {
        let member = member.clone();
        async move {
            tokio::time::sleep(resume_after).await;
            tokio::task::spawn_blocking(move || {
                member
                    .lock()
                    .unwrap()
                    .consume_and_commit((total - 40) as usize)
            })
            .await
            .unwrap();
        }
    };
    let started = std::time::Instant::now();
    let (outcome, ()) = tokio::join!(check(&set, &bootstrap, window), resumed);
    let recovery = &outcome.results[0];
    let seconds = recovery.verdict.measured.expect("recovered");
    assert!(
        (1.0..4.0).contains(&seconds),
        "recovered {seconds} s after the mark, the consumer came back after 1 s: {recovery:?}"
    );
    assert_eq!(recovery.verdict.status, SloStatus::Pass);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "sampling stops once recovered instead of running to the window's end"
    );
    assert_eq!(source.lag_now(GROUP, &topics).unwrap(), 0);
    drop(cluster);
}

/// Produces `count` messages to partition 0 of `topic`, each stamped `timestamp_ms` (CreateTime).
fn produce_stamped(bootstrap: &str, topic: &str, count: usize, timestamp_ms: i64) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("producer");
    for i in 0..count {
        let payload = format!("audit {i}");
        producer
            .send(
                BaseRecord::<(), str>::to(topic)
                    .partition(0)
                    .payload(&payload)
                    .timestamp(timestamp_ms),
            )
            .expect("queued");
    }
    producer.flush(Duration::from_secs(10)).expect("delivered");
}

fn seconds(from: chrono::DateTime<Utc>, to: chrono::DateTime<Utc>) -> f64 {
    (to - from).num_milliseconds() as f64 / 1000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_lag_is_the_age_of_the_oldest_unconsumed_message() {
    let cluster = cluster();
    let bootstrap = cluster.bootstrap_servers();
    let produced_from = Utc::now();
    produce(&bootstrap);
    let produced_to = Utc::now();
    let source = KafkaSource::new(bootstrap.clone());
    let topics = vec![TOPIC.to_string()];

    // The timestamp carried by the message is what counts, not when it was fetched: messages
    // stamped an hour ago are an hour old to a group that never consumed them.
    cluster.create_topic("audit", 1, 1).expect("topic");
    let hour_ago = Utc::now() - chrono::Duration::hours(1);
    produce_stamped(&bootstrap, "audit", 3, hour_ago.timestamp_millis());
    let before = Utc::now();
    let old = source
        .time_lag_now("never-committed", &["audit".to_string()])
        .unwrap();
    let after = Utc::now();
    assert!(
        (seconds(hour_ago, before)..=seconds(hour_ago, after)).contains(&old),
        "time lag {old} s, messages stamped {} s before the read",
        seconds(hour_ago, before)
    );

    let mut member = GroupMember::new(&bootstrap);
    member.consume_and_commit(40);
    assert_eq!(
        source.lag_now(GROUP, &topics).unwrap(),
        PER_PARTITION * 2 - 40
    );

    // The consumer stops for a known time. The oldest message it left was produced between
    // `produced_from` and `produced_to`, so a read between `before` and `after` must find an age
    // between `before - produced_to` and `after - produced_from`: no tolerance needed.
    let pause = Duration::from_secs(2);
    tokio::time::sleep(pause).await;
    let before = Utc::now();
    let age = {
        let (source, topics) = (KafkaSource::new(bootstrap.clone()), topics.clone());
        tokio::task::spawn_blocking(move || source.time_lag_now(GROUP, &topics))
            .await
            .unwrap()
            .unwrap()
    };
    let after = Utc::now();
    assert!(
        age >= seconds(produced_to, before) && age <= seconds(produced_from, after),
        "time lag {age} s; the oldest unconsumed message was {}..{} s old during the read",
        seconds(produced_to, before),
        seconds(produced_from, after)
    );
    assert!(age >= pause.as_secs_f64(), "stopped for {pause:?}: {age}");

    // Still stopped, over a 3 s window: the maximum is the age at the latest sample, which lies
    // between the start of the check and its return (on a loaded machine the last read may
    // start before the window's end).
    let set = slo_set(
        "  - name: stopped-time-lag\n    sli: {kafka_lag: {group: notification-group, topics: [orders], measure: time_lag}}\n    objective: {lt: 2s}\n    source: kafka\n",
    );
    let started = Utc::now();
    let window = Window::new(
        started,
        started + chrono::Duration::seconds(3),
        &set.defaults,
    )
    .unwrap();
    let outcome = check(&set, &bootstrap, window).await;
    let returned = Utc::now();
    let stopped = &outcome.results[0].verdict;
    let max = stopped.measured.expect("a time lag");
    assert!(
        max >= seconds(produced_to, started) && max <= seconds(produced_from, returned),
        "time lag {max} s; the oldest unconsumed message was {}..{} s old during the check: {stopped:?}",
        seconds(produced_to, started),
        seconds(produced_from, returned)
    );
    assert!(
        max >= age,
        "the lag only grows while the consumer is stopped: {max} < {age}"
    );
    assert_eq!(stopped.status, SloStatus::Fail);
    assert_eq!(stopped.unit.as_deref(), Some("s"));
    let message = stopped.message.as_deref().unwrap();
    assert!(message.contains("oldest unconsumed: orders/"), "{message}");
    assert!(
        stopped
            .query
            .as_deref()
            .unwrap()
            .contains("timestamp of the message at the committed offset")
    );

    // Resumes one second after the mark: the time lag drops below 1 s once it has caught up.
    let set = slo_set(
        "  - name: time-recovery\n    sli: {kafka_lag: {group: notification-group, topics: [orders], measure: recovery_time, below: 1s, after: load_end}}\n    objective: {lte: 5s}\n    source: kafka\n",
    );
    let mark = Utc::now();
    let window = Window::new(mark, mark + chrono::Duration::seconds(20), &set.defaults)
        .unwrap()
        .with_marks(Marks {
            load_end: Some(mark),
            events: Vec::new(),
        });
    let member = Arc::new(std::sync::Mutex::new(member));
    let resumed = {
        let member = member.clone();
        async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            tokio::task::spawn_blocking(move || {
                member
                    .lock()
                    .unwrap()
                    .consume_and_commit((PER_PARTITION * 2 - 40) as usize)
            })
            .await
            .unwrap();
        }
    };
    let (outcome, ()) = tokio::join!(check(&set, &bootstrap, window), resumed);
    let recovery = &outcome.results[0];
    let took = recovery.verdict.measured.expect("recovered");
    assert!(
        (1.0..4.0).contains(&took),
        "time lag recovered {took} s after the mark, the consumer came back after 1 s: {recovery:?}"
    );
    assert_eq!(recovery.verdict.status, SloStatus::Pass);
    assert!(
        recovery
            .verdict
            .message
            .as_deref()
            .unwrap()
            .starts_with("lag 0 s at "),
        "{recovery:?}"
    );

    // Caught up: nothing is unconsumed, so nothing is old.
    assert_eq!(source.time_lag_now(GROUP, &topics).unwrap(), 0.0);
    drop(cluster);
}

#[tokio::test]
async fn an_unreachable_cluster_is_reported_as_such() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let set = slo_set(
        "  - name: lag\n    sli: {kafka_lag: {group: g, topics: [orders], measure: max_lag}}\n    objective: {lt: 10}\n    source: kafka\n",
    );
    let now = Utc::now();
    let window = Window::new(now, now + chrono::Duration::seconds(1), &set.defaults).unwrap();
    let outcome = check(&set, &format!("127.0.0.1:{port}"), window).await;
    let checked = &outcome.results[0];
    assert_eq!(checked.verdict.status, SloStatus::Unknown);
    assert_eq!(checked.problem, Some(Problem::Unreachable), "{checked:?}");
    assert!(
        checked
            .verdict
            .message
            .as_deref()
            .unwrap()
            .starts_with("unreachable: ")
    );
}

#[tokio::test]
async fn a_past_window_cannot_be_sampled_and_says_which_source_can() {
    let set = slo_set(
        "  - name: lag\n    sli: {kafka_lag: {group: g, topics: [orders], measure: max_lag}}\n    objective: {lt: 10}\n    source: kafka\n",
    );
    let now = Utc::now();
    let window = Window::new(
        now - chrono::Duration::minutes(20),
        now - chrono::Duration::minutes(5),
        &set.defaults,
    )
    .unwrap();
    let outcome = check(&set, "127.0.0.1:9", window).await;
    let checked = &outcome.results[0];
    assert_eq!(checked.problem, Some(Problem::NoData));
    assert!(
        checked
            .verdict
            .message
            .as_deref()
            .unwrap()
            .contains("use source prometheus")
    );
}
