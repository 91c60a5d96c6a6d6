//! End-to-end for `shakedown scenario import`: the files it writes pass `scenario check` and run
//! against the embedded stack. The OpenAPI import is a starting point the user edits (log in
//! once per user, drop the operations that need ids from earlier responses), and this test makes
//! exactly the edits the file's comments ask for; the HAR import of a recording of the embedded
//! stack replays as it is, with its extracted token and order id.

mod common;

use std::path::Path;

use common::cli::{all_output as describe, repo, run as call};

use serde_json::Value as Json;
use serde_yaml_ng::{Mapping, Value};

/// Runs the scenario file for `duration` at the smoke profile and returns the report.
fn run_file(file: &Path, target: &str, out: &Path, duration: &str) -> Json {
    let output = call(&[
        "run",
        file.to_str().unwrap(),
        "--target",
        target,
        "--profile",
        "smoke",
        "--duration",
        duration,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    common::cli::json(&common::cli::only_run_dir(out).join("report.json"))
}

/// `scenario import KIND INPUT --out FILE`, which must succeed.
fn import(kind: &str, input: &str, file: &Path) {
    let output = call(&[
        "scenario",
        "import",
        kind,
        &repo(input),
        "--out",
        file.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
}

/// Every transaction named ran at least once, without an error.
fn assert_ran_clean(report: &Json, names: &[&str]) {
    let seen: Vec<(String, u64, u64)> = report["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_string(),
                t["requests"].as_u64().unwrap(),
                t["errors"].as_u64().unwrap(),
            )
        })
        .collect();
    for name in names {
        let (_, requests, errors) = seen
            .iter()
            .find(|(n, _, _)| n == name)
            .unwrap_or_else(|| panic!("no transaction {name}: {seen:?}"));
        assert!(*requests > 0, "{name}");
        assert_eq!(*errors, 0, "{name}: {seen:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_import_checks_and_after_the_edits_it_asks_for_runs_clean() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gateway.yaml");
    import("openapi", "reference-services/openapi.yaml", &file);
    let output = call(&["scenario", "check", file.to_str().unwrap()]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "the import as written: {}",
        describe(&output)
    );

    // The edits the comments ask for: log in once per user in on_start (extracting `token`),
    // and keep the operations whose generated values work on a fresh account.
    let mut doc: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let steps = doc["steps"].as_sequence().unwrap().clone();
    let step = |name: &str| steps.iter().find(|s| s["name"] == name).unwrap().clone();
    let mut register = step("register");
    register["json"] =
        serde_yaml_ng::from_str(r#"{ email: "{{ email }}", password: "{{ password }}" }"#).unwrap();
    let mut login = step("login");
    login["json"] = register["json"].clone();
    login["extract"] = serde_yaml_ng::from_str(r#"{ token: { json: "$.token" } }"#).unwrap();
    doc["on_start"] = Value::Sequence(vec![register, login]);
    doc["variables"].as_mapping_mut().unwrap().remove("token");
    doc["variables"]["password"] = "correct horse battery".into();
    let mut users = Mapping::new();
    users.insert("email".into(), "{{ unique_email() }}".into());
    doc["user_variables"] = Value::Mapping(users);
    let needs_real_ids = [
        "register",
        "login",
        "logout",
        "createOrder",
        "getOrder",
        "cancelOrder",
        "createPayment",
        "getPayment",
    ];
    let kept: Vec<Value> = steps
        .into_iter()
        .filter(|s| !needs_real_ids.contains(&s["name"].as_str().unwrap()))
        .collect();
    let kept_names: Vec<String> = kept
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    doc["steps"] = Value::Sequence(kept);
    std::fs::write(&file, serde_yaml_ng::to_string(&doc).unwrap()).unwrap();

    let stack = common::start_stack(false).await;
    let target = stack.gateway_url().to_string();
    let output = call(&[
        "scenario",
        "check",
        file.to_str().unwrap(),
        "--target",
        &target,
    ]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "one iteration: {}",
        describe(&output)
    );
    let report = run_file(&file, &target, &dir.path().join("runs"), "5s");
    stack.stop().await;
    let mut names: Vec<&str> = kept_names.iter().map(String::as_str).collect();
    names.extend(["register", "login"]);
    assert_ran_clean(&report, &names);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recording_of_the_embedded_stack_imports_and_replays() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("journey.yaml");
    import("har", "scenarios/tests/fixtures/embedded-stack.har", &file);
    let output = call(&["scenario", "check", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));

    // A fresh stack: another JWT secret and no such order, so only the extracted token and
    // order id can make the replay pass.
    let stack = common::start_stack(false).await;
    let target = stack.gateway_url().to_string();
    let output = call(&[
        "scenario",
        "check",
        file.to_str().unwrap(),
        "--target",
        &target,
    ]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "one iteration: {}",
        describe(&output)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("post_api_v1_payments"), "{stdout}");

    // The recorded pauses (think times) add up to about 9 s an iteration: give each user time
    // for a whole one.
    let report = run_file(&file, &target, &dir.path().join("runs"), "20s");
    stack.stop().await;
    assert_ran_clean(
        &report,
        &[
            "post_api_v1_auth_register",
            "post_api_v1_auth_login",
            "get_api_v1_products",
            "post_api_v1_cart_items",
            "post_api_v1_orders",
            "post_api_v1_payments",
            "get_api_v1_orders_id",
        ],
    );
}

#[test]
fn import_refuses_to_overwrite_and_reports_bad_input_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.yaml");
    std::fs::write(&out, "mine").unwrap();
    let spec = repo("reference-services/openapi.yaml");
    let output = call(&[
        "scenario",
        "import",
        "openapi",
        &spec,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert!(describe(&output).contains("--force"));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "mine");
    let output = call(&[
        "scenario",
        "import",
        "openapi",
        &spec,
        "--out",
        out.to_str().unwrap(),
        "--force",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert!(
        std::fs::read_to_string(&out)
            .unwrap()
            .contains("apiVersion: shakedown/v1")
    );
}
