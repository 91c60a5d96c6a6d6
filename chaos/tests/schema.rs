//! `schema/experiment.schema.json` against the shipped examples and against the model. Editors
//! and CI validate experiment files with the schema, `chaos::load` with the serde model: when they
//! disagree, a file passes one and fails the other. So every example must follow the schema, and
//! at every place in a file the schema must name exactly the fields the model accepts. The
//! model's fields are asked of the model itself: a probe field at that place is refused with
//! serde's "unknown field `probe`, expected one of ..." list, so adding a field to a model
//! struct without adding it to the schema (or the reverse) fails here.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read_json(path: PathBuf) -> Value {
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn schema() -> Value {
    read_json(crate_dir().join("schema/experiment.schema.json"))
}

/// A validator of the experiment schema; its steady-state SLOs refer to the SLO schema, which is
/// registered under its own `$id` (no network: nothing is retrieved).
fn validator() -> jsonschema::Validator {
    let schema = schema();
    jsonschema::meta::validate(&schema).expect("the experiment schema is a valid 2020-12 schema");
    let slo = read_json(crate_dir().join("../slo/schema/sloset.schema.json"));
    let slo_id = slo["$id"]
        .as_str()
        .expect("the SLO schema has an $id")
        .to_string();
    let registry = jsonschema::Registry::new()
        .add(slo_id, slo)
        .expect("the SLO schema registers")
        .prepare()
        .expect("the registry resolves");
    jsonschema::options()
        .with_registry(&registry)
        .build(&schema)
        .unwrap_or_else(|e| panic!("the experiment schema does not compile: {e}"))
}

fn errors(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| format!("at {}: {e}", e.instance_path()))
        .collect()
}

fn examples() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(crate_dir().join("experiments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_example_follows_the_schema() {
    let validator = validator();
    let files = examples();
    assert!(files.len() >= 5, "{files:?}");
    for file in &files {
        let errors = errors(&validator, &yaml(file));
        assert!(errors.is_empty(), "{}: {errors:#?}", file.display());
    }
    // The check can fail: a misspelt field in a real example is refused, and where.
    let mut typo = yaml(&crate_dir().join("experiments/pod-kill-order.yaml"));
    typo["method"][0]["action"]["pod-kill"]["cuont"] = json!(1);
    let errors = errors(&validator, &typo);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("/method/0/action/pod-kill") && e.contains("cuont")),
        "{errors:#?}"
    );
    // And an inline SLO is checked against the SLO schema it refers to.
    let mut slo = yaml(&crate_dir().join("experiments/pod-kill-order.yaml"));
    slo["steady_state"]["slos"][0]["objective"] = json!({"lt": "a lot"});
    assert!(
        !validator.is_valid(&slo),
        "an SLO objective of \"a lot\" passed"
    );
}

/// The fields the model accepts at `at` (a JSON pointer into `experiment`): the list serde gives
/// when a probe field is added there, or `None` if the model did not refuse it.
fn model_fields(experiment: &Value, at: &str) -> BTreeSet<String> {
    let mut probed = experiment.clone();
    let place = probed
        .pointer_mut(at)
        .unwrap_or_else(|| panic!("{at} is not in {experiment}"));
    place
        .as_object_mut()
        .unwrap_or_else(|| panic!("{at} is not an object"))
        .insert("zz_probe".into(), json!(1));
    expected_names(&probed, at, "zz_probe")
}

/// The names serde lists when `experiment` (JSON is YAML) is refused for an unknown name.
fn expected_names(experiment: &Value, at: &str, unknown: &str) -> BTreeSet<String> {
    let text = serde_json::to_string_pretty(experiment).unwrap();
    let error = match chaos::parse(&text, Path::new("probe.yaml")) {
        Ok(_) => panic!("the model accepts `{unknown}` at {at}"),
        Err(e) => e.to_string(),
    };
    assert!(
        error.contains(&format!("`{unknown}`")),
        "at {at}, the model refused something else: {error}"
    );
    match error.split_once("expected") {
        // `a`, `b` or one of `a`, `b`, `c`: every backquoted name after "expected".
        Some((_, names)) => names
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect(),
        None if error.contains("there are no fields")
            || error.contains("there are no variants") =>
        {
            BTreeSet::new()
        }
        None => panic!("at {at}: no list of expected names in: {error}"),
    }
}

fn schema_fields(node: &Value) -> BTreeSet<String> {
    node["properties"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

/// The smallest valid experiment of each target with one step of each action, so every place of
/// the model can be probed.
fn local_experiment() -> Value {
    json!({
        "apiVersion": "shakedown/v1", "kind": "Experiment",
        "metadata": {"name": "probe"},
        "target": {"local": {}},
        "steady_state": {"slos": [{"name": "e", "sli": {"error_ratio": {"selector": "service=\"a\""}}, "objective": {"lt": "10%"}}]},
        "method": [
            {"name": "kill", "action": {"process-kill": {"service": "order"}}},
            {"name": "brokers", "action": {"broker-failure": {"brokers": 1, "duration": "1s",
                "recovery": {"group": "g", "topics": ["t"], "below": 1}}}},
            {"name": "slow", "action": {"faults": {"service": "product", "latency": "1ms", "duration": "1s"}}},
            {"name": "clear", "action": {"faults-clear": {"service": "product"}}},
            {"name": "up", "action": {"brokers-up": {}}}
        ],
        "rollbacks": [{"name": "up", "action": {"brokers-up": {}}}],
        "safety": {"halt": [{"slo": "e"}]}
    })
}

fn kube_experiment() -> Value {
    json!({
        "apiVersion": "shakedown/v1", "kind": "Experiment",
        "metadata": {"name": "probe"},
        "target": {"kube": {"namespace": "ns", "allowed_namespaces": ["ns"]}},
        "method": [
            {"name": "kill", "action": {"pod-kill": {"selector": "a=b"}}},
            {"name": "brokers", "action": {"broker-failure": {"selector": "a=b"}}},
            {"name": "slow", "action": {"faults": {"admin_url": "http://127.0.0.1:1", "latency": "1ms", "duration": "1s"}}},
            {"name": "clear", "action": {"faults-clear": {"admin_url": "http://127.0.0.1:1"}}}
        ]
    })
}

#[test]
fn the_schema_names_exactly_the_fields_the_model_accepts() {
    let schema = schema();
    let (local, kube) = (local_experiment(), kube_experiment());
    let validator = validator();
    for (name, experiment) in [("local", &local), ("kube", &kube)] {
        let text = serde_json::to_string(experiment).unwrap();
        chaos::parse(&text, Path::new("probe.yaml"))
            .unwrap_or_else(|e| panic!("the {name} probe experiment is invalid: {e}"));
        let errors = errors(&validator, experiment);
        assert!(
            errors.is_empty(),
            "the {name} probe experiment: {errors:#?}"
        );
    }
    let defs = &schema["$defs"];
    let props = &schema["properties"];
    let kube_target = &props["target"]["oneOf"][1]["properties"]["kube"];
    let actions = &defs["action"]["properties"];

    // (place, where in the probe experiment, the schema node naming its fields)
    let places: Vec<(&str, &Value, &str, &Value)> = vec![
        ("experiment", &local, "", &schema),
        ("metadata", &local, "/metadata", &props["metadata"]),
        (
            "target.local",
            &local,
            "/target/local",
            &props["target"]["oneOf"][0]["properties"]["local"],
        ),
        ("target.kube", &kube, "/target/kube", kube_target),
        (
            "steady_state",
            &local,
            "/steady_state",
            &props["steady_state"],
        ),
        ("step", &local, "/method/0", &defs["step"]),
        (
            "rollback",
            &local,
            "/rollbacks/0",
            &props["rollbacks"]["items"],
        ),
        ("safety", &local, "/safety", &props["safety"]),
        (
            "safety.halt",
            &local,
            "/safety/halt/0",
            &props["safety"]["properties"]["halt"]["items"],
        ),
        (
            "process-kill",
            &local,
            "/method/0/action/process-kill",
            &actions["process-kill"],
        ),
        (
            "broker-failure.recovery",
            &local,
            "/method/1/action/broker-failure/recovery",
            &actions["broker-failure"]["properties"]["recovery"],
        ),
        (
            "brokers-up",
            &local,
            "/method/4/action/brokers-up",
            &actions["brokers-up"],
        ),
        (
            "pod-kill",
            &kube,
            "/method/0/action/pod-kill",
            &actions["pod-kill"],
        ),
    ];
    let mut mismatches = Vec::new();
    let mut compare = |place: &str, model: BTreeSet<String>, schema: BTreeSet<String>| {
        if model != schema {
            mismatches.push(format!(
                "{place}: only in the model {:?}, only in the schema {:?}",
                model.difference(&schema).collect::<Vec<_>>(),
                schema.difference(&model).collect::<Vec<_>>()
            ));
        }
    };
    for (place, experiment, at, node) in places {
        compare(place, model_fields(experiment, at), schema_fields(node));
    }

    // Actions both targets know: the same fields on each, and those the schema names.
    for (index, action) in [(2, "faults"), (3, "faults-clear")] {
        let at = format!("/method/{index}/action/{action}");
        let (on_local, on_kube) = (model_fields(&local, &at), model_fields(&kube, &at));
        assert_eq!(on_local, on_kube, "{action}: local and kube differ");
        compare(action, on_local, schema_fields(&actions[action]));
    }
    // broker-failure is one schema entry for two model structs (local and kube): the union.
    let at = "/method/1/action/broker-failure";
    let both: BTreeSet<String> = model_fields(&local, at)
        .union(&model_fields(&kube, at))
        .cloned()
        .collect();
    compare(
        "broker-failure",
        both,
        schema_fields(&actions["broker-failure"]),
    );

    // The names of actions and targets: an unknown one is refused with the list of known ones.
    let unknown_action = |experiment: &Value| {
        let mut probed = experiment.clone();
        probed["method"][0]["action"] = json!({"zz_probe": {}});
        expected_names(&probed, "/method/0/action", "zz_probe")
    };
    let known: BTreeSet<String> = unknown_action(&local)
        .union(&unknown_action(&kube))
        .cloned()
        .collect();
    compare("action names", known, schema_fields(&defs["action"]));
    let mut probed = local.clone();
    probed["target"] = json!({"zz_probe": {}});
    let targets: BTreeSet<String> = props["target"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| strs(&t["required"]))
        .collect();
    compare(
        "target kinds",
        expected_names(&probed, "/target", "zz_probe"),
        targets,
    );

    assert!(
        mismatches.is_empty(),
        "schema and model disagree:\n{}",
        mismatches.join("\n")
    );
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
