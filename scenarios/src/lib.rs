//! Load generation for shakedown: scenarios as files (built-in or the user's own), load
//! profiles as data, and HDR latency recording that ends in a [`reports::Report`].
//!
//! The CLI needs three things:
//!
//! - [`Profile::resolve`] (a YAML path or a built-in name such as `k6-baseline`), optionally
//!   [`Profile::scaled`] and [`Profile::with_overrides`]; failures are [`ProfileError`]s
//!   (usage errors, exit 2).
//! - [`execute`] with a [`RunSpec`]: probes `GET {target}/health`, runs the scenario under
//!   the profile and returns the report — partial on Ctrl-C or when the target dies mid-run;
//!   inside [`RunError::Unreachable`] when the target could not be reached at all.
//! - [`scenario_names`] and [`builtin_profile_names`] for help texts; [`Scenario::resolve`]
//!   reads a built-in or a scenario file (see `scenarios/README.md`), [`execute_scenario`]
//!   runs one directly — including Rust steps from [`rust::ScenarioDef`].
//!
//! Latency is measured with our own clock around each request and its body, in
//! microseconds; for open-model profiles every request is also recorded corrected for
//! coordinated omission (from its iteration's intended start). See `reports/SCHEMA.md` for
//! what ends up in the report.

pub mod adhoc;
mod assemble;
pub mod capacity;
mod error;
mod file;
pub mod fleet;
mod goose_plan;
mod health;
pub mod import;
pub mod live;
mod pacing;
pub mod profile;
mod progress;
mod quiet_stdout;
mod recorder;
mod request;
mod runner;
mod rust_steps;
mod session;
mod watch;

pub use error::RunError;
pub use file::{
    Exchange, RequestPath, Scenario, ScenarioError, builtin_names as scenario_names, path_pattern,
};
pub use profile::{
    ArrivalSchedule, DEFAULT_REQUEST_TIMEOUT, Load, Overrides, Profile, ProfileError, RateStage,
    ThinkTime, UserStage, builtin_names as builtin_profile_names,
};
pub use reports::{Report, Threshold, default_thresholds};
pub use runner::{INTERRUPTED, RunSpec, execute, execute_scenario, execute_until, validate};
pub use watch::DEAD_TARGET_WINDOW;

/// The Rust extension point: scenarios as Rust step functions (see the module's docs).
pub mod rust {
    pub use crate::profile::ThinkTime;
    pub use crate::rust_steps::{Call, ScenarioDef, Step, expect, send, step_fn};
    pub use goose::prelude::{GooseUser, TransactionResult};
}

/// Descriptions of every built-in scenario, `(name, description)`, for help texts.
pub fn scenario_descriptions() -> Vec<(&'static str, &'static str)> {
    file::builtin_descriptions()
}
