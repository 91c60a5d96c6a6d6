//! `shakedown chaos run EXPERIMENT.yaml [--dry-run]`: one chaos experiment without load — the
//! steady state, the method, the rollbacks, the journal — against the embedded stack (`local`
//! target, started and stopped here) or a cluster (`kube` target). The orchestration is
//! `chaos::drill`'s; here are the flags and the wiring `drill` shares (loading the file, the
//! dry run, starting the stack).

use std::path::PathBuf;

use anyhow::{Context, Result};
use chaos::drill::SourceOverrides;
use chaos::{Experiment, ExperimentOutcome};
use clap::{Args, Subcommand};
use shop::stack::Stack;

use super::shutdown::Shutdown;
use super::up::StackArgs;
use super::{Exit, exit};

#[derive(Args, Debug)]
pub struct ChaosArgs {
    #[command(subcommand)]
    command: ChaosCommand,
}

#[derive(Subcommand, Debug)]
enum ChaosCommand {
    /// Run an experiment file (kind: Experiment) without load.
    Run(RunArgs),
}

#[derive(Args, Debug)]
struct RunArgs {
    /// The experiment file.
    experiment: PathBuf,
    /// Print exactly what would be done, do nothing (no stack is started, no request sent).
    #[arg(long)]
    dry_run: bool,
    /// Write the journal and verdicts as JSON here.
    #[arg(long)]
    journal: Option<PathBuf>,
    #[command(flatten)]
    sources: SourceArgs,
    #[command(flatten)]
    stack: StackArgs,
}

/// Where the steady-state SLOs are measured, when not the embedded stack's own.
#[derive(Args, Debug, Clone)]
pub struct SourceArgs {
    /// Prometheus for the steady-state SLOs (default: the embedded stack's).
    #[arg(long, env = "SHAKEDOWN_PROMETHEUS")]
    pub prometheus_url: Option<String>,
    /// Kafka bootstrap servers for kafka SLOs (default: the embedded stack's mock cluster).
    #[arg(long, env = "SHAKEDOWN_KAFKA")]
    pub kafka: Option<String>,
}

pub async fn run(args: ChaosArgs, quiet: bool, shutdown: &Shutdown) -> Result<Exit> {
    match args.command {
        ChaosCommand::Run(args) => run_experiment(args, quiet, shutdown).await,
    }
}

impl SourceArgs {
    pub(super) fn overrides(&self) -> SourceOverrides {
        SourceOverrides {
            prometheus_url: self.prometheus_url.clone(),
            kafka: self.kafka.clone(),
        }
    }
}

async fn run_experiment(args: RunArgs, quiet: bool, shutdown: &Shutdown) -> Result<Exit> {
    let experiment = load(&args.experiment)?;
    if args.dry_run {
        return dry_run(&experiment, &args.stack);
    }
    let stack = start_stack(&experiment, &args.stack, quiet).await?;
    let outcome = experiment_in(&experiment, stack.as_ref(), &args.sources, shutdown, quiet).await;
    super::run::stop(stack).await;
    let outcome = outcome.map_err(exit::classified)?;
    print_outcome(&outcome);
    if let Some(path) = &args.journal {
        let json = serde_json::json!({
            "experiment": experiment.metadata.name,
            "journal": outcome.journal,
            "verdicts": outcome.verdicts(),
        });
        std::fs::write(path, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(outcome.conclusion().into())
}

async fn experiment_in(
    experiment: &Experiment,
    stack: Option<&Stack>,
    sources: &SourceArgs,
    shutdown: &Shutdown,
    quiet: bool,
) -> Result<ExperimentOutcome, chaos::drill::DrillError> {
    let prepared = chaos::drill::prepare(experiment, stack, &sources.overrides()).await?;
    chaos::drill::execute(experiment, &prepared, stack, &shutdown.token(), &say(quiet)).await
}

/// Progress lines on stderr unless quiet.
pub(super) fn say(quiet: bool) -> impl Fn(String) + Sync {
    move |line: String| {
        if !quiet {
            eprintln!("{line}");
        }
    }
}

/// Reads the experiment; a bad file is a usage error naming file, line and field.
pub(super) fn load(path: &std::path::Path) -> Result<Experiment> {
    chaos::load(path).map_err(exit::classified)
}

/// Prints the plan, starts and sends nothing (see `chaos::drill::dry_run`): what the real run
/// refuses (exit 2) the dry run refuses too; what only a live target can answer is printed as
/// deferred.
pub(super) fn dry_run(experiment: &Experiment, stack: &StackArgs) -> Result<Exit> {
    let planned = chaos::drill::dry_run(experiment, stack.brokers).map_err(exit::classified)?;
    for line in planned.lines {
        println!("{line}");
    }
    Ok(Exit::Pass)
}

/// The embedded stack, for a local experiment — after the dry run's safety rules have passed
/// against the stack it is about to start, so a refused experiment starts nothing.
pub(super) async fn start_stack(
    experiment: &Experiment,
    args: &StackArgs,
    quiet: bool,
) -> Result<Option<Stack>> {
    chaos::drill::check_planned_stack(experiment, args.brokers).map_err(exit::classified)?;
    match experiment.target {
        chaos::Target::Local(_) => {
            // The steady-state SLOs with a budget become the embedded Prometheus's burn-rate
            // alerts, which `expect_alerts` / `forbid_alerts` are judged by.
            let rules = experiment
                .steady_state
                .as_ref()
                .and_then(|steady| ::slo::rules::generate(&steady.set).ok())
                .map(|generated| {
                    generated.render(
                        ::slo::rules::Format::Rules,
                        &format!("shakedown (steady state of {})", experiment.path.display()),
                    )
                });
            if !quiet {
                eprintln!("starting the embedded stack (mock Kafka, 14 services)...");
            }
            Ok(Some(args.start_with_rules(None, rules).await?))
        }
        chaos::Target::Kube(_) => Ok(None),
    }
}

/// The journal and verdicts, for the operator.
pub(super) fn print_outcome(outcome: &ExperimentOutcome) {
    print!("{}", outcome.summary());
}
