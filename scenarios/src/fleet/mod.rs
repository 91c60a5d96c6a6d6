//! Many generators, one verdict: a coordinator and its workers.
//!
//! `shakedown run --workers N --on local|manual|k8s` makes the process a
//! [coordinator](coordinate): it serves the gRPC contract in
//! `proto/shakedown/fleet/v1/fleet.proto`, has N workers launched ([`Launcher`]: local
//! processes, a Kubernetes Indexed Job, or started by the operator), holds them at a barrier and
//! gives them one start instant, and merges what they stream every second (HDR interval
//! histograms and counters, and live metrics when asked) into a live view, live metrics,
//! continuous `abort_on_fail` thresholds, and at the end one report — the same report `shakedown report merge` makes of the workers' own reports,
//! plus a per-worker breakdown. A [worker](run_worker) (`shakedown worker --coordinator URL`)
//! gets everything it needs from the coordinator and reads no file of its own.

mod abort;
mod assignment;
mod barrier;
mod coordinator;
pub mod cost;
mod error;
pub mod k8s;
mod launch;
mod live;
mod merge;
mod proto;
mod service;
mod state;
mod wire;
mod worker;

pub use coordinator::{FleetPlan, coordinate};
pub use error::FleetError;
pub use launch::{Launcher, Local, Manual};
pub use merge::{BEHIND_MS, LATE_START_MS};
pub use worker::{WorkerOptions, run_worker};
