//! The embedded stack's ports: bound by the stack itself and inherited by the services, so that
//! stacks started in parallel, or next to anything else that binds ports, never lose a port between
//! choosing and binding it; a gateway port that is taken fails at once and names its holder; a
//! killed service comes back on the same socket.

mod common;

use std::{
    collections::VecDeque,
    io::{Read, Write},
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use common::{binary, start_stack};
use shop::stack::{
    PrometheusMode, Stack, StackError, StackOptions,
    supervisor::{Event, EventKind},
};

/// Prometheus is part of what is tested when it is on PATH; in CI it must be.
fn prometheus_mode() -> PrometheusMode {
    match shop::stack::prometheus::find_on_path() {
        Some(path) => PrometheusMode::Binary(path),
        None if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("`prometheus` is not on PATH (CI=true): scripts/setup.sh installs it")
        }
        None => {
            eprintln!("no `prometheus` on PATH: the stacks start without it");
            PrometheusMode::Off
        }
    }
}

/// Binds loopback port 0 over and over, holding the last `HOLD` listeners, until stopped (at
/// most `MAX_BINDS` binds, no traffic): what another test suite on the machine does to the ports
/// a probe-then-bind stack would have chosen.
fn grab_ports(stop: Arc<AtomicBool>) -> std::thread::JoinHandle<usize> {
    const HOLD: usize = 2_000;
    const MAX_BINDS: usize = 200_000;
    std::thread::spawn(move || {
        let mut held = VecDeque::with_capacity(HOLD);
        let mut binds = 0;
        while !stop.load(Ordering::Relaxed) && binds < MAX_BINDS {
            if let Ok(listener) = std::net::TcpListener::bind("127.0.0.1:0") {
                held.push_back(listener);
                binds += 1;
            }
            if held.len() > HOLD {
                held.pop_front();
            }
            // Leave CPU to the stacks starting on a 2-core machine.
            if binds % 50 == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        binds
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stacks_start_at_once_while_free_ports_are_being_grabbed() {
    let prometheus = prometheus_mode();
    let stop = Arc::new(AtomicBool::new(false));
    let grabber = grab_ports(stop.clone());
    let options = || {
        let mut options = StackOptions::new(binary());
        options.prometheus = prometheus.clone();
        options.env.push(("RUST_LOG".into(), "warn".into()));
        // Two stacks (28 services) starting on a shared 2-core machine.
        options.ready_timeout = Duration::from_secs(180);
        options
    };
    let (a, b) = tokio::join!(Stack::start(options()), Stack::start(options()));
    stop.store(true, Ordering::Relaxed);
    let binds = grabber.join().unwrap();
    eprintln!("ports grabbed while the stacks started: {binds}");
    let (a, b) = (a.expect("stack A starts"), b.expect("stack B starts"));
    assert!(binds > 0, "the grabber ran");
    assert_ne!(a.gateway_url(), b.gateway_url());

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    for stack in [&a, &b] {
        let ready = http
            .get(format!("{}/ready", stack.gateway_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(ready.status(), 200, "gateway {} ready", stack.gateway_url());
        let product = http
            .get(format!(
                "{}/api/v1/products?skip=0&limit=1",
                stack.gateway_url()
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(product.status(), 200, "the gateway reaches its backends");
        for endpoint in stack.endpoints() {
            let admin = http
                .get(format!("{}/admin/faults", endpoint.admin_url))
                .send()
                .await
                .unwrap();
            assert_eq!(admin.status(), 200, "admin of {}", endpoint.name);
        }
        if prometheus != PrometheusMode::Off {
            let url = stack.prometheus_url().expect("Prometheus started");
            let ready = http.get(format!("{url}/-/ready")).send().await.unwrap();
            assert_eq!(
                ready.status(),
                200,
                "Prometheus at {url} (the port it announced)"
            );
        }
    }
    if let (Some(pa), Some(pb)) = (a.prometheus_url(), b.prometheus_url()) {
        assert_ne!(pa, pb);
    }
    tokio::join!(a.stop(), b.stop());
}

#[tokio::test]
async fn a_taken_gateway_port_fails_the_start_at_once_naming_the_holder() {
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let mut options = StackOptions::new(binary());
    options.gateway_port = Some(port);
    options.prometheus = PrometheusMode::Off;
    // Far longer than the bound below: a start that retried the port would hit the bound.
    options.ready_timeout = Duration::from_secs(600);
    let result = tokio::time::timeout(Duration::from_secs(60), Stack::start(options))
        .await
        .expect("the start fails instead of retrying the taken port");
    let err = result.err().expect("the start fails");
    assert!(
        matches!(err, StackError::GatewayPortInUse(_)),
        "a usage problem, not the machine's: {err:?}"
    );
    let text = format!("{:#}", anyhow::Error::from(err));
    assert!(
        text.contains(&format!(
            "127.0.0.1:{port} is in use by pid {}",
            std::process::id()
        )),
        "{text}"
    );
    assert!(text.contains("gateway port"), "{text}");
}

#[test]
fn up_on_a_taken_gateway_port_exits_2_naming_port_and_holder() {
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let mut child = common::cli::shakedown()
        .args(["up", "--no-prometheus", "--gateway-port", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded: a stack that came up instead would wait for Ctrl-C forever.
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("`shakedown up` on a taken port did not exit");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "127.0.0.1:{port} is in use by pid {}",
            std::process::id()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("--gateway-port"), "{stderr}");
    drop(held);
}

/// Waits for `service`'s next `Exited` event.
async fn exited(events: &mut tokio::sync::broadcast::Receiver<Event>, service: &str) {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let event = events.recv().await.expect("supervisor events");
            if event.service == service && matches!(event.kind, EventKind::Exited { .. }) {
                return;
            }
        }
    })
    .await
    .expect("the killed process exits");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_service_comes_back_on_the_same_socket() {
    let stack = start_stack(false).await;
    let service = "product";
    let url = stack.endpoint(service).unwrap().url.clone();
    let addr = url.trim_start_matches("http://").to_string();
    let supervisor = stack.supervisor();
    let mut events = supervisor.subscribe();

    // Kill until a connection is made while no process of the service exists at all (the
    // restart back-off doubles with each kill, so the window grows). The connection must be
    // accepted by the kernel and queued on the stack's socket, not refused.
    let mut queued = None;
    let mut killed = Vec::new();
    for _ in 0..4 {
        supervisor
            .wait_ready(service, Duration::from_secs(60))
            .await
            .expect("service ready");
        killed.push(stack.kill(service).expect("service running"));
        exited(&mut events, service).await;
        let down_before = supervisor.pid(service).unwrap().is_none();
        let stream = std::net::TcpStream::connect(&addr)
            .expect("a connection to a service being restarted is queued, not refused");
        let down_after = supervisor.pid(service).unwrap().is_none();
        if down_before && down_after {
            queued = Some(stream);
            break;
        }
    }
    let mut stream = queued.expect("a connection made while the service was down");

    // The restarted process accepts the queued connection and answers on it.
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(
        stream,
        "GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains(r#""service":"product""#), "{response}");

    supervisor
        .wait_ready(service, Duration::from_secs(60))
        .await
        .expect("restarted");
    let pid = supervisor.pid(service).unwrap().expect("running");
    assert!(!killed.contains(&pid), "a new process: {pid} vs {killed:?}");
    assert_eq!(stack.endpoint(service).unwrap().url, url, "same URL");
    let http = reqwest::Client::new();
    let ready = http.get(format!("{url}/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let through_gateway = http
        .get(format!(
            "{}/api/v1/products?skip=0&limit=1",
            stack.gateway_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(through_gateway.status(), 200);
    stack.stop().await;
}
