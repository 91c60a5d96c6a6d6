//! `shakedown drill EXPERIMENT.yaml`: an on-call drill — load, the chaos experiment inside it,
//! and one report with the steady state before/during/after, the journal (drawn on the charts),
//! recovery times and, on the embedded stack, the order accounting (acknowledged vs stored vs
//! `order.created` events; 0 lost is the expectation). The drill itself is `chaos::drill::run`;
//! here are its flags, the stack, the report directory and the exit code.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use chaos::Target;
use chaos::drill::{Drill, DrillError, DrillOutcome};
use clap::Args;
use scenarios::{Overrides, Profile, RunSpec, Scenario};
use shop::stack::Stack;

use super::chaos::SourceArgs;
use super::live::{Live, LiveArgs};
use super::provenance::Inputs;
use super::shutdown::Shutdown;
use super::up::StackArgs;
use super::{Exit, exit};

/// The load keeps going this long after the experiment's planned end, so the "after" check
/// still sees traffic even when recoveries take a little longer than planned.
const LOAD_MARGIN: Duration = Duration::from_secs(5);

#[derive(Args, Debug)]
pub struct DrillArgs {
    /// The experiment file (kind: Experiment).
    pub experiment: PathBuf,
    /// Load scenario: a built-in name (smoke, browse, checkout, ingest, health) or a scenario file.
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
    pub live: LiveArgs,
    #[command(flatten)]
    pub stack: StackArgs,
}

pub async fn run(args: DrillArgs, quiet: bool, shutdown: &Shutdown) -> Result<Exit> {
    let experiment = super::chaos::load(&args.experiment)?;
    let slo_file = experiment
        .steady_state
        .as_ref()
        .map(|steady| steady.origin.as_str())
        .filter(|origin| *origin != "inline");
    let inputs = Inputs::default()
        .with("experiment", args.experiment.to_str())
        .with("slo", slo_file)
        .with("scenario", Some(args.scenario.as_str()))
        .with("profile", Some(args.profile.as_str()));
    if args.dry_run {
        return super::chaos::dry_run(&experiment, &args.stack);
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
    let scenario = super::run::validate(&args.scenario, args.target.as_deref())?;
    if matches!(experiment.target, Target::Kube(_)) && args.target.is_none() {
        return Err(exit::usage(
            "a drill with a kube experiment needs --target (the gateway to load)",
        ));
    }
    let live = args.live.start(quiet)?;
    let stack = super::chaos::start_stack(&experiment, &args.stack, quiet).await?;
    let load = Load {
        scenario,
        profile,
        live: Live::sink(&live),
    };
    let drilled = drill(&args, &experiment, load, stack.as_ref(), quiet, shutdown).await;
    Live::finish(live, shutdown).await;
    super::run::stop(stack).await;
    let mut outcome = drilled.map_err(exit::classified)?;

    super::chaos::print_outcome(&outcome.experiment);
    match &outcome.accounting {
        Some(Ok(counts)) => println!("{}", chaos::drill::accounting_line(counts)),
        Some(Err(e)) => eprintln!("error: order accounting: {e}"),
        None => {}
    }
    let dir = args.out.join(&outcome.report.run_id);
    inputs.stamp(&mut outcome.report);
    super::run::write(&dir, &outcome.report, quiet)?;
    if let Some(error) = &outcome.load_failure {
        eprintln!("error: {error}");
    }
    Ok(outcome.conclusion().into())
}

/// The drill's load, resolved: what runs, how hard, and who watches it live.
struct Load {
    scenario: Scenario,
    profile: Profile,
    live: Option<std::sync::Arc<dyn scenarios::live::LiveSink>>,
}

/// Prepares the experiment against the (started) stack and runs the drill.
async fn drill(
    args: &DrillArgs,
    experiment: &chaos::Experiment,
    Load {
        scenario,
        profile,
        live,
    }: Load,
    stack: Option<&Stack>,
    quiet: bool,
    shutdown: &Shutdown,
) -> Result<DrillOutcome, DrillError> {
    let prepared = chaos::drill::prepare(experiment, stack, &args.sources.overrides()).await?;
    let target = match (&args.target, stack) {
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
            chaos::plan::total(experiment).as_secs()
        );
    }
    let load = RunSpec {
        scenario: args.scenario.clone(),
        target,
        profile,
        quiet,
        thresholds: Vec::new(),
        live,
    };
    let drill = Drill {
        experiment,
        prepared: &prepared,
        stack,
        load,
        warmup: args.warmup,
        scenario,
    };
    chaos::drill::run(drill, &shutdown.token(), &super::chaos::say(quiet)).await
}
