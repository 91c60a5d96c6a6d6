//! Live metrics of a run while it runs: what the recorder sees, also counted in a form that
//! Prometheus can scrape (`--metrics-listen`, [`MetricsListener`]) or receive by remote write
//! (`--remote-write`, [`RemoteWriter`]).
//!
//! The recorder is the one stream of request events (the progress bar reads it too); when a
//! run has a [`LiveSink`], every request, every open-model iteration start and the watcher's
//! active-user samples are also handed to it. [`LiveMetrics`] is the sink the CLI uses; its
//! figures are cumulative over the whole process, so the steps of a capacity search add up
//! like one long run. A fleet's workers send their [`Figures`] to the coordinator, whose
//! `LiveMetrics` hold the sum.

mod listener;
mod metrics;
mod remote_write;

use std::fmt::Debug;
use std::time::Duration;

use reports::ErrorKind;

pub use listener::{ListenError, MetricsListener};
pub use metrics::{
    Buckets, Figures, LATENCY_BUCKETS_SECONDS, LiveMetrics, OPENMETRICS_CONTENT_TYPE, Sample,
    TransactionFigures,
};
pub use remote_write::{PushTally, RemoteWrite, RemoteWriteError, RemoteWriter};

/// What a run tells live observers, as it happens.
pub trait LiveSink: Debug + Send + Sync {
    /// A request of `transaction` finished after `latency`; `error` when it counts as failed.
    fn request(&self, transaction: &str, latency: Duration, error: Option<ErrorKind>);
    /// An open-model iteration started `lateness` after it was due.
    fn iteration_started(&self, lateness: Duration);
    /// How many users are running now.
    fn active_users(&self, users: u32);
}
