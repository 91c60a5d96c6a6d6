//! Chaos experiments for on-call drills: an experiment file (target, steady-state hypothesis,
//! method of timed actions, rollbacks), the actions that break things on purpose (pod-kill and
//! broker-failure through the Kubernetes API; process-kill, broker-failure and faults on the
//! embedded stack), the safety rules that refuse dangerous ones, and the journal that says what was
//! done, when, to what, and how long the system took to recover.
//!
//! The flow: [`load`] reads and validates a file into an [`Experiment`]; a target binds its
//! actions ([`local::LocalTarget::bind`], [`kube_actions::bind`]); [`runner::run`] runs them
//! against a [`steady::Hypothesis`] and returns an [`ExperimentOutcome`] with the journal, the
//! verdicts and the exit code. [`plan::dry_run`] prints the plan instead.

pub mod action;
pub mod alerts;
pub mod drill;
pub mod error;
pub mod faults;
pub mod in_force;
pub mod journal;
pub mod kube;
pub mod kube_actions;
mod load;
pub mod local;
pub mod model;
pub mod orders;
pub mod outcome;
pub mod plan;
pub mod runner;
pub mod steady;

pub use action::Action;
pub use error::ChaosError;
pub use journal::{ActionRecord, Outcome};
pub use load::{load, parse};
pub use model::{ActionSpec, Experiment, Target};
pub use outcome::{Conclusion, ExperimentOutcome};
