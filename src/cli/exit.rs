//! Exit codes are part of the interface: CI jobs branch on them.

use std::process::ExitCode;

/// The documented exit codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Everything passed.
    Pass = 0,
    /// An SLO, threshold or experiment failed.
    Failed = 1,
    /// Usage or configuration error (flags, YAML, bad input files).
    Usage = 2,
    /// The target or a piece of infrastructure (Prometheus, Kafka, Kubernetes) is unreachable.
    Unreachable = 3,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit as u8)
    }
}

/// Shown at the end of `--help`.
pub const HELP: &str = "Exit codes: 0 pass, 1 SLO/threshold/experiment failed, 2 usage or config error, 3 target or infrastructure unreachable.";

/// An error that says which exit code it deserves.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Classified {
    pub exit: Exit,
    pub message: String,
}

/// Usage error with a message.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    Classified {
        exit: Exit::Usage,
        message: message.into(),
    }
    .into()
}

/// The exit code for an error that ended a command: the innermost classification wins; anything
/// unclassified means the environment failed us (a child that would not start, Kafka down).
pub fn classify(error: &anyhow::Error) -> Exit {
    error
        .chain()
        .find_map(|e| e.downcast_ref::<Classified>().map(|c| c.exit))
        .unwrap_or(Exit::Unreachable)
}
