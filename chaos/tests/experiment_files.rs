//! The experiment files: every shipped example loads, and a malformed file says file, line and
//! field (exit 2).

use std::path::Path;
use std::time::Duration;

use chaos::{ActionSpec, Target};

fn error_of(text: &str) -> String {
    let error = chaos::parse(text, Path::new("exp.yaml")).unwrap_err();
    assert_eq!(error.conclusion(), chaos::Conclusion::Invalid, "{error}");
    error.to_string()
}

const HEAD: &str =
    "apiVersion: shakedown/v1\nkind: Experiment\nmetadata:\n  name: t\ntarget:\n  local: {}\n";

#[test]
fn every_shipped_experiment_loads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let experiment = chaos::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            Some(experiment.metadata.name.as_str()),
            path.file_stem().and_then(|s| s.to_str())
        );
        names.push(experiment.metadata.name);
    }
    names.sort();
    assert_eq!(
        names,
        [
            "broker-failure",
            "local-broker-failure",
            "local-latency-alerts",
            "local-latency-fault",
            "local-process-kill-order",
            "pod-kill-order"
        ]
    );
    let kube = chaos::load(dir.join("pod-kill-order.yaml")).unwrap();
    assert!(matches!(kube.target, Target::Kube(ref k) if k.namespace == "ecommerce"));
    assert!(matches!(kube.method[0].action, ActionSpec::PodKill(_)));
}

#[test]
fn a_typo_names_file_line_and_field() {
    let text = format!(
        "{HEAD}method:\n  - name: k\n    action:\n      process-kill:\n        servce: order\n"
    );
    let error = error_of(&text);
    assert!(error.starts_with("exp.yaml:11:"), "{error}");
    assert!(
        error.contains("field `method[0].action.process-kill"),
        "{error}"
    );
    assert!(error.contains("unknown field `servce`"), "{error}");
}

#[test]
fn unknown_services_and_wrong_target_actions_are_refused_with_their_line() {
    let text = format!(
        "{HEAD}method:\n  - name: k\n    action:\n      process-kill:\n        service: ordr\n"
    );
    let error = error_of(&text);
    assert!(error.starts_with("exp.yaml:11:"), "{error}");
    assert!(error.contains("unknown service `ordr`"), "{error}");

    let text = format!(
        "{HEAD}method:\n  - name: k\n    action:\n      pod-kill:\n        selector: app=order\n"
    );
    let error = error_of(&text);
    assert!(error.contains("field `method[0].action`"), "{error}");
    assert!(error.contains("unknown variant `pod-kill`"), "{error}");
}

#[test]
fn rules_across_fields_name_the_field() {
    let text = format!(
        "{HEAD}method:\n  - name: k\n    action: {{process-kill: {{service: order}}}}\n    count: 3\n"
    );
    assert!(error_of(&text).contains("`method[0].count`: a count above 1 needs `repeat_every`"));

    let text = format!(
        "{HEAD}method:\n  - name: f\n    action: {{faults: {{latency: 1s, duration: 5s}}}}\n"
    );
    assert!(error_of(&text).contains("exactly one of `service`"));

    let text = format!(
        "{HEAD}steady_state:\n  slos:\n    - name: a\n      sli: {{error_ratio: {{}}}}\n      objective: {{lt: 1%}}\nmethod:\n  - name: k\n    action: {{process-kill: {{service: order}}}}\nsafety:\n  halt:\n    - slo: b\n"
    );
    let error = error_of(&text);
    assert!(error.contains("`safety.halt[0].slo`"), "{error}");

    // A halt bound is in the unit of the SLO it names: 10 on an error ratio would be 1000 %.
    let text = format!(
        "{HEAD}steady_state:\n  slos:\n    - name: a\n      sli: {{error_ratio: {{}}}}\n      objective: {{lt: 1%}}\nmethod:\n  - name: k\n    action: {{process-kill: {{service: order}}}}\nsafety:\n  halt:\n    - slo: a\n      objective: {{lt: 10}}\n"
    );
    let error = error_of(&text);
    assert!(
        error.contains("`safety.halt[0].objective`: `lt: 10` has no unit: a ratio objective needs a percentage, e.g. `lt: 10%`"),
        "{error}"
    );

    let text = format!(
        "{HEAD}method:\n  - name: f\n    action: {{faults: {{service: order, error_ratio: 2, duration: 5s}}}}\n"
    );
    assert!(error_of(&text).contains("not within 0.0..=1.0"));
}

#[test]
fn an_slo_file_is_read_relative_to_the_experiment() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("slos.yaml"),
        "apiVersion: shakedown/v1\nkind: SLOSet\nmetadata: {name: s}\nslos:\n  - name: e\n    sli: {error_ratio: {}}\n    objective: {lt: 1%}\n",
    )
    .unwrap();
    let path = dir.path().join("exp.yaml");
    std::fs::write(
        &path,
        format!("{HEAD}steady_state:\n  slo: slos.yaml\n  before: 3s\nmethod:\n  - name: k\n    action: {{process-kill: {{service: order}}}}\n    at: 2s\n    repeat_every: 5s\n    count: 3\n"),
    )
    .unwrap();
    let experiment = chaos::load(&path).unwrap();
    let steady = experiment.steady_state.unwrap();
    assert_eq!(steady.set.slos[0].name, "e");
    assert_eq!(steady.before, Duration::from_secs(3));
    assert_eq!(
        experiment.method[0].occurrences(),
        [2, 7, 12].map(Duration::from_secs)
    );
}

#[test]
fn named_alerts_must_be_ones_the_embedded_prometheus_has() {
    let slos = "steady_state:\n  slos:\n    - name: page\n      sli: {latency: {quantile: 0.95}}\n      objective: {lt: 500ms}\n      budget: {target: 99%, period: 1d}\n";
    let method = "method:\n  - {name: k, action: {process-kill: {service: order}}}\n";
    let ok = format!(
        "{HEAD}{slos}{method}expect_alerts:\n  - {{name: PageBurnRatePage, within: 30s}}\nforbid_alerts: [PageBurnRateTicket]\n"
    );
    let experiment = chaos::parse(&ok, Path::new("exp.yaml")).unwrap();
    assert_eq!(experiment.alerts.expect[0].within, Duration::from_secs(30));
    assert_eq!(experiment.alerts.forbid, ["PageBurnRateTicket"]);
    let plan = chaos::drill::dry_run(&experiment, 3).unwrap();
    assert!(
        plan.lines
            .iter()
            .any(|l| l
                .starts_with("alert PageBurnRatePage must fire within 30s of the method's start")),
        "{:#?}",
        plan.lines
    );
    assert!(
        plan.deferred.iter().any(|d| d
            == "alerts: Prometheus has alerting rules named PageBurnRatePage, PageBurnRateTicket"),
        "{:#?}",
        plan.deferred
    );
    let error = error_of(&ok.replace("name: PageBurnRatePage", "name: PageBurnRate"));
    assert!(
        error.contains("expect_alerts[0].name")
            && error.contains("PageBurnRatePage, PageBurnRateTicket"),
        "{error}"
    );
    let error = error_of(&ok.replace("[PageBurnRateTicket]", "[PageBurnRatePage]"));
    assert!(error.contains("also in forbid_alerts"), "{error}");
    let error = error_of(&ok.replace("within: 30s", "within: 0s"));
    assert!(error.contains("expect_alerts[0].within"), "{error}");
    let error = error_of(&ok.replace("      budget: {target: 99%, period: 1d}\n", ""));
    assert!(error.contains("none has one"), "{error}");
}
