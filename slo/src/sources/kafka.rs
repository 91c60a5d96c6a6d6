//! The kafka source: consumer lag measured directly with librdkafka, sampled while the window
//! runs, in messages or in time.
//!
//! Lag in messages is each partition's high watermark minus the group's committed offset, summed
//! over the SLI's topics. Lag in time is, per partition, the age of the oldest unconsumed message
//! — now minus the timestamp of the message at the committed offset (0 when nothing is left) —
//! and the maximum over partitions: the number people page on, because unlike a message count it
//! does not grow with throughput. Those messages are read by a throwaway consumer that assigns
//! itself the partitions at the committed offsets; it never joins the group and never commits,
//! so the group under test is not disturbed.
//!
//! It needs no exporter and works on any Kafka-protocol cluster, including the embedded mock
//! cluster. It cannot look back: for past windows use the `prometheus` source. A partition the
//! group never committed on counts as unconsumed from its low watermark.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::FutureExt;
use futures::future::BoxFuture;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use super::sampling::{self, Samples};
use super::{Measured, Probe, Reading, Source, SourceError, SourceKind};
use crate::model::{KafkaLagSli, KafkaMeasure, LagKind, Sli};
use crate::series;
use crate::value::Unit;
use crate::window::Window;

/// How long one broker request may take before the read counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one sample may wait for the oldest unconsumed message of every lagging partition.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// A Kafka cluster, by bootstrap servers.
pub struct KafkaSource {
    bootstrap: String,
}

impl KafkaSource {
    pub fn new(bootstrap: impl Into<String>) -> KafkaSource {
        KafkaSource {
            bootstrap: bootstrap.into(),
        }
    }

    /// The group's total lag in messages over `topics` right now (blocking). The cluster not
    /// answering (or refusing the group's offsets) is `unreachable`.
    pub fn lag_now(&self, group: &str, topics: &[String]) -> Result<i64, SourceError> {
        LagReader::new(&self.bootstrap, group, LagKind::Messages)
            .and_then(|reader| reader.messages(topics))
            .map_err(SourceError::unreachable)
    }

    /// The group's time lag over `topics` right now, in seconds: the age of its oldest
    /// unconsumed message (blocking).
    pub fn time_lag_now(&self, group: &str, topics: &[String]) -> Result<f64, SourceError> {
        LagReader::new(&self.bootstrap, group, LagKind::Time)
            .and_then(|reader| reader.time(topics))
            .map(|lag| lag.value)
            .map_err(SourceError::unreachable)
    }

    async fn sample_lag(
        &self,
        sli: &KafkaLagSli,
        window: &Window,
    ) -> Result<Samples<Lag, String>, String> {
        let reader = Arc::new(LagReader::new(&self.bootstrap, &sli.group, sli.lag)?);
        let topics = Arc::new(sli.topics.clone());
        let recovery = match sli.measure {
            KafkaMeasure::RecoveryTime => window
                .instant(&sli.after)
                .ok()
                .map(|since| (since, sli.below.unwrap_or(0.0))),
            KafkaMeasure::MaxLag | KafkaMeasure::TimeLag => None,
        };
        let read = || {
            let (reader, topics) = (reader.clone(), topics.clone());
            async move {
                tokio::task::spawn_blocking(move || reader.read(&topics))
                    .await
                    .map_err(|e| format!("lag reader stopped: {e}"))?
            }
        };
        // Recovery is answered by the first good sample after the mark; a maximum needs them all.
        let recovered = |taken: &[(DateTime<Utc>, Lag)]| {
            recovery.is_some_and(|(since, below)| {
                taken
                    .last()
                    .is_some_and(|(at, lag)| *at >= since && lag.value < below)
            })
        };
        let samples = sampling::sample(window, read, recovered).await;
        // Closing a client can wait for the brokers (seconds when they are down): do it off
        // the async threads and do not make the verdict wait for it.
        tokio::task::spawn_blocking(move || drop(reader));
        Ok(samples)
    }
}

/// One sample: the lag in the SLI's unit, and which message it comes from (time lag).
#[derive(Clone, Debug)]
struct Lag {
    value: f64,
    /// The oldest unconsumed message, e.g. `orders/1 offset 40 (produced 2025-…)`.
    oldest: Option<String>,
}

/// Where the group stands on one partition.
struct Position {
    topic: String,
    partition: i32,
    low: i64,
    high: i64,
    committed: Option<i64>,
    /// When the committed offset was read: the instant the lag is measured at.
    read_at: DateTime<Utc>,
}

impl Position {
    /// Messages the group has not consumed; a partition never committed counts from its low
    /// watermark.
    fn messages_behind(&self) -> i64 {
        (self.high - self.committed.unwrap_or(self.low)).max(0)
    }

    /// The offset of the oldest unconsumed message still in the log, if there is one.
    fn oldest_unconsumed(&self) -> Option<i64> {
        let next = self.committed.unwrap_or(self.low).max(self.low);
        (next < self.high).then_some(next)
    }
}

/// The clients one lag measurement needs.
struct LagReader {
    /// Reads the group's committed offsets: it carries the group's id but never subscribes,
    /// so it does not join the group or disturb its assignment.
    observer: BaseConsumer,
    /// Reads the message at a committed offset (time lag only), under a group id of its own.
    fetcher: Option<BaseConsumer>,
    kind: LagKind,
}

impl LagReader {
    fn new(bootstrap: &str, group: &str, kind: LagKind) -> Result<LagReader, String> {
        let observer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("client.id", "shakedown-slo")
            .create()
            .map_err(|e| format!("creating a Kafka client for {bootstrap}: {e}"))?;
        let fetcher = match kind {
            LagKind::Messages => None,
            LagKind::Time => Some(fetcher(bootstrap)?),
        };
        Ok(LagReader {
            observer,
            fetcher,
            kind,
        })
    }

    fn read(&self, topics: &[String]) -> Result<Lag, String> {
        match self.kind {
            LagKind::Messages => self.messages(topics).map(|total| Lag {
                value: total as f64,
                oldest: None,
            }),
            LagKind::Time => self.time(topics),
        }
    }

    fn messages(&self, topics: &[String]) -> Result<i64, String> {
        Ok(self
            .positions(topics)?
            .iter()
            .map(Position::messages_behind)
            .sum())
    }

    /// The age in seconds of the oldest unconsumed message over all partitions (0 when the
    /// group has consumed everything).
    fn time(&self, topics: &[String]) -> Result<Lag, String> {
        let fetcher = self
            .fetcher
            .as_ref()
            .ok_or("this lag reader was not set up for time lag")?;
        let positions = self.positions(topics)?;
        let wanted: Vec<(&Position, i64)> = positions
            .iter()
            .filter_map(|p| p.oldest_unconsumed().map(|offset| (p, offset)))
            .collect();
        let timestamps = fetch_timestamps(fetcher, &wanted)?;
        let mut lag = Lag {
            value: 0.0,
            oldest: None,
        };
        for (position, offset) in &wanted {
            let key = (position.topic.clone(), position.partition);
            let Some(&(found_at, timestamp_ms)) = timestamps.get(&key) else {
                continue;
            };
            // A producer's clock ahead of ours must not make a negative age.
            let age =
                ((position.read_at.timestamp_millis() - timestamp_ms) as f64 / 1000.0).max(0.0);
            if lag.oldest.is_none() || age > lag.value {
                let produced = DateTime::<Utc>::from_timestamp_millis(timestamp_ms)
                    .map_or_else(|| timestamp_ms.to_string(), |t| t.to_rfc3339());
                let skipped = if found_at > *offset {
                    format!(" (first message at or after committed offset {offset})")
                } else {
                    String::new()
                };
                lag = Lag {
                    value: age,
                    oldest: Some(format!(
                        "oldest unconsumed: {}/{} offset {found_at}{skipped}, timestamp {produced}",
                        position.topic, position.partition
                    )),
                };
            }
        }
        Ok(lag)
    }

    fn positions(&self, topics: &[String]) -> Result<Vec<Position>, String> {
        let consumer = &self.observer;
        let mut positions = Vec::new();
        for topic in topics {
            let metadata = consumer
                .fetch_metadata(Some(topic), REQUEST_TIMEOUT)
                .map_err(|e| format!("metadata of topic {topic}: {e}"))?;
            let Some(meta) = metadata.topics().iter().find(|t| t.name() == topic) else {
                return Err(format!("topic {topic} is not in the cluster's metadata"));
            };
            if let Some(error) = meta.error() {
                return Err(format!("topic {topic}: {error:?}"));
            }
            let mut partitions = TopicPartitionList::new();
            for partition in meta.partitions() {
                partitions.add_partition(topic, partition.id());
            }
            let committed = consumer
                .committed_offsets(partitions, REQUEST_TIMEOUT)
                .map_err(|e| format!("committed offsets of topic {topic}: {e}"))?;
            let read_at = Utc::now();
            for element in committed.elements() {
                let (low, high) = consumer
                    .fetch_watermarks(topic, element.partition(), REQUEST_TIMEOUT)
                    .map_err(|e| format!("watermarks of {topic}/{}: {e}", element.partition()))?;
                positions.push(Position {
                    topic: topic.clone(),
                    partition: element.partition(),
                    low,
                    high,
                    committed: match element.offset() {
                        Offset::Offset(offset) => Some(offset),
                        _ => None,
                    },
                    read_at,
                });
            }
        }
        Ok(positions)
    }
}

/// A consumer that only ever reads single messages at offsets it is given: a group id of its
/// own (librdkafka needs one to assign partitions), no subscription (no group join), no commits,
/// and no deep prefetch (one message per partition is all it wants).
fn fetcher(bootstrap: &str) -> Result<BaseConsumer, String> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let group = format!(
        "shakedown-slo-time-lag-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", &group)
        .set("client.id", "shakedown-slo-time-lag")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        // An open transaction must not hold the read up: its messages are unconsumed too.
        .set("isolation.level", "read_uncommitted")
        .set("queued.min.messages", "1")
        .set("fetch.wait.max.ms", "100")
        .create()
        .map_err(|e| format!("creating a Kafka client for {bootstrap}: {e}"))
}

/// By (topic, partition): the offset and timestamp (milliseconds) of the first message read.
type FirstMessages = BTreeMap<(String, i32), (i64, i64)>;

/// The first message at or after each wanted offset: its offset and timestamp (milliseconds),
/// by (topic, partition). All partitions are fetched at once, within [`FETCH_TIMEOUT`].
fn fetch_timestamps(
    fetcher: &BaseConsumer,
    wanted: &[(&Position, i64)],
) -> Result<FirstMessages, String> {
    let mut found = BTreeMap::new();
    if wanted.is_empty() {
        return Ok(found);
    }
    let mut assignment = TopicPartitionList::new();
    let mut starts = BTreeMap::new();
    for (position, offset) in wanted {
        assignment
            .add_partition_offset(&position.topic, position.partition, Offset::Offset(*offset))
            .map_err(|e| format!("{}/{}: {e}", position.topic, position.partition))?;
        starts.insert((position.topic.clone(), position.partition), *offset);
    }
    fetcher
        .assign(&assignment)
        .map_err(|e| format!("assigning partitions to read their oldest messages: {e}"))?;
    let deadline = Instant::now() + FETCH_TIMEOUT;
    let mut last_error = None;
    while found.len() < starts.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match fetcher.poll(left.min(Duration::from_millis(100))) {
            Some(Ok(message)) => {
                let key = (message.topic().to_string(), message.partition());
                // Anything before the wanted offset (a stale prefetch) is not the answer.
                let wanted_here = starts.get(&key).is_some_and(|s| message.offset() >= *s);
                if wanted_here && !found.contains_key(&key) {
                    let Some(timestamp) = message.timestamp().to_millis() else {
                        let _ = fetcher.unassign();
                        return Err(format!(
                            "the message at {}/{} offset {} has no timestamp (a pre-0.10 message format): time lag cannot be measured",
                            key.0,
                            key.1,
                            message.offset()
                        ));
                    };
                    found.insert(key, (message.offset(), timestamp));
                }
            }
            Some(Err(e)) => last_error = Some(e.to_string()),
            None => {}
        }
    }
    let _ = fetcher.unassign();
    if found.len() < starts.len() {
        let missing: Vec<String> = starts
            .iter()
            .filter(|(key, _)| !found.contains_key(*key))
            .map(|((topic, partition), offset)| format!("{topic}/{partition} offset {offset}"))
            .collect();
        return Err(format!(
            "no message read at {} within {}{}",
            missing.join(", "),
            humantime::format_duration(FETCH_TIMEOUT),
            last_error.map_or_else(String::new, |e| format!(" (last error: {e})"))
        ));
    }
    Ok(found)
}

impl Source for KafkaSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Kafka
    }

    fn describe(&self, sli: &Sli, window: &Window) -> Probe {
        let query = match sli {
            Sli::KafkaLag(k) => Some(match k.lag {
                LagKind::Messages => format!(
                    "group {}, topics [{}]: sum over partitions of (high watermark - committed offset)",
                    k.group,
                    k.topics.join(", ")
                ),
                LagKind::Time => format!(
                    "group {}, topics [{}]: max over partitions of (now - timestamp of the message at the committed offset), 0 where committed offset = high watermark",
                    k.group,
                    k.topics.join(", ")
                ),
            }),
            _ => None,
        };
        Probe {
            source: format!(
                "kafka {}: sampled every {} while the window runs",
                self.bootstrap,
                humantime::format_duration(window.sample_every)
            ),
            query,
        }
    }

    fn measure<'a>(
        &'a self,
        sli: &'a Sli,
        window: &'a Window,
    ) -> BoxFuture<'a, Result<Reading, SourceError>> {
        async move {
            let Sli::KafkaLag(k) = sli else {
                return Err(SourceError::rejected(format!(
                    "the kafka source cannot measure a `{}` SLI",
                    sli.kind_name()
                )));
            };
            if k.topics.is_empty() {
                return Err(SourceError::rejected(
                    "the kafka source needs the group's `topics` listed",
                ));
            }
            let samples = self
                .sample_lag(k, window)
                .await
                .map_err(SourceError::unreachable)?;
            judge(k, window, &samples)
        }
        .boxed()
    }
}

fn judge(
    sli: &KafkaLagSli,
    window: &Window,
    samples: &Samples<Lag, String>,
) -> Result<Reading, SourceError> {
    if samples.window_over {
        return Ok(Reading::no_data(format!(
            "the kafka source samples live and the window ended at {}; use source prometheus (kafka-exporter, kafka-lag-exporter) for past windows",
            window.to.to_rfc3339()
        )));
    }
    if samples.taken.is_empty() {
        return Err(SourceError::unreachable(samples.summary()));
    }
    let points = samples.points(|lag| lag.value);
    let unit = match sli.lag {
        LagKind::Messages => Unit::Messages,
        LagKind::Time => Unit::Duration,
    };
    match sli.measure {
        KafkaMeasure::MaxLag | KafkaMeasure::TimeLag => {
            let max = series::max(&points).unwrap_or(0.0);
            // Say which message made the maximum, so the on-call person knows where to look.
            let worst = samples
                .taken
                .iter()
                .filter(|(_, lag)| lag.value == max)
                .find_map(|(_, lag)| lag.oldest.clone());
            Ok(Reading {
                measured: Measured::Exact(max),
                note: Some(match worst {
                    Some(worst) => format!("{worst}; {}", samples.summary()),
                    None => samples.summary(),
                }),
            })
        }
        KafkaMeasure::RecoveryTime => {
            let since = match window.instant(&sli.after) {
                Ok(since) => since.timestamp_millis() as f64 / 1000.0,
                Err(why) => return Ok(Reading::no_data(why.to_string())),
            };
            if since > window.to.timestamp() as f64 {
                return Ok(Reading::no_data(format!(
                    "recovery is counted from {} ({}), after the window ends",
                    sli.after,
                    crate::time::human_instant(since)
                )));
            }
            let below = sli.below.unwrap_or(0.0);
            let first_sample = points[0].at;
            Ok(
                match series::first_at_or_after(&points, since, |lag| lag < below) {
                    Some(point) => {
                        let mut note = format!(
                            "lag {} at {}; {}",
                            unit.format(point.value),
                            crate::time::human_instant(point.at),
                            samples.summary()
                        );
                        if first_sample > since && point.at == first_sample {
                            note.push_str("; sampling began after the mark, so it recovered at or before this");
                        }
                        Reading {
                            measured: Measured::Exact((point.at - since).max(0.0)),
                            note: Some(note),
                        }
                    }
                    None => {
                        let last = points.last().map_or(f64::NAN, |p| p.value);
                        let observed_until = points.last().map_or(since, |p| p.at);
                        Reading {
                            measured: Measured::AtLeast((observed_until - since).max(0.0)),
                            note: Some(format!(
                                "not recovered: lag still {} at the last sample; {}",
                                unit.format(last),
                                samples.summary()
                            )),
                        }
                    }
                },
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position(low: i64, high: i64, committed: Option<i64>) -> Position {
        Position {
            topic: "orders".into(),
            partition: 0,
            low,
            high,
            committed,
            read_at: Utc::now(),
        }
    }

    #[test]
    fn the_oldest_unconsumed_message_is_at_the_committed_offset_or_the_log_start() {
        // Caught up: nothing to read, time lag 0.
        assert_eq!(position(0, 50, Some(50)).oldest_unconsumed(), None);
        assert_eq!(position(0, 50, Some(40)).oldest_unconsumed(), Some(40));
        // Never committed: from the log start, like the message lag.
        assert_eq!(position(10, 50, None).oldest_unconsumed(), Some(10));
        assert_eq!(position(10, 50, None).messages_behind(), 40);
        // Committed below what retention kept: the oldest message left.
        assert_eq!(position(30, 50, Some(20)).oldest_unconsumed(), Some(30));
        assert_eq!(position(0, 0, None).oldest_unconsumed(), None);
    }
}
