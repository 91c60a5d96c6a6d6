//! `health`: `GET /health` in a tight loop, no think time.
//!
//! Not a user journey: a calibration load that measures the generator and the network path
//! with the cheapest possible request (the throughput benchmark uses it too).

use super::{ScenarioDef, step, think};
use crate::gateway;

pub fn scenario() -> ScenarioDef {
    ScenarioDef {
        name: "health",
        description: "GET /health as fast as possible (calibration, no think time)",
        think_time: think(0, 0),
        on_start: vec![],
        steps: vec![step!("health", gateway::health)],
    }
}
