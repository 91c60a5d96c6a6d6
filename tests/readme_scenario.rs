//! The README's "Your own API in five minutes" scenario, taken from README.md verbatim: it passes
//! `scenario check`, tries one iteration against a small login → list → order API on 127.0.0.1,
//! and runs under load with every transaction named after its step and no errors.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use common::cli::{all_output, code, json, only_run_dir, run, stdout};
use serde_json::{Value, json};

/// The first YAML block after the section heading.
fn readme_scenario() -> String {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let section = readme
        .split_once("## Your own API in five minutes")
        .expect("the README has the section")
        .1;
    let block = section
        .split_once("```yaml\n")
        .expect("a yaml block")
        .1
        .split_once("```")
        .expect("a closed yaml block")
        .0;
    block.to_string()
}

/// The API the README describes: a login that wants a known account, a list of items, orders
/// that need the token and an item from the list.
fn staging() -> String {
    let orders = Arc::new(AtomicU64::new(0));
    let authorized = |headers: &HeaderMap| {
        headers
            .get("authorization")
            .is_some_and(|v| v == "Bearer token-of-ada@example.com")
            || headers
                .get("authorization")
                .is_some_and(|v| v == "Bearer token-of-bob@example.com")
    };
    let app = axum::Router::new()
        .route("/health", get(|| async { "ok" }))
        .route(
            "/auth/login",
            post(|Json(body): Json<Value>| async move {
                match (body["email"].as_str(), body["password"].as_str()) {
                    (Some(email @ ("ada@example.com" | "bob@example.com")), Some("secret")) => (
                        StatusCode::OK,
                        Json(json!({ "access_token": format!("token-of-{email}") })),
                    ),
                    _ => (StatusCode::UNAUTHORIZED, Json(json!({}))),
                }
            }),
        )
        .route(
            "/items",
            get(move |headers: HeaderMap| async move {
                if !authorized(&headers) {
                    return (StatusCode::UNAUTHORIZED, Json(json!({})));
                }
                (
                    StatusCode::OK,
                    Json(json!({ "items": [{ "id": 7 }, { "id": 8 }, { "id": 9 }] })),
                )
            }),
        )
        .route(
            "/orders",
            post(move |headers: HeaderMap, Json(body): Json<Value>| {
                let orders = orders.clone();
                async move {
                    let item_ok = matches!(body["item_id"].as_u64(), Some(7..=9));
                    if !authorized(&headers) || !item_ok || body["quantity"] != 1 {
                        return (StatusCode::BAD_REQUEST, Json(json!({})));
                    }
                    let id = orders.fetch_add(1, Ordering::SeqCst);
                    (StatusCode::CREATED, Json(json!({ "order_id": id })))
                }
            }),
        );
    common::serve_in_background(app)
}

#[test]
fn the_readme_scenario_checks_tries_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shop.yaml");
    std::fs::write(&file, readme_scenario()).unwrap();
    std::fs::write(
        dir.path().join("accounts.csv"),
        "email,password\nada@example.com,secret\nbob@example.com,secret\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();

    let output = run(&["scenario", "check", file]);
    assert_eq!(code(&output), 0, "{}", all_output(&output));

    let target = staging();
    let output = run(&["scenario", "check", file, "--target", &target]);
    assert_eq!(code(&output), 0, "{}", all_output(&output));
    let printed = stdout(&output);
    for step in ["login", "list_items", "place_order"] {
        assert!(printed.contains(step), "{step} printed: {printed}");
    }

    let out = dir.path().join("runs");
    let output = run(&[
        "run",
        file,
        "--target",
        &target,
        "--profile",
        "smoke",
        "--duration",
        "4s",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code(&output), 0, "{}", all_output(&output));
    let report = json(&only_run_dir(&out).join("report.json"));
    assert_eq!(report["scenario"], "shop");
    assert_eq!(report["totals"]["errors"], 0, "{report}");
    let names: Vec<&str> = report["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for step in ["login", "list_items", "place_order"] {
        assert!(names.contains(&step), "{step} in {names:?}");
    }
}
