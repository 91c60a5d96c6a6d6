//! `shakedown worker --coordinator URL`: one worker of a coordinated run. It needs no file:
//! the coordinator sends the scenario, the profile, the target and the start instant.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use scenarios::fleet::{WorkerOptions, run_worker};

use super::exit::{self, Exit};
use super::shutdown::Shutdown;

#[derive(Args, Debug)]
pub struct WorkerArgs {
    /// The coordinator's URL, e.g. http://10.0.0.5:7070.
    #[arg(long)]
    pub coordinator: String,
    /// The share to ask for, 0 to N−1 (a Kubernetes Indexed Job sets JOB_COMPLETION_INDEX);
    /// default: any free one.
    #[arg(long, env = "JOB_COMPLETION_INDEX")]
    pub index: Option<u32>,
    /// This worker's name in the report (default: $HOSTNAME, a pod's name).
    #[arg(long, env = "HOSTNAME", default_value = "worker")]
    pub name: String,
    /// How long to keep trying to reach the coordinator.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub connect_timeout: Duration,
    /// Also write this worker's own report to OUT/<its run id>/.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub async fn run(args: WorkerArgs, quiet: bool, shutdown: &Shutdown) -> Result<Exit> {
    let options = WorkerOptions {
        coordinator: args.coordinator,
        name: args.name,
        index: args.index,
        connect_timeout: args.connect_timeout,
        out: args.out,
    };
    let report = run_worker(&options, &shutdown.token())
        .await
        .map_err(exit::classified)?;
    if !quiet {
        eprintln!(
            "worker {}: {} requests, {} errors sent to {}",
            report.run_id, report.totals.requests, report.totals.errors, options.coordinator
        );
    }
    Ok(Exit::Pass)
}
