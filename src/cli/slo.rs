//! `shakedown slo check`: judge an SLO file over a window (or a run report's window) and turn the
//! verdicts into an exit code, a table on stdout and, with `--out`, Markdown, JUnit and JSON.
//!
//! Exit codes follow the gate (`slo::Gate`): 0 pass, 1 an SLO failed (or is unknown without
//! `--allow-unknown`), 2 the SLO file or flags are wrong, 3 a source could not be reached.
//!
//! `shakedown slo rules SLOFILE` writes the burn-rate recording and alerting rules of the SLOs
//! with a budget (`slo::rules`): 0, or 2 for a bad file or one with nothing to generate.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use reports::{Provenance, Report};

use super::provenance::Inputs;
use super::{Exit, exit};

#[derive(Args, Debug)]
pub struct SloArgs {
    #[command(subcommand)]
    command: SloCommand,
}

#[derive(Subcommand, Debug)]
enum SloCommand {
    /// Evaluate an SLO file over a window: the CI gate for runs made elsewhere.
    Check(CheckArgs),
    /// Prometheus recording rules and multi-window multi-burn-rate alerts for the SLOs with a
    /// `budget` (latency and error_ratio SLIs).
    Rules(RulesArgs),
}

#[derive(Args, Debug)]
struct RulesArgs {
    /// The SLO file (apiVersion shakedown/v1, kind SLOSet).
    slo: PathBuf,
    /// Write the rules here instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    /// `rules`: a Prometheus rule file; `prometheus-rule`: a monitoring.coreos.com/v1
    /// PrometheusRule object.
    #[arg(long, value_enum, default_value_t = RulesFormat::Rules)]
    format: RulesFormat,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum RulesFormat {
    Rules,
    PrometheusRule,
}

#[derive(Args, Debug)]
struct CheckArgs {
    /// The SLO file (apiVersion shakedown/v1, kind SLOSet).
    #[arg(long)]
    slo: PathBuf,
    /// Prometheus base URL, e.g. http://prometheus:9090.
    #[arg(long, env = "SHAKEDOWN_PROMETHEUS", conflicts_with = "prometheus")]
    prometheus_url: Option<String>,
    /// Deprecated spelling of --prometheus-url (one release).
    #[arg(long, hide = true)]
    prometheus: Option<String>,
    /// Kafka bootstrap servers for SLOs with `source: kafka`.
    #[arg(long, env = "SHAKEDOWN_KAFKA")]
    kafka: Option<String>,
    /// kubeconfig context for SLOs with `source: kube` (default: the current context).
    #[arg(long)]
    kube_context: Option<String>,
    /// Window start: RFC 3339 or relative (now-15m). Default: --to minus the file's window.
    #[arg(long, conflicts_with = "run")]
    from: Option<String>,
    /// Window end: RFC 3339 or relative (now, now+10m). Default: now.
    #[arg(long, conflicts_with = "run")]
    to: Option<String>,
    /// When the load ended, for recovery SLIs (`after: load_end`).
    #[arg(long, conflicts_with = "run")]
    load_end: Option<String>,
    /// A run report: its window, end of load and journal are used, and client SLIs read it.
    #[arg(long)]
    run: Option<PathBuf>,
    /// Let SLOs without data pass the gate (an unreachable source still exits 3).
    #[arg(long)]
    allow_unknown: bool,
    /// Write slo.md, slo-junit.xml and slo.json into this directory.
    #[arg(long)]
    out: Option<PathBuf>,
}

pub async fn run(args: SloArgs, quiet: bool) -> Result<Exit> {
    match args.command {
        SloCommand::Check(args) => check(args, quiet).await,
        SloCommand::Rules(args) => rules(args, quiet),
    }
}

fn rules(args: RulesArgs, quiet: bool) -> Result<Exit> {
    let set = ::slo::load(&args.slo).map_err(exit::classified)?;
    let generated = ::slo::rules::generate(&set).map_err(exit::classified)?;
    for skipped in &generated.skipped {
        eprintln!("note: SLO `{}` has no rules: {}", skipped.slo, skipped.why);
    }
    let format = match args.format {
        RulesFormat::Rules => ::slo::rules::Format::Rules,
        RulesFormat::PrometheusRule => ::slo::rules::Format::PrometheusRule,
    };
    // The header names the command that makes the file again (the path as given).
    let mut origin = format!("shakedown slo rules {}", args.slo.display());
    if let RulesFormat::PrometheusRule = args.format {
        origin.push_str(" --format prometheus-rule");
    }
    let text = generated.render(format, &origin);
    match &args.out {
        Some(path) => {
            std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?;
            if !quiet {
                eprintln!(
                    "wrote {} ({} alerts: {})",
                    path.display(),
                    generated.alert_names().len(),
                    generated.alert_names().join(", ")
                );
            }
        }
        None => print!("{text}"),
    }
    Ok(Exit::Pass)
}

async fn check(args: CheckArgs, quiet: bool) -> Result<Exit> {
    let inputs = Inputs::default()
        .with("slo", args.slo.to_str())
        .with("report", args.run.as_deref().and_then(|p| p.to_str()));
    let set = ::slo::load(&args.slo).map_err(exit::classified)?;
    let report = args
        .run
        .as_ref()
        .map(|path| Report::load(path).map(|r| (Arc::new(r), path.display().to_string())))
        .transpose()
        .map_err(exit::classified)?;
    let window = match &report {
        Some((report, _)) => ::slo::Window::of_run(report, &set.defaults),
        None => ::slo::Window::from_text(
            args.from.as_deref(),
            args.to.as_deref(),
            args.load_end.as_deref(),
            &set.defaults,
        ),
    }
    .map_err(exit::classified)?;
    let prometheus = super::deprecated::renamed(
        args.prometheus_url,
        args.prometheus,
        "--prometheus",
        "--prometheus-url",
    );
    // The judged run's generator health travels with its verdicts: a gate over a run whose
    // generator could not keep up says so.
    let mut provenance = Provenance {
        target: prometheus.clone(),
        generator: report
            .as_ref()
            .and_then(|(run, _)| run.provenance.generator.clone()),
        ..inputs.provenance()
    };
    let config = ::slo::SourcesConfig {
        prometheus,
        kafka: args.kafka,
        kube_context: args.kube_context,
        report,
    };
    let outcome = evaluate(&set, window, &config, quiet).await?;
    print!("{}", ::slo::render::table(&outcome, args.allow_unknown));
    provenance.started_at = Some(outcome.from);
    provenance.ended_at = Some(outcome.to);
    provenance.add_queries(
        outcome
            .results
            .iter()
            .filter_map(|c| c.verdict.query.as_deref()),
    );
    if let Some(dir) = &args.out {
        let written = ::slo::render::write_all(dir, &outcome, args.allow_unknown, &provenance)
            .with_context(|| format!("writing the verdicts to {}", dir.display()))?;
        if !quiet {
            for path in written {
                eprintln!("wrote {}", path.display());
            }
        }
    }
    Ok(outcome.gate(args.allow_unknown).into())
}

/// Judges `set` over the window of `report` (what `run --slo` does once the load is over).
pub async fn judge(
    set: &::slo::SloSet,
    report: &Report,
    config: &::slo::SourcesConfig,
    quiet: bool,
) -> Result<::slo::CheckOutcome> {
    let window = ::slo::Window::of_run(report, &set.defaults).map_err(exit::classified)?;
    evaluate(set, window, config, quiet).await
}

async fn evaluate(
    set: &::slo::SloSet,
    window: ::slo::Window,
    config: &::slo::SourcesConfig,
    quiet: bool,
) -> Result<::slo::CheckOutcome> {
    let sources = config
        .build(&set.source_kinds())
        .await
        .map_err(exit::classified)?;
    if !quiet && !window.is_over() {
        eprintln!(
            "the window ends at {}: waiting for it (live sources sample until then)",
            window.to.to_rfc3339()
        );
    }
    Ok(::slo::check(set, &::slo::CheckContext { window, sources }).await)
}
