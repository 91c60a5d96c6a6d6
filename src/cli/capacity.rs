//! `shakedown capacity`: step the load up until a threshold or SLO breaks, and report the highest
//! load that held. Every step is a full run with its own report; the summary says where it broke.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use scenarios::capacity::{CapacityPlan, CapacityResult, StepResult};
use scenarios::{Profile, RunSpec};

use super::gate::{SloArgs, SloGate};
use super::shutdown::Shutdown;
use super::up::StackArgs;
use super::{Exit, exit};

#[derive(Args, Debug)]
pub struct CapacityArgs {
    /// Scenario: smoke, browse, checkout, ingest or health.
    #[arg(default_value = "checkout")]
    pub scenario: String,
    /// Base URL of the gateway under test (default: the embedded stack).
    #[arg(long)]
    pub target: Option<String>,
    /// Users of the first step.
    #[arg(long, default_value_t = 10)]
    pub start: u32,
    /// Users added at each step.
    #[arg(long, default_value_t = 10)]
    pub step: u32,
    /// Users of the last step.
    #[arg(long, default_value_t = 100)]
    pub max: u32,
    /// How long each step holds its users.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub hold: Duration,
    /// How long each step ramps up to its users.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub ramp: Duration,
    /// A profile whose thresholds, think time and request timeout the steps use (its stages are
    /// not). Default thresholds: p95 < 500 ms, p99 < 1000 ms, error rate < 5 %.
    #[arg(long)]
    pub profile: Option<String>,
    /// Fail (exit 1) unless at least this many users held.
    #[arg(long)]
    pub require: Option<u32>,
    #[command(flatten)]
    pub slo: SloArgs,
    /// The summary and every step's report go to OUT/capacity-<time>/.
    #[arg(long, default_value = "reports/runs")]
    pub out: PathBuf,
    #[command(flatten)]
    pub stack: StackArgs,
}

pub async fn run(args: CapacityArgs, quiet: bool, shutdown: &Shutdown) -> Result<Exit> {
    let plan = CapacityPlan {
        start: args.start,
        step: args.step,
        max: args.max,
        hold: args.hold,
        ramp: args.ramp,
    };
    plan.validate().map_err(exit::usage)?;
    let base = args
        .profile
        .as_deref()
        .map(Profile::resolve)
        .transpose()
        .map_err(|e| exit::usage(e.to_string()))?;
    let gate = SloGate::load(&args.slo)?;
    super::run::validate(&args.scenario, args.target.as_deref())?;

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
    let mut result = CapacityResult::new(&args.scenario, &target);
    let mut failure = None;
    let levels = plan.levels();
    for (n, users) in levels.iter().copied().enumerate() {
        if !quiet {
            eprintln!(
                "step {}/{}: {users} users for {}",
                n + 1,
                levels.len(),
                humantime::format_duration(plan.hold)
            );
        }
        let spec = RunSpec {
            scenario: args.scenario.clone(),
            target: target.clone(),
            profile: plan.profile(users, base.as_ref()),
            quiet,
            thresholds: Vec::new(),
        };
        let mut report = match scenarios::execute_until(spec, &shutdown.token()).await {
            Ok(report) => report,
            Err(error) if error.is_usage() => {
                failure = Some(exit::usage(error.to_string()));
                break;
            }
            Err(error) => {
                let message = error.to_string();
                result.interrupted = Some(message.clone());
                failure = Some(
                    exit::Classified {
                        exit: Exit::Unreachable,
                        message,
                    }
                    .into(),
                );
                if let Some(report) = error.into_partial_report() {
                    write_step(&dir, users, &report)?;
                }
                break;
            }
        };
        if let Some(gate) = &gate
            && let Some(exit) = gate.judge(&mut report, stack.as_ref(), quiet).await
        {
            result.interrupted = Some("an SLO source failed".to_string());
            failure = Some(
                exit::Classified {
                    exit,
                    message: "the SLO gate could not judge a step".into(),
                }
                .into(),
            );
        }
        write_step(&dir, users, &report)?;
        if report.partial {
            result.interrupted = report.partial_reason.clone();
        }
        let go_on = result.record(StepResult::of(users, &report));
        if !quiet {
            eprintln!(
                "  {} requests, {:.1} req/s: {}",
                report.totals.requests,
                report.totals.rps,
                if go_on { "held" } else { "broke" }
            );
        }
        if !go_on || failure.is_some() || report.partial {
            break;
        }
    }
    if let Some(stack) = stack {
        stack.stop().await;
    }

    write_summary(&dir, &result)?;
    print!("{}", result.markdown());
    println!("summary: {}", dir.join("capacity.md").display());
    if let Some(error) = failure {
        return Err(error);
    }
    let held = result.highest_holding.unwrap_or(0);
    let enough = args.require.is_none_or(|required| held >= required);
    Ok(
        if result.highest_holding.is_some() && result.interrupted.is_none() && enough {
            Exit::Pass
        } else {
            Exit::Failed
        },
    )
}

fn write_step(dir: &Path, users: u32, report: &reports::Report) -> Result<()> {
    let step_dir = dir.join(format!("step-{users:05}"));
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
    Ok(())
}
