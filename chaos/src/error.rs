//! Why an experiment could not be run as asked. Each variant maps to one of the CLI's exit codes,
//! so a drill in CI fails for the right reason.

/// An experiment that was refused, misconfigured, or could not reach its target.
#[derive(Debug, thiserror::Error)]
pub enum ChaosError {
    /// The experiment file or an action is malformed (exit 2). Says what and where.
    #[error("{0}")]
    Invalid(String),
    /// A safety rule refused the action: namespace not allowed, blast radius too large (exit 2).
    #[error("refused: {0}")]
    Refused(String),
    /// The Kubernetes API, the embedded stack or an admin endpoint could not be reached (exit 3).
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The action ran and did not do what it should (e.g. no pod matched, recovery timed out)
    /// (exit 1).
    #[error("{0}")]
    Failed(String),
}

/// A malformed experiment or SLO file is a configuration error (exit 2).
impl From<config::Error> for ChaosError {
    fn from(error: config::Error) -> Self {
        ChaosError::Invalid(error.to_string())
    }
}

impl ChaosError {
    /// The documented exit code for this error: 1 failed, 2 usage/config, 3 unreachable.
    pub fn exit_code(&self) -> u8 {
        match self {
            ChaosError::Failed(_) => 1,
            ChaosError::Invalid(_) | ChaosError::Refused(_) => 2,
            ChaosError::Unreachable(_) => 3,
        }
    }

    /// The same error, its message rewritten (e.g. to say which step or file it is about);
    /// the kind, and so the exit code, stays.
    pub fn map_message(self, f: impl FnOnce(String) -> String) -> ChaosError {
        match self {
            ChaosError::Invalid(m) => ChaosError::Invalid(f(m)),
            ChaosError::Refused(m) => ChaosError::Refused(f(m)),
            ChaosError::Unreachable(m) => ChaosError::Unreachable(f(m)),
            ChaosError::Failed(m) => ChaosError::Failed(f(m)),
        }
    }
}
