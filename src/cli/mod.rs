//! Command-line interface: one subcommand a module, each turning flags into library calls; the
//! library outcomes and errors become exit codes in one place, [`exit`].

mod adhoc;
mod capacity;
mod chaos;
mod deprecated;
mod drill;
mod exit;
mod fleet;
mod gate;
mod import;
mod live;
mod provenance;
mod report;
mod run;
mod scenario;
mod serve;
mod server_side;
mod shutdown;
mod slo;
mod up;
mod worker;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use exit::Exit;
use shutdown::Shutdown;

/// Load testing, chaos drills and SLO gates for e-commerce microservice platforms.
#[derive(Parser, Debug)]
#[command(name = "shakedown", version, about, long_about = None)]
#[command(after_help = exit::HELP)]
struct Cli {
    /// No progress output (also implied by CI=true or a non-terminal stderr).
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a load scenario (default: checkout on the embedded stack, k6-baseline at 0.25) and
    /// write report.json, report.md, report.html and junit.xml.
    Run(Box<run::RunArgs>),
    /// Step the load up until a threshold or SLO breaks; report the highest load that held.
    Capacity(capacity::CapacityArgs),
    /// Start the embedded reference stack on 127.0.0.1 and keep it in the foreground.
    Up(up::UpArgs),
    /// Run one reference service (what a container runs); configuration from the environment.
    Serve(serve::ServeArgs),
    /// Service level objectives: `slo check` judges an SLO file over a window (the CI gate);
    /// `slo rules` writes its burn-rate alerts for Prometheus.
    Slo(slo::SloArgs),
    /// Run reports: `report show` prints one, `report diff` compares a run with a baseline,
    /// `report merge` combines the reports of distributed workers.
    Report(report::ReportArgs),
    /// Chaos experiments: `chaos run EXPERIMENT.yaml [--dry-run]` (no load).
    Chaos(chaos::ChaosArgs),
    /// On-call drill: load, a chaos experiment inside it, SLOs and order accounting, one report.
    Drill(drill::DrillArgs),
    /// Scenario files: `scenario list` shows the built-ins, `scenario check FILE [--target URL]`
    /// validates a file and tries one iteration of one user against the target; `scenario import
    /// openapi|har` writes one from an OpenAPI description or a browser recording.
    Scenario(scenario::ScenarioArgs),
    /// One worker of a coordinated run (`run --workers N --on ...`): joins the coordinator at
    /// URL, runs its share of the load and streams what it measures.
    Worker(worker::WorkerArgs),
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return exit::of_flags(&e).into();
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            let error = anyhow::Error::new(e).context("starting the async runtime");
            eprintln!("error: {error:#}");
            return exit::classify(&error).into();
        }
    };
    let outcome = runtime.block_on(async move {
        // Commands that load, break or run things own the process's signals (see `shutdown`);
        // `serve` keeps the service's own graceful shutdown, and quick commands the default.
        let shutdown = || Shutdown::install();
        match cli.command {
            Command::Run(args) => run::run(*args, cli.quiet, &shutdown()?).await,
            Command::Capacity(args) => capacity::run(args, cli.quiet, &shutdown()?).await,
            Command::Up(args) => up::run(args, cli.quiet, &shutdown()?).await,
            Command::Serve(args) => serve::run(args).await,
            Command::Slo(args) => slo::run(args, cli.quiet).await,
            Command::Report(args) => report::run(args),
            Command::Chaos(args) => chaos::run(args, cli.quiet, &shutdown()?).await,
            Command::Drill(args) => drill::run(args, cli.quiet, &shutdown()?).await,
            Command::Scenario(args) => scenario::run(args).await,
            Command::Worker(args) => worker::run(args, cli.quiet, &shutdown()?).await,
        }
    });
    match outcome {
        Ok(exit) => exit.into(),
        Err(e) => {
            eprintln!("error: {e:#}");
            exit::classify(&e).into()
        }
    }
}
