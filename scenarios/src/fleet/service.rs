//! The coordinator's gRPC service: Join (the barrier), Stream (intervals in, commands out) and
//! Clock. It only records what workers say into the shared [`Fleet`]; the coordinator's loop
//! decides what that means.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use chrono::TimeZone as _;

use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::assignment::Sources;
use super::merge::at_us;
use super::proto::{self, fleet_server};
use super::state::{End, Fleet, stop_command};
use super::wire;

/// The service, shared with the coordinator's loop.
#[derive(Clone)]
pub struct Service {
    pub fleet: Arc<Fleet>,
    pub sources: Arc<Sources>,
    /// The normalized base URL of the system under test.
    pub target: Arc<str>,
    /// The coordinator serves live metrics: workers send theirs with every interval.
    pub live_metrics: bool,
}

pub fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

type Commands = Pin<Box<dyn Stream<Item = Result<proto::Command, Status>> + Send>>;

#[tonic::async_trait]
impl fleet_server::Fleet for Service {
    async fn join(
        &self,
        request: Request<proto::JoinRequest>,
    ) -> Result<Response<proto::Assignment>, Status> {
        let join = request.into_inner();
        let index = self
            .fleet
            .barrier
            .join(&join.name, join.index, now_us())
            .map_err(|refused| Status::resource_exhausted(refused.to_string()))?;
        {
            let mut slots = self.fleet.slots();
            let slot = &mut slots[index as usize];
            slot.name = join.name;
            slot.joined = true;
        }
        self.fleet.changed.notify_waiters();
        let mut stop = self.fleet.stop.subscribe();
        let start_at_us = tokio::select! {
            start = self.fleet.barrier.started() => start,
            reason = stop.wait_for(Option::is_some) => {
                let reason = reason.map(|r| r.clone().unwrap_or_default()).unwrap_or_default();
                return Err(Status::unavailable(format!("the run was called off: {reason}")));
            }
        };
        Ok(Response::new(proto::Assignment {
            index,
            workers: self.fleet.workers,
            scenario: Some(self.sources.scenario.clone()),
            profile: Some(self.sources.profile.clone()),
            target: self.target.to_string(),
            start_at_us,
            live_metrics: self.live_metrics,
        }))
    }

    type StreamStream = Commands;

    async fn stream(
        &self,
        request: Request<Streaming<proto::WorkerMessage>>,
    ) -> Result<Response<Commands>, Status> {
        // Answer at once: the worker sends its first message (Started) only once its load runs,
        // and it opens this stream before that.
        let messages = request.into_inner();
        let (commands, outgoing) = mpsc::unbounded_channel();
        tokio::spawn(receive(self.fleet.clone(), messages, commands));
        let outgoing = UnboundedReceiverStream::new(outgoing).map(Ok);
        Ok(Response::new(Box::pin(outgoing) as Commands))
    }

    async fn clock(
        &self,
        _request: Request<proto::ClockRequest>,
    ) -> Result<Response<proto::ClockReply>, Status> {
        Ok(Response::new(proto::ClockReply { now_us: now_us() }))
    }
}

/// Reads one worker's stream to its end. The first message says which worker it is; from then
/// on the worker can be sent commands (a stop that came earlier is sent at once).
async fn receive(
    fleet: Arc<Fleet>,
    mut messages: Streaming<proto::WorkerMessage>,
    commands: mpsc::UnboundedSender<proto::Command>,
) {
    let first = match messages.next().await {
        Some(Ok(first)) => first,
        Some(Err(_)) | None => return,
    };
    let index = first.index as usize;
    {
        let mut slots = fleet.slots();
        let Some(slot) = slots
            .get_mut(index)
            .filter(|slot| slot.joined && slot.commands.is_none() && !slot.ended())
        else {
            tracing::warn!("a stream claims worker {index}, which did not join or already streams");
            return;
        };
        if let Some(reason) = fleet.stop_reason() {
            let _ = commands.send(stop_command(&reason));
        }
        slot.commands = Some(commands);
    }
    let mut next = Some(first);
    let end = loop {
        let message = match next.take() {
            Some(message) => message,
            None => match messages.next().await {
                Some(Ok(message)) => message,
                Some(Err(status)) => {
                    break End::Disconnected(format!("disconnected ({})", status.message()));
                }
                None => {
                    break End::Disconnected("closed its stream without finishing".to_string());
                }
            },
        };
        match apply(&fleet, index, message) {
            Ok(Some(finished)) => break End::Finished(finished),
            Ok(None) => {}
            Err(reason) => break End::Disconnected(reason),
        }
        fleet.changed.notify_waiters();
    };
    let mut slots = fleet.slots();
    let slot = &mut slots[index];
    if !slot.ended() {
        slot.end = end;
    }
    // Dropping the sender ends the worker's command stream: it may go.
    slot.commands = None;
    drop(slots);
    fleet.changed.notify_waiters();
}

/// Records one message of worker `index`; `Some` when it was the final one, `Err` when it
/// cannot be used (the worker is then treated as disconnected).
fn apply(
    fleet: &Fleet,
    index: usize,
    message: proto::WorkerMessage,
) -> Result<Option<proto::Finished>, String> {
    let mut slots = fleet.slots();
    let slot = &mut slots[index];
    slot.last_heard = Some(Instant::now());
    match message.body {
        Some(proto::worker_message::Body::Started(started)) => {
            slot.run_id = Some(started.run_id);
            slot.started_at = Some(chrono::Utc.timestamp_nanos(started.started_at_ns));
            slot.clock_offset_us = started.clock_offset_us;
            slot.start_lateness_us = started.start_lateness_us;
            Ok(None)
        }
        Some(proto::worker_message::Body::Interval(interval)) => {
            if slot.started_at.is_none() {
                return Err("sent an interval before it started".into());
            }
            wire::add(&mut slot.measurements, &interval, fleet.corrected)
                .map_err(|e| format!("sent an unreadable interval: {e}"))?;
            let latest = interval
                .totals
                .as_ref()
                .map(|t| {
                    reports::LatencyHistogram::from_v2_bytes(&t.latency)
                        .map(|h| (t.requests, t.errors, h))
                })
                .transpose()
                .map_err(|e| format!("sent an unreadable interval: {e}"))?;
            slot.last_interval = latest;
            slot.last_cut_at = Some(at_us(interval.cut_at_us));
            if interval.arrivals.is_some() {
                slot.arrivals = interval.arrivals;
            }
            if let Some(live) = &interval.live {
                slot.live = Some(
                    wire::figures(live)
                        .map_err(|e| format!("sent unreadable live metrics: {e}"))?,
                );
            }
            Ok(None)
        }
        Some(proto::worker_message::Body::Finished(finished)) => Ok(Some(finished)),
        None => Err("sent an empty message".into()),
    }
}
