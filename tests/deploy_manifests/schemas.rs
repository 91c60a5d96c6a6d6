//! Every kustomization of deploy/ validated offline against the Kubernetes OpenAPI schemas with
//! `kubernetes-validate --strict` (PyPI; its schemas are bundled, no cluster or network needed):
//! a typo in a field name or a string where an integer belongs fails here, not at `kubectl apply`.
//! Strimzi's custom resources have no schema there; they are skipped explicitly, by kind, and any
//! other resource without a schema fails the test.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{kind, parse, render_text, tool_available};

/// Every kustomization in deploy/ (what `deploy/validate.sh` renders).
pub const KUSTOMIZATIONS: [&str; 9] = [
    "base",
    "kafka",
    "kafka-cluster",
    "observability",
    "chaos",
    "load",
    "load/reports-reader",
    "overlays/dev",
    "overlays/prod",
];

/// The oldest Kubernetes the manifests target (the preStop `sleep` action needs 1.30).
const K8S_VERSION: &str = "1.30";

/// Custom resources (Strimzi's CRDs) that kubernetes-validate has no schema for: skipped on
/// purpose. Strimzi's CRDs validate them when applied.
const NO_SCHEMA: [(&str, &str); 3] = [
    ("kafka.strimzi.io/v1beta2", "Kafka"),
    ("kafka.strimzi.io/v1beta2", "KafkaNodePool"),
    ("kafka.strimzi.io/v1beta2", "KafkaTopic"),
];

/// `$KUBERNETES_VALIDATE`, else `kubernetes-validate` on PATH, else the venv
/// `scripts/setup.sh` installs it into.
fn validator() -> Option<PathBuf> {
    let venv = std::env::var_os("HOME").map(|home| {
        PathBuf::from(home).join(".local/share/shakedown/venv/bin/kubernetes-validate")
    });
    std::env::var_os("KUBERNETES_VALIDATE")
        .map(PathBuf::from)
        .into_iter()
        .chain([PathBuf::from("kubernetes-validate")])
        .chain(venv)
        .find(|p| tool_available(p.to_str().unwrap_or_default(), &["--version"]))
}

/// What kubernetes-validate said about one file.
#[derive(Default)]
struct Verdict {
    passed: usize,
    errors: Vec<String>,
    without_schema: Vec<(String, String)>,
}

/// Validates `files` in one run (the schemas load once: a few seconds instead of a few per file)
/// and sorts its lines by file: `INFO <file> passed for resource ...`, `ERROR <file> ...`,
/// `WARN <file> Couldn't find schema for kind <Kind> with api version <v> ...`.
fn validate(tool: &Path, files: &[PathBuf]) -> (Vec<Verdict>, String) {
    let out = Command::new(tool)
        .args(["--strict", "-k", K8S_VERSION])
        .args(files)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", tool.display()));
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let verdicts = files
        .iter()
        .map(|file| {
            let file = file.to_str().unwrap();
            let mut verdict = Verdict::default();
            for line in output.lines() {
                let Some((level, rest)) = line.split_once(' ') else {
                    continue;
                };
                let Some(rest) = rest.strip_prefix(file).and_then(|r| r.strip_prefix(' ')) else {
                    continue;
                };
                match level {
                    "INFO" if rest.starts_with("passed for resource") => verdict.passed += 1,
                    "ERROR" => verdict.errors.push(rest.to_string()),
                    "WARN" => {
                        let parsed = rest
                            .strip_prefix("Couldn't find schema for kind ")
                            .and_then(|r| r.split_once(" with api version "))
                            .and_then(|(k, r)| Some((r.split_whitespace().next()?, k)));
                        match parsed {
                            Some((version, k)) => verdict
                                .without_schema
                                .push((version.to_string(), k.to_string())),
                            None => verdict.errors.push(format!("unexpected warning: {rest}")),
                        }
                    }
                    _ => {}
                }
            }
            verdict
        })
        .collect();
    (verdicts, output)
}

#[test]
fn every_kustomization_validates_against_the_kubernetes_schemas() {
    let Some(tool) = validator() else {
        slo::testing::missing_tool(
            "kubernetes-validate",
            "offline schema check of deploy/; scripts/setup.sh installs it (pip, in a venv)",
        );
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    // A control that must fail, so the check is known to run: strict mode rejects an unknown field.
    let control = tmp.path().join("control-typo.yaml");
    std::fs::write(
        &control,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndatta: {a: b}\n",
    )
    .unwrap();
    let mut files = vec![control];
    let mut rendered = Vec::new();
    for dir in KUSTOMIZATIONS {
        let Some(text) = render_text(dir) else {
            return;
        };
        let docs = parse(dir, &text);
        let file = tmp.path().join(format!("{}.yaml", dir.replace('/', "-")));
        std::fs::write(&file, text).unwrap();
        files.push(file);
        rendered.push((dir, docs));
    }

    let (verdicts, output) = validate(&tool, &files);
    assert!(
        verdicts[0].errors.iter().any(|e| e.contains("datta")),
        "kubernetes-validate --strict accepted an unknown field:\n{output}"
    );
    for ((dir, docs), verdict) in rendered.iter().zip(&verdicts[1..]) {
        assert!(
            verdict.errors.is_empty(),
            "deploy/{dir} does not validate against Kubernetes {K8S_VERSION}: {:#?}",
            verdict.errors
        );
        for (version, k) in &verdict.without_schema {
            assert!(
                NO_SCHEMA.contains(&(version.as_str(), k.as_str())),
                "deploy/{dir}: no schema for {k} ({version}) and it is not a known CRD"
            );
        }
        let custom = docs
            .iter()
            .filter(|d| {
                NO_SCHEMA.contains(&(d["apiVersion"].as_str().unwrap_or_default(), kind(d)))
            })
            .count();
        assert_eq!(
            verdict.passed,
            docs.len() - custom,
            "deploy/{dir}: every resource but the {custom} custom ones must pass:\n{output}"
        );
    }
}
