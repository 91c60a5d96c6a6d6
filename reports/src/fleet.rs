//! The per-worker breakdown of a run made by many generators (`shakedown run --workers N --on
//! local|manual`): one merged report reads like one run, and this table says what each worker
//! contributed and whether it can be trusted (disconnected, late, clock off).

use serde::{Deserialize, Serialize};

/// One worker of a coordinated run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkerBreakdown {
    /// 0-based share index (`JOB_COMPLETION_INDEX` in a Kubernetes Indexed Job).
    pub index: u32,
    /// Where it ran (host or pod name).
    pub name: String,
    /// The worker's own run id, when its load started.
    pub run_id: Option<String>,
    pub requests: u64,
    pub errors: u64,
    /// p95 latency of this worker's requests, `None` without requests.
    pub p95_ms: Option<f64>,
    /// Worker clock minus coordinator clock, estimated when it joined.
    pub clock_offset_ms: f64,
    /// How late its load started after the agreed instant.
    pub start_lateness_ms: f64,
    /// Open model: the longest delay of an iteration behind its schedule.
    pub max_lateness_ms: f64,
    /// How the worker ended.
    pub status: WorkerStatus,
    /// Why the worker is flagged (it fell behind its schedule, it disconnected); `None` when fine.
    pub flag: Option<String>,
}

/// How one worker of a coordinated run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkerStatus {
    /// Ran its share to the end (or until the coordinator stopped everyone).
    Finished,
    /// Its stream ended without a final message: it died or lost the coordinator. Its data up to
    /// its last interval is in the report.
    Disconnected,
}

impl std::fmt::Display for WorkerStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WorkerStatus::Finished => "finished",
            WorkerStatus::Disconnected => "disconnected",
        })
    }
}
