//! `shakedown drill EXPERIMENT.yaml`: an on-call drill — load, the chaos experiment inside it,
//! and one report with the steady state before/during/after, the journal (drawn on the charts),
//! recovery times and, on the embedded stack, the order accounting (acknowledged vs stored vs
//! `order.created` events; 0 lost is the expectation).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use chaos::Target;
use clap::Args;
use reports::Verdict;
use scenarios::{Overrides, RunSpec};

use super::chaos::{SourceArgs, exit_of};
use super::shutdown::Shutdown;
use super::up::StackArgs;
use super::{Exit, exit};

/// The load keeps going this long after the experiment's planned end, so the "after" check
/// still sees traffic even when recoveries take a little longer than planned.
const LOAD_MARGIN: Duration = Duration::from_secs(5);

/// The load transaction that is exactly one order placement, for the order accounting. It comes
/// from the scenario (its `accounting: {orders: ...}` declaration); until scenario files carry
/// it, the name the smoke scenario uses.
const ORDER_TRANSACTION: &str = "place_order";

#[derive(Args, Debug)]
pub struct DrillArgs {
    /// The experiment file (kind: Experiment).
    pub experiment: PathBuf,
    /// Load scenario: smoke, browse, checkout, ingest or health.
    #[arg(long, default_value = "checkout")]
    pub scenario: String,
    /// Load profile (built-in name or YAML file).
    #[arg(long, default_value = "smoke")]
    pub profile: String,
    #[arg(long)]
    pub scale: Option<f64>,
    /// How long the load lasts (default: the experiment's planned length plus 10 s).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    #[arg(long)]
    pub users: Option<u32>,
    /// Load runs this long before the experiment starts, so the steady state is measured on a
    /// warm system (and Prometheus has scraped it).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// Gateway under load, for a kube experiment (a local one starts the embedded stack).
    #[arg(long)]
    pub target: Option<String>,
    /// Print the plan, do nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Reports go to OUT/<run-id>/.
    #[arg(long, default_value = "reports/runs")]
    pub out: PathBuf,
    #[command(flatten)]
    pub sources: SourceArgs,
    #[command(flatten)]
    pub stack: StackArgs,
}

pub async fn run(args: DrillArgs, quiet: bool, shutdown: &Shutdown) -> Result<Exit> {
    let experiment = super::chaos::load(&args.experiment)?;
    if args.dry_run {
        return super::chaos::dry_run(&experiment, &args.stack).await;
    }
    let planned = args.warmup + chaos::plan::total(&experiment) + LOAD_MARGIN;
    let profile = super::run::resolve_profile(
        &args.profile,
        args.scale,
        &Overrides {
            duration: Some(args.duration.unwrap_or(planned)),
            users: args.users,
            rate: None,
        },
    )?;
    super::run::validate(&args.scenario, args.target.as_deref())?;
    if matches!(experiment.target, Target::Kube(_)) && args.target.is_none() {
        return Err(exit::usage(
            "a drill with a kube experiment needs --target (the gateway to load)",
        ));
    }
    let stack = super::chaos::start_stack(&experiment, &args.stack, quiet).await?;
    let prepared = match super::chaos::prepare(&experiment, stack.as_ref(), &args.sources).await {
        Ok(prepared) => prepared,
        Err(error) => {
            super::run::stop(stack).await;
            return Err(error);
        }
    };
    let target = match (&args.target, &stack) {
        (Some(t), _) => t.clone(),
        (None, Some(s)) => s.gateway_url().to_string(),
        (None, None) => unreachable!("checked above"),
    };
    if !quiet {
        eprintln!(
            "drill {}: {} against {target} with profile {} ({}s), experiment planned {}s",
            experiment.metadata.name,
            args.scenario,
            profile.name,
            profile.planned_duration().as_secs(),
            chaos::plan::total(&experiment).as_secs()
        );
    }
    let spec = RunSpec {
        scenario: args.scenario.clone(),
        target,
        profile,
        quiet,
        thresholds: Vec::new(),
    };
    // A signal stops both the load and the experiment; a load that ends early on its own (the
    // target died) stops the experiment too. Rollbacks still run either way.
    let cancel = shutdown.token().child_token();
    let load = async {
        let result = scenarios::execute_until(spec, &shutdown.token()).await;
        // No load (the target does not answer) or load cut short: the experiment stops too.
        if !matches!(&result, Ok(report) if !report.partial) {
            cancel.cancel();
        }
        result
    };
    let experiment_run = async {
        tokio::select! {
            _ = tokio::time::sleep(args.warmup) => {}
            _ = cancel.cancelled() => {}
        }
        super::chaos::execute(&experiment, &prepared, stack.as_ref(), &cancel, quiet).await
    };
    let (load, outcome) = tokio::join!(load, experiment_run);
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(error) => {
            super::run::stop(stack).await;
            return Err(error);
        }
    };
    let (mut report, load_failure) = match super::run::report_of(load) {
        Ok(split) => split,
        Err(error) => {
            super::run::stop(stack).await;
            return Err(error.into());
        }
    };

    super::chaos::print_outcome(&outcome);
    // A drill is judged by its hypothesis, its recoveries and the order accounting; the load
    // profile's client thresholds (made for load runs) would fail it for the degradation the
    // drill causes on purpose.
    report.thresholds.clear();
    report.journal.extend(
        outcome
            .journal
            .iter()
            .map(chaos::ActionRecord::to_journal_event),
    );
    report.journal.sort_by_key(|e| e.at);
    report.slos.extend(outcome.verdicts());
    let mut accounting_exit = None;
    if let Some(stack) = &stack {
        let acknowledged = chaos::orders::acknowledged(&report, ORDER_TRANSACTION);
        match chaos::orders::count_in(stack, acknowledged).await {
            Ok(counts) => {
                println!(
                    "orders: {} acknowledged, {} found, {} with an order.created event, {} unsent in the outbox (lost: {} orders, {} events)",
                    counts.acknowledged,
                    counts.found,
                    counts.events,
                    counts.unsent,
                    counts.lost_orders(),
                    counts.lost_events()
                );
                report.slos.extend(counts.verdicts());
            }
            Err(e) => {
                eprintln!("error: order accounting: {e}");
                accounting_exit = Some(exit_of(e.exit_code()));
            }
        }
    }
    report.recompute_verdict();
    super::run::stop(stack).await;

    let dir = args.out.join(&report.run_id);
    super::run::write(&dir, &report, quiet)?;
    if let Some((exit, message)) = load_failure {
        eprintln!("error: {message}");
        return Ok(exit);
    }
    let experiment_exit = exit_of(outcome.exit_code());
    if matches!(experiment_exit, Exit::Usage | Exit::Unreachable) {
        return Ok(experiment_exit);
    }
    if let Some(exit) = accounting_exit {
        return Ok(exit);
    }
    Ok(match report.verdict {
        Verdict::Pass => Exit::Pass,
        Verdict::Fail => Exit::Failed,
    })
}
