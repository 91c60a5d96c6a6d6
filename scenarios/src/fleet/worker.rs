//! A worker of a coordinated run (`shakedown worker --coordinator URL`): it joins, waits at the
//! barrier, estimates its clock offset, starts its share of the load at the agreed instant,
//! streams what it measures every second, stops when told, and ends with its run's facts.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reports::Report;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};

use super::assignment::Sources;
use super::error::FleetError;
use super::proto::{self, fleet_client::FleetClient};
use super::service::now_us;
use super::wire;
use crate::live::{LiveMetrics, LiveSink};
use crate::runner::{LoadStarted, RunSpec, execute_tapped};

/// How a worker is started.
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// The coordinator's URL, e.g. `http://10.0.0.5:7070`.
    pub coordinator: String,
    /// Where it runs (host or pod name), for the report.
    pub name: String,
    /// The share to ask for (a Kubernetes Indexed Job's `JOB_COMPLETION_INDEX`).
    pub index: Option<u32>,
    /// How long to keep trying to reach the coordinator.
    pub connect_timeout: Duration,
    /// Also write this worker's own report under this directory.
    pub out: Option<PathBuf>,
}

/// One interval a second, as the coordinator expects.
const INTERVAL: Duration = Duration::from_secs(1);

/// Runs one worker until its share is done or the coordinator stops it; returns the worker's
/// own report (the coordinator has everything in it already).
pub async fn run_worker(
    options: &WorkerOptions,
    cancel: &CancellationToken,
) -> Result<Report, FleetError> {
    let addr = options.coordinator.clone();
    let unreachable = |reason: String| FleetError::CoordinatorUnreachable {
        addr: addr.clone(),
        reason,
    };
    let mut client = connect(options).await?;
    let assignment = client
        .join(proto::JoinRequest {
            name: options.name.clone(),
            index: options.index,
            sent_at_us: now_us(),
        })
        .await
        .map_err(|status| match status.code() {
            tonic::Code::ResourceExhausted => FleetError::Refused {
                addr: addr.clone(),
                reason: status.message().to_string(),
            },
            _ => unreachable(status.message().to_string()),
        })?
        .into_inner();
    let offset_us = clock_offset(&mut client).await.map_err(unreachable)?;
    let sources = Sources::received(&assignment)?;
    let scenario = sources.scenario()?;
    let profile = sources.share(assignment.workers, assignment.index)?;
    let index = assignment.index;

    // The agreed instant on this worker's clock.
    let start_local_us = assignment.start_at_us + offset_us;
    let wait = Duration::from_micros((start_local_us - now_us()).max(0) as u64);
    tokio::select! {
        _ = tokio::time::sleep(wait) => {}
        _ = cancel.cancelled() => return Err(FleetError::Interrupted),
    }

    // Counted only when the coordinator serves live metrics: it costs a lock per request.
    let live = assignment
        .live_metrics
        .then(|| Arc::new(LiveMetrics::new()));
    let (outgoing, messages) = mpsc::unbounded_channel::<proto::WorkerMessage>();
    let (started_tx, started_rx) = oneshot::channel::<LoadStarted>();
    let stop = CancellationToken::new();
    let ticker = tokio::spawn(stream_intervals(
        started_rx,
        outgoing.clone(),
        Stamp {
            index,
            offset_us,
            start_local_us,
        },
        live.clone(),
        stop.clone(),
    ));
    let mut commands = client
        .stream(UnboundedReceiverStream::new(messages))
        .await
        .map_err(|status| unreachable(status.message().to_string()))?
        .into_inner();

    // Stop on the coordinator's word, on our own Ctrl-C, or when the coordinator is gone.
    let load = cancel.child_token();
    let stopped_by: Arc<Mutex<Option<String>>> = Arc::default();
    let listener = {
        let load = load.clone();
        let stopped_by = stopped_by.clone();
        tokio::spawn(async move {
            loop {
                match commands.message().await {
                    Ok(Some(proto::Command {
                        body: Some(proto::command::Body::Stop(reason)),
                    })) => {
                        *stopped_by.lock().unwrap_or_else(|p| p.into_inner()) =
                            Some(format!("stopped by the coordinator: {reason}"));
                        load.cancel();
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => return,
                    Err(status) => {
                        *stopped_by.lock().unwrap_or_else(|p| p.into_inner()) =
                            Some(format!("lost the coordinator: {}", status.message()));
                        load.cancel();
                        return;
                    }
                }
            }
        })
    };

    let spec = RunSpec {
        scenario: scenario.name().to_string(),
        target: assignment.target.clone(),
        profile,
        quiet: true,
        thresholds: Vec::new(),
        // The coordinator is where a fleet's live figures come together: they go to it with
        // every interval, never to an endpoint of the worker's own.
        live: live.map(|live| live as Arc<dyn LiveSink>),
    };
    let tap = Box::new(move |started: LoadStarted| {
        let _ = started_tx.send(started);
    });
    let result = execute_tapped(&scenario, spec, &load, tap).await;
    stop.cancel();
    let _ = ticker.await;
    let mut report = match result {
        Ok(report) => report,
        Err(error) => match error.into_partial_report() {
            Some(report) => report,
            None => return Err(FleetError::Assignment("the scenario did not run".into())),
        },
    };
    if report.partial
        && let Some(reason) = stopped_by.lock().unwrap_or_else(|p| p.into_inner()).clone()
    {
        report.partial_reason = Some(reason);
        report.recompute_verdict();
    }
    let _ = outgoing.send(proto::WorkerMessage {
        index,
        body: Some(proto::worker_message::Body::Finished(proto::Finished {
            ended_at_ns: nanos(report.ended_at),
            actual_duration_s: report.actual_duration_s,
            partial_reason: report.partial_reason.clone(),
            arrivals: report.arrivals.map(|a| proto::Arrivals {
                scheduled_iterations: a.scheduled_iterations,
                started_iterations: a.started_iterations,
                max_lateness_ms: a.max_lateness_ms,
            }),
        })),
    });
    drop(outgoing);
    // The coordinator ends our command stream once it has the final message.
    let _ = tokio::time::timeout(Duration::from_secs(10), listener).await;

    if let Some(out) = &options.out {
        let dir = out.join(&report.run_id);
        reports::write_all(&dir, &report).map_err(|e| {
            FleetError::Assignment(format!(
                "writing the worker report to {}: {e}",
                dir.display()
            ))
        })?;
    }
    Ok(report)
}

fn nanos(at: chrono::DateTime<chrono::Utc>) -> i64 {
    at.timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// Connects, retrying until `connect_timeout`: in a cluster a worker may start before its
/// coordinator listens.
async fn connect(options: &WorkerOptions) -> Result<FleetClient<Channel>, FleetError> {
    let unreachable = |reason: String| FleetError::CoordinatorUnreachable {
        addr: options.coordinator.clone(),
        reason,
    };
    let endpoint = Endpoint::from_shared(options.coordinator.clone())
        .map_err(|e| unreachable(format!("not a URL: {e}")))?
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true);
    let deadline = tokio::time::Instant::now() + options.connect_timeout;
    loop {
        match endpoint.connect().await {
            Ok(channel) => return Ok(FleetClient::new(channel)),
            Err(error) if tokio::time::Instant::now() >= deadline => {
                let mut cause: &dyn std::error::Error = &error;
                while let Some(source) = cause.source() {
                    cause = source;
                }
                return Err(unreachable(cause.to_string()));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Worker clock minus coordinator clock in µs: the sample with the shortest round trip of a
/// few, taking the coordinator's reading as made half-way (NTP's estimate).
async fn clock_offset(client: &mut FleetClient<Channel>) -> Result<i64, String> {
    let mut best: Option<(i64, i64)> = None;
    for _ in 0..5 {
        let sent = now_us();
        let reply = client
            .clock(proto::ClockRequest {})
            .await
            .map_err(|s| s.message().to_string())?
            .into_inner();
        let received = now_us();
        let round_trip = received - sent;
        let offset = (sent + received) / 2 - reply.now_us;
        if best.is_none_or(|(rtt, _)| round_trip < rtt) {
            best = Some((round_trip, offset));
        }
    }
    Ok(best.map_or(0, |(_, offset)| offset))
}

/// Who a worker's messages come from and how its clock relates to the coordinator's.
struct Stamp {
    index: u32,
    /// Worker clock minus coordinator clock, µs.
    offset_us: i64,
    /// The agreed start on the worker's clock, µs since the epoch.
    start_local_us: i64,
}

/// Sends Started once load starts, then one interval a second (with the live figures so far,
/// when `live`), and the last one when `stop` fires (after the load ended, so nothing recorded
/// is left behind).
async fn stream_intervals(
    started: oneshot::Receiver<LoadStarted>,
    outgoing: mpsc::UnboundedSender<proto::WorkerMessage>,
    stamp: Stamp,
    live: Option<Arc<LiveMetrics>>,
    stop: CancellationToken,
) {
    let Stamp {
        index,
        offset_us,
        start_local_us,
    } = stamp;
    let Ok(started) = started.await else {
        return;
    };
    let started_at_ns = nanos(started.started_at);
    let _ = outgoing.send(proto::WorkerMessage {
        index,
        body: Some(proto::worker_message::Body::Started(proto::Started {
            run_id: started.run_id.clone(),
            started_at_ns,
            clock_offset_us: offset_us,
            start_lateness_us: started_at_ns / 1000 - start_local_us,
        })),
    });
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut seq = 0;
    loop {
        let last = tokio::select! {
            _ = tick.tick() => false,
            _ = stop.cancelled() => true,
        };
        let Some(interval) = started.recorder.take_interval() else {
            return;
        };
        let message = match wire::encode(&interval) {
            Ok(mut message) => {
                seq += 1;
                message.seq = seq;
                message.active_users = started.recorder.live().active_users;
                message.cut_at_us = now_us();
                message.live = live.as_deref().map(|l| wire::live_figures(&l.figures()));
                message.arrivals = started.pacer.as_ref().map(|pacer| proto::Arrivals {
                    scheduled_iterations: pacer.scheduled_so_far(),
                    started_iterations: pacer.started(),
                    max_lateness_ms: interval.max_lateness.as_secs_f64() * 1000.0,
                });
                message
            }
            Err(error) => {
                tracing::error!("cannot encode an interval: {error}");
                return;
            }
        };
        let _ = outgoing.send(proto::WorkerMessage {
            index,
            body: Some(proto::worker_message::Body::Interval(message)),
        });
        if last {
            return;
        }
    }
}
