//! The run report of a shakedown load run and its renderings.
//!
//! [`Report`] is the one versioned JSON document a run produces (layout in `SCHEMA.md`); it
//! carries the HDR histograms behind every percentile so reports can be merged and compared
//! later. Renderers turn it into Markdown for GitHub summaries, self-contained HTML with SVG
//! charts, and JUnit XML for CI test views; [`write_all`] writes all of them to a directory.
//!
//! SLO verdicts ([`SloVerdict`]) and journal events ([`JournalEvent`]) are extension points
//! filled in by other crates after the run; call [`Report::recompute_verdict`] after adding
//! them.

mod charts;
pub mod derive;
pub mod diff;
mod error;
mod fleet;
mod histogram;
pub mod merge;
mod model;
pub mod provenance;
pub mod render;
pub mod significance;
mod store;
mod threshold;

#[cfg(test)]
mod fixtures;

pub use error::{HistogramError, RenderError, WriteError};
pub use fleet::{WorkerBreakdown, WorkerStatus};
pub use histogram::LatencyHistogram;
pub use merge::merge;
pub use model::{
    ArrivalStats, ErrorCounts, ErrorKind, ErrorSample, JournalEvent, LatencyStats, LoadModel,
    Percentiles, ProfileSummary, Report, RouteLatency, SCHEMA_VERSION, ServerSide,
    SlicePercentiles, SloStatus, SloVerdict, StageSummary, StatusClassStats, TimeSlice, Totals,
    TransactionStats, Verdict, WorkerShare, error_samples_from,
};
pub use provenance::{GeneratorHealth, Provenance};
pub use render::{Renderer, all_renderers};
pub use store::{LATEST, LoadError, mark_latest, write_all};
pub use threshold::{
    Comparison, Threshold, ThresholdMetric, ThresholdParseError, ThresholdResult,
    default_thresholds, format_value,
};
