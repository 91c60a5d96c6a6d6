//! `shakedown scenario list|check` and `shakedown run FILE` through the real binary, against a
//! stand-in target on 127.0.0.1 that answers every request `200 {"status":"ok"}`.

mod common;

use std::path::Path;

use common::RecordingServer;
use common::cli::{run as shakedown, text};

fn write(dir: &Path, name: &str, yaml: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, yaml).unwrap();
    path.to_string_lossy().into_owned()
}

const PASSING: &str = r#"apiVersion: shakedown/v1
kind: Scenario
name: mine
steps:
  - name: status
    url: /api/status
    query: { page: "{{ random_int(2, 2) }}" }
    extract:
      state: { json: "$.status" }
    checks:
      status: 200
      json:
        - { path: "$.status", equals: ok }
  - name: again
    url: "/api/{{ state }}"
"#;

#[test]
fn scenario_list_names_the_built_ins() {
    let output = shakedown(&["scenario", "list"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    for name in ["smoke", "browse", "checkout", "ingest", "health"] {
        assert!(stdout.contains(name), "{stdout}");
    }
}

#[test]
fn scenario_check_refuses_a_bad_file_with_exit_2_and_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "bad.yaml",
        "apiVersion: shakedown/v1\nkind: Scenario\nname: x\nsteps:\n  - name: a\n    url: \"/a/{{ nope }}\"\n",
    );
    let server = RecordingServer::start();
    let output = shakedown(&["scenario", "check", &file, "--target", &server.url]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("bad.yaml:6:10: field `steps[0].url`: undefined variable `nope`"),
        "{stderr}"
    );
    assert_eq!(server.requests(), 0, "nothing is sent for an invalid file");
}

#[test]
fn scenario_check_with_a_target_prints_each_exchange() {
    let dir = tempfile::tempdir().unwrap();
    let server = RecordingServer::start();
    let file = write(dir.path(), "mine.yaml", PASSING);

    let output = shakedown(&["scenario", "check", &file]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("valid scenario \"mine\""));
    assert_eq!(server.requests(), 0, "without --target nothing is sent");

    let output = shakedown(&["scenario", "check", &file, "--target", &server.url]);
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        text(&output.stderr)
    );
    assert!(
        stdout.contains(&format!("GET     {}/api/status?page=2 → 200", server.url)),
        "{stdout}"
    );
    assert!(stdout.contains("state = \"ok\""), "{stdout}");
    assert!(
        stdout.contains(&format!("{}/api/ok → 200", server.url)),
        "{stdout}"
    );
    assert_eq!(stdout.matches("checks passed").count(), 2, "{stdout}");
    assert_eq!(server.requests(), 2, "one iteration of one user");

    let failing = write(
        dir.path(),
        "failing.yaml",
        &PASSING.replace("equals: ok", "equals: degraded"),
    );
    let output = shakedown(&["scenario", "check", &failing, "--target", &server.url]);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAILED (check): `$.status` is \"ok\", expected \"degraded\""),
        "{stdout}"
    );
    assert!(!stdout.contains("/api/ok"), "the iteration stops: {stdout}");
}

#[test]
fn run_takes_a_scenario_file() {
    let dir = tempfile::tempdir().unwrap();
    let server = RecordingServer::start();
    let file = write(dir.path(), "mine.yaml", PASSING);
    let profile = write(
        dir.path(),
        "quick.yaml",
        "name: quick\nclosed:\n  stages:\n    - { duration: 1s, users: 2 }\nthink_time: { min: 50ms, max: 50ms }\n",
    );
    let out = dir.path().join("runs");
    let output = shakedown(&[
        "run",
        &file,
        "--target",
        &server.url,
        "--profile",
        &profile,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("latest/report.json")).unwrap())
            .unwrap();
    assert_eq!(report["scenario"], "mine");
    assert_eq!(report["totals"]["errors"], 0);
    let names: Vec<&str> = report["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"status") && names.contains(&"again"),
        "{names:?}"
    );
    assert!(server.requests() >= 4, "the probe and some iterations");
}
