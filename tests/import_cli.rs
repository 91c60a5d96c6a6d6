//! `shakedown scenario import openapi|har` through the real binary: it writes the file, never
//! overwrites one without `--force`, and bad input or an unwritable output is exit 2 with a
//! message naming the file.

mod common;

use std::process::Output;

use common::cli::{repo, shakedown, stderr};

fn import(args: &[&str]) -> Output {
    shakedown()
        .args(["scenario", "import"])
        .args(args)
        .output()
        .expect("running shakedown")
}

#[test]
fn writes_the_file_and_refuses_to_overwrite_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("gateway.yaml");
    let out_arg = out.to_str().unwrap();
    let spec = repo("reference-services/openapi.yaml");

    let output = import(&["openapi", &spec, "--out", out_arg]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let first = std::fs::read_to_string(&out).unwrap();
    assert!(first.contains("apiVersion: shakedown/v1"));
    assert!(stderr(&output).contains("22 steps"), "{}", stderr(&output));

    std::fs::write(&out, "my edits").unwrap();
    let output = import(&["openapi", &spec, "--out", out_arg]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains(out_arg), "{}", stderr(&output));
    assert!(stderr(&output).contains("--force"), "{}", stderr(&output));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "my edits");

    let output = import(&["openapi", &spec, "--out", out_arg, "--force"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        first,
        "the same input, the same file"
    );

    let har = dir.path().join("journey.yaml");
    let output = import(&[
        "har",
        &repo("scenarios/tests/fixtures/embedded-stack.har"),
        "--out",
        har.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(std::fs::read_to_string(&har).unwrap().contains("on_start:"));
}

#[test]
fn bad_input_and_unwritable_output_are_usage_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.yaml");
    let out_arg = out.to_str().unwrap();

    let output = import(&["openapi", "no/such/spec.yaml", "--out", out_arg]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("no/such/spec.yaml"),
        "{}",
        stderr(&output)
    );

    let har = repo("scenarios/tests/fixtures/embedded-stack.har");
    let output = import(&["openapi", &har, "--out", out_arg]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("not an OpenAPI 3 description"),
        "{}",
        stderr(&output)
    );

    let spec = repo("reference-services/openapi.yaml");
    let output = import(&["har", &spec, "--out", out_arg]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("openapi.yaml:1:1"),
        "{}",
        stderr(&output)
    );

    let broken = dir.path().join("broken.yaml");
    std::fs::write(
        &broken,
        "openapi: 3.0.0\npaths:\n  /a:\n    post:\n      requestBody: { $ref: '#/components/requestBodies/Gone' }\n      responses: {}\n",
    )
    .unwrap();
    let output = import(&["openapi", broken.to_str().unwrap(), "--out", out_arg]);
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(message.contains("broken.yaml"), "{message}");
    assert!(
        message.contains("#/components/requestBodies/Gone"),
        "{message}"
    );

    let unwritable = dir.path().join("no-such-dir").join("x.yaml");
    let output = import(&["openapi", &spec, "--out", unwritable.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("no-such-dir/x.yaml"),
        "{}",
        stderr(&output)
    );
    assert!(!out.exists(), "nothing written on errors");
}
