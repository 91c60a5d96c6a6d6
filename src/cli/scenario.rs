//! `shakedown scenario list|check|import`: see the built-in scenarios, debug a scenario file
//! before loading anything with it — `check` validates the file completely (exit 2 with
//! file:line:column on any problem) and, with `--target`, runs one user through `on_start` and
//! one iteration, printing every request and response; `import` writes one from an OpenAPI
//! description or a HAR recording (see `import.rs`).

use anyhow::Result;
use clap::{Args, Subcommand};
use reports::ErrorKind;

use super::{Exit, exit};

#[derive(Args, Debug)]
pub struct ScenarioArgs {
    #[command(subcommand)]
    command: ScenarioCommand,
}

#[derive(Subcommand, Debug)]
enum ScenarioCommand {
    /// The built-in scenarios (files in scenarios/builtin/, compiled in) and what they do.
    List,
    /// Validate a scenario file (or a built-in name); with --target, run one iteration of one
    /// user against it and print each request and response: method, URL, status, time,
    /// extracted variables and check results. Exit 0 when every step passed, 1 when one
    /// failed, 2 for an invalid file, 3 when the target cannot be reached.
    Check {
        /// A scenario file, or a built-in name.
        scenario: String,
        /// Base URL to try the scenario against, e.g. http://127.0.0.1:8080.
        #[arg(long)]
        target: Option<String>,
    },
    /// Write a scenario file from an OpenAPI description or a HAR recording.
    Import(super::import::ImportArgs),
}

pub async fn run(args: ScenarioArgs) -> Result<Exit> {
    match args.command {
        ScenarioCommand::List => {
            for (name, description) in scenarios::scenario_descriptions() {
                println!("{name:<10} {description}");
            }
            println!(
                "\nRun one with `shakedown run NAME`, or copy scenarios/builtin/NAME.yaml and run the file."
            );
            Ok(Exit::Pass)
        }
        ScenarioCommand::Check { scenario, target } => check(&scenario, target.as_deref()).await,
        ScenarioCommand::Import(args) => super::import::run(args),
    }
}

async fn check(name_or_path: &str, target: Option<&str>) -> Result<Exit> {
    let scenario =
        scenarios::Scenario::resolve(name_or_path).map_err(|e| exit::usage(e.to_string()))?;
    let steps = scenario.transaction_names().len();
    println!(
        "{name_or_path}: valid scenario \"{}\" ({steps} transaction name{})",
        scenario.name(),
        if steps == 1 { "" } else { "s" }
    );
    let Some(target) = target else {
        return Ok(Exit::Pass);
    };
    let exchanges = scenario.try_once(target).await.map_err(|e| {
        if e.is_usage() {
            exit::usage(e.to_string())
        } else {
            anyhow::Error::new(e)
        }
    })?;
    let mut outcome = Exit::Pass;
    for exchange in &exchanges {
        let status = exchange
            .status
            .map_or_else(|| "---".to_string(), |s| s.to_string());
        println!(
            "{:<20} {:<7} {} → {status} in {:.1} ms",
            exchange.name,
            exchange.method,
            if exchange.url.is_empty() {
                "(not sent)"
            } else {
                &exchange.url
            },
            exchange.latency.as_secs_f64() * 1000.0
        );
        for (variable, value) in &exchange.extracted {
            println!("{:<20}   {variable} = {value}", "");
        }
        match &exchange.error {
            None => println!("{:<20}   checks passed", ""),
            Some((kind, message)) => {
                println!("{:<20}   FAILED ({kind}): {message}", "");
                let unreachable = matches!(kind, ErrorKind::Connect | ErrorKind::Timeout);
                outcome = if unreachable && outcome == Exit::Pass {
                    Exit::Unreachable
                } else {
                    Exit::Failed
                };
            }
        }
    }
    if exchanges.is_empty() {
        println!("no request was made (a feeder was used up or a variable could not be set)");
        outcome = Exit::Failed;
    }
    Ok(outcome)
}
