//! Running a scenario under a profile and producing its report.
//!
//! [`execute`] is the one entry point the CLI calls. It probes the target first (no point
//! ramping up against a closed port), runs Goose with our recorder attached, and always
//! comes back with a report: complete, partial (Ctrl-C, target died mid-run), or inside the
//! error when the target could not be reached at all.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use reports::{ArrivalStats, GeneratorHealth, Report, Threshold, default_thresholds};
use tokio_util::sync::CancellationToken;

use crate::assemble::{RunFacts, assemble};
use crate::error::RunError;
use crate::file::{Scenario, ScenarioError};
use crate::goose_plan::goose_attack;
use crate::live::LiveSink;
use crate::pacing::ArrivalPacer;
use crate::profile::{ArrivalSchedule, Load, Profile};
use crate::progress::Progress;
use crate::quiet_stdout::StdoutDiverted;
use crate::recorder::Recorder;
use crate::session::RunContext;
use crate::watch::{StopReason, watch};

/// How long the pre-flight `GET /health` may take before the target counts as unreachable.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// What to run.
#[derive(Clone, Debug)]
pub struct RunSpec {
    /// A built-in scenario name (see [`crate::scenario_names`]) or the path of a scenario
    /// file; resolved by [`Scenario::resolve`].
    pub scenario: String,
    /// Base URL of the gateway, e.g. `http://127.0.0.1:8080` (a path prefix is kept).
    pub target: String,
    /// The load profile, already scaled/overridden.
    pub profile: Profile,
    /// No progress bar (it is also hidden when stderr is not a terminal or `CI` is set).
    pub quiet: bool,
    /// Thresholds to judge; when empty, the profile's, and when it has none, the defaults
    /// (p95 < 500 ms, p99 < 1000 ms, error rate < 5 %).
    pub thresholds: Vec<Threshold>,
    /// Live metrics to feed while the run runs (see [`crate::live`]); `None` for none.
    pub live: Option<Arc<dyn LiveSink>>,
}

/// Why a run stopped when its caller cancelled it (a signal, in the CLI).
pub const INTERRUPTED: &str = "interrupted (Ctrl-C or SIGTERM)";

/// Runs `spec` and returns its report; [`execute_until`] with a token nobody cancels.
pub async fn execute(spec: RunSpec) -> Result<Report, RunError> {
    execute_until(spec, &CancellationToken::new()).await
}

/// Runs `spec` until it ends or `cancel` fires, and returns its report.
///
/// - `Ok(report)`: the run happened. `report.partial` is set when it stopped early —
///   interrupted by `cancel` (or by Goose's own Ctrl-C handler, when the process has no
///   handler of its own; the CLI installs one, so Goose's never exits the process) or stopped
///   because every request of the last 5 s failed to connect — with `partial_reason` saying
///   which. `report.verdict` says pass or fail.
/// - `Err(RunError::Unreachable)`: `GET {target}/health` could not connect or timed out; the
///   error carries a partial report with no requests.
/// - `Err(RunError::UnknownScenario | InvalidScenario | InvalidTarget)`: nothing was run.
/// - `Err(RunError::LoadGenerator)`: Goose failed; the error carries what was measured.
///
/// Goose's Ctrl-C handler and killswitch are process-wide, so run one `execute` at a time
/// per process.
pub async fn execute_until(spec: RunSpec, cancel: &CancellationToken) -> Result<Report, RunError> {
    let scenario = Scenario::resolve(&spec.scenario)?;
    execute_scenario(&scenario, spec, cancel).await
}

/// Runs an already resolved `scenario` (a file, a built-in, or Rust steps from
/// [`Scenario::from_rust`]); `spec.scenario` is ignored. Otherwise like [`execute_until`].
pub async fn execute_scenario(
    scenario: &Scenario,
    spec: RunSpec,
    cancel: &CancellationToken,
) -> Result<Report, RunError> {
    let base_url = normalize_target(&spec.target)?;
    let thresholds = effective_thresholds(&spec);
    let run_id = uuid::Uuid::now_v7();

    if let Err(reason) = probe(&base_url, spec.profile.request_timeout.min(PROBE_TIMEOUT)).await {
        let now = Utc::now();
        let report = assemble(
            RunFacts {
                run_id: run_id.to_string(),
                scenario: scenario.name(),
                target: &base_url,
                profile: &spec.profile,
                started_at: now,
                ended_at: now,
                actual_duration: Duration::ZERO,
                partial_reason: Some(format!("target unreachable: {reason}")),
                thresholds: &thresholds,
                arrivals: None,
            },
            Recorder::new(false).measurements(),
        );
        return Err(RunError::Unreachable {
            target: base_url,
            reason,
            report: Box::new(report),
        });
    }

    run_load(
        &spec,
        scenario,
        &base_url,
        &thresholds,
        run_id,
        cancel,
        None,
    )
    .await
}

/// What a fleet worker gets as its load starts: the run's identity and the recorder (keeping
/// intervals) it streams from.
pub(crate) struct LoadStarted {
    pub run_id: String,
    pub started_at: chrono::DateTime<Utc>,
    pub recorder: Arc<Recorder>,
    pub pacer: Option<Arc<ArrivalPacer>>,
}

/// Called once, when load generation starts.
pub(crate) type Tap = Box<dyn FnOnce(LoadStarted) + Send>;

/// [`execute_scenario`] for a fleet worker: no pre-flight probe (the coordinator's run already
/// probed the target; a worker only reports what it measures) and a recorder that keeps
/// intervals, handed to `tap` as load starts.
pub(crate) async fn execute_tapped(
    scenario: &Scenario,
    spec: RunSpec,
    cancel: &CancellationToken,
    tap: Tap,
) -> Result<Report, RunError> {
    let base_url = normalize_target(&spec.target)?;
    let thresholds = effective_thresholds(&spec);
    let run_id = uuid::Uuid::now_v7();
    run_load(
        &spec,
        scenario,
        &base_url,
        &thresholds,
        run_id,
        cancel,
        Some(tap),
    )
    .await
}

/// The load phase: Goose plus the recorder, watcher and progress bar.
async fn run_load(
    spec: &RunSpec,
    scenario: &Scenario,
    base_url: &str,
    thresholds: &[Threshold],
    run_id: uuid::Uuid,
    cancel: &CancellationToken,
    tap: Option<Tap>,
) -> Result<Report, RunError> {
    let profile = &spec.profile;
    let pacer = match &profile.load {
        Load::Open {
            start_rate, stages, ..
        } => Some(Arc::new(ArrivalPacer::new(ArrivalSchedule::new(
            *start_rate,
            stages,
        )))),
        Load::Closed { .. } => None,
    };
    let recorder = match tap {
        Some(_) => Recorder::new(pacer.is_some()).with_intervals(),
        None => Recorder::new(pacer.is_some()),
    };
    let recorder = Arc::new(recorder.with_live(spec.live.clone()));
    let run = Arc::new(RunContext::new(
        recorder.clone(),
        pacer.clone(),
        base_url.to_string(),
        profile.think_time,
    ));
    let (definition, self_paced) = scenario.definition().map_err(|message| {
        RunError::Scenario(ScenarioError::Invalid(Box::new(config::Error::field(
            scenario.name(),
            "variables",
            message,
        ))))
    })?;
    let attack = goose_attack(&definition, self_paced, profile, base_url, run);

    let progress = Arc::new(Progress::new(
        spec.quiet,
        profile.planned_duration(),
        &format!("{} · {}", scenario.name(), profile.name),
    ));
    let stop = Arc::new(StopReason::default());
    let started_at = Utc::now();
    let started = Instant::now();
    let cpu = crate::health::CpuProbe::start();
    if let Some(tap) = tap {
        tap(LoadStarted {
            run_id: run_id.to_string(),
            started_at,
            recorder: recorder.clone(),
            pacer: pacer.clone(),
        });
    }
    let outcome = match attack {
        Ok(attack) => {
            let watcher = tokio::spawn(watch(
                recorder.clone(),
                progress.clone(),
                stop.clone(),
                cancel.clone(),
            ));
            let diverted = StdoutDiverted::divert(spec.quiet);
            let outcome = attack.execute().await;
            drop(diverted);
            watcher.abort();
            outcome.map(|_| ())
        }
        Err(error) => Err(error),
    };
    let actual_duration = started.elapsed();
    let cpu = cpu.finish(actual_duration.as_secs_f64());
    // Goose has dropped its users: live observers see the run end with zero.
    if let Some(live) = &spec.live {
        live.active_users(recorder.live().active_users);
    }
    let ended_at = Utc::now();
    progress.finish();

    // Goose's killswitch is set by our watcher (a dead target, or `cancel`) or by Goose's own
    // Ctrl-C handler; the watcher records a dead target's reason first, so a triggered
    // killswitch without one means an interruption.
    let interrupted = goose::is_killswitch_triggered() || cancel.is_cancelled();
    goose::reset_killswitch();
    let partial_reason = match (&outcome, stop.get()) {
        (Err(error), _) => Some(format!("load generator failed: {error}")),
        (Ok(()), Some(reason)) => Some(reason.to_string()),
        (Ok(()), None) if interrupted => Some(INTERRUPTED.to_string()),
        (Ok(()), None) => None,
    };
    let measurements = recorder.measurements();
    let arrivals = pacer.as_ref().map(|pacer| ArrivalStats {
        scheduled_iterations: pacer.scheduled_so_far(),
        started_iterations: pacer.started(),
        max_lateness_ms: measurements.max_lateness.as_secs_f64() * 1000.0,
    });
    let mut report = assemble(
        RunFacts {
            run_id: run_id.to_string(),
            scenario: scenario.name(),
            target: base_url,
            profile,
            started_at,
            ended_at,
            actual_duration,
            partial_reason,
            thresholds,
            arrivals,
        },
        measurements,
    );
    report.provenance.generator = Some(GeneratorHealth::judge(cpu, open_model(arrivals)));
    match outcome {
        Ok(()) => Ok(report),
        Err(error) => Err(RunError::LoadGenerator {
            message: error.to_string(),
            report: Box::new(report),
        }),
    }
}

/// An open-model run's schedule keeping, as [`GeneratorHealth::judge`] reads it.
pub(crate) fn open_model(arrivals: Option<ArrivalStats>) -> Option<(u64, u64, f64)> {
    arrivals.map(|a| {
        (
            a.scheduled_iterations,
            a.started_iterations,
            a.max_lateness_ms,
        )
    })
}

/// The caller's thresholds, else the profile's, else the defaults.
fn effective_thresholds(spec: &RunSpec) -> Vec<Threshold> {
    if !spec.thresholds.is_empty() {
        spec.thresholds.clone()
    } else {
        effective_profile_thresholds(&spec.profile)
    }
}

/// The profile's thresholds, else the defaults (a run without thresholds of its caller).
pub(crate) fn effective_profile_thresholds(profile: &Profile) -> Vec<Threshold> {
    if !profile.thresholds.is_empty() {
        profile.thresholds.clone()
    } else {
        default_thresholds()
    }
}

/// Checks what can be checked without sending anything — the scenario exists and is valid
/// (a scenario file is read and checked completely), the target is an http(s) base URL — and
/// returns the resolved scenario and the normalized target. [`execute`] does the same first;
/// callers use this to refuse a bad run before they start anything (a stack, a banner), and
/// run the scenario they got with [`execute_scenario`] so a file is read once.
/// `target` is `None` when it is not known yet (an embedded stack still to start).
pub fn validate(
    scenario: &str,
    target: Option<&str>,
) -> Result<(Scenario, Option<String>), RunError> {
    let scenario = Scenario::resolve(scenario)?;
    Ok((scenario, target.map(normalize_target).transpose()?))
}

/// Checks the target is an http(s) URL with a host and drops any trailing slash.
pub(crate) fn normalize_target(target: &str) -> Result<String, RunError> {
    let invalid = |reason: &str| RunError::InvalidTarget {
        target: target.to_string(),
        reason: reason.to_string(),
    };
    let url = reqwest::Url::parse(target.trim()).map_err(|e| {
        // `127.0.0.1:8080` and `shop.example` are the usual slips: name the fix.
        let looks_like_a_host = !target.trim().is_empty() && !target.contains("://");
        if looks_like_a_host {
            invalid(&format!(
                "{e}: a target is a URL with a scheme; did you mean http://{}?",
                target.trim()
            ))
        } else {
            invalid(&e.to_string())
        }
    })?;
    if url.cannot_be_a_base() {
        // `localhost:8080` parses as scheme `localhost` with path `8080`.
        return Err(invalid(&format!(
            "a target is a URL with a scheme; did you mean http://{}?",
            target.trim()
        )));
    }
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("the scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("a base URL has no query or fragment"));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// `GET {base}/health`: `Err(reason)` when it cannot connect or times out. Any HTTP answer —
/// even an error status — means the target is there; the run will show how it behaves.
pub(crate) async fn probe(base_url: &str, timeout: Duration) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|e| format!("cannot build HTTP client: {e}"))?;
    let url = format!("{base_url}/health");
    match client.get(&url).send().await {
        Ok(response) => {
            if !response.status().is_success() {
                tracing::warn!(status = %response.status(), "GET {url} did not succeed; running anyway");
            }
            Ok(())
        }
        Err(error) => {
            let mut cause: &dyn std::error::Error = &error;
            while let Some(source) = cause.source() {
                cause = source;
            }
            let kind = if error.is_timeout() {
                "timed out"
            } else {
                "cannot connect"
            };
            Err(format!("GET {url}: {kind}: {cause}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_normalized_or_refused() {
        assert_eq!(
            normalize_target("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            normalize_target("https://shop.example/api-gw/").unwrap(),
            "https://shop.example/api-gw"
        );
        for host in ["127.0.0.1:8080", "localhost:8080", "shop.example"] {
            let error = normalize_target(host).unwrap_err().to_string();
            assert!(
                error.contains(&format!("did you mean http://{host}?")),
                "{host}: {error}"
            );
        }
        for bad in [
            "127.0.0.1:8080",
            "ftp://host",
            "http://",
            "http://h/?q=1",
            "",
        ] {
            let error = normalize_target(bad).unwrap_err();
            assert!(error.is_usage(), "{bad}: {error}");
        }
    }
}
