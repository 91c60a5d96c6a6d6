//! `shakedown report show|diff|merge`: read run reports back — print one as Markdown, compare a
//! run with a baseline and fail (exit 1) on a regression beyond the allowed bound, or merge the
//! reports of distributed workers into one report that reads like a single run.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};
use reports::{Renderer as _, Report, diff, render::MarkdownRenderer};

use super::provenance::Inputs;
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
    /// every SLO; exit 1 on a regression: a change beyond --max-regression that a bootstrap of
    /// both runs' histograms and counts finds significant at --alpha. Runs of different
    /// scenarios, profiles or load models are refused (exit 2) unless --force.
    Diff {
        /// The new run's report.json.
        new: PathBuf,
        /// The baseline run's report.json.
        base: PathBuf,
        /// Allowed change in the bad direction, a percentage: 10%.
        #[arg(long, default_value = "10%")]
        max_regression: String,
        /// Significance level a latency or error-rate change must reach to count as a
        /// regression (one-sided p-value below it); 1 judges by --max-regression alone.
        #[arg(long, default_value_t = diff::DEFAULT_ALPHA, value_parser = parse_alpha)]
        alpha: f64,
        /// Compare runs of different scenarios, profiles or load models anyway (with a warning
        /// on stderr and in the output).
        #[arg(long)]
        force: bool,
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
            alpha,
            force,
        } => {
            let bound = diff::parse_bound(&max_regression)
                .map_err(|e| exit::usage(format!("--max-regression: {e}")))?;
            let (current, baseline) = (load(&new)?, load(&base)?);
            let mismatches = diff::mismatches(&current, &baseline);
            if !mismatches.is_empty() {
                let what = format!(
                    "{} and {} are not runs of the same load: {}",
                    new.display(),
                    base.display(),
                    mismatches.join("; ")
                );
                if !force {
                    return Err(exit::usage(format!(
                        "{what}. Compare runs of one scenario, profile and load model, or pass \
                         --force to compare them anyway"
                    )));
                }
                eprintln!("WARNING: {what}; comparing anyway (--force)");
            }
            let mut comparison = diff::diff(&current, &baseline, bound, alpha);
            comparison.warnings = mismatches;
            print!("{}", comparison.to_markdown());
            Ok(exit::passed(!comparison.has_regressions()))
        }
        ReportCommand::Merge { out, reports } => {
            refuse_same_file_twice(&reports)?;
            let loaded = reports.iter().map(load).collect::<Result<Vec<_>>>()?;
            let mut merged = reports::merge(&loaded).map_err(|e| {
                let files = [e.index(), e.other_index()]
                    .into_iter()
                    .flatten()
                    .map(|i| reports[i].display().to_string())
                    .collect::<Vec<_>>();
                match files.as_slice() {
                    [] => exit::usage(e.to_string()),
                    [file] => exit::usage(format!("{file}: {e}")),
                    [file, other, ..] => exit::usage(format!("{file} (against {other}): {e}")),
                }
            })?;
            reports
                .iter()
                .fold(Inputs::default(), |inputs, path| {
                    inputs.with("report", path.to_str())
                })
                .stamp(&mut merged);
            super::run::write(&out, &merged, false)?;
            Ok(merged.verdict.into())
        }
    }
}

/// A significance level: a probability above 0, at most 1.
fn parse_alpha(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(alpha) if alpha > 0.0 && alpha <= 1.0 => Ok(alpha),
        _ => Err(format!(
            "`{text}` is not a significance level: a number above 0 and at most 1, like 0.01"
        )),
    }
}

/// The same worker report given twice (under any spelling of its path) would count its
/// requests twice.
fn refuse_same_file_twice(paths: &[PathBuf]) -> Result<()> {
    let mut seen: Vec<(PathBuf, &PathBuf)> = Vec::new();
    for path in paths {
        // A missing file is reported by `load`, with its own message.
        let Ok(canonical) = std::fs::canonicalize(path) else {
            continue;
        };
        if let Some((_, first)) = seen.iter().find(|(c, _)| *c == canonical) {
            return Err(exit::usage(format!(
                "{} and {} are the same file: each worker's report counts once",
                first.display(),
                path.display()
            )));
        }
        seen.push((canonical, path));
    }
    Ok(())
}

fn load(path: &PathBuf) -> Result<Report> {
    Report::load(path).map_err(exit::classified)
}
