//! deploy/load and `run --on k8s` agree. The coordinator in deploy/load is a Job behind a
//! Service: its `--advertise` names that Service, the Service's port leads to its `--listen`
//! port, its reports go to a volume that outlives the pod, and the binary accepts its args. The
//! workers are not in deploy/load: the coordinator builds their Job in code
//! (`scenarios::fleet::k8s::job`), so the drift test builds it from the coordinator's own args
//! and checks it against the manifests: same namespace, the coordinator's image, labels the
//! NetworkPolicy in front of the coordinator admits, no ServiceAccount or token of their own, a
//! pod the namespace's restricted Pod Security admits. The coordinator's live metrics are
//! scraped by deploy/observability's Prometheus, which its NetworkPolicy lets in.

use std::collections::BTreeSet;

use scenarios::fleet::k8s::{DEFAULT_NAMESPACE, KubeSpec, job};
use serde_json::Value;

use super::{
    assert_hardened_pod, common, containers, env_value, find, image_tag, kind, name, namespace,
    of_kind, render, selects, strs,
};

const LOAD_NAMESPACE: &str = "shakedown-load";

/// The coordinator's Job, its container and its args, from a render of deploy/load.
struct Coordinator<'a> {
    job: &'a Value,
    container: &'a Value,
    args: Vec<&'a str>,
}

impl<'a> Coordinator<'a> {
    fn of(docs: &'a [Value]) -> Self {
        let jobs = of_kind(docs, "Job");
        assert_eq!(
            jobs.iter().map(|j| name(j)).collect::<Vec<_>>(),
            ["shakedown-coordinator"],
            "deploy/load has one Job, the coordinator (the workers are created by it)"
        );
        let job = jobs[0];
        let container = &job["spec"]["template"]["spec"]["containers"][0];
        Self {
            job,
            container,
            args: strs(&container["args"]),
        }
    }

    fn pod(&self) -> &'a Value {
        &self.job["spec"]["template"]["spec"]
    }

    fn flag(&self, flag: &str) -> &'a str {
        let i = self
            .args
            .iter()
            .position(|a| *a == flag)
            .unwrap_or_else(|| panic!("the coordinator has no {flag}: {:?}", self.args));
        self.args[i + 1]
    }

    /// What the kubelet makes of `$(VAR)` in an arg: the container's env value.
    fn expanded(&self, arg: &str) -> String {
        match arg.strip_prefix("$(").and_then(|a| a.strip_suffix(')')) {
            Some(var) => env_value(self.container, var)
                .and_then(|e| e["value"].as_str())
                .unwrap_or_else(|| panic!("{arg}: no value for {var} in the coordinator's env"))
                .to_string(),
            None => arg.to_string(),
        }
    }

    /// The port of `--listen 0.0.0.0:PORT`.
    fn listen_port(&self) -> u64 {
        self.port_of("--listen")
    }

    /// The port of `FLAG 0.0.0.0:PORT`.
    fn port_of(&self, flag: &str) -> u64 {
        let address = self.flag(flag);
        let (host, port) = address.rsplit_once(':').expect("HOST:PORT");
        assert_eq!(
            host, "0.0.0.0",
            "{flag}: the coordinator listens on every interface"
        );
        port.parse().expect("a port")
    }

    /// The volume behind the container's mount at `path`.
    fn volume_at(&self, path: &str) -> &'a Value {
        let mount = self.container["volumeMounts"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["mountPath"] == path))
            .unwrap_or_else(|| panic!("nothing is mounted at {path}"));
        self.pod()["volumes"]
            .as_array()
            .and_then(|v| v.iter().find(|v| v["name"] == mount["name"]))
            .unwrap_or_else(|| panic!("no volume {} for {path}", mount["name"]))
    }
}

/// Whether a NetworkPolicy guarding the coordinator has a rule admitting `from` (a matcher of
/// `from` entries) on `port`.
fn admitted(
    docs: &[Value],
    coordinator: &Coordinator,
    port: u64,
    from: impl Fn(&Value) -> bool,
) -> bool {
    of_kind(docs, "NetworkPolicy")
        .into_iter()
        .filter(|p| {
            selects(
                &p["spec"]["podSelector"],
                &coordinator.job["spec"]["template"]["metadata"]["labels"],
            )
        })
        .flat_map(|p| p["spec"]["ingress"].as_array().cloned().unwrap_or_default())
        .any(|rule| {
            rule["ports"]
                .as_array()
                .is_some_and(|ports| ports.iter().any(|p| p["port"] == port))
                && rule["from"].as_array().is_some_and(|f| f.iter().any(&from))
        })
}

/// `http://NAME.NAMESPACE[.svc...]:PORT` → (NAME, NAMESPACE, PORT).
fn service_url(url: &str) -> (&str, &str, u64) {
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (host, port) = rest.rsplit_once(':').expect("a port in the URL");
    let mut parts = host.split('.');
    let service = parts.next().unwrap();
    let namespace = parts.next().expect("NAME.NAMESPACE");
    (service, namespace, port.parse().expect("a port"))
}

#[test]
fn the_coordinator_runs_in_the_cluster_behind_the_service_it_advertises() {
    let Some(docs) = render("load") else { return };
    let coordinator = Coordinator::of(&docs);
    let job = coordinator.job;
    assert_eq!(namespace(job), LOAD_NAMESPACE);
    assert_eq!(
        job["spec"]["backoffLimit"], 0,
        "a retried coordinator starts a second run"
    );
    let pod = coordinator.pod();
    assert_eq!(pod["restartPolicy"], "Never");
    assert_eq!(pod["serviceAccountName"], "shakedown-coordinator");
    assert_eq!(
        pod["automountServiceAccountToken"], true,
        "the coordinator calls the API server"
    );
    assert!(
        find(&docs, "ServiceAccount", "shakedown-coordinator").is_some(),
        "its ServiceAccount is rendered"
    );
    // Hardened like every platform pod, the API token apart.
    let mut without_token = pod.clone();
    without_token["automountServiceAccountToken"] = Value::Bool(false);
    assert_hardened_pod("load coordinator", &without_token);
    let c = coordinator.container;
    assert_eq!(
        c["resources"]["requests"], c["resources"]["limits"],
        "request = limit"
    );

    let args = &coordinator.args;
    assert_eq!(&args[..2], ["run", "/scenario/scenario.yaml"], "{args:?}");
    assert_eq!(coordinator.flag("--on"), "k8s");
    assert_eq!(
        coordinator.flag("--target"),
        "http://api-gateway.ecommerce:8080"
    );
    let workers: u32 = coordinator.flag("--workers").parse().expect("--workers N");
    assert!(workers >= 2, "{workers} workers");

    // --advertise names the Service in front of this pod, whose port leads to --listen.
    let listen = coordinator.listen_port();
    let (service_name, service_namespace, port) = service_url(coordinator.flag("--advertise"));
    let service = find(&docs, "Service", service_name)
        .unwrap_or_else(|| panic!("--advertise names Service {service_name}, not rendered"));
    assert_eq!(namespace(service), service_namespace);
    assert!(
        selects(
            &service["spec"]["selector"],
            &job["spec"]["template"]["metadata"]["labels"]
        ),
        "Service {service_name} selects the coordinator's pod"
    );
    let service_port = service["spec"]["ports"]
        .as_array()
        .and_then(|ports| ports.iter().find(|p| p["port"] == port))
        .unwrap_or_else(|| panic!("Service {service_name} has no port {port}"));
    let target = match &service_port["targetPort"] {
        Value::String(port_name) => c["ports"]
            .as_array()
            .and_then(|ports| ports.iter().find(|p| p["name"] == *port_name))
            .unwrap_or_else(|| panic!("no container port named {port_name}"))["containerPort"]
            .as_u64(),
        number => number.as_u64(),
    };
    assert_eq!(target, Some(listen), "the Service's port leads to --listen");

    // The reports outlive the pod: --out is a PersistentVolumeClaim that is rendered too.
    let out = coordinator.volume_at(coordinator.flag("--out"));
    let claim = out["persistentVolumeClaim"]["claimName"]
        .as_str()
        .expect("--out is on a PersistentVolumeClaim");
    assert!(
        find(&docs, "PersistentVolumeClaim", claim).is_some(),
        "PersistentVolumeClaim {claim} is rendered"
    );
    assert_eq!(
        pod["securityContext"]["fsGroup"], pod["securityContext"]["runAsUser"],
        "the nonroot user can write the reports volume"
    );

    // The scenario file comes from the generated ConfigMap (its name carries a content hash),
    // mounted where the args name it, and it is a valid scenario.
    let config_map = coordinator.volume_at("/scenario")["configMap"]["name"]
        .as_str()
        .expect("a ConfigMap volume");
    assert!(
        config_map.starts_with("shakedown-scenario-"),
        "{config_map}"
    );
    let generated = find(&docs, "ConfigMap", config_map)
        .unwrap_or_else(|| panic!("the Job mounts ConfigMap {config_map}, which is rendered"));
    let scenario = generated["data"]["scenario.yaml"]
        .as_str()
        .expect("scenario.yaml in the ConfigMap");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("scenario.yaml");
    std::fs::write(&file, scenario).unwrap();
    let output = common::cli::run(&["scenario", "check", file.to_str().unwrap()]);
    assert_eq!(
        common::cli::code(&output),
        0,
        "{}",
        common::cli::all_output(&output)
    );

    // The binary accepts the args as the kubelet expands them: it gets as far as looking for a
    // cluster (none here: exit 3), which a flag it did not know would have stopped (exit 2).
    // The metrics endpoint on a free loopback port here (it opens before the cluster is looked
    // for); the rest as rendered.
    let mut args: Vec<String> = args.iter().map(|a| coordinator.expanded(a)).collect();
    args[1] = file.to_str().unwrap().to_string();
    if let Some(i) = args.iter().position(|a| a == "--metrics-listen") {
        args[i + 1] = "127.0.0.1:0".to_string();
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = common::cli::run(&args);
    let all = common::cli::all_output(&output);
    assert_eq!(common::cli::code(&output), 3, "{all}");
    assert!(all.contains("no usable cluster configuration"), "{all}");
}

#[test]
fn the_workers_the_coordinator_creates_match_deploy_load() {
    let Some(docs) = render("load") else { return };
    let coordinator = Coordinator::of(&docs);
    let advertise = coordinator.flag("--advertise");
    let spec = KubeSpec {
        namespace: coordinator.flag("--namespace").to_string(),
        image: coordinator.expanded(coordinator.flag("--image")),
        cpu: coordinator.flag("--cpu").to_string(),
        memory: coordinator.flag("--memory").to_string(),
    };
    let workers: u32 = coordinator.flag("--workers").parse().unwrap();
    let built = serde_json::to_value(job(&spec, advertise, workers, "drift-test")).unwrap();
    let template = &built["spec"]["template"];
    let pod = &template["spec"];

    // One namespace: the kustomization's, the coordinator's --namespace and the CLI's default.
    assert_eq!(namespace(coordinator.job), LOAD_NAMESPACE);
    assert_eq!(built["metadata"]["namespace"], LOAD_NAMESPACE);
    assert_eq!(
        DEFAULT_NAMESPACE, LOAD_NAMESPACE,
        "--namespace defaults to it"
    );
    let ns = find(&docs, "Namespace", LOAD_NAMESPACE).expect("the Namespace is rendered");

    // The workers run the coordinator's own image (kustomize's `images` applies to both), pinned.
    let image = coordinator.container["image"].as_str().unwrap();
    assert_eq!(pod["containers"][0]["image"], image);
    let (tag, digest) = image_tag(image);
    assert!(tag.is_some_and(|t| t != "latest") || digest, "{image}");

    // They join the coordinator at the advertised Service.
    let worker_args = strs(&pod["containers"][0]["args"]);
    assert_eq!(worker_args[..1], ["worker"]);
    let at = worker_args
        .iter()
        .position(|a| *a == "--coordinator")
        .unwrap();
    assert_eq!(worker_args[at + 1], advertise);

    // The NetworkPolicy in front of the coordinator admits these pods on --listen.
    let labels = &template["metadata"]["labels"];
    let policies = of_kind(&docs, "NetworkPolicy")
        .into_iter()
        .filter(|p| {
            selects(
                &p["spec"]["podSelector"],
                &coordinator.job["spec"]["template"]["metadata"]["labels"],
            )
        })
        .count();
    assert_eq!(policies, 1, "one NetworkPolicy guards the coordinator");
    let listen = coordinator.listen_port();
    assert!(
        admitted(&docs, &coordinator, listen, |from| selects(
            &from["podSelector"],
            labels
        )),
        "the worker pods (labels {labels}) may reach the coordinator's port {listen}"
    );
    // Labelled as part of what deploy/load labels it (its kustomization's common labels).
    let part_of = &coordinator.job["metadata"]["labels"]["app.kubernetes.io/part-of"];
    assert_eq!(labels["app.kubernetes.io/part-of"], *part_of);

    // No ServiceAccount of their own and no API token: the namespace's default account, and
    // deploy/load has no other account lying unused.
    assert!(pod["serviceAccountName"].is_null(), "{pod}");
    assert_eq!(pod["automountServiceAccountToken"], false);
    let accounts: BTreeSet<&str> = of_kind(&docs, "ServiceAccount")
        .into_iter()
        .map(name)
        .collect();
    assert_eq!(accounts, BTreeSet::from(["shakedown-coordinator"]));

    // The namespace enforces the restricted Pod Security Standard; the workers meet the
    // platform's hardening, which is stricter.
    assert_eq!(
        ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
    assert_hardened_pod("worker Job (scenarios::fleet::k8s::job)", pod);
    let resources = &pod["containers"][0]["resources"];
    assert_eq!(resources["requests"], resources["limits"]);
}

#[test]
fn the_reports_reader_mounts_the_coordinators_reports_read_only() {
    let Some(docs) = render("load") else { return };
    let Some(reader) = render("load/reports-reader") else {
        return;
    };
    let coordinator = Coordinator::of(&docs);
    let claim =
        coordinator.volume_at(coordinator.flag("--out"))["persistentVolumeClaim"]["claimName"]
            .as_str()
            .unwrap();
    assert_eq!(reader.len(), 1);
    let pod = &reader[0];
    assert_eq!(kind(pod), "Pod");
    assert_eq!(namespace(pod), LOAD_NAMESPACE);
    let spec = &pod["spec"];
    assert_hardened_pod("reports reader", spec);
    let reports = spec["volumes"]
        .as_array()
        .and_then(|v| {
            v.iter()
                .find(|v| v["persistentVolumeClaim"]["claimName"] == claim)
        })
        .unwrap_or_else(|| panic!("the reader mounts {claim}"));
    assert_eq!(reports["persistentVolumeClaim"]["readOnly"], true);
    let mount = containers(spec)[0]["volumeMounts"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["name"] == reports["name"]))
        .expect("mounted");
    assert_eq!(mount["readOnly"], true);
}

#[test]
fn the_coordinators_live_metrics_are_scraped_by_the_platforms_prometheus() {
    let Some(docs) = render("load") else { return };
    let coordinator = Coordinator::of(&docs);
    let port = coordinator.port_of("--metrics-listen");
    let annotations = &coordinator.job["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations["prometheus.io/port"], port.to_string());
    assert_eq!(annotations["prometheus.io/path"], "/metrics");
    assert!(
        coordinator.container["ports"]
            .as_array()
            .is_some_and(|ports| ports.iter().any(|p| p["containerPort"] == port)),
        "port {port} is declared"
    );
    assert!(
        admitted(&docs, &coordinator, port, |from| {
            from["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] == "monitoring"
        }),
        "Prometheus (namespace monitoring) may scrape port {port}"
    );
    // Served past the end for at least one scrape interval, so the final figures are scraped.
    let linger = humantime::parse_duration(coordinator.flag("--metrics-linger")).unwrap();
    let config: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(super::deploy_dir().join("observability/prometheus.yml")).unwrap(),
    )
    .unwrap();
    let interval =
        humantime::parse_duration(config["global"]["scrape_interval"].as_str().unwrap()).unwrap();
    assert!(linger > interval, "{linger:?} <= {interval:?}");
    let pods = config["scrape_configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|job| job["job_name"] == "kubernetes-pods")
        .expect("the annotation-driven pod job");
    assert!(
        strs(&pods["kubernetes_sd_configs"][0]["namespaces"]["names"]).contains(&LOAD_NAMESPACE),
        "Prometheus discovers pods in {LOAD_NAMESPACE}"
    );
}
