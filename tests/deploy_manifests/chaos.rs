//! deploy/ and the chaos examples agree: every kube example in `chaos/experiments/` selects pods
//! that deploy/ actually creates (labels, namespace, enough replicas for its blast radius), its
//! broker failures fit the Strimzi layout `deploy/kafka-cluster` documents, and the chaos
//! overlay lets the runner reach the API server through the base's default-deny policies.
//! Without these checks an example drifts from the manifests and fails only in a live drill
//! ("no pod matched").

use std::collections::BTreeMap;
use std::path::Path;

use chaos::kube::safety::{allowed_pods, pods_to_pick};
use chaos::kube::{KubeBrokerFailure, KubeTargetSpec, PodKill};
use chaos::{ActionSpec, Target};
use serde_json::Value;

use super::{find, kind, name, namespace, of_kind, render, strs};

/// One requirement of a label selector (the equality-based forms kube accepts).
#[derive(Debug)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
    Absent(String),
}

/// Parses `a=b,c!=d,e,!f`. Set-based forms (`in`, `notin`) are not used by the examples; the test
/// says so rather than guess.
fn parse_selector(selector: &str) -> Vec<Requirement> {
    selector
        .split(',')
        .map(str::trim)
        .map(|part| {
            assert!(
                !part.contains(" in ") && !part.contains(" notin "),
                "selector {selector:?}: set-based requirement {part:?} is not checked here"
            );
            if let Some((k, v)) = part.split_once("!=") {
                Requirement::NotEquals(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                Requirement::Equals(k.trim().into(), v.trim().into())
            } else if let Some(k) = part.strip_prefix('!') {
                Requirement::Absent(k.trim().into())
            } else {
                Requirement::Exists(part.into())
            }
        })
        .collect()
}

fn matches(selector: &str, labels: &BTreeMap<String, String>) -> bool {
    parse_selector(selector).iter().all(|r| match r {
        Requirement::Equals(k, v) => labels.get(k) == Some(v),
        Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
        Requirement::Exists(k) => labels.contains_key(k),
        Requirement::Absent(k) => !labels.contains_key(k),
    })
}

fn labels_of(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// A group of identical pods deploy/ creates: its labels and the fewest replicas it may run
/// with (an HPA's minReplicas, else the workload's replicas).
#[derive(Debug)]
struct PodGroup {
    owner: String,
    namespace: String,
    labels: BTreeMap<String, String>,
    fewest: usize,
}

/// The pods of the Deployments and StatefulSets of the prod overlay.
fn workload_pods(docs: &[Value]) -> Vec<PodGroup> {
    docs.iter()
        .filter(|d| matches!(kind(d), "Deployment" | "StatefulSet"))
        .map(|d| {
            let hpa_min = of_kind(docs, "HorizontalPodAutoscaler")
                .into_iter()
                .find(|h| {
                    namespace(h) == namespace(d)
                        && h["spec"]["scaleTargetRef"]["kind"] == kind(d)
                        && h["spec"]["scaleTargetRef"]["name"] == name(d)
                })
                .map(|h| h["spec"]["minReplicas"].as_u64().unwrap_or(1));
            let replicas = hpa_min
                .or_else(|| d["spec"]["replicas"].as_u64())
                .unwrap_or(1);
            PodGroup {
                owner: format!("{} {}/{}", kind(d), namespace(d), name(d)),
                namespace: namespace(d).to_string(),
                labels: labels_of(&d["spec"]["template"]["metadata"]["labels"]),
                fewest: replicas as usize,
            }
        })
        .collect()
}

/// The pods Strimzi creates for each KafkaNodePool of `deploy/kafka-cluster`, with the labels
/// the operator gives them (it creates the pods, so the manifests cannot show them).
fn strimzi_pods(docs: &[Value]) -> Vec<PodGroup> {
    let kafkas = of_kind(docs, "Kafka");
    assert_eq!(kafkas.len(), 1, "deploy/kafka-cluster: one Kafka cluster");
    let cluster = name(kafkas[0]);
    of_kind(docs, "KafkaNodePool")
        .into_iter()
        .map(|pool| {
            assert_eq!(
                pool["metadata"]["labels"]["strimzi.io/cluster"],
                cluster,
                "KafkaNodePool {} belongs to another cluster",
                name(pool)
            );
            let roles = strs(&pool["spec"]["roles"]);
            let role = |r: &str| roles.contains(&r).to_string();
            let labels = BTreeMap::from([
                ("strimzi.io/cluster".to_string(), cluster.to_string()),
                ("strimzi.io/kind".to_string(), "Kafka".to_string()),
                ("strimzi.io/name".to_string(), format!("{cluster}-kafka")),
                ("strimzi.io/component-type".to_string(), "kafka".to_string()),
                ("strimzi.io/pool-name".to_string(), name(pool).to_string()),
                ("strimzi.io/broker-role".to_string(), role("broker")),
                ("strimzi.io/controller-role".to_string(), role("controller")),
            ]);
            PodGroup {
                owner: format!("StrimziPodSet {}/{cluster}-{}", namespace(pool), name(pool)),
                namespace: namespace(pool).to_string(),
                labels,
                fewest: pool["spec"]["replicas"].as_u64().expect("replicas") as usize,
            }
        })
        .collect()
}

fn selected<'a>(groups: &'a [PodGroup], ns: &str, selector: &str) -> Vec<&'a PodGroup> {
    groups
        .iter()
        .filter(|g| g.namespace == ns && matches(selector, &g.labels))
        .collect()
}

fn check_pod_kill(file: &str, spec: &KubeTargetSpec, action: &PodKill, pods: &[PodGroup]) {
    let ns = action.namespace.as_deref().unwrap_or(&spec.namespace);
    let what = format!("{file}: pod-kill {ns}/{}", action.selector);
    let groups = selected(pods, ns, &action.selector);
    assert!(
        !groups.is_empty(),
        "{what} selects no pod deploy/ creates; pods in {ns} carry {:?}",
        pods.iter()
            .filter(|g| g.namespace == ns)
            .map(|g| &g.labels)
            .collect::<Vec<_>>()
    );
    let fewest: usize = groups.iter().map(|g| g.fewest).sum();
    let picked = pods_to_pick(action, fewest);
    assert!(
        picked <= allowed_pods(fewest, spec.max_blast_radius_percent),
        "{what}: with the fewest pods deploy/ runs ({fewest}, {:?}), deleting {picked} exceeds \
         max_blast_radius_percent {}: the drill would be refused",
        groups.iter().map(|g| &g.owner).collect::<Vec<_>>(),
        spec.max_blast_radius_percent
    );
}

fn check_broker_failure(
    file: &str,
    spec: &KubeTargetSpec,
    action: &KubeBrokerFailure,
    brokers: &[PodGroup],
) {
    let ns = action.namespace.as_deref().unwrap_or(&spec.namespace);
    assert!(
        action.statefulset.is_none(),
        "{file}: broker-failure by statefulset: Strimzi runs brokers in StrimziPodSets \
         (deploy/kafka-cluster), select them by label"
    );
    let selector = action.selector.as_deref().expect("selector or statefulset");
    let what = format!("{file}: broker-failure {ns}/{selector}");
    let groups = selected(brokers, ns, selector);
    assert!(
        !groups.is_empty(),
        "{what} selects no Kafka pod of deploy/kafka-cluster; its pods are {:?}",
        brokers
            .iter()
            .map(|g| (&g.namespace, &g.labels))
            .collect::<Vec<_>>()
    );
    for g in &groups {
        assert_eq!(
            g.labels["strimzi.io/broker-role"], "true",
            "{what} also selects {}, which runs no broker",
            g.owner
        );
        assert_eq!(
            g.labels["strimzi.io/controller-role"], "false",
            "{what} also selects KRaft controllers ({}): losing them is a metadata outage, \
             not a broker failure",
            g.owner
        );
    }
    let matching: usize = groups.iter().map(|g| g.fewest).sum();
    let count = action.count.unwrap_or(1) as usize;
    assert!(
        count <= allowed_pods(matching, spec.max_blast_radius_percent),
        "{what}: deleting {count} of {matching} brokers exceeds max_blast_radius_percent {}",
        spec.max_blast_radius_percent
    );
    assert!(count < matching, "{what}: would delete every broker");
}

#[test]
fn chaos_examples_select_pods_that_deploy_creates() {
    let Some(prod) = render("overlays/prod") else {
        return;
    };
    let Some(kafka) = render("kafka-cluster") else {
        return;
    };
    let pods = workload_pods(&prod);
    let brokers = strimzi_pods(&kafka);
    // The topics of deploy/kafka belong to the cluster deploy/kafka-cluster defines.
    let cluster = name(of_kind(&kafka, "Kafka")[0]);
    for topic in of_kind(&prod, "KafkaTopic") {
        assert_eq!(topic["metadata"]["labels"]["strimzi.io/cluster"], cluster);
        assert_eq!(namespace(topic), namespace(of_kind(&kafka, "Kafka")[0]));
    }

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("chaos/experiments");
    let mut checked = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        let experiment = chaos::load(&path).unwrap_or_else(|e| panic!("{e}"));
        // Local examples run against the embedded stack, not deploy/.
        let Target::Kube(spec) = &experiment.target else {
            continue;
        };
        let actions = experiment
            .method
            .iter()
            .map(|s| &s.action)
            .chain(experiment.rollbacks.iter().map(|r| &r.action));
        for action in actions {
            match action {
                ActionSpec::PodKill(a) => check_pod_kill(&file, spec, a, &pods),
                ActionSpec::KubeBrokerFailure(a) => check_broker_failure(&file, spec, a, &brokers),
                other => panic!(
                    "{file}: {other:?}: deploy/ keeps the admin API on 127.0.0.1 (no port), so \
                     faults cannot be reached in the cluster"
                ),
            }
            *checked.entry(file.clone()).or_insert(0) += 1;
        }
    }
    assert_eq!(
        checked.keys().map(String::as_str).collect::<Vec<_>>(),
        ["broker-failure.yaml", "pod-kill-order.yaml"],
        "the kube examples checked"
    );
}

/// Whether `rule` admits traffic on `port`/`protocol` to any destination (no `to`) or to `peer`.
fn admits(rule: &Value, protocol: &str, port: u64, peer: Option<&dyn Fn(&Value) -> bool>) -> bool {
    let port_ok = rule["ports"].as_array().is_some_and(|ports| {
        ports
            .iter()
            .any(|p| p["port"] == port && p["protocol"].as_str().unwrap_or("TCP") == protocol)
    });
    let to_ok = match rule["to"].as_array() {
        None => true,
        Some(to) if to.is_empty() => true,
        Some(to) => peer.is_some_and(|f| to.iter().any(f)),
    };
    port_ok && to_ok
}

#[test]
fn the_chaos_runner_may_reach_the_api_server_and_dns() {
    let Some(chaos) = render("chaos") else { return };
    let Some(base) = render("base") else { return };
    let runner = BTreeMap::from([(
        "app.kubernetes.io/name".to_string(),
        "shakedown-chaos".to_string(),
    )]);
    let sa = find(&chaos, "ServiceAccount", "shakedown-chaos").expect("ServiceAccount");

    // Why the policy is needed: the base denies all egress of every pod in the namespace.
    let denied = of_kind(&base, "NetworkPolicy").into_iter().any(|p| {
        p["spec"]["podSelector"]
            .as_object()
            .is_some_and(|s| s.is_empty())
            && strs(&p["spec"]["policyTypes"]).contains(&"Egress")
            && p["spec"]["egress"].is_null()
    });
    assert!(
        denied,
        "the base no longer denies egress: revisit this test"
    );

    let policies: Vec<&Value> = of_kind(&chaos, "NetworkPolicy")
        .into_iter()
        .filter(|p| namespace(p) == namespace(sa))
        .filter(|p| {
            let selector = &p["spec"]["podSelector"];
            selector["matchExpressions"].is_null()
                && labels_of(&selector["matchLabels"])
                    .iter()
                    .all(|(k, v)| runner.get(k) == Some(v))
        })
        .filter(|p| strs(&p["spec"]["policyTypes"]).contains(&"Egress"))
        .collect();
    assert!(
        !policies.is_empty(),
        "no egress NetworkPolicy in {} selects the runner's pods {runner:?}",
        namespace(sa)
    );
    let rules: Vec<&Value> = policies
        .iter()
        .filter_map(|p| p["spec"]["egress"].as_array())
        .flatten()
        .collect();
    for port in [443, 6443] {
        assert!(
            rules.iter().any(|r| admits(r, "TCP", port, None)),
            "the runner cannot reach the API server on TCP {port}: {rules:?}"
        );
    }
    let kube_dns = |peer: &Value| {
        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] == "kube-system"
            && peer["podSelector"]["matchLabels"]["k8s-app"] == "kube-dns"
    };
    for protocol in ["UDP", "TCP"] {
        assert!(
            rules
                .iter()
                .any(|r| admits(r, protocol, 53, Some(&kube_dns))),
            "the runner cannot resolve names ({protocol} 53 to kube-dns): {rules:?}"
        );
    }
    // Nothing else is opened to the world: only the API server ports go to any destination.
    for rule in &rules {
        if rule["to"].as_array().is_none_or(|t| t.is_empty()) {
            let ports: Vec<&Value> = rule["ports"].as_array().into_iter().flatten().collect();
            assert!(
                !ports.is_empty() && ports.iter().all(|p| p["port"] == 443 || p["port"] == 6443),
                "egress to anywhere on other ports: {rule}"
            );
        }
    }
}
