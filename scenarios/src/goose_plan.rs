//! Translating a scenario and a profile into a configured `GooseAttack`.
//!
//! Goose is configured entirely in code (`initialize_with_config` + `GooseDefault`s), never
//! from the process arguments, so shakedown's own flags are not parsed by Goose. Everything
//! Goose would print, write or listen on is switched off: it generates load and handles
//! Ctrl-C; our recorder does the measuring and our report the reporting.

use std::sync::Arc;

use goose::config::GooseConfiguration;
use goose::prelude::*;

use crate::profile::{Load, Profile};
use crate::rust_steps::ScenarioDef;
use crate::session::{self, RunContext};

/// Builds the attack for `scenario` under `profile` against `target`. A `self_paced`
/// scenario (a scenario file) gates its own steps and sleeps its own think times.
pub fn goose_attack(
    scenario: &ScenarioDef,
    self_paced: bool,
    profile: &Profile,
    target: &str,
    run: Arc<RunContext>,
) -> Result<GooseAttack, GooseError> {
    let attack = GooseAttack::initialize_with_config(GooseConfiguration::default())?
        .register_scenario(goose_scenario(scenario, self_paced, profile, run)?);
    let timeout_s = format!("{:.3}", profile.request_timeout.as_secs_f64());
    let attack = *attack
        .set_default(GooseDefault::Host, target)?
        .set_default(GooseDefault::TestPlan, profile.goose_test_plan().as_str())?
        .set_default(GooseDefault::Timeout, timeout_s.as_str())?
        // Our recorder measures; Goose's own metrics would cost CPU for numbers we discard.
        .set_default(GooseDefault::NoMetrics, true)?
        .set_default(GooseDefault::NoPrintMetrics, true)?
        // Goose's console log: warnings only.
        .set_default(GooseDefault::Quiet, 1)?
        // No telnet controller listening on a fixed port (the WebSocket one is off by default).
        .set_default(GooseDefault::NoTelnet, true)?;
    Ok(attack)
}

/// The Goose scenario: session set-up, then the scenario's steps in order. Open-model runs
/// start every iteration with the pacing step and use no think time — the arrival schedule
/// sets the pace.
fn goose_scenario(
    def: &ScenarioDef,
    self_paced: bool,
    profile: &Profile,
    run: Arc<RunContext>,
) -> Result<Scenario, GooseError> {
    let open_model = matches!(profile.load, Load::Open { .. });
    let mut scenario = Scenario::new(def.name)
        .register_transaction(session::install(run).set_on_start().set_sequence(1));
    for (index, step) in def.on_start.iter().enumerate() {
        let transaction = Transaction::new(step.function.clone())
            .set_name(step.name)
            .set_on_start()
            .set_sequence(index + 2);
        scenario = scenario.register_transaction(transaction);
    }
    if open_model {
        scenario = scenario.register_transaction(session::await_arrival().set_sequence(1));
    }
    for (index, step) in def.steps.iter().enumerate() {
        let function = if self_paced {
            step.function.clone()
        } else {
            step.gated_function()
        };
        let transaction = Transaction::new(function)
            .set_name(step.name)
            .set_sequence(index + 2)
            .set_weight(step.weight)?;
        scenario = scenario.register_transaction(transaction);
    }
    let think = profile.think_time.unwrap_or(def.think_time);
    if !open_model && !self_paced && !think.max.is_zero() {
        scenario = scenario.set_wait_time(think.min, think.max)?;
    }
    Ok(scenario)
}
