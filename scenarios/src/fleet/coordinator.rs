//! The coordinator of a run made by many generators: it serves the fleet contract, has the
//! workers launched, holds them at the barrier, watches them while they run (live progress,
//! silent or dead workers, abort thresholds, Ctrl-C) and writes one report from what they sent.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reports::Report;
use tokio_util::sync::CancellationToken;

use super::abort::AbortWatch;
use super::assignment::Sources;
use super::error::FleetError;
use super::launch::Launcher;
use super::live::{Live, live_figures};
use super::merge::{RunContext, fleet_report};
use super::proto::fleet_server::FleetServer;
use super::service::{Service, now_us};
use super::state::{End, Fleet};
use crate::live::LiveMetrics;
use crate::profile::{Load, Overrides, Profile};
use crate::progress::Progress;

/// What to run, and how many workers share it.
#[derive(Clone, Debug)]
pub struct FleetPlan {
    /// A built-in scenario name or a scenario file.
    pub scenario: String,
    /// A built-in profile name or a profile file.
    pub profile: String,
    pub scale: Option<f64>,
    pub overrides: Overrides,
    /// Base URL of the system under test.
    pub target: String,
    pub workers: u32,
    /// Where the coordinator listens (port 0: any free port).
    pub listen: SocketAddr,
    /// The URL workers use to reach the coordinator; `None`: `http://` + the bound address.
    pub advertise: Option<String>,
    /// How long workers may take to join before the run is given up (exit 3).
    pub join_timeout: Duration,
    pub quiet: bool,
    /// Where the fleet's live metrics go (`--metrics-listen`, `--remote-write`): set to the sum
    /// of the workers' figures four times a second and once more at the end.
    pub live: Option<Arc<LiveMetrics>>,
}

/// A worker that was silent this long is counted as gone (intervals come every second).
const SILENCE: Duration = Duration::from_secs(10);
/// After the common start, a worker has this long to start streaming.
const START_GRACE: Duration = Duration::from_secs(30);
/// After a stop, workers have this long to send their last interval.
const STOP_GRACE: Duration = Duration::from_secs(15);
const TICK: Duration = Duration::from_millis(250);

/// Runs the plan with workers from `launcher` until they are done, `cancel` fires, or an abort
/// threshold breaks; returns the one report (partial when a worker went missing or the run
/// was stopped).
pub async fn coordinate(
    plan: FleetPlan,
    mut launcher: impl Launcher,
    cancel: &CancellationToken,
) -> Result<Report, FleetError> {
    let sources = Sources::read(&plan.scenario, &plan.profile, plan.scale, &plan.overrides)?;
    let scenario = sources.scenario()?;
    let whole = sources.whole_profile()?;
    let shares = (0..plan.workers)
        .map(|index| sources.share(plan.workers, index))
        .collect::<Result<Vec<Profile>, _>>()?;
    let target = crate::runner::normalize_target(&plan.target)?;
    // As a single run does: no workers for a target that does not answer.
    crate::runner::probe(&target, whole.request_timeout.min(Duration::from_secs(5)))
        .await
        .map_err(|reason| FleetError::TargetUnreachable {
            target: target.clone(),
            reason,
        })?;
    let corrected = matches!(whole.load, Load::Open { .. });
    let fleet = Arc::new(Fleet::new(plan.workers, corrected));
    let mut aborts = AbortWatch::new(&whole);

    let listener = tokio::net::TcpListener::bind(plan.listen)
        .await
        .map_err(|source| FleetError::Listen {
            addr: plan.listen.to_string(),
            source,
        })?;
    let bound = listener.local_addr().map_err(|source| FleetError::Listen {
        addr: plan.listen.to_string(),
        source,
    })?;
    let url = plan
        .advertise
        .clone()
        .unwrap_or_else(|| format!("http://{bound}"));
    let service = Service {
        fleet: fleet.clone(),
        sources: Arc::new(sources),
        target: target.as_str().into(),
        live_metrics: plan.live.is_some(),
    };
    let serving = CancellationToken::new();
    let server = {
        let serving = serving.clone();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(FleetServer::new(service))
                .serve_with_incoming_shutdown(
                    tokio_stream::wrappers::TcpListenerStream::new(listener),
                    async move { serving.cancelled().await },
                ),
        )
    };
    if !plan.quiet {
        eprintln!(
            "coordinator listening on {url}: {} workers share {} with profile {} against {target}",
            plan.workers,
            scenario.name(),
            whole.name
        );
    }

    let run_id = uuid::Uuid::now_v7().to_string();
    let outcome = async {
        launcher.launch(&url, plan.workers, &run_id).await?;
        let start_at = wait_for_joins(&fleet, &plan, &mut launcher, cancel).await?;
        watch_run(&fleet, &plan, &whole, start_at, &mut aborts, cancel).await;
        let context = RunContext {
            run_id: run_id.clone(),
            scenario: scenario.name(),
            target: &target,
            shares: &shares,
        };
        fleet_report(&fleet, &context)
    }
    .await;
    if outcome.is_err() {
        fleet.stop_all("the coordinator gave up");
    }
    launcher.finish().await;
    serving.cancel();
    // Graceful, but bounded: a worker that holds a call open does not hold the run.
    let abort = server.abort_handle();
    if tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .is_err()
    {
        abort.abort();
    }
    outcome
}

/// Until every worker joined: the common start instant (µs, coordinator clock).
async fn wait_for_joins(
    fleet: &Fleet,
    plan: &FleetPlan,
    launcher: &mut impl Launcher,
    cancel: &CancellationToken,
) -> Result<i64, FleetError> {
    let deadline = tokio::time::Instant::now() + plan.join_timeout;
    let never_joined = |hint: String| {
        let names = fleet.barrier.names();
        let joined = names.iter().filter(|n| n.is_some()).count() as u32;
        FleetError::NeverJoined {
            joined,
            workers: plan.workers,
            timeout: plan.join_timeout,
            missing: names
                .iter()
                .enumerate()
                .filter(|(_, n)| n.is_none())
                .map(|(i, _)| format!("share {i}"))
                .collect::<Vec<_>>()
                .join(", "),
            hint,
        }
    };
    loop {
        tokio::select! {
            start = fleet.barrier.started() => return Ok(start),
            _ = tokio::time::sleep_until(deadline) => {
                return Err(never_joined(
                    "; check that the workers can reach the coordinator (--listen, --advertise)"
                        .into(),
                ));
            }
            _ = cancel.cancelled() => return Err(FleetError::Interrupted),
            _ = tokio::time::sleep(TICK) => {
                if let Some(exited) = launcher.exited() {
                    return Err(never_joined(format!("; {exited} before the run started")));
                }
            }
        }
    }
}

/// Watches the run until every worker ended (finished, disconnected or silent).
async fn watch_run(
    fleet: &Fleet,
    plan: &FleetPlan,
    whole: &Profile,
    start_at: i64,
    aborts: &mut AbortWatch,
    cancel: &CancellationToken,
) {
    let progress = Progress::new(
        plan.quiet,
        whole.planned_duration(),
        &format!("{} workers · {}", plan.workers, whole.name),
    );
    let start_wait = Duration::from_micros((start_at - now_us()).max(0) as u64);
    let started = Instant::now() + start_wait;
    let mut stopped_at: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = fleet.changed.notified() => {}
            _ = tokio::time::sleep(TICK) => {}
            _ = cancel.cancelled(), if stopped_at.is_none() => {
                fleet.stop_all(crate::runner::INTERRUPTED);
            }
        }
        if stopped_at.is_none() && fleet.stop_reason().is_some() {
            stopped_at = Some(Instant::now());
        }
        let elapsed = Instant::now().saturating_duration_since(started);
        mark_missing(fleet, started, stopped_at);
        if stopped_at.is_none()
            && let Some(reason) = aborts.check(fleet, elapsed)
        {
            if !plan.quiet {
                progress.finish();
                eprintln!("aborting every worker: {reason}");
            }
            fleet.stop_all(&reason);
            stopped_at = Some(Instant::now());
        }
        progress.show(elapsed, Live::of(fleet).line());
        if let Some(metrics) = &plan.live {
            metrics.replace(live_figures(fleet));
        }
        if fleet.slots().iter().all(|slot| slot.ended()) {
            break;
        }
    }
    progress.finish();
}

/// Workers that went silent, never started, or did not stop in time count as disconnected.
fn mark_missing(fleet: &Fleet, started: Instant, stopped_at: Option<Instant>) {
    let now = Instant::now();
    let mut slots = fleet.slots();
    for slot in slots.iter_mut().filter(|slot| !slot.ended()) {
        let reason = match slot.last_heard {
            Some(heard) if now.duration_since(heard) > SILENCE => {
                Some(format!("went silent (nothing for {} s)", SILENCE.as_secs()))
            }
            None if now.saturating_duration_since(started) > START_GRACE => Some(format!(
                "did not start within {} s of the common start",
                START_GRACE.as_secs()
            )),
            _ => None,
        };
        let reason = reason.or_else(|| {
            stopped_at
                .filter(|at| now.duration_since(*at) > STOP_GRACE)
                .map(|_| format!("did not stop within {} s", STOP_GRACE.as_secs()))
        });
        if let Some(reason) = reason {
            slot.end = End::Disconnected(reason);
            slot.commands = None;
        }
    }
}
