//! The SLO gate of commands that generate load (`run`, `capacity`): the `--slo` flags, and judging
//! a finished run's window with them. One place, so every load command reads SLOs the same way.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use reports::Report;
use shop::stack::Stack;

use super::{Exit, exit};

/// Prometheus scrapes the embedded stack every second: give it time to see the last second of a run.
const LAST_SCRAPE: Duration = Duration::from_secs(3);

/// Waits until Prometheus has scraped what happened up to `end` (at most a minute, as a clock
/// that jumped must not hang the command), and no longer than what is left of that time.
pub async fn until_scraped(end: chrono::DateTime<chrono::Utc>) {
    let scraped = end + chrono::Duration::from_std(LAST_SCRAPE).unwrap_or_default();
    if let Ok(wait) = (scraped - chrono::Utc::now()).to_std() {
        tokio::time::sleep(wait.min(Duration::from_secs(60))).await;
    }
}

#[derive(Args, Debug, Clone)]
pub struct SloArgs {
    /// Also judge this SLO file over the run's window and put the verdicts in the report.
    #[arg(long)]
    pub slo: Option<PathBuf>,
    /// Prometheus for `--slo` (default: the embedded stack's, when it runs one).
    #[arg(long, env = "SHAKEDOWN_PROMETHEUS")]
    pub prometheus_url: Option<String>,
    /// Kafka bootstrap servers for `--slo` (default: the embedded stack's mock cluster).
    #[arg(long, env = "SHAKEDOWN_KAFKA")]
    pub kafka: Option<String>,
    /// kubeconfig context for SLOs with `source: kube`.
    #[arg(long)]
    pub kube_context: Option<String>,
    /// Let SLOs without data pass.
    #[arg(long)]
    pub allow_unknown: bool,
}

/// A loaded SLO file and where to measure it.
pub struct SloGate {
    set: ::slo::SloSet,
    args: SloArgs,
}

impl SloGate {
    /// The gate of `--slo`, if given; a malformed file is a usage error naming file, line and field.
    pub fn load(args: &SloArgs) -> Result<Option<SloGate>> {
        let Some(path) = &args.slo else {
            return Ok(None);
        };
        let set = ::slo::load(path).map_err(exit::classified)?;
        Ok(Some(SloGate {
            set,
            args: args.clone(),
        }))
    }

    /// Where the SLOs are measured: the flags, else the embedded stack's own backends.
    fn sources(&self, stack: Option<&Stack>) -> ::slo::SourcesConfig {
        ::slo::SourcesConfig {
            prometheus: self
                .args
                .prometheus_url
                .clone()
                .or_else(|| stack?.prometheus_url().map(str::to_string)),
            kafka: self
                .args
                .kafka
                .clone()
                .or_else(|| Some(stack?.kafka().bootstrap_servers().to_string())),
            kube_context: self.args.kube_context.clone(),
            report: None,
        }
    }

    /// Before any load: every source the SLO file needs is configured and answers, and
    /// Prometheus accepts every query (exit 2 for configuration, 3 for an unreachable source).
    pub async fn preflight(&self, stack: Option<&Stack>) -> Result<()> {
        ::slo::sources::require(&self.set, &self.sources(stack))
            .await
            .map_err(exit::classified)
    }

    /// Judges the run's window, prints the verdict table and attaches the verdicts to `report`
    /// (which recomputes its verdict). Returns the exit code the gate itself demands beyond pass
    /// or fail: 3 when a source was unreachable, 2 when an SLO was rejected by its source.
    pub async fn judge(
        &self,
        report: &mut Report,
        stack: Option<&Stack>,
        quiet: bool,
    ) -> Option<Exit> {
        if stack.is_some_and(|s| s.prometheus_url().is_some()) {
            until_scraped(report.ended_at).await;
        }
        let sources = ::slo::SourcesConfig {
            report: Some((Arc::new(report.clone()), "this run".to_string())),
            ..self.sources(stack)
        };
        let allow_unknown = self.args.allow_unknown;
        match super::slo::judge(&self.set, report, &sources, quiet).await {
            Ok(outcome) => {
                print!("{}", ::slo::render::table(&outcome, allow_unknown));
                ::slo::attach(report, &outcome, allow_unknown);
                match outcome.gate(allow_unknown) {
                    gate @ (::slo::Gate::Unreachable | ::slo::Gate::Invalid) => Some(gate.into()),
                    ::slo::Gate::Failed | ::slo::Gate::Pass => None,
                }
            }
            Err(error) => {
                eprintln!("error: judging the SLOs: {error:#}");
                Some(exit::classify(&error))
            }
        }
    }
}
