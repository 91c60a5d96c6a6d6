//! `shakedown capacity`: step the load up until a threshold or SLO breaks, and report the highest
//! load that held — users (closed model, linear steps) or, with `--rate`, the highest
//! sustainable arrival rate (open model, bracket then bisect) — with a fitted scalability model.
//! Every step is a full run with its own report; the summary says where it broke. The search is
//! `scenarios::capacity::search`; here are its flags, the stack, the SLO gate of each step, the
//! files (capacity.json, capacity.md, capacity.html) and the exit code.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use reports::{GeneratorHealth, Provenance};
use scenarios::Profile;
use scenarios::capacity::{CapacityPlan, CapacityResult, Plan, RatePlan, Step, Steps, Stop};
use shop::stack::Stack;

use super::gate::{SloArgs, SloGate};
use super::live::{Live, LiveArgs};
use super::provenance::Inputs;
use super::shutdown::Shutdown;
use super::up::StackArgs;
use super::{Exit, exit};

#[derive(Args, Debug)]
pub struct CapacityArgs {
    /// Scenario: a built-in name (smoke, browse, checkout, ingest, health) or a scenario file.
    #[arg(default_value = "checkout")]
    pub scenario: String,
    /// Base URL of the gateway under test (default: the embedded stack).
    #[arg(long)]
    pub target: Option<String>,
    /// Search the arrival rate (open model: iterations per second) instead of users: double
    /// from --start until a step fails or --max, then bisect to --resolution.
    #[arg(long)]
    pub rate: bool,
    /// Users (or, with --rate, iterations/s) of the first step.
    #[arg(long, default_value_t = 10.0)]
    pub start: f64,
    /// Users added at each step (user search only).
    #[arg(long, default_value_t = 10)]
    pub step: u32,
    /// Users (or, with --rate, iterations/s) of the last step.
    #[arg(long, default_value_t = 100.0)]
    pub max: f64,
    /// With --rate: stop bisecting when the rate that held and the one that failed are this
    /// close, a percentage of the one that held.
    #[arg(long, default_value = "5%")]
    pub resolution: String,
    /// How long each step holds its load.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub hold: Duration,
    /// How long each step ramps up to its load before the hold (with --rate: the warm-up).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub ramp: Duration,
    /// A profile whose thresholds, think time and request timeout the steps use (its stages are
    /// not). Default thresholds: p95 < 500 ms, p99 < 1000 ms, error rate < 5 %.
    #[arg(long)]
    pub profile: Option<String>,
    /// Fail (exit 1) unless at least this load held (users, or iterations/s with --rate).
    #[arg(long)]
    pub require: Option<f64>,
    /// The Prometheus label that names a service: with Prometheus (`--prometheus-url`, or the
    /// embedded stack's), every step records each service's p95, error ratio and CPU, and the
    /// summary names the first service to saturate.
    #[arg(long, default_value = "service")]
    pub service_label: String,
    /// The CPU one service may use, in cores (its limit): a service using 90 % of it is
    /// saturated. Default on the embedded stack: this machine's cores; otherwise CPU is shown
    /// but not judged.
    #[arg(long)]
    pub service_cpu: Option<f64>,
    #[command(flatten)]
    pub slo: SloArgs,
    #[command(flatten)]
    pub live: LiveArgs,
    /// The summary and every step's report go to OUT/capacity-<time>/.
    #[arg(long, default_value = "reports/runs")]
    pub out: PathBuf,
    #[command(flatten)]
    pub stack: StackArgs,
}

pub async fn run(args: CapacityArgs, quiet: bool, shutdown: &Shutdown) -> Result<Exit> {
    let inputs = Inputs::default()
        .with("scenario", Some(args.scenario.as_str()))
        .with("profile", args.profile.as_deref())
        .with("slo", args.slo.slo.as_deref().and_then(|p| p.to_str()));
    let started_at = chrono::Utc::now();
    let plan = plan(&args)?;
    let base = args
        .profile
        .as_deref()
        .map(Profile::resolve)
        .transpose()
        .map_err(exit::classified)?;
    let gate = SloGate::load(&args.slo)?;
    super::run::validate(&args.scenario, args.target.as_deref())?;
    let live = args.live.start(quiet)?;

    let (stack, target) = args
        .stack
        .target_or_start(args.target.as_deref(), quiet)
        .await?;
    if let Some(gate) = &gate
        && let Err(error) = gate.preflight(stack.as_ref()).await
    {
        super::run::stop(stack).await;
        return Err(error);
    }

    let services = match ServiceFigures::of(&args, stack.as_ref()).await {
        Ok(services) => services,
        Err(error) => {
            super::run::stop(stack).await;
            return Err(error);
        }
    };

    let dir = args.out.join(format!(
        "capacity-{}",
        humantime::format_rfc3339_seconds(std::time::SystemTime::now())
            .to_string()
            .replace(':', "")
    ));
    let mut steps = CliSteps {
        dir: &dir,
        gate: gate.as_ref(),
        stack: stack.as_ref(),
        services,
        quiet,
        live: Live::sink(&live),
        inputs: &inputs,
        queries: Vec::new(),
    };
    let searched = scenarios::capacity::search(
        &plan,
        &args.scenario,
        &target,
        base.as_ref(),
        quiet,
        &shutdown.token(),
        &mut steps,
    )
    .await;
    let queries = std::mem::take(&mut steps.queries);
    drop(steps);
    Live::finish(live, shutdown).await;
    super::run::stop(stack).await;
    let mut searched = searched?;

    let result = &mut searched.result;
    let health = steps_health(&result.steps);
    result.provenance = Provenance {
        target: Some(result.target.clone()),
        started_at: Some(started_at),
        ended_at: Some(chrono::Utc::now()),
        generator: GeneratorHealth::worst_of(health.iter().map(|(n, h)| (n.as_str(), h))),
        ..inputs.provenance()
    };
    result
        .provenance
        .add_queries(queries.iter().map(String::as_str));
    write_summary(&dir, &searched.result)?;
    print!("{}", searched.result.markdown());
    println!("summary: {}", dir.join("capacity.md").display());
    let holds = searched.holds(args.require);
    match searched.stopped {
        Some(Stop::Load(error)) => Err(exit::classified(error)),
        Some(Stop::Judge(error)) => Err(error),
        None => Ok(exit::passed(holds)),
    }
}

/// The search the flags ask for, checked; the message names the flag.
fn plan(args: &CapacityArgs) -> Result<Plan> {
    if args.rate {
        let resolution = reports::diff::parse_bound(&args.resolution)
            .map_err(|e| exit::usage(format!("--resolution: {e}")))?;
        let plan = RatePlan {
            start: args.start,
            max: args.max,
            resolution,
            hold: args.hold,
            warmup: args.ramp,
        };
        plan.validate().map_err(exit::classified)?;
        return Ok(Plan::Rate(plan));
    }
    let users = |flag: &str, value: f64| -> Result<u32> {
        if value.fract() != 0.0 || !(0.0..=f64::from(u32::MAX)).contains(&value) {
            return Err(exit::usage(format!(
                "{flag} {value} is not a whole number of users (for a rate, add --rate)"
            )));
        }
        Ok(value as u32)
    };
    let plan = CapacityPlan {
        start: users("--start", args.start)?,
        step: args.step,
        max: users("--max", args.max)?,
        hold: args.hold,
        ramp: args.ramp,
    };
    plan.validate().map_err(exit::classified)?;
    Ok(Plan::Users(plan))
}

/// Each step: judged by the SLO gate (when `--slo`), written to its own directory.
struct CliSteps<'a> {
    dir: &'a Path,
    gate: Option<&'a SloGate>,
    stack: Option<&'a Stack>,
    services: Option<ServiceFigures>,
    quiet: bool,
    live: Option<std::sync::Arc<dyn scenarios::live::LiveSink>>,
    inputs: &'a Inputs,
    /// Every per-service query asked, for the summary's provenance.
    queries: Vec<String>,
}

/// Each step's generator health, named by its load, for the summary's worst-of.
fn steps_health(steps: &[scenarios::capacity::StepResult]) -> Vec<(String, GeneratorHealth)> {
    steps
        .iter()
        .map(|s| {
            let health = GeneratorHealth {
                degraded: !s.generator_degraded.is_empty(),
                why: s.generator_degraded.clone(),
                ..GeneratorHealth::default()
            };
            (format!("step at {}", s.load), health)
        })
        .collect()
}

impl Steps for CliSteps<'_> {
    type Error = anyhow::Error;

    async fn judge(&mut self, _step: &Step, report: &mut reports::Report) -> Result<()> {
        let Some(gate) = self.gate else {
            return Ok(());
        };
        match gate.judge(report, self.stack, self.quiet).await {
            Some(exit) => Err(exit::Classified {
                exit,
                message: "the SLO gate could not judge a step".into(),
            }
            .into()),
            None => Ok(()),
        }
    }

    fn keep(&mut self, step: &Step, report: &reports::Report) -> Result<()> {
        let mut report = report.clone();
        self.inputs.stamp(&mut report);
        write_step(self.dir, &step.label, &report)
    }

    fn say(&mut self, line: String) {
        if !self.quiet {
            eprintln!("{line}");
        }
    }

    fn live(&self) -> Option<std::sync::Arc<dyn scenarios::live::LiveSink>> {
        self.live.clone()
    }

    async fn services(
        &mut self,
        _step: &Step,
        report: &reports::Report,
        ramp: Duration,
    ) -> std::result::Result<Vec<scenarios::capacity::ServiceFigures>, String> {
        let Some(services) = &self.services else {
            return Ok(Vec::new());
        };
        let (figures, queries) = services.of_step(report, ramp).await?;
        for query in queries {
            if !self.queries.contains(&query) {
                self.queries.push(query);
            }
        }
        Ok(figures)
    }

    fn service_cpu_limit(&self) -> Option<f64> {
        self.services.as_ref()?.cpu_limit
    }
}

/// Where each step's per-service figures come from: a Prometheus and the label naming services.
struct ServiceFigures {
    prometheus: ::slo::sources::PrometheusSource,
    label: String,
    cpu_limit: Option<f64>,
}

impl ServiceFigures {
    /// From `--prometheus-url` or the embedded stack's Prometheus; `None` without either. One
    /// question before any load, so an unreachable Prometheus (3) or a bad label (2) is said
    /// before minutes of steps.
    async fn of(args: &CapacityArgs, stack: Option<&Stack>) -> Result<Option<ServiceFigures>> {
        let url = args
            .slo
            .prometheus_url
            .clone()
            .or_else(|| stack?.prometheus_url().map(str::to_string));
        let Some(url) = url else {
            return Ok(None);
        };
        if !is_label_name(&args.service_label) {
            return Err(exit::usage(format!(
                "--service-label {:?} is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)",
                args.service_label
            )));
        }
        if let Some(cores) = args.service_cpu
            && !(cores.is_finite() && cores > 0.0)
        {
            return Err(exit::usage(format!(
                "--service-cpu {cores}: a number of cores above 0"
            )));
        }
        let prometheus = ::slo::sources::PrometheusSource::new(&url).map_err(exit::classified)?;
        let now = chrono::Utc::now();
        prometheus
            .breakdown(
                &args.service_label,
                now - chrono::Duration::seconds(10),
                now,
            )
            .await
            .map_err(|e| {
                exit::classified(e)
                    .context(format!("asking Prometheus {url} for per-service figures"))
            })?;
        let machine = || std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64);
        Ok(Some(ServiceFigures {
            prometheus,
            label: args.service_label.clone(),
            cpu_limit: args.service_cpu.or_else(|| stack.is_some().then(machine)),
        }))
    }

    /// Every service's figures over the step's hold, once Prometheus has scraped its end.
    async fn of_step(
        &self,
        report: &reports::Report,
        ramp: Duration,
    ) -> std::result::Result<(Vec<scenarios::capacity::ServiceFigures>, Vec<String>), String> {
        let from = report.started_at + chrono::Duration::from_std(ramp).unwrap_or_default();
        let to = report.ended_at.max(from + chrono::Duration::seconds(1));
        super::gate::until_scraped(to).await;
        let breakdown = self
            .prometheus
            .breakdown(&self.label, from, to)
            .await
            .map_err(|e| format!("Prometheus {}: {e}", self.prometheus.url()))?;
        let figures = breakdown
            .groups
            .into_iter()
            .map(|g| scenarios::capacity::ServiceFigures {
                name: g.name,
                requests_per_second: g.requests_per_second,
                p95_ms: g.p95_ms,
                mean_ms: g.mean_ms,
                outbound_mean_ms: g.outbound_mean_ms,
                error_ratio: g.error_ratio,
                cpu_cores: g.cpu_cores,
            })
            .collect();
        Ok((figures, breakdown.queries))
    }
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn write_step(dir: &Path, label: &str, report: &reports::Report) -> Result<()> {
    let step_dir = dir.join(label);
    reports::write_all(&step_dir, report)
        .with_context(|| format!("writing {}", step_dir.display()))?;
    Ok(())
}

fn write_summary(dir: &Path, result: &CapacityResult) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(
        dir.join("capacity.json"),
        serde_json::to_string_pretty(result)?,
    )
    .with_context(|| format!("writing {}", dir.join("capacity.json").display()))?;
    let provenance = reports::render::provenance_markdown(&result.provenance)
        .context("rendering the provenance block")?;
    std::fs::write(dir.join("capacity.md"), result.markdown() + &provenance)
        .with_context(|| format!("writing {}", dir.join("capacity.md").display()))?;
    let page = scenarios::capacity::render::html(result)?;
    std::fs::write(dir.join("capacity.html"), page)
        .with_context(|| format!("writing {}", dir.join("capacity.html").display()))?;
    Ok(())
}
