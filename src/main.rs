//! `shakedown`: load scenarios, SLO gates, chaos drills and capacity plans for e-commerce
//! microservice platforms. This binary parses flags (`cli`), wires the library crates together —
//! `scenarios` (load, capacity search), `slo` (SLO gates), `chaos` (experiments and drills),
//! `reports` (the run report and its renderings), `shop` (the embedded reference stack),
//! `config` (the one YAML reader) — and turns their typed outcomes and errors into the
//! documented exit codes in one place, `cli::exit`. The logic and its tests live in the crates.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
