//! Why a coordinated run or a worker could not do its job. The CLI maps these to exit codes:
//! [`FleetError::is_usage`] → 2, everything else (workers that never came, a coordinator out of
//! reach, a process that would not start) → 3.

use std::time::Duration;

use crate::error::RunError;
use crate::profile::ProfileError;

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error(transparent)]
    Scenario(#[from] RunError),
    #[error("the scenario file {path}: {message}")]
    ScenarioFile { path: String, message: String },
    #[error("the coordinator cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error(
        "{joined} of {workers} workers connected within {}; the run needs all of them \
         (missing: {missing}){hint}",
        humantime::format_duration(*timeout)
    )]
    NeverJoined {
        joined: u32,
        workers: u32,
        timeout: Duration,
        missing: String,
        hint: String,
    },
    #[error("cannot start local worker {index}: {source}")]
    Spawn { index: u32, source: std::io::Error },
    #[error("the coordinator at {addr} is unreachable: {reason}")]
    CoordinatorUnreachable { addr: String, reason: String },
    #[error("the coordinator at {addr} refused this worker: {reason}")]
    Refused { addr: String, reason: String },
    #[error("the coordinator at {addr} broke off the run: {reason}")]
    Lost { addr: String, reason: String },
    #[error("the assignment from the coordinator is incomplete: {0}")]
    Assignment(String),
    #[error("target {target} is unreachable: {reason}")]
    TargetUnreachable { target: String, reason: String },
    #[error("Kubernetes: {0}")]
    Kube(String),
    #[error("no worker sent any data, so there is nothing to report: {0}")]
    NoData(String),
    #[error("interrupted before the workers started (Ctrl-C or SIGTERM)")]
    Interrupted,
}

impl FleetError {
    /// A mistake in what was asked for (exit code 2).
    pub fn is_usage(&self) -> bool {
        match self {
            FleetError::Profile(_) | FleetError::ScenarioFile { .. } => true,
            FleetError::Scenario(error) => error.is_usage(),
            _ => false,
        }
    }
}
