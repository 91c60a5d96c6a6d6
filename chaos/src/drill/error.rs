//! Why a drill (or a chaos run) stopped before it could conclude anything. Each variant keeps
//! the library error it came from, so the CLI can tell a configuration problem (exit 2) from an
//! unreachable target or source (exit 3).

/// An experiment or drill that could not be run.
#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    /// The experiment was refused, is malformed, or its target does not answer.
    #[error(transparent)]
    Chaos(#[from] crate::ChaosError),
    /// A steady-state SLO source is not configured, refuses a query, or does not answer.
    #[error(transparent)]
    Preflight(#[from] slo::PreflightFailed),
    /// A steady-state SLO source cannot even be set up (a malformed URL).
    #[error(transparent)]
    Sources(#[from] slo::SetupError),
    /// The load could not start at all (no report): a bad scenario or target.
    #[error(transparent)]
    Load(#[from] scenarios::RunError),
}
