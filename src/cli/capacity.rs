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
use scenarios::Profile;
use scenarios::capacity::{CapacityPlan, CapacityResult, Plan, RatePlan, Step, Steps, Stop};
use shop::stack::Stack;

use super::gate::{SloArgs, SloGate};
use super::live::{Live, LiveArgs};
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
        quiet,
        live: Live::sink(&live),
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
    Live::finish(live, shutdown).await;
    super::run::stop(stack).await;
    let searched = searched?;

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
    quiet: bool,
    live: Option<std::sync::Arc<dyn scenarios::live::LiveSink>>,
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
        write_step(self.dir, &step.label, report)
    }

    fn say(&mut self, line: String) {
        if !self.quiet {
            eprintln!("{line}");
        }
    }

    fn live(&self) -> Option<std::sync::Arc<dyn scenarios::live::LiveSink>> {
        self.live.clone()
    }
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
    std::fs::write(dir.join("capacity.md"), result.markdown())
        .with_context(|| format!("writing {}", dir.join("capacity.md").display()))?;
    let page = scenarios::capacity::render::html(result)?;
    std::fs::write(dir.join("capacity.html"), page)
        .with_context(|| format!("writing {}", dir.join("capacity.html").display()))?;
    Ok(())
}
