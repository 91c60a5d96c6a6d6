//! `shakedown run`: one load scenario under one profile, against a target or the embedded stack,
//! ending in a report directory and an exit code.
//!
//! Whatever happens after load started (Ctrl-C, a dead target, an SLO source that is down), the
//! report is written with what was measured: a run that cannot be trusted is marked partial and
//! never passes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use reports::{Report, Verdict};
use scenarios::{Overrides, Profile, RunSpec, Scenario};
use shop::stack::Stack;

use super::adhoc::{self, UrlArgs};
use super::exit::{self, Classify, Exit};
use super::gate::{SloArgs, SloGate};
use super::live::{Live, LiveArgs};
use super::provenance::Inputs;
use super::server_side::ServerSideArgs;
use super::shutdown::Shutdown;
use super::up::StackArgs;

/// `k6-baseline` is 4 m 30 s at full size; a bare `shakedown run` plays it at this scale so the
/// main job of the README ends in about a minute with the same shape.
const DEFAULT_SCALE: f64 = 0.25;
const DEFAULT_PROFILE: &str = "k6-baseline";

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Scenario: a built-in name (smoke, browse, checkout, ingest, health) or a scenario file.
    #[arg(default_value = "checkout")]
    pub scenario: String,
    /// Base URL of the gateway under test. Without it the embedded stack is started, used and
    /// stopped.
    #[arg(long)]
    pub target: Option<String>,
    /// Load profile: a built-in name (k6-baseline, smoke, open-baseline) or a YAML file.
    /// Default: k6-baseline at --scale 0.25.
    #[arg(long)]
    pub profile: Option<String>,
    /// Multiply the profile's durations and users (or rates) by this factor.
    #[arg(long)]
    pub scale: Option<f64>,
    /// Stretch or squeeze the profile to last this long (e.g. 45s, 2m).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Peak users (closed model) or the most concurrent users (open model).
    #[arg(long)]
    pub users: Option<u32>,
    /// Open model: peak arrival rate in iterations per second.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Distributed load: the number of workers sharing this profile (each runs 1/N of its users
    /// or rates on the same timeline; merge their reports with `shakedown report merge`).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub workers: u32,
    /// This worker's index, 0 to N−1 (a Kubernetes Indexed Job sets JOB_COMPLETION_INDEX).
    #[arg(long, env = "JOB_COMPLETION_INDEX", default_value_t = 0)]
    pub worker_index: u32,
    #[command(flatten)]
    pub fleet: super::fleet::FleetArgs,
    #[command(flatten)]
    pub slo: SloArgs,
    #[command(flatten)]
    pub live: LiveArgs,
    /// Reports go to OUT/<run-id>/.
    #[arg(long, default_value = "reports/runs")]
    pub out: PathBuf,
    #[command(flatten)]
    pub stack: StackArgs,
    #[command(flatten)]
    pub url: UrlArgs,
    #[command(flatten)]
    pub server_side: ServerSideArgs,
}

pub async fn run(args: RunArgs, quiet: bool, shutdown: &Shutdown) -> Result<Exit> {
    if let Some(on) = args.fleet.on {
        return super::fleet::coordinate(&args, on, quiet, shutdown).await;
    }
    let inputs = inputs(&args);
    let adhoc = adhoc::prepare(&args.url, args.users, args.rate, args.duration)?;
    let profile = match &adhoc {
        Some(adhoc) => adhoc.profile.clone(),
        None => profile(&args)?,
    };
    let gate = SloGate::load(&args.slo)?;
    let (scenario, target) = match adhoc {
        Some(adhoc) => (adhoc.scenario, Some(adhoc.target)),
        None => (validate(&args.scenario, args.target.as_deref())?, None),
    };
    let live = args.live.start(quiet)?;

    let (stack, target) = match target {
        Some(target) => (None, target),
        None => {
            args.stack
                .target_or_start(args.target.as_deref(), quiet)
                .await?
        }
    };
    if let Some(gate) = &gate
        && let Err(error) = gate.preflight(stack.as_ref()).await
    {
        stop(stack).await;
        return Err(error);
    }
    let label = match &args.url.url {
        Some(url) => format!("{} {url}", args.url.method.to_ascii_uppercase()),
        None => args.scenario.clone(),
    };
    if !quiet {
        eprintln!(
            "running {label} against {target} with profile {} ({}s planned)",
            profile.name,
            profile.planned_duration().as_secs()
        );
    }

    let spec = RunSpec {
        scenario: args.scenario.clone(),
        target,
        profile,
        quiet,
        thresholds: Vec::new(),
        live: Live::sink(&live),
    };
    let result = scenarios::execute_scenario(&scenario, spec, &shutdown.token()).await;
    Live::finish(live, shutdown).await;
    let (mut report, failure) = match report_of(result) {
        Ok(split) => split,
        Err(error) => {
            stop(stack).await;
            return Err(error.into());
        }
    };

    let slo_exit = match &gate {
        Some(gate) => gate.judge(&mut report, stack.as_ref(), quiet).await,
        None => None,
    };
    let prometheus = args
        .slo
        .prometheus_url
        .clone()
        .or_else(|| stack.as_ref()?.prometheus_url().map(str::to_string));
    if let Some(prometheus) = prometheus {
        super::server_side::attach(
            &mut report,
            &scenario,
            &prometheus,
            &args.server_side,
            quiet,
        )
        .await;
    }
    stop(stack).await;

    let dir = args.out.join(&report.run_id);
    inputs.stamp(&mut report);
    write(&dir, &report, quiet)?;
    if let Some((exit, message)) = failure {
        eprintln!("error: {message}");
        return Ok(exit);
    }
    Ok(slo_exit.unwrap_or(report.verdict.into()))
}

/// The files a run reads: its scenario (unless `--url` replaces it), profile and SLO file.
pub(super) fn inputs(args: &RunArgs) -> Inputs {
    let scenario = args.url.url.is_none().then_some(args.scenario.as_str());
    Inputs::default()
        .with("scenario", scenario)
        .with("profile", Some(profile_and_scale(args).0))
        .with("slo", args.slo.slo.as_deref().and_then(|p| p.to_str()))
}

/// Refuses an unknown scenario or a malformed target before anything starts (exit 2); returns
/// the scenario, read once, to run.
pub(super) fn validate(scenario: &str, target: Option<&str>) -> Result<Scenario> {
    let (scenario, _) = scenarios::validate(scenario, target).map_err(exit::classified)?;
    Ok(scenario)
}

/// The profile asked for, scaled and overridden; any problem is a usage error naming the file,
/// line and field.
fn profile(args: &RunArgs) -> Result<Profile> {
    let (name, scale) = profile_and_scale(args);
    if args.workers > 1 && args.target.is_none() {
        return Err(exit::usage(
            "--workers splits the load of one system under test: give it --target",
        ));
    }
    resolve_profile(
        name,
        scale,
        &Overrides {
            duration: args.duration,
            users: args.users,
            rate: args.rate,
        },
    )?
    .share(args.workers, args.worker_index)
    .map_err(exit::classified)
}

/// The profile asked for and its scale: k6-baseline at a quarter when none is named.
pub(super) fn profile_and_scale(args: &RunArgs) -> (&str, Option<f64>) {
    match &args.profile {
        Some(name) => (name.as_str(), args.scale),
        None => (DEFAULT_PROFILE, Some(args.scale.unwrap_or(DEFAULT_SCALE))),
    }
}

/// Profile `name` (built-in or a file), scaled by `scale`, with `overrides` (shared with
/// `drill`).
pub(super) fn resolve_profile(
    name: &str,
    scale: Option<f64>,
    overrides: &Overrides,
) -> Result<Profile> {
    let mut profile = Profile::resolve(name).map_err(exit::classified)?;
    if let Some(scale) = scale {
        profile = profile.scaled(scale).map_err(exit::classified)?;
    }
    profile.with_overrides(overrides).map_err(exit::classified)
}

/// What cut a run short, as an exit code and a message.
pub(super) type Failure = (Exit, String);

/// The report of a load run and, when it was cut short, why; `Err` when no load was sent at all
/// (a bad scenario or target), so there is nothing to write.
pub(super) fn report_of(
    result: Result<Report, scenarios::RunError>,
) -> Result<(Report, Option<Failure>), exit::Classified> {
    let error = match result {
        Ok(report) => return Ok((report, None)),
        Err(error) => error,
    };
    let exit = error.exit();
    let message = error.to_string();
    match error.into_partial_report() {
        Some(report) => Ok((report, Some((exit, message)))),
        None => Err(exit::Classified { exit, message }),
    }
}

pub(super) async fn stop(stack: Option<Stack>) {
    if let Some(stack) = stack {
        stack.stop().await;
    }
}

/// Writes every rendering and says where, with the verdict and why it failed.
pub(super) fn write(dir: &Path, report: &Report, quiet: bool) -> Result<()> {
    reports::write_all(dir, report)
        .with_context(|| format!("writing the report to {}", dir.display()))?;
    reports::mark_latest(dir)?;
    let totals = &report.totals;
    if !quiet {
        eprintln!(
            "{} requests, {:.1} req/s, {} errors",
            totals.requests, totals.rps, totals.errors
        );
    }
    for reason in report.failure_reasons() {
        println!("  - {reason}");
    }
    println!("report: {}", dir.join("report.html").display());
    println!(
        "verdict: {}{}",
        match report.verdict {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
        },
        if report.partial { " (partial)" } else { "" }
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        run: RunArgs,
    }

    fn parse(args: &[&str]) -> RunArgs {
        Wrapper::parse_from(std::iter::once("run").chain(args.iter().copied())).run
    }

    #[test]
    fn a_bare_run_plays_k6_baseline_at_a_quarter() {
        let full = Profile::resolve("k6-baseline").unwrap();
        let bare = profile(&parse(&[])).unwrap();
        assert_eq!(bare, full.scaled(DEFAULT_SCALE).unwrap());
        assert!(bare.planned_duration() < full.planned_duration() / 3);
    }

    #[test]
    fn a_named_profile_is_not_scaled_unless_asked() {
        assert_eq!(
            profile(&parse(&["--profile", "smoke"])).unwrap(),
            Profile::resolve("smoke").unwrap()
        );
    }

    #[test]
    fn workers_run_their_share_of_the_profile_on_a_target() {
        let target = ["--target", "http://127.0.0.1:9", "--profile", "k6-baseline"];
        let share = |extra: &[&str]| {
            let args: Vec<&str> = target.iter().chain(extra).copied().collect();
            profile(&parse(&args))
        };
        let whole = Profile::resolve("k6-baseline").unwrap();
        assert_eq!(
            share(&["--workers", "4", "--worker-index", "3"]).unwrap(),
            whole.share(4, 3).unwrap()
        );
        let outside = share(&["--workers", "4", "--worker-index", "4"]).unwrap_err();
        assert_eq!(exit::classify(&outside), Exit::Usage);
        let no_target = profile(&parse(&["--workers", "2"])).unwrap_err();
        assert!(no_target.to_string().contains("--target"), "{no_target}");
    }

    #[test]
    fn a_bad_scale_is_a_usage_error() {
        let error = profile(&parse(&["--scale=-1"])).unwrap_err();
        assert_eq!(exit::classify(&error), Exit::Usage);
        assert!(error.to_string().contains("scale"), "{error}");
    }
}
