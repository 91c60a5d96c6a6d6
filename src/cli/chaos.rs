//! `shakedown chaos run EXPERIMENT.yaml [--dry-run]`: one chaos experiment without load — the
//! steady state, the method, the rollbacks, the journal — against the embedded stack (`local`
//! target, started and stopped here) or a cluster (`kube` target). The pieces `drill` shares
//! (loading, binding, the hypothesis, Ctrl-C) live here too.

use std::path::PathBuf;

use anyhow::{Context, Result};
use chaos::kube::KubeTarget;
use chaos::local::LocalTarget;
use chaos::runner::Bound;
use chaos::steady::SloHypothesis;
use chaos::{ChaosError, Experiment, ExperimentOutcome, Target};
use clap::{Args, Subcommand};
use shop::stack::Stack;
use tokio_util::sync::CancellationToken;

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

async fn run_experiment(args: RunArgs, quiet: bool, shutdown: &Shutdown) -> Result<Exit> {
    let experiment = load(&args.experiment)?;
    if args.dry_run {
        return dry_run(&experiment, &args.stack).await;
    }
    let stack = start_stack(&experiment, &args.stack, quiet).await?;
    let prepared = match prepare(&experiment, stack.as_ref(), &args.sources).await {
        Ok(prepared) => prepared,
        Err(error) => {
            super::run::stop(stack).await;
            return Err(error);
        }
    };
    let cancel = shutdown.token();
    let outcome = execute(&experiment, &prepared, stack.as_ref(), &cancel, quiet).await;
    super::run::stop(stack).await;
    let outcome = outcome?;
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
    Ok(exit_of(outcome.exit_code()))
}

/// Reads the experiment; a bad file is a usage error naming file, line and field.
pub(super) fn load(path: &std::path::Path) -> Result<Experiment> {
    chaos::load(path).map_err(|e| exit::usage(e.to_string()))
}

/// The error as the CLI classifies it.
pub(super) fn classified(error: ChaosError) -> anyhow::Error {
    exit::Classified {
        exit: exit_of(error.exit_code()),
        message: error.to_string(),
    }
    .into()
}

pub(super) fn exit_of(code: u8) -> Exit {
    match code {
        0 => Exit::Pass,
        1 => Exit::Failed,
        2 => Exit::Usage,
        _ => Exit::Unreachable,
    }
}

/// Prints the plan, starts and sends nothing. Every action goes through the same checks the
/// real run binds it with (local: against the stack `--brokers` describes; kube: on a target
/// that cannot send a request), so what the real run refuses (exit 2) the dry run refuses too;
/// what only a live target can answer is printed as deferred.
pub(super) async fn dry_run(experiment: &Experiment, stack: &StackArgs) -> Result<Exit> {
    let planned = match &experiment.target {
        Target::Local(_) => chaos::plan::dry_run(
            experiment,
            &chaos::local::StackShape::planned(stack.brokers),
        ),
        Target::Kube(spec) => {
            let target = KubeTarget::offline(spec).map_err(classified)?;
            chaos::plan::dry_run(experiment, &target)
        }
    }
    .map_err(classified)?;
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
    match experiment.target {
        Target::Local(_) => {
            chaos::plan::dry_run(experiment, &chaos::local::StackShape::planned(args.brokers))
                .map_err(classified)?;
            Ok(args.target_or_start(None, quiet).await?.0)
        }
        Target::Kube(_) => Ok(None),
    }
}

/// An experiment checked against its target before anything is sent: the cluster answers and
/// allows what the actions do, every action binds (safety rules), and the steady state's
/// sources answer.
pub(super) struct Prepared {
    kube: Option<KubeTarget>,
    hypothesis: Option<SloHypothesis>,
}

/// Pre-flight of `experiment`: fails at once — before a drill's load or the first action —
/// naming what is missing (exit 2 for configuration or permissions, 3 for what does not answer).
pub(super) async fn prepare(
    experiment: &Experiment,
    stack: Option<&Stack>,
    sources: &SourceArgs,
) -> Result<Prepared> {
    let kube = match &experiment.target {
        Target::Kube(spec) => {
            let target = KubeTarget::connect(spec, false).await.map_err(classified)?;
            target
                .preflight(chaos::kube::preflight::POD_ACTIONS)
                .await
                .map_err(classified)?;
            Some(target)
        }
        Target::Local(_) => None,
    };
    // Binding applies every safety rule; the bound actions are made again in `execute`.
    bind_all(experiment, kube.as_ref(), stack)?;
    let hypothesis = match &experiment.steady_state {
        Some(steady) => {
            let config = ::slo::SourcesConfig {
                prometheus: sources
                    .prometheus_url
                    .clone()
                    .or_else(|| stack?.prometheus_url().map(str::to_string)),
                kafka: sources
                    .kafka
                    .clone()
                    .or_else(|| Some(stack?.kafka().bootstrap_servers().to_string())),
                kube_context: match &experiment.target {
                    Target::Kube(spec) => spec.context.clone(),
                    Target::Local(_) => None,
                },
                report: None,
            };
            super::gate::preflight(&steady.set, &config).await?;
            let built = config
                .build(&steady.set.source_kinds())
                .await
                .map_err(exit::usage)?;
            Some(SloHypothesis::new(steady, &experiment.safety, built))
        }
        None => None,
    };
    Ok(Prepared { kube, hypothesis })
}

fn bind_all<'a>(
    experiment: &Experiment,
    kube: Option<&'a KubeTarget>,
    stack: Option<&'a Stack>,
) -> Result<Bound<'a>> {
    let bind = |spec: &chaos::ActionSpec| -> Result<Box<dyn chaos::Action + 'a>> {
        match (kube, stack) {
            (Some(target), _) => chaos::kube_actions::bind(target, spec).map_err(classified),
            (None, Some(stack)) => LocalTarget::new(stack).bind(spec).map_err(classified),
            (None, None) => unreachable!("a local experiment has a stack"),
        }
    };
    Ok(Bound {
        method: experiment
            .method
            .iter()
            .map(|s| bind(&s.action))
            .collect::<Result<_>>()?,
        rollbacks: experiment
            .rollbacks
            .iter()
            .map(|r| bind(&r.action))
            .collect::<Result<_>>()?,
    })
}

/// Runs a prepared experiment.
pub(super) async fn execute(
    experiment: &Experiment,
    prepared: &Prepared,
    stack: Option<&Stack>,
    cancel: &CancellationToken,
    quiet: bool,
) -> Result<ExperimentOutcome> {
    let bound = bind_all(experiment, prepared.kube.as_ref(), stack)?;
    let say = |line: String| {
        if !quiet {
            eprintln!("{line}");
        }
    };
    Ok(chaos::runner::run(
        experiment,
        bound,
        prepared
            .hypothesis
            .as_ref()
            .map(|h| h as &dyn chaos::steady::Hypothesis),
        experiment.safety.halt_every,
        cancel,
        &say,
    )
    .await)
}

/// The journal and verdicts, for the operator.
pub(super) fn print_outcome(outcome: &ExperimentOutcome) {
    println!("journal:");
    for r in &outcome.journal {
        println!(
            "  {} {:<22} {:<28} {:<8}{}{}",
            r.started_at.format("%H:%M:%S%.3f"),
            r.action,
            r.target,
            r.outcome.as_str(),
            r.recovery
                .map(|d| format!(" recovered in {:.1} s", d.as_secs_f64()))
                .unwrap_or_default(),
            r.detail
                .as_deref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        );
    }
    for reason in outcome.failures() {
        println!("  - {reason}");
    }
    println!(
        "experiment: {}",
        if outcome.failures().is_empty() {
            "PASS"
        } else {
            "FAIL"
        }
    );
}
