//! Why a run could not produce a complete report.
//!
//! The CLI maps these to exit codes: [`RunError::is_usage`] → 2 (bad scenario name or
//! target), [`RunError::is_unreachable`] → 3. A run that started always leaves a report,
//! carried inside the error when there is one, so it can still be written out.

use reports::Report;

use crate::file::ScenarioError;

impl From<ScenarioError> for RunError {
    fn from(error: ScenarioError) -> Self {
        match error {
            ScenarioError::Unknown { name, known } => RunError::UnknownScenario { name, known },
            other => RunError::Scenario(other),
        }
    }
}

/// A run that failed before or while generating load.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// No scenario by that name.
    #[error("unknown scenario \"{name}\" (available: {})", known.join(", "))]
    UnknownScenario {
        name: String,
        known: Vec<&'static str>,
    },
    /// The scenario file cannot be read or breaks a rule (file:line:column: field: what).
    #[error(transparent)]
    Scenario(ScenarioError),
    /// The target is not an http(s) URL.
    #[error("invalid target \"{target}\": {reason}")]
    InvalidTarget { target: String, reason: String },
    /// `GET {target}/health` could not connect or timed out; no load was sent. The report is
    /// marked partial with the reason.
    #[error("target {target} is unreachable: {reason}")]
    Unreachable {
        target: String,
        reason: String,
        report: Box<Report>,
    },
    /// Goose refused the configuration or failed while running; the report holds whatever
    /// was measured and is marked partial.
    #[error("the load generator failed: {message}")]
    LoadGenerator {
        message: String,
        report: Box<Report>,
    },
}

impl RunError {
    /// A mistake in what was asked for (exit code 2).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            RunError::UnknownScenario { .. }
                | RunError::InvalidTarget { .. }
                | RunError::Scenario(_)
        )
    }

    /// The target could not be reached (exit code 3).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, RunError::Unreachable { .. })
    }

    /// The partial report, when the run got far enough to have one.
    pub fn partial_report(&self) -> Option<&Report> {
        match self {
            RunError::Unreachable { report, .. } | RunError::LoadGenerator { report, .. } => {
                Some(report)
            }
            _ => None,
        }
    }

    /// Takes the partial report out of the error.
    pub fn into_partial_report(self) -> Option<Report> {
        match self {
            RunError::Unreachable { report, .. } | RunError::LoadGenerator { report, .. } => {
                Some(*report)
            }
            _ => None,
        }
    }
}
