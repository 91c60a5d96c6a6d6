//! `shakedown report show|diff|merge`: read run reports back — print one as Markdown, compare a
//! run with a baseline and fail (exit 1) on a regression beyond the allowed bound, or merge the
//! reports of distributed workers into one report that reads like a single run.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};
use reports::{Renderer as _, Report, Verdict, diff, render::MarkdownRenderer};

use super::{Exit, exit};

#[derive(Args, Debug)]
pub struct ReportArgs {
    #[command(subcommand)]
    command: ReportCommand,
}

#[derive(Subcommand, Debug)]
enum ReportCommand {
    /// Print a report as Markdown (what a CI job summary shows).
    Show {
        /// A report.json written by a run.
        report: PathBuf,
    },
    /// Compare a run with a baseline: p95/p99 and error rate (overall and per transaction) and
    /// every SLO; exit 1 on a regression beyond --max-regression.
    Diff {
        /// The new run's report.json.
        new: PathBuf,
        /// The baseline run's report.json.
        base: PathBuf,
        /// Allowed change in the bad direction: a percentage (10%) or a fraction (0.1).
        #[arg(long, default_value = "10%")]
        max_regression: String,
    },
    /// Merge the reports of the workers of one distributed run (`run --workers N
    /// --worker-index I`) into one report: counts summed, histograms merged, percentiles,
    /// thresholds and verdict recomputed. Exit 1 when the merged verdict fails, 2 when an input
    /// is missing, unreadable or not a share of the same run.
    Merge {
        /// Directory for the merged report.json, report.md, report.html and junit.xml.
        #[arg(long)]
        out: PathBuf,
        /// The workers' report.json files.
        #[arg(required = true)]
        reports: Vec<PathBuf>,
    },
}

pub fn run(args: ReportArgs) -> Result<Exit> {
    match args.command {
        ReportCommand::Show { report } => {
            let report = load(&report)?;
            print!("{}", MarkdownRenderer.render(&report)?);
            Ok(Exit::Pass)
        }
        ReportCommand::Diff {
            new,
            base,
            max_regression,
        } => {
            let bound = diff::parse_bound(&max_regression)
                .map_err(|e| exit::usage(format!("--max-regression: {e}")))?;
            let comparison = diff::diff(&load(&new)?, &load(&base)?, bound);
            print!("{}", comparison.to_markdown());
            Ok(if comparison.has_regressions() {
                Exit::Failed
            } else {
                Exit::Pass
            })
        }
        ReportCommand::Merge { out, reports } => {
            let loaded = reports.iter().map(load).collect::<Result<Vec<_>>>()?;
            let merged = reports::merge(&loaded).map_err(|e| match e.index() {
                Some(i) => exit::usage(format!("{}: {e}", reports[i].display())),
                None => exit::usage(e.to_string()),
            })?;
            super::run::write(&out, &merged, false)?;
            Ok(match merged.verdict {
                Verdict::Pass => Exit::Pass,
                Verdict::Fail => Exit::Failed,
            })
        }
    }
}

fn load(path: &PathBuf) -> Result<Report> {
    Report::load(path).map_err(|e| exit::usage(e.to_string()))
}
