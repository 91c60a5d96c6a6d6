//! Dry-run parity: every experiment below goes through the dry run (`chaos::plan::dry_run`, what
//! `--dry-run` calls) and through the binding a real run does (local: `local::resolve` against
//! the shape of a live mock Kafka cluster, which is what `LocalTarget::bind` checks; kube:
//! `KubeTarget::with_client` + `kube_actions::bind`, as after `KubeTarget::connect`). Both must
//! refuse, with the same conclusion, or both accept — and each case says which it expects, so
//! a rule dropped from both paths fails too.

use std::collections::HashMap;
use std::path::Path;

use chaos::Conclusion::{self, Invalid};
use chaos::kube::KubeTarget;
use chaos::local::StackShape;
use chaos::{ChaosError, Experiment, Target};

struct Case {
    name: &'static str,
    /// `target:` and everything after it.
    body: &'static str,
    /// `--brokers` of the local stack.
    brokers: i32,
    /// `None`: accepted; `Some((conclusion, words))`: refused with that conclusion, saying `words`.
    refused: Option<(Conclusion, &'static str)>,
}

const KUBE: &str = "target:\n  kube: {namespace: ecommerce, allowed_namespaces: [ecommerce, kafka], max_blast_radius_percent: 50}\n";

fn cases() -> Vec<Case> {
    let local = |name, method: &'static str, brokers, refused| Case {
        name,
        body: method,
        brokers,
        refused,
    };
    vec![
        local(
            "every broker of the default stack down",
            "target: {local: {}}\nmethod:\n  - {name: all down, action: {broker-failure: {brokers: 3, duration: 10s}}}\n",
            3,
            Some((Invalid, "3 of 3 brokers")),
        ),
        local(
            "two of three brokers down",
            "target: {local: {}}\nmethod:\n  - {name: two down, action: {broker-failure: {brokers: 2, duration: 10s}}}\n",
            3,
            None,
        ),
        local(
            "three brokers down on a stack of four",
            "target: {local: {}}\nmethod:\n  - {name: three down, action: {broker-failure: {brokers: 3, duration: 10s}}}\n",
            4,
            None,
        ),
        local(
            "the only broker down",
            "target: {local: {}}\nmethod:\n  - {name: one down, action: {broker-failure: {brokers: 1, duration: 5s}}}\n",
            1,
            Some((Invalid, "1 of 1 brokers")),
        ),
        local(
            "every broker named by id",
            "target: {local: {}}\nmethod:\n  - {name: ids, action: {broker-failure: {ids: [1, 2, 3], duration: 5s}}}\n",
            3,
            Some((Invalid, "at least one must stay up")),
        ),
        local(
            "a broker the stack does not have",
            "target: {local: {}}\nmethod:\n  - {name: ids, action: {broker-failure: {ids: [4], duration: 5s}}}\n",
            3,
            Some((Invalid, "no broker 4")),
        ),
        local(
            "brokers and ids together",
            "target: {local: {}}\nmethod:\n  - {name: both, action: {broker-failure: {brokers: 1, ids: [1], duration: 5s}}}\n",
            3,
            Some((Invalid, "not both")),
        ),
        local(
            "a refused rollback",
            "target: {local: {}}\nmethod:\n  - {name: kill, action: {process-kill: {service: order}}}\nrollbacks:\n  - {name: worse, action: {broker-failure: {brokers: 3, duration: 1s}}}\n",
            3,
            Some((Invalid, "rollbacks[0] `worse`")),
        ),
        local(
            "a process kill and its faults",
            "target: {local: {}}\nmethod:\n  - {name: kill, action: {process-kill: {service: order}}, at: 3s}\n  - {name: slow, action: {faults: {service: product, latency: 100ms, duration: 2s}}}\nrollbacks:\n  - {name: clear, action: {faults-clear: {service: product}}}\n",
            3,
            None,
        ),
        local(
            "faults through an admin URL",
            "target: {local: {}}\nmethod:\n  - {name: slow, action: {faults: {admin_url: 'http://127.0.0.1:9/', latency: 100ms, duration: 2s}}}\n",
            3,
            None,
        ),
        Case {
            name: "a pod kill inside the allowlist",
            body: "KUBE\nmethod:\n  - {name: kill, action: {pod-kill: {selector: app=order}}}\n",
            brokers: 3,
            refused: None,
        },
        Case {
            name: "a pod kill in a namespace outside the allowlist",
            body: "KUBE\nmethod:\n  - {name: kill, action: {pod-kill: {namespace: payments, selector: app=order}}}\n",
            brokers: 3,
            refused: Some((Invalid, "not in allowed_namespaces")),
        },
        Case {
            name: "a pod kill in kube-system",
            body: "KUBE\nmethod:\n  - {name: kill, action: {pod-kill: {namespace: kube-system, selector: k8s-app=kube-dns}}}\n",
            brokers: 3,
            refused: Some((Invalid, "never allowed")),
        },
        Case {
            name: "kube-system as the target's namespace",
            body: "target:\n  kube: {namespace: kube-system, allowed_namespaces: [kube-system]}\nmethod:\n  - {name: kill, action: {pod-kill: {selector: k8s-app=kube-dns}}}\n",
            brokers: 3,
            refused: Some((Invalid, "never allowed")),
        },
        Case {
            name: "an empty allowlist",
            body: "target:\n  kube: {namespace: ecommerce, allowed_namespaces: []}\nmethod:\n  - {name: kill, action: {pod-kill: {selector: app=order}}}\n",
            brokers: 3,
            refused: Some((Invalid, "allowed_namespaces is empty")),
        },
        Case {
            name: "a percent above the blast radius",
            body: "KUBE\nmethod:\n  - {name: kill, action: {pod-kill: {selector: app=order, percent: 80}}}\n",
            brokers: 3,
            refused: Some((Invalid, "exceeds max_blast_radius_percent")),
        },
        Case {
            name: "a blast radius of zero",
            body: "target:\n  kube: {namespace: ecommerce, allowed_namespaces: [ecommerce], max_blast_radius_percent: 0}\nmethod:\n  - {name: kill, action: {pod-kill: {selector: app=order}}}\n",
            brokers: 3,
            refused: Some((Invalid, "max_blast_radius_percent must be in (0, 100]")),
        },
        Case {
            name: "a Kafka broker by ordinal in an allowed namespace",
            body: "KUBE\nmethod:\n  - {name: broker, action: {broker-failure: {namespace: kafka, statefulset: shop-kafka, ordinals: [1]}}}\n",
            brokers: 3,
            refused: None,
        },
        Case {
            name: "a statefulset without ordinals",
            body: "KUBE\nmethod:\n  - {name: broker, action: {broker-failure: {namespace: kafka, statefulset: shop-kafka}}}\n",
            brokers: 3,
            refused: Some((Invalid, "needs ordinals")),
        },
        Case {
            name: "kube faults on a service name instead of an admin URL",
            body: "KUBE\nmethod:\n  - {name: slow, action: {faults: {service: product, latency: 100ms, duration: 2s}}}\n",
            brokers: 3,
            refused: Some((Invalid, "admin_url")),
        },
    ]
}

type Verdict = Result<(), (Conclusion, String)>;

fn verdict(result: Result<(), ChaosError>) -> Verdict {
    result.map_err(|e| (e.conclusion(), e.to_string()))
}

fn every_action(experiment: &Experiment) -> impl Iterator<Item = &chaos::ActionSpec> {
    experiment
        .method
        .iter()
        .map(|s| &s.action)
        .chain(experiment.rollbacks.iter().map(|r| &r.action))
}

/// What `--dry-run` decides.
fn dry_run(experiment: &Experiment, brokers: i32) -> Verdict {
    verdict(
        match &experiment.target {
            Target::Local(_) => chaos::plan::dry_run(experiment, &StackShape::planned(brokers)),
            Target::Kube(spec) => KubeTarget::offline(spec)
                .and_then(|target| chaos::plan::dry_run(experiment, &target)),
        }
        .map(|_| ()),
    )
}

/// What binding decides in a real run, before anything is sent.
fn real_binding(experiment: &Experiment, live: &StackShape) -> Verdict {
    verdict(match &experiment.target {
        Target::Local(_) => every_action(experiment)
            .try_for_each(|spec| chaos::local::resolve(live, spec).map(|_| ())),
        Target::Kube(spec) => {
            // A connected client that must never be used: binding sends nothing.
            let unused = tower::service_fn(|_: http::Request<kube::client::Body>| async {
                Err::<http::Response<kube::client::Body>, tower::BoxError>(
                    "binding must not send requests".into(),
                )
            });
            let client = kube::Client::new(unused, spec.namespace.clone());
            KubeTarget::with_client(client, spec, false).and_then(|target| {
                every_action(experiment)
                    .try_for_each(|a| chaos::kube_actions::bind(&target, a).map(|_| ()))
            })
        }
    })
}

/// The shape a running stack with `brokers` brokers reports: the mock Kafka cluster is really
/// started, so the planned shape of the dry run is checked against what a stack has.
fn live_shape(brokers: i32) -> StackShape {
    let kafka = shop::stack::kafka::MockKafka::start(brokers).expect("mock Kafka starts");
    StackShape {
        brokers: kafka.broker_ids().collect(),
        services: shop::services::names()
            .into_iter()
            .map(String::from)
            .collect(),
        origin: "a running mock cluster".into(),
    }
}

#[tokio::test]
async fn the_dry_run_refuses_exactly_what_the_real_binding_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let mut live: HashMap<i32, StackShape> = HashMap::new();
    let mut failures = Vec::new();
    for (i, case) in cases().iter().enumerate() {
        let path = dir.path().join(format!("case-{i}.yaml"));
        let text = format!(
            "apiVersion: shakedown/v1\nkind: Experiment\nmetadata: {{name: case-{i}}}\n{}",
            case.body.replace("KUBE\n", KUBE)
        );
        std::fs::write(&path, text).unwrap();
        let experiment = match chaos::load(&path) {
            Ok(e) => e,
            Err(e) => {
                failures.push(format!("{}: the file does not load: {e}", case.name));
                continue;
            }
        };
        let shape = live
            .entry(case.brokers)
            .or_insert_with(|| live_shape(case.brokers));
        assert_eq!(
            shape.brokers,
            StackShape::planned(case.brokers).brokers,
            "the dry run's planned brokers are a running cluster's"
        );
        let dry = dry_run(&experiment, case.brokers);
        let real = real_binding(&experiment, shape);
        let code = |v: &Verdict| v.as_ref().err().map(|(c, _)| *c);
        if code(&dry) != code(&real) {
            failures.push(format!("{}: dry run {dry:?}, real run {real:?}", case.name));
            continue;
        }
        match (case.refused, &dry) {
            (None, Ok(())) => {}
            (Some((want, words)), Err((got, message))) => {
                if *got != want || !message.contains(words) {
                    failures.push(format!(
                        "{}: expected {want:?} saying {words:?}, got {got:?}: {message}",
                        case.name
                    ));
                }
                // Step refusals name the file and step; the target's own rules name the target.
                if !message.contains(&path.display().to_string())
                    && !message.contains("kube target:")
                {
                    failures.push(format!(
                        "{}: the refusal names no file: {message}",
                        case.name
                    ));
                }
            }
            (expected, got) => failures.push(format!(
                "{}: expected {expected:?}, both paths gave {got:?}",
                case.name
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn a_dry_run_names_the_checks_left_to_the_live_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kill.yaml");
    std::fs::write(
        &path,
        format!("apiVersion: shakedown/v1\nkind: Experiment\nmetadata: {{name: k}}\n{KUBE}method:\n  - {{name: kill two, action: {{pod-kill: {{selector: app=order, count: 2}}}}}}\n  - {{name: half, action: {{pod-kill: {{selector: app=cart, percent: 50}}}}}}\n"),
    )
    .unwrap();
    let experiment = chaos::load(&path).unwrap();
    let Target::Kube(spec) = &experiment.target else {
        unreachable!()
    };
    let target = KubeTarget::offline(spec).unwrap();
    let dry = chaos::plan::dry_run(&experiment, &target).unwrap();
    let deferred = dry.deferred.join("\n");
    assert!(
        deferred.contains("deleting 2 needs at least 4 matching pods"),
        "{deferred}"
    );
    assert!(
        deferred.contains("refused, exit 2, with [1, 3, 5, 7, 9] matching pods"),
        "{deferred}"
    );
    assert!(deferred.contains("has a controller"), "{deferred}");
    let text = dry.lines.join("\n");
    assert!(text.contains("deferred to the live target"), "{text}");
    assert!(text.contains("safety checks passed"), "{text}");

    // Locally, the broker count decides everything: nothing about it is deferred, and the plan
    // names the very brokers a real run would take down.
    let path = dir.path().join("brokers.yaml");
    std::fs::write(
        &path,
        "apiVersion: shakedown/v1\nkind: Experiment\nmetadata: {name: b}\ntarget: {local: {}}\nmethod:\n  - {name: two, action: {broker-failure: {brokers: 2, duration: 10s}}}\n",
    )
    .unwrap();
    let experiment = chaos::load(&path).unwrap();
    let dry = chaos::plan::dry_run(&experiment, &StackShape::planned(4)).unwrap();
    let text = dry.lines.join("\n");
    assert!(
        text.contains("take down mock Kafka brokers [3, 4]"),
        "{text}"
    );
    assert!(text.contains("stay(s) up"), "{text}");
    assert!(dry.deferred.is_empty(), "{:?}", dry.deferred);
    assert!(Path::new(&path).exists());
}
