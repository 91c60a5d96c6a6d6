//! `shakedown`: load scenarios, SLO gates, chaos drills and capacity plans for e-commerce
//! microservice platforms. This binary only parses flags and wires the library crates together
//! (`shop`, `scenarios`, `reports`); the logic and its tests live there.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
