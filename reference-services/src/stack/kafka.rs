//! The embedded Kafka: librdkafka's own mock cluster (the real Kafka protocol on loopback, with
//! idempotent producers and consumer groups), owned by a dedicated thread because the cluster
//! handle cannot move between threads. Brokers can be taken down and brought back, which is what
//! local broker-failure drills do.

use std::{sync::mpsc, thread};

use rdkafka::{error::KafkaError, mocking::MockCluster};
use tokio::sync::oneshot;

use crate::platform::events::ALL_TOPICS;

/// Partitions per topic in the embedded cluster.
pub const PARTITIONS: i32 = 3;

/// What went wrong with the mock cluster; librdkafka's own error is part of the message.
#[derive(Debug, thiserror::Error)]
pub enum MockKafkaError {
    #[error("starting mock Kafka cluster: {0}")]
    Start(KafkaError),
    #[error("creating topic {topic}: {error}")]
    CreateTopic {
        topic: &'static str,
        error: KafkaError,
    },
    #[error("spawning the mock Kafka thread: {0}")]
    Thread(std::io::Error),
    #[error("mock Kafka thread ended before starting")]
    EndedBeforeStart,
    #[error("no broker {id}: brokers are {brokers:?}")]
    NoBroker {
        id: i32,
        brokers: std::ops::RangeInclusive<i32>,
    },
    /// `change` is `down` or `up`.
    #[error("broker {id} {change}: {error}")]
    Broker {
        id: i32,
        change: &'static str,
        error: KafkaError,
    },
    #[error("mock Kafka thread is gone")]
    Gone,
}

type Result<T, E = MockKafkaError> = std::result::Result<T, E>;

enum Command {
    Down(i32, oneshot::Sender<Result<()>>),
    Up(i32, oneshot::Sender<Result<()>>),
}

/// A running mock cluster with the platform's topics.
pub struct MockKafka {
    bootstrap: String,
    brokers: i32,
    commands: mpsc::Sender<Command>,
    thread: Option<thread::JoinHandle<()>>,
}

impl MockKafka {
    /// Starts a cluster of `brokers` brokers and creates every platform topic.
    pub fn start(brokers: i32) -> Result<Self> {
        let (ready_tx, ready_rx) = mpsc::channel::<Result<String>>();
        let (commands, inbox) = mpsc::channel::<Command>();
        let thread = thread::Builder::new()
            .name("mock-kafka".into())
            .spawn(move || {
                let cluster = match MockCluster::new(brokers) {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready_tx.send(Err(MockKafkaError::Start(e)));
                        return;
                    }
                };
                let replication = brokers.min(3);
                for topic in ALL_TOPICS {
                    if let Err(e) = cluster.create_topic(topic, PARTITIONS, replication) {
                        let _ = ready_tx.send(Err(MockKafkaError::CreateTopic { topic, error: e }));
                        return;
                    }
                }
                let _ = ready_tx.send(Ok(cluster.bootstrap_servers()));
                // Runs until every sender is dropped, i.e. until the MockKafka is dropped.
                for command in inbox {
                    match command {
                        Command::Down(id, reply) => {
                            let _ = reply.send(cluster.broker_down(id).map_err(|error| {
                                MockKafkaError::Broker {
                                    id,
                                    change: "down",
                                    error,
                                }
                            }));
                        }
                        Command::Up(id, reply) => {
                            let _ = reply.send(cluster.broker_up(id).map_err(|error| {
                                MockKafkaError::Broker {
                                    id,
                                    change: "up",
                                    error,
                                }
                            }));
                        }
                    }
                }
            })
            .map_err(MockKafkaError::Thread)?;
        let bootstrap = ready_rx
            .recv()
            .map_err(|_| MockKafkaError::EndedBeforeStart)??;
        Ok(Self {
            bootstrap,
            brokers,
            commands,
            thread: Some(thread),
        })
    }

    /// `host:port,...` of the brokers.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }

    /// Broker ids are `1..=brokers`.
    pub fn broker_ids(&self) -> std::ops::RangeInclusive<i32> {
        1..=self.brokers
    }

    pub async fn broker_down(&self, id: i32) -> Result<()> {
        self.command(id, Command::Down).await
    }

    pub async fn broker_up(&self, id: i32) -> Result<()> {
        self.command(id, Command::Up).await
    }

    async fn command(
        &self,
        id: i32,
        make: fn(i32, oneshot::Sender<Result<()>>) -> Command,
    ) -> Result<()> {
        if !self.broker_ids().contains(&id) {
            return Err(MockKafkaError::NoBroker {
                id,
                brokers: self.broker_ids(),
            });
        }
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(id, tx))
            .map_err(|_| MockKafkaError::Gone)?;
        rx.await.map_err(|_| MockKafkaError::Gone)?
    }
}

impl Drop for MockKafka {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop; the cluster is destroyed on that thread.
        let (dead, _) = mpsc::channel();
        self.commands = dead;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::{
        ClientConfig,
        producer::{BaseProducer, Producer},
    };
    use std::time::Duration;

    #[tokio::test]
    async fn creates_topics_and_takes_brokers_down_and_up() {
        let kafka = MockKafka::start(3).unwrap();
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", kafka.bootstrap_servers())
            .create()
            .unwrap();
        let metadata = producer
            .client()
            .fetch_metadata(None, Duration::from_secs(5))
            .unwrap();
        for topic in ALL_TOPICS {
            let t = metadata
                .topics()
                .iter()
                .find(|t| t.name() == topic)
                .expect(topic);
            assert_eq!(t.partitions().len(), PARTITIONS as usize);
        }
        kafka.broker_down(2).await.unwrap();
        kafka.broker_up(2).await.unwrap();
        let error = kafka.broker_down(9).await.unwrap_err();
        assert!(
            matches!(error, MockKafkaError::NoBroker { id: 9, .. }),
            "{error:?}"
        );
        assert_eq!(error.to_string(), "no broker 9: brokers are 1..=3");
    }
}
