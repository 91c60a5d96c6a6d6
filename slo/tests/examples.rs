//! The shipped SLO files: every example parses, the seed objectives are what the platform
//! promises, and the JSON Schema stays in step with the model (validated in Rust with the
//! `jsonschema` crate: no Python needed).

use std::path::{Path, PathBuf};

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

fn validator(schema: &serde_json::Value) -> jsonschema::Validator {
    jsonschema::meta::validate(schema).expect("the SLO schema is a valid 2020-12 schema");
    jsonschema::validator_for(schema).unwrap_or_else(|e| panic!("the SLO schema: {e}"))
}

fn yaml(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_examples_follow_the_schema() {
    let validator = validator(&schema());
    for file in examples() {
        let errors: Vec<String> = validator
            .iter_errors(&yaml(&file))
            .map(|e| format!("at {}: {e}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", file.display());
    }
    // The check can fail: a bound in the wrong unit and a misspelt field are refused.
    let mut wrong = yaml(&dir("examples/shop.yaml"));
    wrong["slos"][0]["objective"] = serde_json::json!({"lt": "fast"});
    assert!(!validator.is_valid(&wrong), "objective `lt: fast` passed");
    let mut typo = yaml(&dir("examples/shop.yaml"));
    typo["slos"][0]["objectve"] = serde_json::json!({"lt": "500ms"});
    assert!(!validator.is_valid(&typo), "a misspelt field passed");
}

/// The names serde lists when `set` is refused for the unknown name `zz_probe` (JSON is YAML).
fn expected_names(set: &serde_json::Value, at: &str) -> Vec<String> {
    let text = serde_json::to_string_pretty(set).unwrap();
    let error = match slo::parse(&text, Path::new("probe.yaml")) {
        Ok(_) => panic!("the model accepts `zz_probe` at {at}"),
        Err(e) => e.to_string(),
    };
    let (_, names) = error
        .split_once("`zz_probe`")
        .and_then(|(_, rest)| rest.split_once("expected"))
        .unwrap_or_else(|| panic!("at {at}: no list of expected names in: {error}"));
    let mut names: Vec<String> = names
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    names.sort();
    names
}

/// The fields the model accepts at `at` (a JSON pointer into `set`), asked of the model: a probe
/// field there is refused with serde's list of the fields it knows.
fn model_fields(set: &serde_json::Value, at: &str) -> Vec<String> {
    let mut probed = set.clone();
    probed
        .pointer_mut(at)
        .and_then(|v| v.as_object_mut())
        .unwrap_or_else(|| panic!("{at} is not an object in {set}"))
        .insert("zz_probe".into(), serde_json::json!(1));
    expected_names(&probed, at)
}

/// Every field the model accepts at each place of an SLO file is in the schema, and the schema
/// names no field the model refuses: adding a field to one and not the other fails here.
#[test]
fn the_schema_names_exactly_the_fields_the_model_accepts() {
    let schema = schema();
    let defs = &schema["$defs"];
    // The shipped examples, plus a set with the SLI kinds no example uses (a `promql` one), so
    // every SLI kind is probed inside.
    let mut sets: Vec<(String, serde_json::Value)> = examples()
        .iter()
        .map(|f| {
            (
                f.file_name().unwrap().to_string_lossy().to_string(),
                yaml(f),
            )
        })
        .collect();
    let mut extra = yaml(&dir("examples/shop.yaml"));
    extra["slos"] = serde_json::json!([
        {"name": "custom", "sli": {"promql": {"query": "vector(1)"}}, "objective": {"lt": 2}}
    ]);
    sets.push(("extra kinds".into(), extra));
    let mut places: Vec<(String, serde_json::Value, String, Vec<String>)> = vec![];
    let mut kinds_seen = std::collections::BTreeSet::new();
    for (name, set) in sets {
        for (at, node) in [
            ("", &schema),
            ("/metadata", &schema["properties"]["metadata"]),
            ("/defaults", &schema["properties"]["defaults"]),
            ("/slos/0", &defs["slo"]),
        ] {
            if set.pointer(at).is_some() {
                places.push((
                    format!("{name}{at}"),
                    set.clone(),
                    at.into(),
                    keys(&node["properties"]),
                ));
            }
        }
        for (i, slo) in set["slos"].as_array().unwrap().iter().enumerate() {
            let kind = keys(&slo["sli"]).remove(0);
            if kinds_seen.insert(kind.clone()) {
                let at = format!("/slos/{i}/sli/{kind}");
                let node = &defs["sli"]["properties"][&kind]["properties"];
                places.push((format!("{name}{at}"), set.clone(), at, keys(node)));
            }
        }
    }
    assert_eq!(
        kinds_seen.into_iter().collect::<Vec<_>>(),
        keys(&defs["sli"]["properties"]),
        "no probed set holds an SLO of some SLI kind"
    );
    let mut mismatches = Vec::new();
    for (place, set, at, in_schema) in places {
        let in_model = model_fields(&set, &at);
        if in_model != in_schema {
            mismatches.push(format!("{place}: model {in_model:?}, schema {in_schema:?}"));
        }
    }
    // The values of `source`: an unknown one is refused with the list of known ones.
    let mut set = yaml(&dir("examples/shop.yaml"));
    set["slos"][0]["source"] = serde_json::json!("zz_probe");
    let mut sources: Vec<String> = defs["slo"]["properties"]["source"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    sources.sort();
    let in_model = expected_names(&set, "/slos/0/source");
    if in_model != sources {
        mismatches.push(format!("source: model {in_model:?}, schema {sources:?}"));
    }
    assert!(
        mismatches.is_empty(),
        "schema and model disagree:\n{}",
        mismatches.join("\n")
    );
}
