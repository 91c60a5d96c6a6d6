//! Test support (feature `testing`), shared by this crate's tests and the CLI tests of the root
//! package: a real Prometheus backfilled from generated OpenMetrics with known answers, and run
//! reports with known numbers.
//!
//! Nothing here is used at run time; it exists so tests exercise the real servers and file
//! formats instead of mocks of them.

pub mod dataset;
pub mod openmetrics;
pub mod prometheus;
pub mod report;
