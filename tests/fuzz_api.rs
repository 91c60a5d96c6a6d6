//! Fuzzes the gateway's public API against its contract, `reference-services/openapi.yaml`, with
//! schemathesis on the embedded stack: every generated request (valid and invalid, from the
//! schema's examples, its boundaries, random data and stateful sequences that follow the links
//! between operations) must get an answer that is not a server error, whose status the spec
//! lists for the operation and whose body matches the spec's schema for that status.
//!
//! The run is seeded and bounded (a fixed number of examples per operation), so CI is repeatable
//! and takes a few minutes; `SHOP_FUZZ_EXAMPLES` and `SHOP_FUZZ_SEED` make longer or different
//! runs by hand (see reference-services/README.md, "Fuzzing"). schemathesis signs up and logs in
//! by itself (the spec's register and login operations), so authenticated operations are fuzzed
//! with a valid token. Logout is fuzzed in a second run of its own: it revokes that token.
//!
//! schemathesis is a PyPI tool that `scripts/setup.sh` installs (pinned) into its venv; without
//! it the test says so and passes, except in CI (`CI=true`), where it fails naming it.

mod common;

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

/// The version `scripts/setup.sh` installs; another one may generate other cases.
const PINNED_VERSION: &str = "4.32.5";
/// Examples per operation in CI: with the boundary and stateful phases, ≥ 2,000 cases in all.
const CI_EXAMPLES_PER_OPERATION: u32 = 100;
/// Fewest cases a CI run must have generated, so a quietly shrunken run cannot pass.
const MIN_CASES: u64 = 2_000;
const CI_SEED: u64 = 20_261_130;
/// The checks run on every response.
const CHECKS: &str = "not_a_server_error,status_code_conformance,response_headers_conformance,\
                      content_type_conformance,response_schema_conformance";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_keeps_its_openapi_contract_under_fuzzing() {
    let Some(schemathesis) = schemathesis() else {
        slo::testing::missing_tool(
            "schemathesis",
            &format!(
                "scripts/setup.sh installs schemathesis=={PINNED_VERSION} into \
                 ~/.local/share/shakedown/venv (or set SCHEMATHESIS to its path)"
            ),
        );
        return;
    };
    let examples = env_number("SHOP_FUZZ_EXAMPLES").unwrap_or(CI_EXAMPLES_PER_OPERATION.into());
    let seed = env_number("SHOP_FUZZ_SEED").unwrap_or(CI_SEED);
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("reference-services/openapi.yaml");

    let stack = common::start_stack(false).await;
    let gateway = stack.gateway_url().to_string();
    // schemathesis writes its caches and reports in its working directory: a throwaway one.
    let work = tempfile::tempdir().unwrap();
    let run = |operations: &[&str], examples: u64| {
        let mut args = vec![
            "run".to_string(),
            spec.display().to_string(),
            format!("--url={gateway}"),
            format!("--checks={CHECKS}"),
            format!("--seed={seed}"),
            format!("--max-examples={examples}"),
            "--generation-database=none".into(),
            "--request-timeout=30".into(),
            "--no-color".into(),
        ];
        args.extend(operations.iter().map(|op| op.to_string()));
        let out = Command::new(&schemathesis)
            .args(&args)
            .current_dir(work.path())
            .env("NO_COLOR", "1")
            .output()
            .expect("schemathesis runs");
        Fuzzed::from(out)
    };
    // Everything but logout, which would revoke the token the other operations use.
    let main = tokio::task::block_in_place(|| run(&["--exclude-operation-id=logout"], examples));
    let logout = tokio::task::block_in_place(|| {
        run(&["--include-operation-id=logout"], (examples / 4).max(1))
    });
    stack.stop().await;

    for (name, fuzzed) in [("all but logout", &main), ("logout", &logout)] {
        assert!(
            fuzzed.passed,
            "schemathesis found contract violations ({name}):\n{}",
            fuzzed.output
        );
    }
    let cases = main.cases + logout.cases;
    eprintln!(
        "schemathesis {PINNED_VERSION}: {cases} cases ({} + {} for logout), seed {seed}, \
         {examples} examples per operation: no server error, no schema violation",
        main.cases, logout.cases
    );
    if examples >= u64::from(CI_EXAMPLES_PER_OPERATION) {
        assert!(
            cases >= MIN_CASES,
            "only {cases} cases were generated (expected at least {MIN_CASES}):\n{}",
            main.output
        );
    }
}

/// What one schemathesis run said.
struct Fuzzed {
    passed: bool,
    cases: u64,
    output: String,
}

impl From<Output> for Fuzzed {
    fn from(out: Output) -> Self {
        let output = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Self {
            passed: out.status.success(),
            cases: generated_cases(&output).unwrap_or_else(|| {
                panic!("schemathesis printed no 'N generated' summary:\n{output}")
            }),
            output,
        }
    }
}

/// The case count of the summary line `  2006 generated, 2006 passed, 33 skipped`.
fn generated_cases(output: &str) -> Option<u64> {
    output.lines().find_map(|line| {
        let (count, rest) = line.trim().split_once(' ')?;
        rest.starts_with("generated").then(|| count.parse().ok())?
    })
}

/// `$SCHEMATHESIS`, else the venv `scripts/setup.sh` installs into, else `schemathesis` on PATH;
/// the first that runs.
fn schemathesis() -> Option<PathBuf> {
    let venv = std::env::var_os("SHAKEDOWN_VENV")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share/shakedown/venv"))
        })
        .map(|venv| venv.join("bin/schemathesis"));
    let found = std::env::var_os("SCHEMATHESIS")
        .map(PathBuf::from)
        .into_iter()
        .chain(venv)
        .chain([PathBuf::from("schemathesis")])
        .find_map(|path| {
            let out = Command::new(&path).arg("--version").output().ok()?;
            out.status
                .success()
                .then(|| (path, String::from_utf8_lossy(&out.stdout).into_owned()))
        });
    let (path, version) = found?;
    if !version.contains(PINNED_VERSION) {
        eprintln!(
            "note: {} is {}, not the pinned {PINNED_VERSION}: cases differ from CI's",
            path.display(),
            version.trim()
        );
    }
    Some(path)
}

fn env_number(name: &str) -> Option<u64> {
    let raw = std::env::var(name).ok()?;
    Some(
        raw.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={raw:?} is not a whole number")),
    )
}

#[test]
fn the_case_count_is_read_from_the_summary() {
    let summary = "Test cases:\n  2006 generated, 2006 passed, 33 skipped\n\nSeed: 11\n";
    assert_eq!(generated_cases(summary), Some(2006));
    assert_eq!(generated_cases("no summary here"), None);
}
