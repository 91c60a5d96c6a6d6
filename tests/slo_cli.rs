//! `shakedown slo check` and `shakedown report show|diff` through the real binary: exit codes,
//! what is printed and what is written. Gates are checked against a real Prometheus holding the
//! known-answer dataset of `slo::testing::dataset` (skipped with a message when Prometheus is
//! not installed).

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use chrono::{TimeZone, Utc};
use common::cli::{code, run as shakedown, text};
use slo::testing::dataset::{self, FROM, TO};
use slo::testing::report::{TransactionSpec, run_report, spread};

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

fn slo_file(dir: &Path, slos: &str) -> PathBuf {
    write(
        dir,
        "slos.yaml",
        &format!("apiVersion: shakedown/v1\nkind: SLOSet\nmetadata: {{name: ci}}\nslos:\n{slos}"),
    )
}

fn latency_slo(service: &str) -> String {
    format!(
        "  - name: {service}-p95\n    sli: {{latency: {{quantile: 0.95, selector: 'service=\"{service}\"'}}}}\n    objective: {{lt: 500ms, warn: 400ms}}\n"
    )
}

/// `slo check` over the dataset's window against the shared Prometheus; `None` to skip.
fn check_dataset(slo: &Path, extra: &[&str]) -> Option<Output> {
    let prometheus = dataset::prometheus()?;
    let (from, to) = (dataset::at(FROM).to_rfc3339(), dataset::at(TO).to_rfc3339());
    let mut args = vec![
        "slo",
        "check",
        "--slo",
        slo.to_str().unwrap(),
        "--prometheus-url",
        prometheus.url(),
        "--from",
        &from,
        "--to",
        &to,
    ];
    args.extend_from_slice(extra);
    Some(shakedown(&args))
}

#[test]
fn a_malformed_slo_file_exits_2_naming_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let file = slo_file(
        dir.path(),
        "  - name: p95\n    sli: {latency: {quantile: 0.95}}\n    objective: {lt: 500ms, warn: 600ms}\n",
    );
    let output = shakedown(&["slo", "check", "--slo", file.to_str().unwrap()]);
    assert_eq!(code(&output), 2, "{output:?}");
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!("{}:7:", file.display())),
        "{stderr}"
    );
    assert!(stderr.contains("field `slos[0].objective`"), "{stderr}");
    assert!(stderr.contains("passing side"), "{stderr}");
}

#[test]
fn bad_flags_and_missing_files_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.yaml");
    let output = shakedown(&["slo", "check", "--slo", missing.to_str().unwrap()]);
    assert_eq!(code(&output), 2);
    assert!(text(&output.stderr).contains("missing.yaml"));

    let file = slo_file(dir.path(), &latency_slo("gateway-fast"));
    let output = shakedown(&[
        "slo",
        "check",
        "--slo",
        file.to_str().unwrap(),
        "--from",
        "yesterday",
    ]);
    assert_eq!(code(&output), 2);
    assert!(text(&output.stderr).contains("`yesterday` is not a time"));

    // An SLO needing Prometheus without --prometheus-url: a usage error, and the table says why.
    let output = shakedown(&["slo", "check", "--slo", file.to_str().unwrap()]);
    assert_eq!(code(&output), 2, "{output:?}");
    assert!(text(&output.stdout).contains("pass --prometheus-url URL"));

    // Both spellings of the Prometheus URL at once.
    let output = shakedown(&[
        "slo",
        "check",
        "--slo",
        file.to_str().unwrap(),
        "--prometheus-url",
        "http://127.0.0.1:9",
        "--prometheus",
        "http://127.0.0.1:9",
    ]);
    assert_eq!(code(&output), 2, "{output:?}");
    assert!(
        text(&output.stderr).contains("cannot be used with"),
        "{output:?}"
    );
}

#[test]
fn an_unreachable_prometheus_exits_3_with_unknown_verdicts() {
    let dir = tempfile::tempdir().unwrap();
    let file = slo_file(dir.path(), &latency_slo("gateway-fast"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let out = dir.path().join("out");
    // The deprecated spelling still works for one release, and says so on stderr.
    let output = shakedown(&[
        "slo",
        "check",
        "--slo",
        file.to_str().unwrap(),
        "--prometheus",
        &url,
        "--from",
        "now-15m",
        "--to",
        "now",
        "--allow-unknown",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code(&output), 3, "{output:?}");
    assert!(
        text(&output.stderr).contains(
            "warning: --prometheus is deprecated and will be removed in the next release: use --prometheus-url"
        ),
        "{output:?}"
    );
    let stdout = text(&output.stdout);
    assert!(stdout.contains("unknown"), "{stdout}");
    assert!(stdout.contains("unreachable: "), "{stdout}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("slo.json")).unwrap()).unwrap();
    assert_eq!(json["gate"], "unreachable");
    assert_eq!(json["results"][0]["status"], "unknown");
    assert_eq!(json["results"][0]["problem"], "unreachable");
    assert!(json["results"][0]["measured"].is_null());
}

#[test]
fn a_passing_gate_exits_0_and_writes_markdown_junit_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let file = slo_file(
        dir.path(),
        &format!(
            "{}  - name: errors\n    sli: {{error_ratio: {{selector: 'service=\"orders-ok\"'}}}}\n    objective: {{lt: 1%}}\n",
            latency_slo("gateway-fast")
        ),
    );
    let out = dir.path().join("verdicts");
    let Some(output) = check_dataset(&file, &["--out", out.to_str().unwrap()]) else {
        return;
    };
    assert_eq!(code(&output), 0, "{output:?}");
    let stdout = text(&output.stdout);
    assert!(stdout.contains("212.5 ms"), "{stdout}");
    assert!(stdout.contains("0.20 %"), "{stdout}");
    assert!(stdout.contains("SLO gate PASS: 2 pass"), "{stdout}");

    let markdown = std::fs::read_to_string(out.join("slo.md")).unwrap();
    assert!(
        markdown.contains("| gateway-fast-p95 | ✅ pass | 212.5 ms |"),
        "{markdown}"
    );
    assert!(markdown.contains("histogram_quantile(0.95"), "{markdown}");
    let junit = std::fs::read_to_string(out.join("slo-junit.xml")).unwrap();
    assert!(
        junit.contains("tests=\"2\"") && junit.contains("failures=\"0\""),
        "{junit}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("slo.json")).unwrap()).unwrap();
    assert_eq!(json["gate"], "pass");
    assert_eq!(json["results"][1]["measured"], 0.002);
    assert_eq!(
        json["results"][1]["from"],
        dataset::at(FROM).to_rfc3339().replace("+00:00", "Z")
    );
}

#[test]
fn a_failing_slo_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let file = slo_file(
        dir.path(),
        &format!(
            "{}{}",
            latency_slo("gateway-fast"),
            latency_slo("gateway-slow")
        ),
    );
    let out = dir.path().join("verdicts");
    let Some(output) = check_dataset(&file, &["--out", out.to_str().unwrap()]) else {
        return;
    };
    assert_eq!(code(&output), 1, "{output:?}");
    let stdout = text(&output.stdout);
    assert!(stdout.contains("875.0 ms"), "{stdout}");
    assert!(
        stdout.contains("SLO gate FAILED: 1 pass, 0 warn, 1 fail"),
        "{stdout}"
    );
    let junit = std::fs::read_to_string(out.join("slo-junit.xml")).unwrap();
    assert!(junit.contains("failures=\"1\""), "{junit}");
}

#[test]
fn unknown_fails_the_gate_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let file = slo_file(
        dir.path(),
        &format!("{}{}", latency_slo("gateway-fast"), latency_slo("ghost")),
    );
    let Some(strict) = check_dataset(&file, &[]) else {
        return;
    };
    assert_eq!(code(&strict), 1, "{strict:?}");
    assert!(text(&strict.stdout).contains("no data: the query matched no series"));
    let lenient = check_dataset(&file, &["--allow-unknown"]).unwrap();
    assert_eq!(code(&lenient), 0, "{lenient:?}");
}

#[test]
fn an_unreachable_kubernetes_api_exits_3_over_https() {
    // Building an https kube client next to reqwest's TLS must not panic over the crypto
    // provider (see NOTES.md); an API server that refuses connections is "unreachable".
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let kubeconfig = write(
        dir.path(),
        "kubeconfig",
        &format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster: {{server: 'https://127.0.0.1:{port}', insecure-skip-tls-verify: true}}\nusers:\n- name: test\n  user: {{token: test}}\ncontexts:\n- name: test\n  context: {{cluster: test, user: test}}\ncurrent-context: test\n"
        ),
    );
    let file = slo_file(
        dir.path(),
        "  - name: settled\n    sli: {hpa: {namespace: ecommerce, name: order, measure: end_gap}}\n    objective: {lte: 0}\n    source: kube\n",
    );
    let output = common::cli::shakedown()
        .args([
            "slo",
            "check",
            "--slo",
            file.to_str().unwrap(),
            "--kube-context",
            "test",
        ])
        .args(["--from", "now-10m", "--to", "now"])
        .env("KUBECONFIG", &kubeconfig)
        .output()
        .unwrap();
    assert_eq!(code(&output), 3, "{output:?}");
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("unreachable: reading HPA ecommerce/order"),
        "{stdout}"
    );
}

fn write_report(dir: &Path, name: &str, place_order_us: (u64, u64), errors: u64) -> PathBuf {
    let report = run_report(
        Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap(),
        20,
        &[
            TransactionSpec::new("browse", spread(100, 10_000, 109_000), 0),
            TransactionSpec::new(
                "place_order",
                spread(100, place_order_us.0, place_order_us.1),
                errors,
            ),
        ],
    );
    write(dir, name, &serde_json::to_string(&report).unwrap())
}

#[test]
fn report_diff_exits_1_on_a_regression_beyond_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let base = write_report(dir.path(), "base.json", (100_000, 199_000), 1);
    let same = write_report(dir.path(), "same.json", (100_000, 199_000), 1);
    let slower = write_report(dir.path(), "slower.json", (100_000, 299_000), 1);
    let (base, same, slower) = (
        base.to_str().unwrap(),
        same.to_str().unwrap(),
        slower.to_str().unwrap(),
    );

    let output = shakedown(&["report", "diff", same, base, "--max-regression", "10%"]);
    assert_eq!(code(&output), 0, "{output:?}");
    assert!(text(&output.stdout).contains("No regression beyond the allowed 10.0 %"));

    let output = shakedown(&["report", "diff", slower, base, "--max-regression", "10%"]);
    assert_eq!(code(&output), 1, "{output:?}");
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("| transaction place_order | p95 |"),
        "{stdout}"
    );
    assert!(stdout.contains("❌ regression"), "{stdout}");

    // A generous bound lets the same change through.
    let output = shakedown(&["report", "diff", slower, base, "--max-regression", "100%"]);
    assert_eq!(code(&output), 0, "{output:?}");

    let output = shakedown(&["report", "diff", slower, base, "--max-regression", "lots"]);
    assert_eq!(code(&output), 2);
}

#[test]
fn report_diff_counts_only_significant_changes_and_says_how_sure_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let base = write_report(dir.path(), "base.json", (100_000, 199_000), 0);
    // 100 requests of place_order, 2 failed against none: +100 % of the floored error rate,
    // within the noise of 100 requests.
    let noisy = write_report(dir.path(), "noisy.json", (100_000, 199_000), 2);
    let (base, noisy) = (base.to_str().unwrap(), noisy.to_str().unwrap());

    let output = shakedown(&["report", "diff", noisy, base]);
    assert_eq!(code(&output), 0, "{output:?}");
    let stdout = text(&output.stdout);
    assert!(stdout.contains("| Significance |"), "{stdout}");
    assert!(stdout.contains("(significant at α = 0.01)"), "{stdout}");
    // The old rule, the bound alone, fails it.
    let output = shakedown(&["report", "diff", noisy, base, "--alpha", "1"]);
    assert_eq!(code(&output), 1, "{output:?}");
    assert!(text(&output.stdout).contains("(no significance test)"));

    for bad in ["0", "1.5", "five"] {
        let output = shakedown(&["report", "diff", noisy, base, "--alpha", bad]);
        assert_eq!(code(&output), 2, "--alpha {bad}: {output:?}");
        assert!(
            text(&output.stderr).contains("is not a significance level"),
            "{output:?}"
        );
    }
}

#[test]
fn report_show_prints_markdown_and_slo_check_reads_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let run = write_report(dir.path(), "report.json", (100_000, 199_000), 5);
    let output = shakedown(&["report", "show", run.to_str().unwrap()]);
    assert_eq!(code(&output), 0, "{output:?}");
    assert!(text(&output.stdout).contains("place_order"));
    let output = shakedown(&[
        "report",
        "show",
        dir.path().join("nope.json").to_str().unwrap(),
    ]);
    assert_eq!(code(&output), 2);

    // Client SLIs judged on the run's own histograms: checkout p99 ~198 ms passes 500 ms,
    // 5 errors of 200 requests (2.5 %) fail 1 %.
    let file = slo_file(
        dir.path(),
        "  - name: checkout-p99\n    sli: {client: {measure: latency, quantile: 0.99, transaction: place_order}}\n    objective: {lt: 500ms}\n  - name: errors\n    sli: {client: {measure: error_rate}}\n    objective: {lt: 1%}\n",
    );
    let output = shakedown(&[
        "slo",
        "check",
        "--slo",
        file.to_str().unwrap(),
        "--run",
        run.to_str().unwrap(),
    ]);
    assert_eq!(code(&output), 1, "{output:?}");
    let stdout = text(&output.stdout);
    assert!(stdout.contains("2.50 %"), "{stdout}");
    assert!(
        stdout.contains("2025-01-02T03:04:05Z..2025-01-02T03:04:25Z (20s)"),
        "{stdout}"
    );
}

#[test]
fn objectives_without_units_exit_2_with_the_line_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let file = slo_file(
        dir.path(),
        "  - name: p95\n    sli: {latency: {quantile: 0.95}}\n    objective:\n      lt: 500\n",
    );
    let output = shakedown(&["slo", "check", "--slo", file.to_str().unwrap()]);
    assert_eq!(code(&output), 2, "{output:?}");
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!("{}:8:", file.display())),
        "the line of `lt: 500`: {stderr}"
    );
    assert!(stderr.contains("field `slos[0].objective.lt`"), "{stderr}");
    assert!(
        stderr.contains("`lt: 500` has no unit: a latency objective needs one, e.g. `lt: 500ms`"),
        "{stderr}"
    );

    // 5 on an error ratio was 500 %: a gate that could never fail.
    let file = slo_file(
        dir.path(),
        "  - name: errors\n    sli: {client: {measure: error_rate}}\n    objective: {lt: 5}\n",
    );
    let output = shakedown(&["slo", "check", "--slo", file.to_str().unwrap()]);
    assert_eq!(code(&output), 2, "{output:?}");
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!("{}:7:", file.display())),
        "{stderr}"
    );
    assert!(
        stderr.contains("`lt: 5` has no unit: a ratio objective needs a percentage, e.g. `lt: 5%`"),
        "{stderr}"
    );

    // The same SLO file through `run --slo` is refused before any load is sent.
    let output = shakedown(&[
        "run",
        "health",
        "--target",
        "http://127.0.0.1:9",
        "--slo",
        file.to_str().unwrap(),
    ]);
    assert_eq!(code(&output), 2, "{output:?}");
    assert!(text(&output.stderr).contains("has no unit"));
}

#[test]
fn a_bare_max_regression_exits_2_with_the_spelling_meant() {
    let dir = tempfile::tempdir().unwrap();
    let base = write_report(dir.path(), "base.json", (100_000, 199_000), 1);
    let base = base.to_str().unwrap();
    let output = shakedown(&["report", "diff", base, base, "--max-regression", "10"]);
    assert_eq!(code(&output), 2, "{output:?}");
    assert!(
        text(&output.stderr).contains("--max-regression: `10` has no unit: did you mean `10%`?"),
        "{output:?}"
    );
}

#[test]
fn a_partial_run_fails_slo_check_whatever_its_slos_say() {
    let dir = tempfile::tempdir().unwrap();
    let file = slo_file(
        dir.path(),
        "  - name: checkout-p99\n    sli: {client: {measure: latency, quantile: 0.99, transaction: place_order}}\n    objective: {lt: 500ms}\n  - name: errors\n    sli: {client: {measure: error_rate}}\n    objective: {lt: 5%}\n",
    );
    let complete = write_report(dir.path(), "complete.json", (100_000, 199_000), 1);
    let check = |run: &Path, out: &Path| {
        shakedown(&[
            "slo",
            "check",
            "--slo",
            file.to_str().unwrap(),
            "--run",
            run.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let output = check(&complete, &dir.path().join("complete"));
    assert_eq!(code(&output), 0, "the complete run passes: {output:?}");
    assert!(text(&output.stdout).contains("SLO gate PASS: 2 pass"));

    let mut report: reports::Report =
        serde_json::from_str(&std::fs::read_to_string(&complete).unwrap()).unwrap();
    report.partial = true;
    report.partial_reason = Some("interrupted (Ctrl-C)".into());
    let partial = write(
        dir.path(),
        "partial.json",
        &serde_json::to_string(&report).unwrap(),
    );
    let out = dir.path().join("partial");
    let output = check(&partial, &out);
    assert_eq!(code(&output), 1, "{output:?}");
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains(
            "SLO gate FAILED: the run was partial (interrupted (Ctrl-C)), and a partial run never passes; 2 pass"
        ),
        "{stdout}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("slo.json")).unwrap()).unwrap();
    assert_eq!(json["gate"], "failed");
    assert_eq!(json["partial_run"], "interrupted (Ctrl-C)");
    let junit = std::fs::read_to_string(out.join("slo-junit.xml")).unwrap();
    assert!(junit.contains("run completed as planned"), "{junit}");

    // --allow-unknown does not wave a partial run through either.
    let output = shakedown(&[
        "slo",
        "check",
        "--slo",
        file.to_str().unwrap(),
        "--run",
        partial.to_str().unwrap(),
        "--allow-unknown",
    ]);
    assert_eq!(code(&output), 1, "{output:?}");
}

#[test]
fn report_diff_refuses_runs_of_different_load_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let base = write_report(dir.path(), "base.json", (100_000, 199_000), 1);
    let mut report: reports::Report =
        serde_json::from_str(&std::fs::read_to_string(&base).unwrap()).unwrap();
    report.scenario = "browse".into();
    report.profile.model = reports::LoadModel::Open;
    let other = write(
        dir.path(),
        "browse-open.json",
        &serde_json::to_string(&report).unwrap(),
    );
    let (base, other) = (base.to_str().unwrap(), other.to_str().unwrap());

    let output = shakedown(&["report", "diff", other, base]);
    assert_eq!(code(&output), 2, "{output:?}");
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!("{other} and {base} are not runs of the same load")),
        "{stderr}"
    );
    assert!(
        stderr.contains("scenario: `browse` (new) vs `test` (baseline)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("load model: open (new) vs closed (baseline)"),
        "{stderr}"
    );
    assert!(stderr.contains("--force"), "{stderr}");
    assert!(text(&output.stdout).is_empty(), "no comparison printed");

    let output = shakedown(&["report", "diff", other, base, "--force"]);
    assert_eq!(code(&output), 0, "the same numbers: {output:?}");
    let stderr = text(&output.stderr);
    assert!(stderr.starts_with("WARNING: "), "{stderr}");
    assert!(stderr.contains("comparing anyway (--force)"), "{stderr}");
    let stdout = text(&output.stdout);
    assert!(
        stdout.starts_with("> ⚠️ **WARNING: these runs are not comparable**"),
        "{stdout}"
    );
    assert!(stdout.contains("No regression"), "{stdout}");
}

/// One flag vocabulary: a Prometheus URL is `--prometheus-url` on every command that takes one,
/// the binary `up` runs is `--prometheus-bin`; the old `--prometheus` is hidden (still accepted
/// for one release) and cannot be combined with the new spelling.
#[test]
fn prometheus_flags_have_one_meaning_each() {
    let help = |command: &[&str]| {
        let mut args = command.to_vec();
        args.push("--help");
        let output = shakedown(&args);
        assert_eq!(code(&output), 0, "{command:?}: {output:?}");
        text(&output.stdout)
    };
    for command in [
        &["slo", "check"][..],
        &["run"],
        &["capacity"],
        &["drill"],
        &["chaos", "run"],
    ] {
        let text = help(command);
        assert!(text.contains("--prometheus-url"), "{command:?}: {text}");
        assert!(!text.contains("--prometheus <"), "{command:?}: {text}");
    }
    let up = help(&["up"]);
    assert!(up.contains("--prometheus-bin <"), "{up}");
    assert!(!up.contains("--prometheus <"), "{up}");

    let both = shakedown(&["up", "--prometheus", "/a", "--prometheus-bin", "/b"]);
    assert_eq!(code(&both), 2, "{both:?}");
    assert!(
        text(&both.stderr).contains("cannot be used with"),
        "{both:?}"
    );
}
