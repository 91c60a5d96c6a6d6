//! Every report says what produced it: the build (version, git commit), the command line with
//! credentials redacted, the host, digests of the input files, the run's window, the queries,
//! and whether the load generator kept up — in report.json, report.md, report.html, junit.xml,
//! and in `slo check`'s documents. Runs go to a local server on 127.0.0.1.

mod common;

use std::path::Path;
use std::time::Duration;

use common::cli::{all_output, code, json, only_run_dir, repo, run};
use serde_json::Value;
use sha2::{Digest, Sha256};

const SCENARIO: &str = "\
apiVersion: shakedown/v1
kind: Scenario
name: ping
steps:
  - name: ping
    url: /ping
    checks:
      status: 200
";

const PROFILE: &str = "\
name: tiny
closed:
  stages:
    - { duration: 2s, users: 1 }
think_time: { min: 50ms, max: 50ms }
thresholds:
  - p95<500ms
";

fn sha256(path: &Path) -> String {
    format!("{:x}", Sha256::digest(std::fs::read(path).unwrap()))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// The commit this checkout is at, when git can say (the build script asked the same git).
fn head_commit() -> Option<String> {
    let output = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

fn file<'a>(provenance: &'a Value, role: &str) -> &'a Value {
    provenance["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["role"] == role)
        .unwrap_or_else(|| panic!("no {role} file in {provenance:#}"))
}

#[test]
fn a_run_and_its_slo_check_say_what_produced_them() {
    let app = axum::Router::new().fallback(|| async { r#"{"status":"healthy"}"# });
    let target = common::serve_in_background(app);
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("ping.yaml");
    let profile = dir.path().join("tiny profile.yaml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    std::fs::write(&profile, PROFILE).unwrap();
    let out = dir.path().join("runs");

    let output = run(&[
        "run",
        scenario.to_str().unwrap(),
        "--target",
        &target,
        "--profile",
        profile.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code(&output), 0, "{}", all_output(&output));
    let run_dir = only_run_dir(&out);
    let report = json(&run_dir.join("report.json"));
    let p = &report["provenance"];

    let build = &p["shakedown"];
    assert_eq!(build["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(build["profile"], "debug", "tests run the debug binary");
    match head_commit() {
        Some(commit) => assert_eq!(build["commit"], commit.as_str()),
        None => assert!(build["commit"].is_null(), "no git, no guess: {build}"),
    }
    let command = p["command_line"].as_str().unwrap();
    assert!(command.starts_with("shakedown run "), "{command}");
    assert!(
        command.contains("'"),
        "the path with a space is quoted: {command}"
    );
    assert_eq!(p["target"], report["target"]);
    assert_eq!(p["started_at"], report["started_at"]);
    assert_eq!(p["ended_at"], report["ended_at"]);
    let cpus = std::thread::available_parallelism().unwrap().get();
    assert_eq!(p["host"]["cpus"], cpus);
    assert!(!p["host"]["os"].as_str().unwrap().is_empty());

    assert_eq!(file(p, "scenario")["sha256"], sha256(&scenario).as_str());
    assert_eq!(file(p, "scenario")["bytes"], SCENARIO.len());
    assert_eq!(file(p, "profile")["sha256"], sha256(&profile).as_str());

    let generator = &p["generator"];
    assert!(
        generator["cpu_seconds"].as_f64().unwrap() > 0.0,
        "{generator}"
    );
    assert_eq!(generator["cores"], cpus);
    assert!(generator["degraded"].is_boolean());
    assert!(
        generator["max_lateness_ms"].is_null(),
        "a closed model has no schedule: {generator}"
    );

    let md = read(&run_dir.join("report.md"));
    assert!(md.contains("### Provenance"), "{md}");
    assert!(md.contains(&sha256(&profile)), "{md}");
    let html = read(&run_dir.join("report.html"));
    assert!(html.contains("<h2>Provenance</h2>"), "{html}");
    let junit = read(&run_dir.join("junit.xml"));
    assert!(
        junit.contains(&format!(
            "name=\"file.scenario\" value=\"{} sha256:{}\"",
            scenario.display(),
            sha256(&scenario)
        )),
        "{junit}"
    );

    // `slo check` over that run: its documents carry their own inputs and the run's generator.
    let slo_file = repo("slo/examples/client.yaml");
    let report_path = run_dir.join("report.json");
    let checked = dir.path().join("checked");
    let output = run(&[
        "slo",
        "check",
        "--slo",
        &slo_file,
        "--run",
        report_path.to_str().unwrap(),
        "--allow-unknown",
        "--out",
        checked.to_str().unwrap(),
    ]);
    assert!(
        [0, 1].contains(&code(&output)),
        "judged: {}",
        all_output(&output)
    );
    let slo = json(&checked.join("slo.json"));
    let sp = &slo["provenance"];
    assert_eq!(
        file(sp, "slo")["sha256"],
        sha256(Path::new(&slo_file)).as_str()
    );
    assert_eq!(file(sp, "report")["sha256"], sha256(&report_path).as_str());
    assert_eq!(
        sp["generator"], p["generator"],
        "the judged run's generator"
    );
    assert!(
        sp["command_line"]
            .as_str()
            .unwrap()
            .starts_with("shakedown slo check "),
        "{sp}"
    );
    assert!(read(&checked.join("slo.md")).contains("### Provenance"));
    assert!(read(&checked.join("slo-junit.xml")).contains("name=\"file.slo\""));
}

/// An open model whose one user cannot keep up with 20 iterations/s against a server that takes
/// 300 ms: the generator fell behind its schedule, so the report is marked degraded in every
/// format. The run also sends a credential header, which no report may contain.
#[test]
fn a_generator_behind_its_schedule_is_marked_degraded_and_secrets_stay_out() {
    let app = axum::Router::new().fallback(|uri: axum::http::Uri| async move {
        if uri.path() != "/health" {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        "{}"
    });
    let base = common::serve_in_background(app);
    let out = tempfile::tempdir().unwrap();
    let url = format!("{base}/slow");
    let output = run(&[
        "run",
        "--url",
        &url,
        "-H",
        "Authorization: Bearer s3cr3t-token",
        "--rate",
        "20",
        "--users",
        "1",
        "--duration",
        "3s",
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert!(
        [0, 1].contains(&code(&output)),
        "the run completed: {}",
        all_output(&output)
    );
    let run_dir = only_run_dir(out.path());
    let report = json(&run_dir.join("report.json"));
    let generator = &report["provenance"]["generator"];
    assert_eq!(generator["degraded"], true, "{generator:#}");
    let why: Vec<&str> = generator["why"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert!(
        why.iter()
            .any(|w| w.contains("scheduled iterations started") || w.contains("behind")),
        "{why:?}"
    );
    assert!(generator["max_lateness_ms"].is_number(), "{generator}");

    let md = read(&run_dir.join("report.md"));
    assert!(md.contains("**Degraded generator**"), "{md}");
    assert!(read(&run_dir.join("report.html")).contains("<b>Degraded generator</b>"));
    let junit = read(&run_dir.join("junit.xml"));
    assert!(
        junit.contains("name=\"generator.degraded\" value=\"true\""),
        "{junit}"
    );
    assert!(
        junit.contains("<system-err>degraded generator: "),
        "{junit}"
    );

    let command = report["provenance"]["command_line"].as_str().unwrap();
    assert!(command.contains("'Authorization: ***'"), "{command}");
    for name in ["report.json", "report.md", "report.html", "junit.xml"] {
        assert!(
            !read(&run_dir.join(name)).contains("s3cr3t"),
            "{name} leaks the credential"
        );
    }
}
