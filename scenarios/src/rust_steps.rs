//! The Rust extension point: a scenario as Rust step functions, for what a file cannot say.
//!
//! Scenario files are the one way to define a scenario; this is for the rare journey that
//! needs code (a signature computed per request, a protocol dance). A [`ScenarioDef`] is
//! ordered, weighted, named steps plus a think time; each step is an async function of the
//! Goose user that makes its requests through [`send`], so they are timed, checked and
//! recorded like every other request. Run one with [`crate::Scenario::from_rust`] and
//! [`crate::execute_scenario`]; `scenarios/examples/rust_scenario.rs` is a complete example.

use goose::prelude::TransactionFunction;

use crate::profile::ThinkTime;
use crate::session::{iteration_open, transaction_fn};

pub use crate::request::{Call, expect, send};
pub use crate::session::transaction_fn as step_fn;

/// A user journey written in Rust.
#[derive(Clone)]
pub struct ScenarioDef {
    pub name: &'static str,
    pub description: &'static str,
    /// Pause between steps in the closed model (a profile may override it).
    pub think_time: ThinkTime,
    /// Steps run once when a user starts (e.g. sign up).
    pub on_start: Vec<Step>,
    /// Steps of one iteration, in order.
    pub steps: Vec<Step>,
}

/// One named step: a Goose transaction.
#[derive(Clone)]
pub struct Step {
    pub name: &'static str,
    /// How many times the step runs per iteration.
    pub weight: usize,
    pub function: TransactionFunction,
}

impl Step {
    /// A step from a function made with [`step_fn`]:
    /// `Step::new("health", step_fn(|user| Box::pin(health(user))))`.
    pub fn new(name: &'static str, function: TransactionFunction) -> Self {
        Self {
            name,
            weight: 1,
            function,
        }
    }

    pub fn weight(mut self, weight: usize) -> Self {
        self.weight = weight;
        self
    }

    /// The step's function, skipped while an open-model user has no iteration to run.
    pub(crate) fn gated_function(&self) -> TransactionFunction {
        let inner = self.function.clone();
        transaction_fn(move |user| {
            let inner = inner.clone();
            Box::pin(async move {
                if !iteration_open(user) {
                    return Ok(());
                }
                inner(user).await
            })
        })
    }
}
