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

/// Called by a test that cannot run because `tool` is missing. In CI (`CI` set, as `.ci/run`
/// runs) that is a failure naming the tool — a test that skips must never pass there; elsewhere
/// it is a skip that says so. `install` says how to get the tool.
pub fn missing_tool(tool: &str, install: &str) {
    let in_ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    assert!(
        !in_ci,
        "{tool} is needed by this test and is missing on this CI machine: {install}"
    );
    eprintln!("SKIP: {tool} is not installed ({install})");
}
