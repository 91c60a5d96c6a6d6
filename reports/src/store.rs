//! Reading and writing reports on disk.
//!
//! `write_all` puts every rendering of a run side by side in one directory (what CI uploads
//! as an artifact); `Report::load` reads the JSON back for `report show` / `report diff`,
//! refusing layouts newer than this build understands instead of misreading them.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::WriteError;
use crate::model::{Report, SCHEMA_VERSION};
use crate::render::all_renderers;

/// Why a report file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read report {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("report {path} is not valid report JSON (line {line}, column {column}): {message}")]
    Json {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error(
        "report {path} has schema_version {found}; this build reads versions up to {supported}"
    )]
    UnsupportedSchema {
        path: PathBuf,
        found: u64,
        supported: u32,
    },
}

impl Report {
    /// Loads a `report.json` written by [`write_all`] (or by the JSON renderer).
    pub fn load(path: impl AsRef<Path>) -> Result<Report, LoadError> {
        let path = path.as_ref();
        let text = fs::read_to_string(path).map_err(|source| LoadError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Report::from_json(&text).map_err(|error| match error {
            FromJsonError::Json(e) => LoadError::Json {
                path: path.to_path_buf(),
                line: e.line(),
                column: e.column(),
                message: e.to_string(),
            },
            FromJsonError::Schema(found) => LoadError::UnsupportedSchema {
                path: path.to_path_buf(),
                found,
                supported: SCHEMA_VERSION,
            },
        })
    }

    /// Parses report JSON, checking the schema version before the layout.
    fn from_json(text: &str) -> Result<Report, FromJsonError> {
        // Look at the version first: a newer layout would otherwise fail with a confusing
        // "missing field" error, or worse, parse into something it does not mean.
        #[derive(serde::Deserialize)]
        struct VersionOnly {
            schema_version: u64,
        }
        let version: VersionOnly = serde_json::from_str(text).map_err(FromJsonError::Json)?;
        if version.schema_version == 0 || version.schema_version > u64::from(SCHEMA_VERSION) {
            return Err(FromJsonError::Schema(version.schema_version));
        }
        serde_json::from_str(text).map_err(FromJsonError::Json)
    }
}

enum FromJsonError {
    Json(serde_json::Error),
    Schema(u64),
}

/// Renders `report` with every renderer into `dir` (created if missing) and returns the paths
/// written: `report.json`, `report.md`, `report.html`, `junit.xml`.
pub fn write_all(dir: &Path, report: &Report) -> Result<Vec<PathBuf>, WriteError> {
    fs::create_dir_all(dir).map_err(|source| WriteError::CreateDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut written = Vec::new();
    for renderer in all_renderers() {
        let path = dir.join(renderer.file_name());
        let text = renderer
            .render(report)
            .map_err(|source| WriteError::Render {
                file: renderer.file_name(),
                source,
            })?;
        fs::write(&path, text).map_err(|source| WriteError::Write {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}

/// The name of the link, beside a run's directory, that always points at the newest run.
pub const LATEST: &str = "latest";

/// Points `OUT/latest` at `run_dir` (a directory inside `OUT`), so scripts and CI steps name
/// the newest run by a stable path (`reports/runs/latest/report.json`) however many runs the
/// folder holds. The link is relative (the folder can be moved or archived) and replaced
/// atomically: a reader never sees it missing.
pub fn mark_latest(run_dir: &Path) -> Result<PathBuf, WriteError> {
    let parent = run_dir.parent().ok_or_else(|| WriteError::NoParent {
        path: run_dir.to_path_buf(),
    })?;
    let name = run_dir.file_name().ok_or_else(|| WriteError::NoName {
        path: run_dir.to_path_buf(),
    })?;
    let link = parent.join(LATEST);
    let staged = parent.join(format!(".{LATEST}.{}", std::process::id()));
    let _ = fs::remove_file(&staged);
    std::os::unix::fs::symlink(name, &staged).map_err(|source| WriteError::Link {
        path: staged.clone(),
        source,
    })?;
    fs::rename(&staged, &link).map_err(|source| WriteError::ReplaceLink {
        path: link.clone(),
        source,
    })?;
    Ok(link)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::sample_report;
    use crate::model::{SloStatus, Verdict};

    #[test]
    fn latest_follows_the_newest_run() {
        let dir = tempfile::tempdir().unwrap();
        let report = sample_report();
        for run in ["a", "b"] {
            let run_dir = dir.path().join(run);
            write_all(&run_dir, &report).unwrap();
            let link = mark_latest(&run_dir).unwrap();
            assert_eq!(fs::read_link(&link).unwrap(), Path::new(run));
            assert!(link.join("report.json").is_file());
        }
        let entries: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(entries.len(), 3, "no staging link left behind: {entries:?}");
    }

    #[test]
    fn write_all_then_load_gives_the_same_report() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("runs/1");
        let report = sample_report();
        let written = write_all(&out, &report).unwrap();
        let names: Vec<_> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
            .collect();
        assert_eq!(
            names,
            ["report.json", "report.md", "report.html", "junit.xml"]
        );
        assert!(written.iter().all(|p| p.metadata().unwrap().len() > 0));
        assert_eq!(Report::load(out.join("report.json")).unwrap(), report);
    }

    #[test]
    fn load_refuses_a_newer_schema_and_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        let mut value = serde_json::to_value(sample_report()).unwrap();
        value["schema_version"] = serde_json::json!(99);
        fs::write(&path, value.to_string()).unwrap();
        let error = Report::load(&path).unwrap_err();
        assert!(matches!(
            error,
            LoadError::UnsupportedSchema { found: 99, .. }
        ));
        assert!(error.to_string().contains("report.json"));
    }

    #[test]
    fn load_reports_where_the_json_is_broken() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        fs::write(&path, "{\n  \"schema_version\": 1,\n  oops\n}").unwrap();
        match Report::load(&path).unwrap_err() {
            LoadError::Json { line, .. } => assert_eq!(line, 3),
            other => panic!("unexpected {other}"),
        }
        assert!(matches!(
            Report::load(dir.path().join("missing.json")),
            Err(LoadError::Io { .. })
        ));
    }

    #[test]
    fn counts_are_consistent_and_tampering_is_caught() {
        let mut report = sample_report();
        assert_eq!(report.consistency_problems(), Vec::<String>::new());
        let sum_series: u64 = report.timeseries.iter().map(|s| s.requests).sum();
        let sum_transactions: u64 = report.transactions.iter().map(|t| t.requests).sum();
        assert_eq!(report.totals.requests, sum_series);
        assert_eq!(report.totals.requests, sum_transactions);

        report.timeseries[3].requests += 1;
        let problems = report.consistency_problems();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("time series"));
    }

    #[test]
    fn verdict_fails_on_partial_runs_failed_thresholds_and_failed_slos_only() {
        let mut report = sample_report();
        assert_eq!(report.verdict, Verdict::Pass);

        report.slos[0].status = SloStatus::Warn;
        report.recompute_verdict();
        assert_eq!(report.verdict, Verdict::Pass);
        report.slos[0].status = SloStatus::Unknown;
        report.recompute_verdict();
        assert_eq!(report.verdict, Verdict::Pass);

        report.slos[0].status = SloStatus::Fail;
        report.recompute_verdict();
        assert_eq!(report.verdict, Verdict::Fail);
        assert!(report.failure_reasons()[0].contains("checkout-availability"));

        let mut partial = sample_report();
        partial.partial = true;
        partial.partial_reason = Some("interrupted".into());
        partial.recompute_verdict();
        assert_eq!(partial.verdict, Verdict::Fail);

        let mut threshold = sample_report();
        threshold.thresholds[1].status = Verdict::Fail;
        threshold.recompute_verdict();
        assert_eq!(threshold.verdict, Verdict::Fail);
    }
}
