//! The Rust extension point: a scenario written as Rust step functions.
//!
//! Scenario files are the one way to write a journey; reach for this only when a step needs
//! code a file cannot express (a request signature computed per call, a custom protocol).
//! Requests go through `scenarios::rust::send`, so they are timed by our clock, checked and
//! recorded exactly like a file's steps, and the run ends in the same report.
//!
//! Run against any target that answers `GET /health` with `{"status": "healthy"}`:
//! `cargo run --example rust_scenario -- http://127.0.0.1:8080`

use std::time::Duration;

use scenarios::rust::{
    Call, GooseUser, ScenarioDef, Step, ThinkTime, TransactionResult, expect, send, step_fn,
};
use scenarios::{Profile, RunSpec, Scenario, execute_scenario};
use tokio_util::sync::CancellationToken;

/// One step: `GET /health`, which must answer `{"status": "healthy"}`.
async fn health(user: &mut GooseUser) -> TransactionResult {
    send(user, Call::get("health", "/health"), |body| {
        expect::equals(body, "status", "healthy")
    })
    .await
}

/// The scenario: the `health` step in a loop, with a short think time.
fn scenario() -> ScenarioDef {
    ScenarioDef {
        name: "health-rust",
        description: "GET /health from a Rust step function",
        think_time: ThinkTime {
            min: Duration::from_millis(10),
            max: Duration::from_millis(50),
        },
        on_start: vec![],
        steps: vec![Step::new("health", step_fn(|user| Box::pin(health(user))))],
    }
}

#[tokio::main]
async fn main() {
    let target = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:8080".to_string());
    let profile = Profile::from_yaml(
        "name: example\nclosed:\n  stages:\n    - { duration: 1s, users: 4 }\n    - { duration: 4s, users: 4 }\n",
        "example profile",
    )
    .expect("valid profile");
    let spec = RunSpec {
        scenario: String::new(), // ignored by execute_scenario
        target,
        profile,
        quiet: true,
        thresholds: Vec::new(),
        live: None,
    };
    let scenario = Scenario::from_rust(scenario());
    match execute_scenario(&scenario, spec, &CancellationToken::new()).await {
        Ok(report) => println!(
            "{}: {} requests, {} errors, {:.0} req/s, verdict {:?}",
            report.scenario,
            report.totals.requests,
            report.totals.errors,
            report.totals.rps,
            report.verdict
        ),
        Err(error) => {
            eprintln!("{error}");
            std::process::exit(2);
        }
    }
}
