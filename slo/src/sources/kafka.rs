//! The kafka source: consumer lag measured directly with librdkafka — a group's committed
//! offsets against each partition's high watermark, summed over the SLI's topics — sampled
//! while the window runs.
//!
//! It needs no kafka-exporter and works on any Kafka-protocol cluster, including the embedded
//! mock cluster. It cannot look back: for past windows use the `prometheus` source. A partition
//! the group never committed on counts as unconsumed from its low watermark.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::FutureExt;
use futures::future::BoxFuture;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use super::sampling::{self, Samples};
use super::{Measured, Probe, Reading, Source, SourceError, SourceKind};
use crate::model::{KafkaLagSli, KafkaMeasure, Sli};
use crate::series;
use crate::window::Window;

/// How long one broker request may take before the read counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

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

    /// A consumer that only reads the group's committed offsets: it never subscribes, so it
    /// does not join the group or disturb its assignment.
    fn observer(&self, group: &str) -> Result<BaseConsumer, String> {
        ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("client.id", "shakedown-slo")
            .create()
            .map_err(|e| format!("creating a Kafka client for {}: {e}", self.bootstrap))
    }

    /// The group's total lag over `topics` right now (blocking).
    pub fn lag_now(&self, group: &str, topics: &[String]) -> Result<i64, String> {
        read_lag(&self.observer(group)?, topics)
    }

    async fn sample_lag(
        &self,
        sli: &KafkaLagSli,
        window: &Window,
    ) -> Result<Samples<i64, String>, String> {
        let observer = Arc::new(self.observer(&sli.group)?);
        let topics = Arc::new(sli.topics.clone());
        let recovery = match sli.measure {
            KafkaMeasure::RecoveryTime => window
                .instant(&sli.after)
                .ok()
                .map(|since| (since, sli.below.unwrap_or(0.0))),
            KafkaMeasure::MaxLag => None,
        };
        let read = || {
            let (observer, topics) = (observer.clone(), topics.clone());
            async move {
                tokio::task::spawn_blocking(move || read_lag(&observer, &topics))
                    .await
                    .map_err(|e| format!("lag reader stopped: {e}"))?
            }
        };
        // Recovery is answered by the first good sample after the mark; max lag needs them all.
        let recovered = |taken: &[(DateTime<Utc>, i64)]| {
            recovery.is_some_and(|(since, below)| {
                taken
                    .last()
                    .is_some_and(|(at, lag)| *at >= since && (*lag as f64) < below)
            })
        };
        let samples = sampling::sample(window, read, recovered).await;
        // Closing a client can wait for the brokers (seconds when they are down): do it off
        // the async threads and do not make the verdict wait for it.
        tokio::task::spawn_blocking(move || drop(observer));
        Ok(samples)
    }
}

/// Sum over the topics' partitions of `high watermark - committed offset`.
fn read_lag(consumer: &BaseConsumer, topics: &[String]) -> Result<i64, String> {
    let mut total = 0_i64;
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
        for element in committed.elements() {
            let (low, high) = consumer
                .fetch_watermarks(topic, element.partition(), REQUEST_TIMEOUT)
                .map_err(|e| format!("watermarks of {topic}/{}: {e}", element.partition()))?;
            let consumed_up_to = match element.offset() {
                Offset::Offset(offset) => offset,
                _ => low,
            };
            total += (high - consumed_up_to).max(0);
        }
    }
    Ok(total)
}

impl Source for KafkaSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Kafka
    }

    fn describe(&self, sli: &Sli, window: &Window) -> Probe {
        let query = match sli {
            Sli::KafkaLag(k) => Some(format!(
                "group {}, topics [{}]: sum over partitions of (high watermark - committed offset)",
                k.group,
                k.topics.join(", ")
            )),
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
    samples: &Samples<i64, String>,
) -> Result<Reading, SourceError> {
    if samples.window_over {
        return Ok(Reading::no_data(format!(
            "the kafka source samples live and the window ended at {}; use source prometheus (kafka-exporter) for past windows",
            window.to.to_rfc3339()
        )));
    }
    if samples.taken.is_empty() {
        return Err(SourceError::unreachable(samples.summary()));
    }
    let points = samples.points(|lag| *lag as f64);
    match sli.measure {
        KafkaMeasure::MaxLag => Ok(Reading {
            measured: Measured::Exact(series::max(&points).unwrap_or(0.0)),
            note: Some(samples.summary()),
        }),
        KafkaMeasure::RecoveryTime => {
            let since = match window.instant(&sli.after) {
                Ok(since) => since.timestamp_millis() as f64 / 1000.0,
                Err(why) => return Ok(Reading::no_data(why)),
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
                            point.value,
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
                                "not recovered: lag still {last} at the last sample; {}",
                                samples.summary()
                            )),
                        }
                    }
                },
            )
        }
    }
}
