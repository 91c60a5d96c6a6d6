//! The catalogue of scenarios: named user journeys against the gateway API.
//!
//! A scenario is data — ordered, weighted, named steps plus a think time — and the runner
//! turns it into a Goose scenario. Steps run in the listed order on every iteration, each
//! `weight` times; `on_start` steps run once per user before the first iteration.

mod browse;
mod checkout;
mod health;
mod ingest;
mod smoke;

use std::time::Duration;

use goose::prelude::TransactionFunction;

use crate::profile::ThinkTime;
use crate::session::{iteration_open, transaction_fn};

/// A user journey.
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
    pub fn gated_function(&self) -> TransactionFunction {
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

/// Builds a [`Step`] from a name and an `async fn(&mut GooseUser) -> TransactionResult`.
macro_rules! step {
    ($name:literal, $function:path) => {
        $crate::scenarios::Step::new(
            $name,
            $crate::session::transaction_fn(|user| Box::pin($function(user))),
        )
    };
}
pub(crate) use step;

/// A think time between `min_ms` and `max_ms` milliseconds.
const fn think(min_ms: u64, max_ms: u64) -> ThinkTime {
    ThinkTime {
        min: Duration::from_millis(min_ms),
        max: Duration::from_millis(max_ms),
    }
}

/// Every scenario, in the order `--help` lists them.
pub fn all() -> Vec<ScenarioDef> {
    vec![
        smoke::scenario(),
        browse::scenario(),
        checkout::scenario(),
        ingest::scenario(),
        health::scenario(),
    ]
}

/// Names of every scenario.
pub fn scenario_names() -> Vec<&'static str> {
    all().iter().map(|s| s.name).collect()
}

/// The scenario called `name`.
pub fn find(name: &str) -> Option<ScenarioDef> {
    all().into_iter().find(|s| s.name == name)
}
