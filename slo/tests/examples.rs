//! The shipped SLO files: every example parses, the seed objectives are what the platform
//! promises, and the JSON Schema stays in step with the model.

use std::path::{Path, PathBuf};
use std::process::Command;

use slo::{Comparison, HpaMeasure, KafkaMeasure, Sli, SourceKind};

fn dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
}

fn examples() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_example_parses() {
    let files = examples();
    assert!(files.len() >= 3, "{files:?}");
    for file in files {
        let set = slo::load(&file).unwrap_or_else(|e| panic!("{e}"));
        assert!(!set.slos.is_empty(), "{}", file.display());
    }
}

#[test]
fn the_seed_slos_say_what_the_platform_promises() {
    let set = slo::load(dir("examples/shop.yaml")).unwrap();
    let slo = |name: &str| set.slos.iter().find(|s| s.name == name).unwrap();

    let p95 = slo("gateway-latency-p95");
    assert!(
        matches!(&p95.sli, Sli::Latency(l) if l.quantile.0 == 0.95 && l.selector.0.contains("api-gateway"))
    );
    assert_eq!(
        (p95.objective.comparison, p95.objective.value),
        (Comparison::Lt, 0.5)
    );

    let errors = slo("error-ratio");
    assert!(matches!(errors.sli, Sli::ErrorRatio(_)));
    assert_eq!(
        (errors.objective.comparison, errors.objective.value),
        (Comparison::Lt, 0.01)
    );

    assert!(
        matches!(&slo("order-hpa-scales-out").sli, Sli::Hpa(h) if h.name == "order" && h.measure == HpaMeasure::ScaleOut)
    );
    let pinned = slo("order-hpa-not-pinned-at-max");
    assert!(matches!(&pinned.sli, Sli::Hpa(h) if h.measure == HpaMeasure::TimeAtMax));
    assert_eq!(
        (pinned.objective.comparison, pinned.objective.value),
        (Comparison::Lte, 300.0)
    );

    let lag = slo("notification-lag-recovers");
    assert!(matches!(&lag.sli, Sli::KafkaLag(k)
        if k.group == "notification-group" && k.measure == KafkaMeasure::RecoveryTime && k.below == Some(1000.0)));
    assert_eq!(
        (lag.objective.comparison, lag.objective.value),
        (Comparison::Lte, 60.0)
    );
    assert_eq!(lag.source_kind(), SourceKind::Prometheus);
}

fn schema() -> serde_json::Value {
    let text = std::fs::read_to_string(dir("schema/sloset.schema.json")).unwrap();
    serde_json::from_str(&text).expect("the schema is JSON")
}

fn keys(value: &serde_json::Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

#[test]
fn the_schema_names_every_sli_kind_and_objective_bound() {
    let schema = schema();
    assert_eq!(
        keys(&schema["$defs"]["sli"]["properties"]),
        [
            "client",
            "error_ratio",
            "hpa",
            "kafka_lag",
            "latency",
            "promql"
        ]
    );
    assert_eq!(
        keys(&schema["$defs"]["objective"]["properties"]),
        ["gt", "gte", "lt", "lte", "warn"]
    );
    // Every SLI kind the schema names is one the parser accepts, and vice versa.
    for kind in keys(&schema["$defs"]["sli"]["properties"]) {
        let text = format!(
            "apiVersion: shakedown/v1\nkind: SLOSet\nmetadata: {{name: t}}\nslos:\n  - name: a\n    sli: {{{kind}: {{}}}}\n    objective: {{lt: 1}}\n"
        );
        let error = slo::parse(&text, Path::new("t.yaml"))
            .err()
            .map(|e| e.to_string());
        assert!(
            error
                .as_deref()
                .is_none_or(|e| !e.contains("unknown variant")),
            "{kind}: {error:?}"
        );
    }
}

/// Validates the examples against the schema with Python's `jsonschema` when it is installed
/// (the Rust side has no JSON Schema validator among its dependencies).
#[test]
fn the_examples_follow_the_schema() {
    let script = r#"
import glob, json, sys
try:
    import jsonschema, yaml
except ImportError:
    print("SKIP"); sys.exit(0)
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema)
bad = 0
for path in sorted(glob.glob(sys.argv[2] + "/*.yaml")):
    for error in validator.iter_errors(yaml.safe_load(open(path))):
        print(path, list(error.path), error.message); bad += 1
sys.exit(1 if bad else 0)
"#;
    let output = match Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(dir("schema/sloset.schema.json"))
        .arg(dir("examples"))
        .output()
    {
        Ok(output) => output,
        Err(_) => {
            slo::testing::missing_tool("python3", "schema validation of the examples");
            return;
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    if stdout.trim() == "SKIP" {
        slo::testing::missing_tool(
            "python3's jsonschema and yaml modules",
            "scripts/setup.sh installs them (pip install jsonschema pyyaml)",
        );
        return;
    }
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
