//! Local `broker-failure`: take mock Kafka brokers down for a while and bring them back, then
//! (optionally) measure until the events are flowing again — the recovery the on-call person
//! cares about is "what piled up is delivered and notifications caught up", not "the broker
//! process is up". So recovery waits for both: the producing services' outboxes drained (what
//! they accepted while Kafka was down is published) and the consumer group's lag below its bound.

use std::time::{Duration, Instant};

use chrono::Utc;
use futures::FutureExt;
use shop::stack::Stack;
use slo::sources::KafkaSource;
use tokio_util::sync::CancellationToken;

use super::accounting;
use crate::action::{Action, ActionFuture, hold};
use crate::error::ChaosError;
use crate::journal::{ActionRecord, Outcome};
use crate::model::{LagRecovery, LocalBrokerFailure};

/// Lag and outboxes are read this often while waiting for recovery.
const LAG_POLL: Duration = Duration::from_millis(500);

pub struct BrokerFailureAction<'s> {
    pub stack: &'s Stack,
    pub ids: Vec<i32>,
    pub spec: LocalBrokerFailure,
}

async fn up(stack: &Stack, ids: &[i32]) -> Result<(), ChaosError> {
    for id in ids {
        stack
            .kafka()
            .broker_up(*id)
            .await
            .map_err(|e| ChaosError::Failed(format!("bringing broker {id} up: {e:#}")))?;
    }
    Ok(())
}

impl Action for BrokerFailureAction<'_> {
    fn kind(&self) -> &str {
        "broker-failure"
    }

    fn target(&self) -> String {
        format!("kafka brokers {:?}", self.ids)
    }

    fn run<'a>(&'a self, cancel: &'a CancellationToken) -> ActionFuture<'a> {
        async move {
            let started_at = Utc::now();
            let mut down = Vec::new();
            for id in &self.ids {
                if let Err(e) = self.stack.kafka().broker_down(*id).await {
                    // Do not leave half the failure in place.
                    up(self.stack, &down).await?;
                    return Err(ChaosError::Failed(format!(
                        "taking broker {id} down: {e:#}"
                    )));
                }
                down.push(*id);
            }
            let held = hold(self.spec.duration, cancel).await;
            up(self.stack, &down).await?;
            let back_at = Instant::now();
            let mut detail = vec![format!(
                "down for {}",
                humantime::format_duration(Duration::from_secs(
                    (Utc::now() - started_at).num_seconds().max(0) as u64
                ))
            )];
            if !held {
                detail.push("cut short (halt or Ctrl-C)".into());
            }
            let (outcome, recovery) = match &self.spec.recovery {
                None => (Outcome::Ok, None),
                Some(r) => match recovered(self.stack, r).await {
                    Ok(lag) => {
                        detail.push(format!(
                            "outboxes drained, group {} lag {lag} < {}",
                            r.group, r.below
                        ));
                        (Outcome::Ok, Some(back_at.elapsed()))
                    }
                    Err(why) => {
                        detail.push(why);
                        (Outcome::Failed, None)
                    }
                },
            };
            Ok(ActionRecord {
                action: "broker-failure".into(),
                target: "kafka (mock)".into(),
                started_at,
                ended_at: Some(Utc::now()),
                outcome,
                affected: self.ids.iter().map(|id| format!("broker {id}")).collect(),
                recovery,
                detail: Some(detail.join("; ")),
            })
        }
        .boxed()
    }
}

/// Waits until the outboxes are empty and the group's lag is below the bound; the last lag read,
/// or why it never got there.
async fn recovered(stack: &Stack, r: &LagRecovery) -> Result<i64, String> {
    let source = std::sync::Arc::new(KafkaSource::new(stack.kafka().bootstrap_servers()));
    let http = reqwest::Client::new();
    let deadline = Instant::now() + r.timeout;
    loop {
        let last = match outbox_pending(stack, &http).await {
            Ok(0) => {
                let (source, group, topics) = (source.clone(), r.group.clone(), r.topics.clone());
                let read = tokio::task::spawn_blocking(move || source.lag_now(&group, &topics))
                    .await
                    .map_err(|e| format!("lag reader stopped: {e}"))?;
                match read {
                    Ok(lag) if (lag.max(0) as u64) < r.below => return Ok(lag),
                    Ok(lag) => format!("lag {lag}"),
                    Err(e) => e.message,
                }
            }
            Ok(pending) => format!("{pending} events still in the outboxes"),
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            return Err(format!(
                "group {} did not catch up within {} (last: {last})",
                r.group,
                humantime::format_duration(r.timeout)
            ));
        }
        tokio::time::sleep(LAG_POLL).await;
    }
}

/// Events accepted but not yet acknowledged by Kafka, summed over the accounting of the stack's
/// services that declare an outbox: what they accepted while Kafka was down waits there, so
/// recovery includes its delivery.
async fn outbox_pending(stack: &Stack, http: &reqwest::Client) -> Result<u64, String> {
    let mut pending = 0;
    for endpoint in stack.endpoints().iter().filter(|e| e.outbox) {
        let report = accounting::read(http, endpoint)
            .await
            .map_err(|e| e.to_string())?;
        pending += accounting::outbox(&report)
            .map_err(|e| e.to_string())?
            .pending;
    }
    Ok(pending)
}

/// `brokers-up`: every broker back, whatever state the method left them in (a rollback).
pub struct BrokersUpAction<'s> {
    pub stack: &'s Stack,
}

impl Action for BrokersUpAction<'_> {
    fn kind(&self) -> &str {
        "brokers-up"
    }

    fn target(&self) -> String {
        "kafka (mock)".into()
    }

    fn run<'a>(&'a self, _cancel: &'a CancellationToken) -> ActionFuture<'a> {
        async move {
            let started_at = Utc::now();
            let ids: Vec<i32> = self.stack.kafka().broker_ids().collect();
            up(self.stack, &ids).await?;
            Ok(ActionRecord::completed(
                "brokers-up",
                "kafka (mock)".into(),
                started_at,
                ids.iter().map(|id| format!("broker {id}")).collect(),
            ))
        }
        .boxed()
    }
}
