//! The Kubernetes manifests in `deploy/`, rendered with `kubectl kustomize` and checked for the
//! properties the platform relies on: every service of `shop::services::ALL` has a hardened
//! Deployment (probes, resources, non-root, read-only root, no capabilities) with its Service,
//! PodDisruptionBudget and ServiceAccount; the HPAs follow the platform seeds; no image is
//! `latest`; secrets are referenced, never committed (except the dev overlay's fake ones); the
//! chaos RBAC is namespaced and deletes nothing but pods; the load coordinator may manage Jobs
//! and read pods in its namespace only; and promtool accepts the Prometheus configuration and
//! rules. The chaos examples against deploy/ are in `deploy_manifests/chaos.rs`, the load
//! coordinator and the workers it creates against deploy/load in `deploy_manifests/load.rs`, the
//! offline schema check of every kustomization in `deploy_manifests/schemas.rs`.
//!
//! Tests that need `kubectl` or `promtool` print a message and pass when the tool is missing,
//! except in CI (`CI=true`), where they fail naming it (`slo::testing::missing_tool`).

#[path = "deploy_manifests/chaos.rs"]
mod chaos_examples;
mod common;
#[path = "deploy_manifests/load.rs"]
mod load;
#[path = "deploy_manifests/schemas.rs"]
mod schemas;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    process::{Command, Output},
};

use serde_json::{Value, json};
use shop::services::{ALL, ServiceSpec};

const NAMESPACE: &str = "ecommerce";
const OVERLAYS: [&str; 2] = ["overlays/dev", "overlays/prod"];

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

fn tool_available(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn run(program: &str, args: &[&str], dir: &Path) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("running {program} {args:?}: {e}"))
}

/// The resources of `deploy/<dir>` rendered by `kubectl kustomize`, or `None` (with a message)
/// when kubectl is not installed.
fn render(dir: &str) -> Option<Vec<Value>> {
    let text = render_text(dir)?;
    Some(parse(dir, &text))
}

/// The resources of a rendered stream, each a JSON value.
fn parse(dir: &str, text: &str) -> Vec<Value> {
    let docs = split_documents(text)
        .iter()
        .map(|doc| {
            serde_yaml_ng::from_str::<Value>(doc)
                .unwrap_or_else(|e| panic!("deploy/{dir}: invalid YAML document: {e}\n{doc}"))
        })
        .filter(|doc| !doc.is_null())
        .collect::<Vec<_>>();
    assert!(!docs.is_empty(), "deploy/{dir} renders no resource");
    docs
}

/// `kubectl kustomize deploy/<dir>` as text, or `None` (with a message) without kubectl.
fn render_text(dir: &str) -> Option<String> {
    if !tool_available("kubectl", &["version", "--client"]) {
        slo::testing::missing_tool(
            "kubectl",
            &format!("needed to render deploy/{dir}; scripts/setup.sh installs it"),
        );
        return None;
    }
    let out = run("kubectl", &["kustomize", dir], &deploy_dir());
    assert!(
        out.status.success(),
        "kubectl kustomize deploy/{dir} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).expect("kustomize output is UTF-8"))
}

/// The documents of a multi-document YAML stream (kustomize separates them with `---` lines;
/// block scalars are indented, so such a line never belongs to a value).
fn split_documents(text: &str) -> Vec<String> {
    let mut docs = vec![String::new()];
    for line in text.lines() {
        if line == "---" {
            docs.push(String::new());
        } else {
            let doc = docs.last_mut().unwrap();
            doc.push_str(line);
            doc.push('\n');
        }
    }
    docs.retain(|d| !d.trim().is_empty());
    docs
}

fn kind(doc: &Value) -> &str {
    doc["kind"].as_str().unwrap_or_default()
}

fn name(doc: &Value) -> &str {
    doc["metadata"]["name"].as_str().unwrap_or_default()
}

fn namespace(doc: &Value) -> &str {
    doc["metadata"]["namespace"].as_str().unwrap_or_default()
}

fn of_kind<'a>(docs: &'a [Value], k: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| kind(d) == k).collect()
}

fn find<'a>(docs: &'a [Value], k: &str, n: &str) -> Option<&'a Value> {
    docs.iter().find(|d| kind(d) == k && name(d) == n)
}

fn strs(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Every container of a pod template (init containers included).
fn containers(pod_spec: &Value) -> Vec<&Value> {
    ["initContainers", "containers"]
        .iter()
        .filter_map(|k| pod_spec[*k].as_array())
        .flatten()
        .collect()
}

fn env_value<'a>(container: &'a Value, var: &str) -> Option<&'a Value> {
    container["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == var)
}

/// Whether every label of `selector` (matchLabels) is on `labels`.
fn selects(selector: &Value, labels: &Value) -> bool {
    let Some(wanted) = selector["matchLabels"]
        .as_object()
        .or_else(|| selector.as_object())
    else {
        return false;
    };
    !wanted.is_empty() && wanted.iter().all(|(k, v)| labels[k] == *v)
}

/// The platform's pod hardening: non-root, read-only root filesystem, no privilege escalation,
/// every capability dropped, RuntimeDefault seccomp, resources set, writable /tmp on an emptyDir.
fn assert_hardened_pod(what: &str, pod_spec: &Value) {
    let pod_sc = &pod_spec["securityContext"];
    assert_eq!(
        pod_sc["seccompProfile"]["type"], "RuntimeDefault",
        "{what}: seccomp"
    );
    assert_eq!(
        pod_spec["automountServiceAccountToken"], false,
        "{what}: API token mounted"
    );
    let volumes = pod_spec["volumes"].as_array().cloned().unwrap_or_default();
    let empty_dirs: BTreeSet<&str> = volumes
        .iter()
        .filter(|v| v.get("emptyDir").is_some())
        .filter_map(|v| v["name"].as_str())
        .collect();
    for c in containers(pod_spec) {
        let cname = c["name"].as_str().unwrap_or_default();
        let sc = &c["securityContext"];
        assert!(
            sc["runAsNonRoot"] == true || pod_sc["runAsNonRoot"] == true,
            "{what}/{cname}: runAsNonRoot"
        );
        assert_eq!(
            sc["readOnlyRootFilesystem"], true,
            "{what}/{cname}: readOnlyRootFilesystem"
        );
        assert_eq!(
            sc["allowPrivilegeEscalation"], false,
            "{what}/{cname}: allowPrivilegeEscalation"
        );
        assert!(sc["privileged"] != true, "{what}/{cname}: privileged");
        assert!(
            strs(&sc["capabilities"]["drop"]).contains(&"ALL"),
            "{what}/{cname}: capabilities must drop ALL"
        );
        assert!(
            sc["capabilities"]["add"].is_null(),
            "{what}/{cname}: adds capabilities"
        );
        for res in ["requests", "limits"] {
            for r in ["cpu", "memory"] {
                assert!(
                    c["resources"][res][r].is_string(),
                    "{what}/{cname}: resources.{res}.{r} missing"
                );
            }
        }
        let tmp = c["volumeMounts"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["mountPath"] == "/tmp"))
            .unwrap_or_else(|| panic!("{what}/{cname}: no writable /tmp"));
        assert!(
            empty_dirs.contains(tmp["name"].as_str().unwrap_or_default()),
            "{what}/{cname}: /tmp is not an emptyDir"
        );
    }
}

fn deployment<'a>(docs: &'a [Value], spec: &ServiceSpec) -> &'a Value {
    docs.iter()
        .find(|d| kind(d) == "Deployment" && name(d) == spec.name && namespace(d) == NAMESPACE)
        .unwrap_or_else(|| panic!("no Deployment {NAMESPACE}/{}", spec.name))
}

#[test]
fn every_service_has_a_hardened_deployment_with_service_pdb_and_account() {
    for overlay in OVERLAYS.iter().chain(&["base"]) {
        let Some(docs) = render(overlay) else { return };
        let expected: BTreeSet<&str> = ALL.iter().map(|s| s.name).collect();
        let deployed: BTreeSet<&str> = of_kind(&docs, "Deployment").into_iter().map(name).collect();
        assert_eq!(
            deployed, expected,
            "{overlay}: Deployments vs shop::services::ALL"
        );

        for spec in ALL {
            let what = format!("{overlay}: Deployment {}", spec.name);
            let dep = deployment(&docs, spec);
            let template = &dep["spec"]["template"];
            let labels = &template["metadata"]["labels"];
            let pod = &template["spec"];
            assert!(
                selects(&dep["spec"]["selector"], labels),
                "{what}: selector vs pod labels"
            );
            assert_hardened_pod(&what, pod);
            assert!(
                !pod["topologySpreadConstraints"]
                    .as_array()
                    .is_none_or(Vec::is_empty),
                "{what}: no topologySpreadConstraints"
            );

            let cs = pod["containers"].as_array().expect("containers");
            assert_eq!(cs.len(), 1, "{what}: one container");
            let c = &cs[0];
            assert_eq!(strs(&c["args"]), ["serve", spec.name], "{what}: args");
            let image = c["image"].as_str().unwrap_or_default();
            assert!(image.contains("shakedown"), "{what}: image {image}");
            let port = &c["ports"][0];
            assert_eq!(port["containerPort"], spec.port, "{what}: containerPort");
            assert_eq!(port["name"], "http", "{what}: port name");
            assert!(
                c["ports"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|p| p["containerPort"] != 9901),
                "{what}: the admin port must not be exposed"
            );

            for (probe, path) in [("livenessProbe", "/health"), ("readinessProbe", "/ready")] {
                let get = &c[probe]["httpGet"];
                assert_eq!(get["path"], path, "{what}: {probe} path");
                assert!(
                    get["port"] == "http" || get["port"] == spec.port,
                    "{what}: {probe} port {}",
                    get["port"]
                );
            }
            // /ready checks each dependency with a 2 s timeout.
            assert!(
                c["readinessProbe"]["timeoutSeconds"].as_u64().unwrap_or(1) > 2,
                "{what}: readiness timeout must exceed the 2 s dependency checks"
            );

            let env = |var: &str| env_value(c, var);
            assert_eq!(
                env("LISTEN_ADDR").map(|e| e["value"].clone()),
                Some(Value::from(format!("0.0.0.0:{}", spec.port))),
                "{what}: LISTEN_ADDR"
            );
            let admin = env("ADMIN_ADDR")
                .and_then(|e| e["value"].as_str())
                .unwrap_or_default();
            assert!(
                admin.starts_with("127.0.0.1:"),
                "{what}: ADMIN_ADDR {admin:?} must be loopback"
            );
            assert_eq!(
                env("KAFKA_BOOTSTRAP_SERVERS").is_some(),
                spec.kafka,
                "{what}: KAFKA_BOOTSTRAP_SERVERS iff the service uses Kafka"
            );
            let data_dir = env("DATA_DIR")
                .and_then(|e| e["value"].as_str())
                .expect("DATA_DIR");
            assert!(
                c["volumeMounts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|m| m["mountPath"] == data_dir),
                "{what}: DATA_DIR {data_dir} is not a mounted volume"
            );

            let ann = &template["metadata"]["annotations"];
            assert_eq!(
                ann["prometheus.io/scrape"], "true",
                "{what}: scrape annotation"
            );
            assert_eq!(
                ann["prometheus.io/port"],
                spec.port.to_string(),
                "{what}: scrape port"
            );
            assert_eq!(ann["prometheus.io/path"], "/metrics", "{what}: scrape path");

            let sa_name = pod["serviceAccountName"]
                .as_str()
                .expect("serviceAccountName");
            let sa = find(&docs, "ServiceAccount", sa_name)
                .unwrap_or_else(|| panic!("{what}: no ServiceAccount {sa_name}"));
            assert_eq!(
                sa["automountServiceAccountToken"], false,
                "{what}: ServiceAccount token"
            );

            let svc = find(&docs, "Service", spec.name)
                .unwrap_or_else(|| panic!("{what}: no Service {}", spec.name));
            assert!(
                selects(&svc["spec"]["selector"], labels),
                "{what}: Service selector"
            );
            let svc_port = &svc["spec"]["ports"][0];
            assert_eq!(svc_port["port"], spec.port, "{what}: Service port");
            assert!(
                svc_port["targetPort"] == "http" || svc_port["targetPort"] == spec.port,
                "{what}: Service targetPort"
            );

            let pdb = of_kind(&docs, "PodDisruptionBudget")
                .into_iter()
                .find(|p| selects(&p["spec"]["selector"], labels))
                .unwrap_or_else(|| panic!("{what}: no PodDisruptionBudget"));
            if *overlay == "overlays/dev" {
                // One replica in dev: a minAvailable of 1 would block node drains.
                assert_eq!(pdb["spec"]["maxUnavailable"], 1, "{what}: dev PDB");
            } else {
                assert_eq!(pdb["spec"]["minAvailable"], 1, "{what}: PDB minAvailable");
            }
        }
    }
}

fn hpa<'a>(docs: &'a [Value], n: &str) -> &'a Value {
    find(docs, "HorizontalPodAutoscaler", n).unwrap_or_else(|| panic!("no HPA {n}"))
}

/// (resource, averageUtilization) of each Resource metric of an HPA.
fn hpa_targets(hpa: &Value) -> BTreeMap<String, u64> {
    hpa["spec"]["metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .map(|m| {
            assert_eq!(m["type"], "Resource");
            assert_eq!(m["resource"]["target"]["type"], "Utilization");
            let r = m["resource"]["name"].as_str().unwrap().to_string();
            (
                r,
                m["resource"]["target"]["averageUtilization"]
                    .as_u64()
                    .unwrap(),
            )
        })
        .collect()
}

/// (type, value, periodSeconds) of each scaling policy of a behavior direction.
fn policies(rules: &Value) -> BTreeSet<(String, u64, u64)> {
    rules["policies"]
        .as_array()
        .expect("policies")
        .iter()
        .map(|p| {
            (
                p["type"].as_str().unwrap().to_string(),
                p["value"].as_u64().unwrap(),
                p["periodSeconds"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn policy_set(items: &[(&str, u64, u64)]) -> BTreeSet<(String, u64, u64)> {
    items
        .iter()
        .map(|(t, v, p)| (t.to_string(), *v, *p))
        .collect()
}

fn targets(items: &[(&str, u64)]) -> BTreeMap<String, u64> {
    items.iter().map(|(r, v)| (r.to_string(), *v)).collect()
}

#[test]
fn autoscalers_follow_the_platform_seeds() {
    let Some(docs) = render("overlays/prod") else {
        return;
    };

    let order = hpa(&docs, "order");
    assert_eq!(
        (
            order["spec"]["minReplicas"].as_u64(),
            order["spec"]["maxReplicas"].as_u64()
        ),
        (Some(2), Some(10))
    );
    assert_eq!(hpa_targets(order), targets(&[("cpu", 70), ("memory", 80)]));
    let up = &order["spec"]["behavior"]["scaleUp"];
    assert_eq!(
        up["stabilizationWindowSeconds"], 0,
        "order scaleUp stabilization"
    );
    assert_eq!(up["selectPolicy"], "Max", "order scaleUp selectPolicy");
    assert_eq!(
        policies(up),
        policy_set(&[("Percent", 100, 30), ("Pods", 2, 30)])
    );
    let down = &order["spec"]["behavior"]["scaleDown"];
    assert_eq!(
        down["stabilizationWindowSeconds"], 300,
        "order scaleDown stabilization"
    );
    assert_eq!(policies(down), policy_set(&[("Percent", 50, 60)]));

    let payment = hpa(&docs, "payment");
    assert_eq!(
        (
            payment["spec"]["minReplicas"].as_u64(),
            payment["spec"]["maxReplicas"].as_u64()
        ),
        (Some(2), Some(8))
    );
    assert_eq!(
        hpa_targets(payment),
        targets(&[("cpu", 70), ("memory", 80)])
    );
    let up = &payment["spec"]["behavior"]["scaleUp"];
    assert_eq!(
        up["stabilizationWindowSeconds"], 30,
        "payment scaleUp stabilization"
    );
    assert!(up["selectPolicy"].is_null() || up["selectPolicy"] == "Max");
    assert_eq!(
        policies(up),
        policy_set(&[("Percent", 50, 30), ("Pods", 1, 30)])
    );
    let down = &payment["spec"]["behavior"]["scaleDown"];
    assert_eq!(
        down["stabilizationWindowSeconds"], 300,
        "payment scaleDown stabilization"
    );
    assert_eq!(policies(down), policy_set(&[("Percent", 25, 60)]));

    // Product: memory-based with the seeds' "custom policies for stable scaling" (numbers in
    // deploy/base/services/product/hpa.yaml), against the seeds' larger memory request.
    let product = hpa(&docs, "product");
    let up = &product["spec"]["behavior"]["scaleUp"];
    assert_eq!(
        up["stabilizationWindowSeconds"], 60,
        "product scaleUp stabilization"
    );
    assert_eq!(up["selectPolicy"], "Max", "product scaleUp selectPolicy");
    assert_eq!(
        policies(up),
        policy_set(&[("Percent", 50, 60), ("Pods", 2, 60)])
    );
    let down = &product["spec"]["behavior"]["scaleDown"];
    assert_eq!(
        down["stabilizationWindowSeconds"], 600,
        "product scaleDown stabilization"
    );
    assert_eq!(policies(down), policy_set(&[("Pods", 1, 120)]));
    let product_spec = shop::services::find("product").expect("the product service");
    let resources =
        &containers(&deployment(&docs, product_spec)["spec"]["template"]["spec"])[0]["resources"];
    assert_eq!(
        (
            &resources["requests"]["cpu"],
            &resources["requests"]["memory"],
            &resources["limits"]["cpu"],
            &resources["limits"]["memory"]
        ),
        (
            &json!("100m"),
            &json!("256Mi"),
            &json!("500m"),
            &json!("1Gi")
        ),
        "product resources (seeds)"
    );

    for (n, min, max, metrics) in [
        ("product", 2, 8, targets(&[("memory", 80)])),
        ("api-gateway", 1, 5, targets(&[("cpu", 70)])),
        ("user", 1, 3, targets(&[("cpu", 70)])),
    ] {
        let h = hpa(&docs, n);
        assert_eq!(h["spec"]["minReplicas"], min, "{n} minReplicas");
        assert_eq!(h["spec"]["maxReplicas"], max, "{n} maxReplicas");
        assert_eq!(hpa_targets(h), metrics, "{n} metrics");
    }

    for overlay in OVERLAYS {
        let Some(docs) = render(overlay) else { return };
        let scaled: BTreeSet<&str> = of_kind(&docs, "HorizontalPodAutoscaler")
            .into_iter()
            .map(|h| {
                let target = &h["spec"]["scaleTargetRef"];
                assert_eq!(
                    target["kind"],
                    "Deployment",
                    "{overlay}: HPA {} target kind",
                    name(h)
                );
                assert_eq!(target["name"], name(h), "{overlay}: HPA {} target", name(h));
                if overlay == "overlays/dev" {
                    assert_eq!(
                        h["spec"]["minReplicas"],
                        1,
                        "{overlay}: HPA {} min",
                        name(h)
                    );
                }
                name(h)
            })
            .collect();
        assert_eq!(
            scaled,
            BTreeSet::from(["api-gateway", "order", "payment", "product", "user"])
        );
        for dep in of_kind(&docs, "Deployment") {
            let replicas = &dep["spec"]["replicas"];
            if scaled.contains(name(dep)) {
                // Owned by the HPA: a replicas field would reset it on every apply.
                assert!(
                    replicas.is_null(),
                    "{overlay}: {} sets replicas under an HPA",
                    name(dep)
                );
            } else {
                let want = if overlay == "overlays/dev" { 1 } else { 2 };
                assert_eq!(*replicas, want, "{overlay}: {} replicas", name(dep));
            }
        }
    }
}

/// The tag of an image reference (`None` without one), and whether it is pinned by digest.
fn image_tag(image: &str) -> (Option<&str>, bool) {
    let (reference, digest) = match image.split_once('@') {
        Some((r, _)) => (r, true),
        None => (image, false),
    };
    let last = reference.rsplit('/').next().unwrap_or(reference);
    (last.split_once(':').map(|(_, tag)| tag), digest)
}

/// The image an overlay's kustomization sets for `shakedown` (`newName:newTag[@digest]`).
fn overlay_image(overlay: &str) -> String {
    let path = deploy_dir().join(overlay).join("kustomization.yaml");
    let k: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let entry = k["images"]
        .as_array()
        .and_then(|i| i.iter().find(|i| i["name"] == "shakedown"))
        .unwrap_or_else(|| panic!("{overlay}: no images entry for shakedown"));
    let mut image = format!(
        "{}:{}",
        entry["newName"].as_str().expect("newName"),
        entry["newTag"].as_str().expect("newTag")
    );
    if let Some(digest) = entry["digest"].as_str() {
        image = format!("{image}@{digest}");
    }
    image
}

#[test]
fn images_are_pinned_never_latest() {
    assert_eq!(image_tag("registry.example.com:5000/a/b"), (None, false));
    assert_eq!(
        image_tag("r.example.com/b:0.1.0@sha256:00"),
        (Some("0.1.0"), true)
    );
    for dir in [
        "overlays/dev",
        "overlays/prod",
        "base",
        "load",
        "load/reports-reader",
    ] {
        let Some(docs) = render(dir) else { return };
        let mut seen = 0;
        for doc in &docs {
            let pod = match kind(doc) {
                "Pod" => &doc["spec"],
                "Deployment" | "Job" | "StatefulSet" | "DaemonSet" => {
                    &doc["spec"]["template"]["spec"]
                }
                "CronJob" => &doc["spec"]["jobTemplate"]["spec"]["template"]["spec"],
                _ => continue,
            };
            for c in containers(pod) {
                let image = c["image"].as_str().unwrap_or_default();
                let (tag, digest) = image_tag(image);
                assert!(
                    tag.is_some() || digest,
                    "{dir}: {} image {image:?} has no tag (= latest)",
                    name(doc)
                );
                assert_ne!(tag, Some("latest"), "{dir}: {} uses {image}", name(doc));
                seen += 1;
            }
        }
        assert!(seen > 0, "{dir}: no container found");
    }

    // The overlay's `images:` entry must be what ends up in the pods (it matches on the name the
    // base uses, so a base that renamed the image would make the pin a silent no-op).
    for overlay in OVERLAYS {
        let Some(docs) = render(overlay) else { return };
        let want = overlay_image(overlay);
        for dep in of_kind(&docs, "Deployment") {
            for c in containers(&dep["spec"]["template"]["spec"]) {
                assert_eq!(c["image"], want.as_str(), "{overlay}: {}", name(dep));
            }
        }
    }
}

/// The keys the base documents for the Secret shop-secrets.
fn documented_secret_keys() -> BTreeSet<String> {
    let text = std::fs::read_to_string(deploy_dir().join("base/config/shop-secrets.keys")).unwrap();
    text.lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// (secret or config map name, key) of every secretKeyRef / configMapKeyRef.
fn key_refs<'a>(docs: &'a [Value], reference: &str) -> Vec<(&'a str, &'a str)> {
    of_kind(docs, "Deployment")
        .into_iter()
        .flat_map(|d| containers(&d["spec"]["template"]["spec"]))
        .filter_map(|c| c["env"].as_array())
        .flatten()
        .filter_map(|e| {
            let r = &e["valueFrom"][reference];
            Some((r["name"].as_str()?, r["key"].as_str()?))
        })
        .collect()
}

#[test]
fn secrets_are_referenced_not_committed() {
    let documented = documented_secret_keys();
    assert!(documented.contains("jwt-secret"), "{documented:?}");
    for dir in ["base", "overlays/prod"] {
        let Some(docs) = render(dir) else { return };
        assert!(
            of_kind(&docs, "Secret").is_empty(),
            "{dir} must not render a Secret"
        );
        let refs = key_refs(&docs, "secretKeyRef");
        assert!(!refs.is_empty(), "{dir}: no secretKeyRef");
        for (secret, key) in refs {
            assert_eq!(secret, "shop-secrets", "{dir}: secretKeyRef to {secret}");
            assert!(
                documented.contains(key),
                "{dir}: key {key} not in base/config/shop-secrets.keys"
            );
        }
    }

    let Some(dev) = render("overlays/dev") else {
        return;
    };
    for (secret, key) in key_refs(&dev, "secretKeyRef") {
        let s = find(&dev, "Secret", secret).unwrap_or_else(|| panic!("dev: no Secret {secret}"));
        assert!(secret.starts_with("shop-secrets"), "dev: {secret}");
        assert!(
            s["data"][key].is_string(),
            "dev: Secret {secret} has no key {key}"
        );
    }
    for dir in ["overlays/dev", "overlays/prod"] {
        let Some(docs) = render(dir) else { return };
        for (cm, key) in key_refs(&docs, "configMapKeyRef") {
            let map =
                find(&docs, "ConfigMap", cm).unwrap_or_else(|| panic!("{dir}: no ConfigMap {cm}"));
            assert!(
                map["data"][key].is_string(),
                "{dir}: ConfigMap {cm} has no key {key}"
            );
        }
    }
}

#[test]
fn peer_urls_and_network_policies_match_the_services() {
    let Some(docs) = render("overlays/prod") else {
        return;
    };
    let peers = docs
        .iter()
        .find(|d| kind(d) == "ConfigMap" && name(d).starts_with("shop-peers"))
        .expect("ConfigMap shop-peers");
    for spec in ALL {
        let var = format!("{}_URL", spec.name.to_uppercase().replace('-', "_"));
        assert_eq!(
            peers["data"][&var],
            format!("http://{}:{}", spec.name, spec.port),
            "{var}"
        );
    }

    let policies = of_kind(&docs, "NetworkPolicy");
    let deny = policies.iter().any(|p| {
        p["spec"]["podSelector"]
            .as_object()
            .is_some_and(|s| s.is_empty())
            && strs(&p["spec"]["policyTypes"]) == ["Ingress", "Egress"]
            && p["spec"]["ingress"].is_null()
            && p["spec"]["egress"].is_null()
    });
    assert!(deny, "no default-deny NetworkPolicy for ingress and egress");
    let gateway = find(&docs, "Deployment", "api-gateway").unwrap();
    let gateway_labels = &gateway["spec"]["template"]["metadata"]["labels"];
    let open_to_all = policies.iter().any(|p| {
        selects(&p["spec"]["podSelector"], gateway_labels)
            && p["spec"]["ingress"].as_array().is_some_and(|rules| {
                rules
                    .iter()
                    .any(|r| r["from"].is_null() && r["ports"][0]["port"] == 8080)
            })
    });
    assert!(
        open_to_all,
        "api-gateway is not reachable on 8080 from outside the namespace"
    );
}

/// The gateway balances its gRPC calls over every pod of a backend (`shop::platform::balance`),
/// which needs a name that resolves to every ready pod: each gRPC backend has a headless Service
/// next to its ClusterIP one (kept for the other callers), and the gateway's peer URLs name it.
#[test]
fn the_gateway_reaches_grpc_backends_through_headless_services() {
    use shop::services::Protocol;
    for overlay in OVERLAYS {
        let Some(docs) = render(overlay) else { return };
        let gateway = find(&docs, "Deployment", "api-gateway").expect("Deployment api-gateway");
        let container = &containers(&gateway["spec"]["template"]["spec"])[0];
        for spec in ALL.iter().filter(|s| s.protocol == Protocol::Grpc) {
            let what = format!("{overlay}: {}", spec.name);
            let headless = format!("{}-headless", spec.name);
            let var = format!("{}_URL", spec.name.to_uppercase().replace('-', "_"));
            assert_eq!(
                env_value(container, &var).and_then(|e| e["value"].as_str()),
                Some(format!("http://{headless}:{}", spec.port).as_str()),
                "{what}: the gateway's {var}"
            );
            let svc = find(&docs, "Service", &headless)
                .unwrap_or_else(|| panic!("{what}: no Service {headless}"));
            assert_eq!(
                svc["spec"]["clusterIP"], "None",
                "{what}: {headless} is not headless"
            );
            assert_ne!(
                svc["spec"]["publishNotReadyAddresses"], true,
                "{what}: {headless} would resolve to pods that are not ready"
            );
            let pods = &deployment(&docs, spec)["spec"]["template"]["metadata"]["labels"];
            assert!(
                selects(&svc["spec"]["selector"], pods),
                "{what}: {headless} selector"
            );
            let port = &svc["spec"]["ports"][0];
            assert_eq!(port["port"], spec.port, "{what}: {headless} port");
            assert_eq!(port["targetPort"], "http", "{what}: {headless} targetPort");
            assert!(
                find(&docs, "Service", spec.name).is_some_and(|s| s["spec"]["clusterIP"] != "None"),
                "{what}: the ClusterIP Service {} the other callers use is gone",
                spec.name
            );
        }
    }
}

/// Order, offer and payment balance their gRPC calls as the gateway does, so they too name the
/// headless Services of their gRPC peers: an HPA scale-out of inventory or order gets their calls.
#[test]
fn grpc_callers_reach_their_peers_through_headless_services() {
    let callers: [(&str, &[&str]); 3] = [
        ("order", &["offer", "inventory", "payment"]),
        ("offer", &["product"]),
        ("payment", &["order"]),
    ];
    for overlay in OVERLAYS {
        let Some(docs) = render(overlay) else { return };
        for (caller, peers) in callers {
            let deployment = find(&docs, "Deployment", caller).expect("caller Deployment");
            let container = &containers(&deployment["spec"]["template"]["spec"])[0];
            for peer in peers {
                let var = format!("{}_URL", peer.to_uppercase());
                assert_eq!(
                    env_value(container, &var).and_then(|e| e["value"].as_str()),
                    Some(format!("http://{peer}-headless:50051").as_str()),
                    "{overlay}: {caller}'s {var}"
                );
                assert!(
                    find(&docs, "Service", &format!("{peer}-headless")).is_some(),
                    "{overlay}: no Service {peer}-headless"
                );
            }
        }
    }
}

#[test]
fn kafka_topics_are_declared_for_strimzi() {
    let Some(docs) = render("overlays/prod") else {
        return;
    };
    let topics = of_kind(&docs, "KafkaTopic");
    let names: BTreeSet<&str> = topics
        .iter()
        .filter_map(|t| t["spec"]["topicName"].as_str())
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["orders", "payments", "page.viewed", "analytics-results"])
    );
    for t in topics {
        assert_eq!(
            t["metadata"]["labels"]["strimzi.io/cluster"],
            "my-kafka-cluster",
            "{}",
            name(t)
        );
        assert_eq!(namespace(t), "kafka", "{}", name(t));
        assert_eq!(t["spec"]["partitions"], 3, "{}", name(t));
        assert_eq!(t["spec"]["replicas"], 3, "{}", name(t));
    }
}

#[test]
fn chaos_rbac_is_namespaced_and_deletes_only_pods() {
    let Some(docs) = render("chaos") else { return };
    for doc in &docs {
        assert!(
            matches!(
                kind(doc),
                "ServiceAccount" | "Role" | "RoleBinding" | "NetworkPolicy"
            ),
            "chaos renders a {} ({}): nothing cluster-scoped allowed",
            kind(doc),
            name(doc)
        );
    }
    let sa =
        find(&docs, "ServiceAccount", "shakedown-chaos").expect("ServiceAccount shakedown-chaos");
    assert_eq!(namespace(sa), NAMESPACE);

    let roles = of_kind(&docs, "Role");
    let role_namespaces: BTreeSet<&str> = roles.iter().map(|r| namespace(r)).collect();
    assert_eq!(role_namespaces, BTreeSet::from(["ecommerce", "kafka"]));
    let allowed_verbs = BTreeSet::from(["get", "list", "watch", "delete", "create"]);
    for role in &roles {
        let mut deletes = BTreeSet::new();
        for rule in role["rules"].as_array().expect("rules") {
            let (groups, resources, verbs) = (
                strs(&rule["apiGroups"]),
                strs(&rule["resources"]),
                strs(&rule["verbs"]),
            );
            let what = format!("Role {}/{}: rule {rule}", namespace(role), name(role));
            assert!(
                ![&groups, &resources, &verbs]
                    .iter()
                    .any(|l| l.contains(&"*")),
                "{what}: wildcard"
            );
            assert!(rule["nonResourceURLs"].is_null(), "{what}: nonResourceURLs");
            for verb in &verbs {
                assert!(allowed_verbs.contains(verb), "{what}: verb {verb}");
            }
            if verbs.contains(&"delete") {
                assert_eq!(groups, [""], "{what}: delete outside the core group");
                deletes.extend(resources.iter().copied());
            }
            if verbs.contains(&"create") {
                assert_eq!(
                    resources,
                    ["events"],
                    "{what}: create on something other than events"
                );
            }
            assert!(
                !resources.iter().any(|r| r.contains('/') || *r == "secrets"),
                "{what}: subresources (exec, portforward) or secrets"
            );
        }
        assert_eq!(
            deletes,
            BTreeSet::from(["pods"]),
            "Role {}: delete only on pods",
            namespace(role)
        );
    }
    let bindings = of_kind(&docs, "RoleBinding");
    assert_eq!(bindings.len(), roles.len(), "one RoleBinding per Role");
    for b in bindings {
        assert_eq!(
            b["roleRef"]["kind"],
            "Role",
            "RoleBinding {} binds a ClusterRole",
            name(b)
        );
        let subjects = b["subjects"].as_array().expect("subjects");
        assert_eq!(subjects.len(), 1);
        assert_eq!(subjects[0]["kind"], "ServiceAccount");
        assert_eq!(subjects[0]["name"], "shakedown-chaos");
        assert_eq!(subjects[0]["namespace"], NAMESPACE);
    }
}

#[test]
fn observability_configmaps_hold_the_rules_and_the_dashboard() {
    let Some(docs) = render("observability") else {
        return;
    };
    let rules = find(&docs, "ConfigMap", "prometheus-rules").expect("prometheus-rules");
    for file in ["recording.yml", "alerts.yml", "slo.yml"] {
        assert!(
            rules["data"][file].is_string(),
            "prometheus-rules has no {file}"
        );
    }
    let alerts = rules["data"]["alerts.yml"].as_str().unwrap();
    for alert in ["ShopHPAAtMaxReplicas", "ShopNotificationConsumerLagHigh"] {
        assert!(
            alerts.contains(&format!("alert: {alert}")),
            "no alert {alert}"
        );
    }
    // The SLO alerts are the generated burn-rate ones (tests/slo_rules.rs keeps slo.yml equal to
    // what `shakedown slo rules slo/examples/shop.yaml` writes).
    let slo = rules["data"]["slo.yml"].as_str().unwrap();
    for alert in [
        "GatewayLatencyP95BurnRatePage",
        "GatewayLatencyP95BurnRateTicket",
        "ErrorRatioBurnRatePage",
        "ErrorRatioBurnRateTicket",
    ] {
        assert!(slo.contains(&format!("alert: {alert}")), "no alert {alert}");
    }
    let config = find(&docs, "ConfigMap", "prometheus-config").expect("prometheus-config");
    assert!(
        config["data"]["prometheus.yml"]
            .as_str()
            .unwrap()
            .contains("scrape_interval: 15s")
    );

    let dashboards: Vec<_> = of_kind(&docs, "ConfigMap")
        .into_iter()
        .filter(|m| m["metadata"]["labels"]["grafana_dashboard"] == "1")
        .collect();
    assert_eq!(
        dashboards.len(),
        1,
        "one dashboard ConfigMap labelled grafana_dashboard: \"1\""
    );
    let files = dashboards[0]["data"].as_object().unwrap();
    let mut names: Vec<&str> = files.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(names, ["shakedown-run.json", "shop-overview.json"]);
    for (file, text) in files {
        let dash: Value = serde_json::from_str(text.as_str().unwrap())
            .unwrap_or_else(|e| panic!("{file} is not JSON: {e}"));
        let exprs: Vec<&str> = dash["panels"]
            .as_array()
            .expect("panels")
            .iter()
            .filter_map(|p| p["targets"].as_array())
            .flatten()
            .filter_map(|t| t["expr"].as_str())
            .collect();
        let needles: &[&str] = if file == "shakedown-run.json" {
            // The live metrics of a load run (scenarios::live); tests/live_metrics.rs runs
            // these queries on a real Prometheus.
            &[
                "shakedown_requests_total",
                "shakedown_errors_total",
                "shakedown_request_duration_seconds_bucket",
                "shakedown_active_users",
                "shakedown_iteration_lateness_seconds",
            ]
        } else {
            &[
                "p50_5m",
                "p95_5m",
                "p99_5m",
                "requests:rate5m",
                "errors:ratio",
                "replicas",
                "kafka_consumer_lag",
                "outbox_pending",
            ]
        };
        for needle in needles {
            assert!(
                exprs.iter().any(|e| e.contains(needle)),
                "{file}: no panel query with {needle}"
            );
        }
    }
}

#[test]
fn promtool_accepts_config_and_rules() {
    if !tool_available("promtool", &["--version"]) {
        slo::testing::missing_tool("promtool", "scripts/setup.sh installs it");
        return;
    }
    let dir = deploy_dir().join("observability");
    let mut rule_files: Vec<String> = std::fs::read_dir(dir.join("rules"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .map(|p| format!("rules/{}", p.file_name().unwrap().to_string_lossy()))
        .collect();
    rule_files.sort();
    assert!(rule_files.len() >= 3, "{rule_files:?}");
    let mut args = vec!["check", "rules"];
    args.extend(rule_files.iter().map(String::as_str));
    let out = run("promtool", &args, &dir);
    assert!(
        out.status.success(),
        "promtool check rules:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let out = run("promtool", &["test", "rules", "tests/rules_test.yml"], &dir);
    assert!(
        out.status.success(),
        "promtool test rules:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let out = run("promtool", &["check", "config", "prometheus.yml"], &dir);
    if out.status.success() {
        return;
    }
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        report.contains("field kubernetes_sd_configs not found"),
        "promtool check config:\n{report}"
    );
    // Debian's promtool is built without Kubernetes service discovery: check the rest of the
    // configuration (relabelling, rule files) on a copy whose discovery blocks are static targets.
    eprintln!(
        "promtool has no Kubernetes service discovery: checking prometheus.yml with static targets"
    );
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("rules")).unwrap();
    for file in &rule_files {
        std::fs::copy(dir.join(file), tmp.path().join(file)).unwrap();
    }
    let config = std::fs::read_to_string(dir.join("prometheus.yml")).unwrap();
    std::fs::write(
        tmp.path().join("prometheus.yml"),
        without_kubernetes_sd(&config),
    )
    .unwrap();
    let out = run(
        "promtool",
        &["check", "config", "prometheus.yml"],
        tmp.path(),
    );
    assert!(
        out.status.success(),
        "promtool check config (static targets):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `config` with each `kubernetes_sd_configs` block of a scrape job replaced by a static target.
fn without_kubernetes_sd(config: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in config.lines() {
        if line == "    kubernetes_sd_configs:" {
            out.push_str("    static_configs:\n      - targets: [\"localhost:9090\"]\n");
            skipping = true;
            continue;
        }
        if skipping && line.starts_with("      ") {
            continue;
        }
        skipping = false;
        out.push_str(line);
        out.push('\n');
    }
    assert!(
        !out.contains("kubernetes_sd_configs"),
        "unexpected layout of prometheus.yml"
    );
    out
}

/// `run --on k8s` creates, watches and deletes the workers' Indexed Job and reads their pods
/// (scenarios::fleet::k8s): the coordinator's Role in deploy/load grants exactly that, in the
/// load namespace only.
#[test]
fn the_load_coordinator_may_manage_jobs_and_read_pods_in_its_namespace_only() {
    let Some(docs) = render("load") else { return };
    let role = find(&docs, "Role", "shakedown-coordinator").expect("Role shakedown-coordinator");
    assert_eq!(namespace(role), "shakedown-load");
    let rules: Vec<(Vec<&str>, Vec<&str>, Vec<&str>)> = role["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| {
            (
                strs(&r["apiGroups"]),
                strs(&r["resources"]),
                strs(&r["verbs"]),
            )
        })
        .collect();
    assert_eq!(
        rules,
        [
            (
                vec!["batch"],
                vec!["jobs"],
                vec!["create", "get", "list", "watch", "delete"]
            ),
            (vec![""], vec!["pods"], vec!["get", "list", "watch"]),
        ]
    );
    let binding = find(&docs, "RoleBinding", "shakedown-coordinator")
        .expect("RoleBinding shakedown-coordinator");
    assert_eq!(binding["roleRef"]["kind"], "Role");
    assert_eq!(binding["subjects"][0]["kind"], "ServiceAccount");
    assert_eq!(binding["subjects"][0]["name"], "shakedown-coordinator");
    assert_eq!(binding["subjects"][0]["namespace"], "shakedown-load");
    let sa = find(&docs, "ServiceAccount", "shakedown-coordinator").expect("ServiceAccount");
    assert_eq!(namespace(sa), "shakedown-load");
}
