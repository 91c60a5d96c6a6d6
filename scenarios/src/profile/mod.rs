//! Load profiles: how much load, over what time, as data.
//!
//! A profile is either a **closed model** — stages of target users, each ramping linearly
//! from the previous target (k6 `ramping-vus`; Goose's test plan runs it directly) — or an
//! **open model** — stages of target arrival rate in iterations per second with a cap on
//! concurrent users (k6 `ramping-arrival-rate`), where an iteration that starts late is still
//! measured from when it was due. Profiles live as YAML files (see `scenarios/profiles/`),
//! the built-in ones embedded in the binary, and can be scaled or overridden from the CLI.

mod arrivals;
mod builtin;
mod error;
mod file;
mod reshape;
mod share;

use std::path::Path;
use std::time::Duration;

use reports::{LoadModel, ProfileSummary, StageSummary, Threshold, WorkerShare};

pub use arrivals::ArrivalSchedule;
pub use builtin::builtin_names;
pub use error::ProfileError;
pub use reshape::Overrides;

/// Parses a profile file's text as [`Profile::load_file`] would (`stem` names a profile without
/// a `name`): what a fleet worker does with the text its coordinator sent.
pub(crate) fn parse_file_text(
    text: &str,
    origin: &str,
    stem: &str,
) -> Result<Profile, ProfileError> {
    file::parse(text, origin, stem)
}

/// Request timeout when a profile does not set one: long enough for a slow but healthy
/// service, short enough that a hung one shows up as `timeout` errors within a run.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A validated load profile.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    /// Name shown in reports (the built-in name or the file's `name`, else its file stem).
    pub name: String,
    pub description: Option<String>,
    pub load: Load,
    /// Thresholds this profile asks for; empty means "use the caller's or the defaults".
    pub thresholds: Vec<Threshold>,
    /// Replaces the scenario's own think time between transactions (closed model only).
    pub think_time: Option<ThinkTime>,
    /// How long one request (including its body) may take before it is a `timeout` error.
    pub request_timeout: Duration,
    /// Set on one worker's share of the profile ([`Profile::share`]); `name` stays the whole's.
    pub worker: Option<WorkerShare>,
    /// Thresholds that stop the run as soon as they fail (k6's `abort_on_fail`), judged
    /// continuously by a fleet coordinator; each is also in `thresholds`.
    pub aborts: Vec<AbortRule>,
}

/// A threshold that aborts the run when it fails, after `delay` from the start (k6's
/// `abort_on_fail` with `delay_abort_eval`): early seconds with few requests do not decide.
#[derive(Clone, Debug, PartialEq)]
pub struct AbortRule {
    pub threshold: Threshold,
    pub delay: Duration,
}

/// The load model and its stages.
#[derive(Clone, Debug, PartialEq)]
pub enum Load {
    /// A number of users, each looping through the scenario with think time.
    Closed { stages: Vec<UserStage> },
    /// Iterations started at a target rate by at most `max_users` concurrent users.
    Open {
        /// Arrival rate at time zero, ramped from towards the first stage's target.
        start_rate: f64,
        max_users: u32,
        stages: Vec<RateStage>,
    },
}

/// Ramp linearly to `users` over `duration` (closed model).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserStage {
    pub duration: Duration,
    pub users: u32,
}

/// Ramp linearly to `rate` iterations per second over `duration` (open model).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateStage {
    pub duration: Duration,
    pub rate: f64,
}

/// A random pause between a user's transactions, uniformly between `min` and `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThinkTime {
    pub min: Duration,
    pub max: Duration,
}

impl Profile {
    /// Resolves what a user typed: a path to a YAML file if one exists there (or the text
    /// ends in `.yaml`/`.yml`), otherwise a built-in profile name.
    pub fn resolve(spec: &str) -> Result<Profile, ProfileError> {
        let path = Path::new(spec);
        let looks_like_file = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
        if looks_like_file || path.is_file() {
            Profile::load_file(path)
        } else {
            Profile::builtin(spec)
        }
    }

    /// Loads and validates a profile YAML file.
    pub fn load_file(path: &Path) -> Result<Profile, ProfileError> {
        let text = config::read_text(path, "profile")?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "profile".to_string());
        file::parse(&text, &path.display().to_string(), &stem)
    }

    /// A built-in profile by name (see [`builtin_names`]).
    pub fn builtin(name: &str) -> Result<Profile, ProfileError> {
        builtin::load(name)
    }

    /// Parses profile YAML; `origin` names the text in errors (a path or a description).
    pub fn from_yaml(text: &str, origin: &str) -> Result<Profile, ProfileError> {
        file::parse(text, origin, "profile")
    }

    /// The open or closed model of this profile.
    pub fn model(&self) -> LoadModel {
        match self.load {
            Load::Closed { .. } => LoadModel::Closed,
            Load::Open { .. } => LoadModel::Open,
        }
    }

    /// The sum of the stage durations.
    pub fn planned_duration(&self) -> Duration {
        match &self.load {
            Load::Closed { stages } => stages.iter().map(|s| s.duration).sum(),
            Load::Open { stages, .. } => stages.iter().map(|s| s.duration).sum(),
        }
    }

    /// The most users the profile ever runs at once.
    pub fn peak_users(&self) -> u32 {
        match &self.load {
            Load::Closed { stages } => stages.iter().map(|s| s.users).max().unwrap_or(0),
            Load::Open { max_users, .. } => *max_users,
        }
    }

    /// The profile as the report records it.
    pub fn summary(&self) -> ProfileSummary {
        let (stages, start_rate, max_users) = match &self.load {
            Load::Closed { stages } => (
                stages
                    .iter()
                    .map(|s| StageSummary {
                        duration_s: s.duration.as_secs_f64(),
                        target: f64::from(s.users),
                    })
                    .collect(),
                None,
                None,
            ),
            Load::Open {
                start_rate,
                max_users,
                stages,
            } => (
                stages
                    .iter()
                    .map(|s| StageSummary {
                        duration_s: s.duration.as_secs_f64(),
                        target: s.rate,
                    })
                    .collect(),
                Some(*start_rate),
                Some(*max_users),
            ),
        };
        ProfileSummary {
            name: self.name.clone(),
            description: self.description.clone(),
            model: self.model(),
            stages,
            start_rate,
            max_users,
            worker: self.worker,
            merged_workers: None,
        }
    }

    /// Goose's `--test-plan` text for this profile: `users,seconds` steps.
    ///
    /// Closed model: one step per stage, plus a final `0,0s` so users stop when the plan
    /// ends. Open model: all `max_users` users start at once and wait for their arrival
    /// times; they are held for the whole schedule and stopped at its end.
    pub fn goose_test_plan(&self) -> String {
        let steps: Vec<(u32, u64)> = match &self.load {
            Load::Closed { stages } => {
                let mut steps: Vec<(u32, u64)> = stages
                    .iter()
                    .map(|s| (s.users, s.duration.as_secs()))
                    .collect();
                if stages.last().is_some_and(|s| s.users > 0) {
                    steps.push((0, 0));
                }
                steps
            }
            Load::Open { max_users, .. } => {
                let hold = self.planned_duration().as_secs_f64().ceil() as u64;
                vec![(*max_users, 0), (*max_users, hold), (0, 0)]
            }
        };
        steps
            .iter()
            .map(|(users, secs)| format!("{users},{secs}s"))
            .collect::<Vec<_>>()
            .join(";")
    }
}
