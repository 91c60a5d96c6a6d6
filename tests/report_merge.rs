//! `shakedown report merge` through the real binary: worker reports written as JSON files are
//! merged into one report directory; exit codes, what is printed, and the merged numbers
//! (percentiles of all values together, counts that add up, a wall-clock time series).

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use chrono::{DateTime, Duration, TimeZone, Utc};
use common::cli::{code, run as shakedown, text};
use reports::{LatencyHistogram, Report, Verdict};
use slo::testing::report::{TransactionSpec, run_report, spread};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 5, 6, 7, 8, 9).unwrap()
}

fn write_report(dir: &Path, name: &str, report: &Report) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(report).unwrap()).unwrap();
    path
}

fn merge(out: &Path, inputs: &[&Path]) -> Output {
    let mut args = vec!["report", "merge", "--out", out.to_str().unwrap()];
    args.extend(inputs.iter().map(|p| p.to_str().unwrap()));
    shakedown(&args)
}

/// Two workers 2 s apart: a fast one and one with slow checkouts and a few errors.
fn workers() -> (Report, Report, Vec<u64>) {
    let browse_a = spread(300, 10_000, 60_000);
    let browse_b = spread(100, 20_000, 80_000);
    let checkout_b = spread(50, 200_000, 450_000);
    let a = run_report(
        t0(),
        10,
        &[TransactionSpec::new("browse", browse_a.clone(), 0)],
    );
    let b = run_report(
        t0() + Duration::seconds(2),
        10,
        &[
            TransactionSpec::new("browse", browse_b.clone(), 0),
            TransactionSpec::new("checkout", checkout_b.clone(), 5),
        ],
    );
    let all = [browse_a, browse_b, checkout_b].concat();
    (a, b, all)
}

#[test]
fn merges_worker_reports_into_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, all) = workers();
    let a_path = write_report(dir.path(), "a.json", &a);
    let b_path = write_report(dir.path(), "b.json", &b);
    let out = dir.path().join("merged");

    let output = merge(&out, &[&a_path, &b_path]);
    let stdout = text(&output.stdout);
    assert_eq!(code(&output), 0, "{stdout}\n{}", text(&output.stderr));
    assert!(
        stdout.contains(&format!("report: {}", out.join("report.html").display())),
        "{stdout}"
    );
    assert!(stdout.contains("verdict: PASS"), "{stdout}");
    for file in ["report.json", "report.md", "report.html", "junit.xml"] {
        assert!(out.join(file).is_file(), "{file} written");
    }

    let merged = Report::load(out.join("report.json")).unwrap();
    assert_eq!(merged.consistency_problems(), Vec::<String>::new());
    assert_eq!(merged.run_id, format!("merged-{}", a.run_id));
    assert_eq!(merged.totals.requests, 450);
    assert_eq!(merged.totals.errors, 5);
    let total = merged.totals.requests;
    let sums = (
        merged.timeseries.iter().map(|s| s.requests).sum::<u64>(),
        merged.transactions.iter().map(|t| t.requests).sum::<u64>(),
        merged
            .status_classes
            .iter()
            .map(|c| c.requests)
            .sum::<u64>(),
    );
    assert_eq!(sums, (total, total, total));

    let mut union = LatencyHistogram::fine();
    for micros in &all {
        union.record_micros(*micros);
    }
    let expected = union.stats().unwrap();
    let latency = merged.totals.latency.unwrap();
    assert_eq!(latency.p50_ms, expected.p50_ms);
    assert_eq!(latency.p99_ms, expected.p99_ms);
    assert_eq!(merged.thresholds[0].measured, Some(expected.p95_ms));

    assert_eq!(merged.started_at, a.started_at);
    assert_eq!(merged.ended_at, b.ended_at);
    assert_eq!(merged.actual_duration_s, 12.0);
    assert_eq!(merged.totals.rps, 37.5);
    let series: Vec<u64> = merged.timeseries.iter().map(|s| s.requests).collect();
    // a: 30 requests a second over 0..10; b: 15 a second over 2..12 (its own 0..10).
    assert_eq!(series, [30, 30, 45, 45, 45, 45, 45, 45, 45, 45, 15, 15]);
    let names: Vec<&str> = merged
        .transactions
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(names, ["browse", "checkout"]);
    assert!(
        merged
            .profile
            .description
            .as_deref()
            .unwrap()
            .contains("merged from 2 workers")
    );
    assert_eq!(merged.verdict, Verdict::Pass);
}

#[test]
fn a_failing_merged_verdict_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let (a, _, _) = workers();
    let slow = run_report(
        t0(),
        10,
        &[TransactionSpec::new(
            "browse",
            spread(300, 700_000, 900_000),
            0,
        )],
    );
    let mut slow = slow;
    slow.run_id = "slow".into();
    let a_path = write_report(dir.path(), "a.json", &a);
    let slow_path = write_report(dir.path(), "slow.json", &slow);
    let out = dir.path().join("merged");
    let output = merge(&out, &[&a_path, &slow_path]);
    let stdout = text(&output.stdout);
    assert_eq!(code(&output), 1, "{stdout}\n{}", text(&output.stderr));
    assert!(stdout.contains("verdict: FAIL"), "{stdout}");
    assert!(stdout.contains("threshold failed: p95<500ms"), "{stdout}");
    let merged = Report::load(out.join("report.json")).unwrap();
    assert_eq!(merged.verdict, Verdict::Fail);
}

#[test]
fn missing_or_incompatible_inputs_exit_2_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, _) = workers();
    let a_path = write_report(dir.path(), "a.json", &a);
    let out = dir.path().join("merged");

    let missing = dir.path().join("worker-7.json");
    let output = merge(&out, &[&a_path, &missing]);
    let stderr = text(&output.stderr);
    assert_eq!(code(&output), 2, "{stderr}");
    assert!(stderr.contains("worker-7.json"), "{stderr}");

    let mut other = b;
    other.scenario = "checkout".into();
    let other_path = write_report(dir.path(), "other-scenario.json", &other);
    let output = merge(&out, &[&a_path, &other_path]);
    let stderr = text(&output.stderr);
    assert_eq!(code(&output), 2, "{stderr}");
    assert!(stderr.contains("other-scenario.json"), "{stderr}");
    assert!(stderr.contains("scenario"), "{stderr}");
    assert!(!out.exists(), "nothing written when the inputs are refused");

    let output = shakedown(&["report", "merge", "--out", out.to_str().unwrap()]);
    assert_eq!(code(&output), 2, "at least one report is required");
}

#[test]
fn the_same_worker_twice_exits_2_naming_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, _) = workers();
    let a_path = write_report(dir.path(), "a.json", &a);
    let b_path = write_report(dir.path(), "b.json", &b);
    let out = dir.path().join("merged");

    // The same file twice, even spelled differently: 80 requests from 40 is a lie.
    let dotted = dir.path().join(".").join("a.json");
    let output = merge(&out, &[&a_path, &b_path, &dotted]);
    let stderr = text(&output.stderr);
    assert_eq!(code(&output), 2, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{} and {} are the same file",
            a_path.display(),
            dotted.display()
        )),
        "{stderr}"
    );

    // A copy of a report under another name: the same run_id.
    let copy = write_report(dir.path(), "copy-of-a.json", &a);
    let output = merge(&out, &[&a_path, &b_path, &copy]);
    let stderr = text(&output.stderr);
    assert_eq!(code(&output), 2, "{stderr}");
    assert!(stderr.contains("copy-of-a.json"), "{stderr}");
    assert!(stderr.contains("a.json"), "{stderr}");
    assert!(
        stderr.contains(&format!("run_id {} appears twice", a.run_id)),
        "{stderr}"
    );

    // Two runs of the same worker index of one distributed run.
    let share = |report: &Report, run_id: &str, index: u32| {
        let mut report = report.clone();
        report.run_id = run_id.into();
        report.profile.worker = Some(reports::WorkerShare { index, workers: 2 });
        report
    };
    let first = write_report(dir.path(), "w0.json", &share(&a, "w0", 0));
    let again = write_report(dir.path(), "w0-rerun.json", &share(&b, "w0-rerun", 0));
    let output = merge(&out, &[&first, &again]);
    let stderr = text(&output.stderr);
    assert_eq!(code(&output), 2, "{stderr}");
    assert!(
        stderr.contains("w0-rerun.json (against") && stderr.contains("w0.json)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("worker 1 of 2 ran in two reports"),
        "{stderr}"
    );
    assert!(!out.exists(), "nothing written when the inputs are refused");

    // The two shares merge into the whole profile, named as such.
    let second = write_report(dir.path(), "w1.json", &share(&b, "w1", 1));
    let output = merge(&out, &[&first, &second]);
    assert_eq!(code(&output), 0, "{}", text(&output.stderr));
    let merged = Report::load(out.join("report.json")).unwrap();
    assert_eq!(merged.profile.name, a.profile.name);
    assert_eq!(merged.profile.merged_workers, Some(2));
    assert_eq!(merged.profile.worker, None);
}

#[test]
fn reports_of_different_profiles_exit_2_saying_what_differs() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, _) = workers();
    let a_path = write_report(dir.path(), "a.json", &a);
    let mut other = b;
    other.profile.name = "k6-baseline".into();
    let other_path = write_report(dir.path(), "other-profile.json", &other);
    let output = merge(&dir.path().join("merged"), &[&a_path, &other_path]);
    let stderr = text(&output.stderr);
    assert_eq!(code(&output), 2, "{stderr}");
    assert!(stderr.contains("other-profile.json"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "profile `k6-baseline` differs from `{}`",
            a.profile.name
        )),
        "{stderr}"
    );
}
