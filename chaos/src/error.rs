//! Why an experiment could not be run as asked. The kinds are distinct so that the CLI (the one
//! place that picks exit codes) can make a drill in CI fail for the right reason.

use crate::outcome::Conclusion;

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
    /// What this error concludes about the experiment: failed, invalid (malformed or refused),
    /// or unreachable.
    pub fn conclusion(&self) -> Conclusion {
        match self {
            ChaosError::Failed(_) => Conclusion::Failed,
            ChaosError::Invalid(_) | ChaosError::Refused(_) => Conclusion::Invalid,
            ChaosError::Unreachable(_) => Conclusion::Unreachable,
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
