//! Exit codes are part of the interface: CI jobs branch on them. This module is the one place
//! that turns library errors, experiment conclusions and SLO gates into exit codes; the
//! libraries return typed errors and verdicts and know nothing about processes.

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

/// A library error, with the exit code it deserves (see the [`Classify`] impls below) and its
/// own message.
pub fn classified<E: Classify + std::fmt::Display>(error: E) -> anyhow::Error {
    Classified {
        exit: error.exit(),
        message: error.to_string(),
    }
    .into()
}

/// The exit code for an error that ended a command: the first classification in the chain
/// wins; anything unclassified means the environment failed us (a child that would not start,
/// Kafka down).
pub fn classify(error: &anyhow::Error) -> Exit {
    error
        .chain()
        .find_map(|e| e.downcast_ref::<Classified>().map(|c| c.exit))
        .unwrap_or(Exit::Unreachable)
}

/// Pass or fail, for a verdict that is a yes/no (a capacity search that held, a diff without
/// regressions).
pub fn passed(passed: bool) -> Exit {
    if passed { Exit::Pass } else { Exit::Failed }
}

/// Flags clap refused (2), or `--help` / `--version`, which clap prints as errors (0).
pub fn of_flags(error: &clap::Error) -> Exit {
    if error.use_stderr() {
        Exit::Usage
    } else {
        Exit::Pass
    }
}

/// Library errors and verdicts that decide an exit code.
pub trait Classify {
    fn exit(&self) -> Exit;
}

impl From<chaos::Conclusion> for Exit {
    fn from(conclusion: chaos::Conclusion) -> Exit {
        match conclusion {
            chaos::Conclusion::Pass => Exit::Pass,
            chaos::Conclusion::Failed => Exit::Failed,
            chaos::Conclusion::Invalid => Exit::Usage,
            chaos::Conclusion::Unreachable => Exit::Unreachable,
        }
    }
}

impl From<slo::Gate> for Exit {
    fn from(gate: slo::Gate) -> Exit {
        match gate {
            slo::Gate::Pass => Exit::Pass,
            slo::Gate::Failed => Exit::Failed,
            slo::Gate::Invalid => Exit::Usage,
            slo::Gate::Unreachable => Exit::Unreachable,
        }
    }
}

impl From<reports::Verdict> for Exit {
    fn from(verdict: reports::Verdict) -> Exit {
        match verdict {
            reports::Verdict::Pass => Exit::Pass,
            reports::Verdict::Fail => Exit::Failed,
        }
    }
}

impl Classify for chaos::ChaosError {
    fn exit(&self) -> Exit {
        self.conclusion().into()
    }
}

impl Classify for chaos::drill::DrillError {
    fn exit(&self) -> Exit {
        use chaos::drill::DrillError;
        match self {
            DrillError::Chaos(error) => error.exit(),
            DrillError::Preflight(error) => error.exit(),
            DrillError::Sources(error) => error.exit(),
            DrillError::Load(error) => error.exit(),
        }
    }
}

/// A configuration problem (a source not configured, a query refused) wins over an
/// unreachable source.
impl Classify for slo::PreflightFailed {
    fn exit(&self) -> Exit {
        if self.is_rejected() {
            Exit::Usage
        } else {
            Exit::Unreachable
        }
    }
}

/// A source that refused a question was asked a bad one (2); one that did not answer is down (3).
impl Classify for slo::sources::SourceError {
    fn exit(&self) -> Exit {
        match self.kind {
            slo::sources::SourceErrorKind::Rejected => Exit::Usage,
            slo::sources::SourceErrorKind::Unreachable => Exit::Unreachable,
        }
    }
}

impl Classify for slo::SetupError {
    fn exit(&self) -> Exit {
        Exit::Usage
    }
}

/// A bad scenario or target is a usage error; a target that does not answer or a load
/// generator that fails is the environment's.
impl Classify for scenarios::RunError {
    fn exit(&self) -> Exit {
        if self.is_usage() {
            Exit::Usage
        } else {
            Exit::Unreachable
        }
    }
}

/// A coordinated run: bad profiles or scenarios are usage errors; workers that never joined, a
/// coordinator out of reach, a process that would not start are the environment's.
impl Classify for scenarios::fleet::FleetError {
    fn exit(&self) -> Exit {
        if self.is_usage() {
            Exit::Usage
        } else {
            Exit::Unreachable
        }
    }
}

/// An embedded stack that cannot start is the machine's problem (ports, Kafka, a child that
/// does not become ready, a missing Prometheus binary), except a gateway port the user asked for
/// that is taken: they can pick another.
impl Classify for shop::stack::StackError {
    fn exit(&self) -> Exit {
        match self {
            shop::stack::StackError::GatewayPortInUse(_) => Exit::Usage,
            _ => Exit::Unreachable,
        }
    }
}

/// Malformed files and values: usage errors naming file, line and field.
macro_rules! usage_errors {
    ($($t:ty),* $(,)?) => {
        $(impl Classify for $t {
            fn exit(&self) -> Exit {
                Exit::Usage
            }
        })*
    };
}

usage_errors!(
    slo::LoadError,
    slo::rules::RulesError,
    slo::WindowError,
    reports::LoadError,
    scenarios::ProfileError,
    scenarios::capacity::PlanError,
);
