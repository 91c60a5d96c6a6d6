//! Service level objectives for shakedown: the SLO file, the sources that measure an SLI over a
//! window, and the evaluator that turns a measurement into pass / warn / fail / unknown.
//!
//! The flow is deliberately small: [`load`] reads an `SLOSet` file (typed errors with file, line
//! and field), [`SourcesConfig::build`] connects the sources the file needs, and [`check`]
//! measures every SLO over one [`Window`] and judges it. Each verdict is a
//! [`reports::SloVerdict`] (the same type a run report carries) plus the window and, when it
//! could not be judged, why — so the CLI can pick an exit code with [`CheckOutcome::gate`] and a
//! load run can [`attach`] the verdicts to its report.
//!
//! "No data" is never a number: a query that matches nothing becomes `unknown`, not 0.

mod budget;
mod check;
mod evaluate;
mod load;
mod model;
mod outcome;
pub mod render;
pub mod rules;
mod series;
pub mod sources;
mod time;
mod value;
mod window;

#[cfg(feature = "testing")]
pub mod testing;

pub use budget::Budget;
pub use check::{CheckContext, check};
pub use evaluate::evaluate;
pub use load::{LoadError, load, parse};
pub use model::{
    After, ApiVersion, ClientMeasure, ClientSli, Comparison, Defaults, ErrorRatioSli, HpaMeasure,
    HpaSli, KafkaLagSli, KafkaMeasure, LagBound, LagKind, LatencySli, Metadata, MetricName,
    Objective, PromqlSli, Quantile, Selector, SetKind, Sli, Slo, SloSet,
};
pub use outcome::{CheckOutcome, Checked, Gate, Problem, attach};
pub use sources::{PreflightFailed, preflight};
pub use sources::{SetupError, Source, SourceKind, Sources, SourcesConfig};
pub use time::{TimeError, human_instant, parse_instant};
pub use value::{Unit, UnitError};
pub use window::{Marks, Window, WindowError, clean_start};

/// Re-exported so callers can name the verdict types without depending on `reports` directly.
pub use reports::{SloStatus, SloVerdict};
