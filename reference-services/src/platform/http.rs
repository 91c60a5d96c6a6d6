//! The runtime every service is served by: one listener carrying the service's HTTP routes and
//! gRPC services plus `/health`, `/ready` and `/metrics`; a loopback admin listener for fault
//! injection (`/admin/faults`) and accounting (`/admin/accounting`); middleware that times every
//! request into the latency histograms, keeps the W3C trace context and applies injected faults; bounded request bodies; graceful shutdown that
//! drains in-flight requests and then waits for background tasks.
//!
//! Every accepted connection gets `TCP_NODELAY` (axum's `serve` leaves Nagle's algorithm on):
//! with Nagle, a response written in two pieces (headers, then body; or an h2 DATA frame after
//! HEADERS) waits for the peer's delayed ACK, which put a quarter of the gateway's requests in a
//! 40 ms cluster on the embedded stack.

use std::{net::SocketAddr, sync::Arc, time::Instant};

use anyhow::{Context, Result};
use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, MatchedPath, Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
    serve::ListenerExt,
};
use serde_json::json;
use tracing::Instrument;

use super::{
    accounting::{Accounting, AccountingReport},
    api::{ApiError, ApiJson},
    config::ServiceConfig,
    faults::{FaultSpec, Faults},
    metrics::{self, DependencyLabels, HttpLabels, KindLabels, Metrics},
    readiness::Readiness,
    shutdown::Shutdown,
    sockets,
    trace::{self, TraceParent},
};

/// Largest request body a service accepts.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The shared parts of a running service.
#[derive(Clone)]
pub struct Runtime {
    pub config: ServiceConfig,
    pub shutdown: Shutdown,
    pub metrics: Arc<Metrics>,
    pub faults: Faults,
    pub readiness: Readiness,
    /// What the service counts for `GET /admin/accounting` (registered before serving).
    pub accounting: Accounting,
}

impl Runtime {
    /// Sets up logging, metrics and faults for `config.name`; shutdown follows SIGTERM/SIGINT.
    pub fn new(config: ServiceConfig) -> Result<Self> {
        Self::with_shutdown(config, Shutdown::on_signals())
    }

    /// Like [`Runtime::new`] with a caller-owned shutdown (tests).
    pub fn with_shutdown(config: ServiceConfig, shutdown: Shutdown) -> Result<Self> {
        super::telemetry::init_logging(&config.name);
        let faults = Faults::new(FaultSpec::from_env().context("fault injection settings")?);
        Ok(Self {
            metrics: Metrics::init(&config.name),
            config,
            shutdown,
            faults,
            readiness: Readiness::default(),
            accounting: Accounting::default(),
        })
    }

    /// Serves `app` until shutdown, then waits for background tasks. Returns the bound addresses
    /// through `on_bound` (useful with port 0) before serving. Both listeners are inherited
    /// sockets when the configuration names them (the embedded stack), else bound here.
    pub async fn serve(self, app: Router) -> Result<()> {
        self.serve_with(app, |_, _| {}).await
    }

    pub async fn serve_with(
        self,
        app: Router,
        on_bound: impl FnOnce(SocketAddr, SocketAddr),
    ) -> Result<()> {
        let config = &self.config;
        let listener = sockets::open(config.listen_fd, "LISTEN_FD", config.listen, "LISTEN_ADDR")?;
        let admin_listener = sockets::open(
            config.admin_fd,
            "ADMIN_FD",
            config.admin_listen,
            "ADMIN_ADDR",
        )?;
        let (addr, admin_addr) = (listener.local_addr()?, admin_listener.local_addr()?);
        let (listener, admin_listener) = (
            listener.tap_io(sockets::set_nodelay),
            admin_listener.tap_io(sockets::set_nodelay),
        );
        tracing::info!(service = %self.config.name, %addr, %admin_addr, "listening");
        on_bound(addr, admin_addr);

        let router = self.router(app);
        let admin = admin_router(
            self.faults.clone(),
            self.config.name.clone(),
            self.accounting.clone(),
        );
        let token = self.shutdown.token();
        let admin_token = self.shutdown.token();
        let admin_task = tokio::spawn(async move {
            axum::serve(admin_listener, admin)
                .with_graceful_shutdown(admin_token.cancelled_owned())
                .await
        });
        // With the peer address in each request's extensions: the gateway forwards it to the
        // auth service, whose sign-in limits are per client address.
        let router = router.into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, router)
            .with_graceful_shutdown(token.cancelled_owned())
            .await
            .context("serving")?;
        admin_task.await.context("admin listener task")??;
        self.shutdown.drain().await;
        tracing::info!(service = %self.config.name, "stopped");
        Ok(())
    }

    /// `app` with the ops routes and the middleware stack applied.
    pub fn router(&self, app: Router) -> Router {
        self.metrics.declare_ops_routes();
        // axum clones a middleware's state for every request: one Arc, not a whole Runtime
        // (its configuration's strings and paths) twice per request.
        let shared = Arc::new(self.clone());
        let ops = Router::new()
            .route("/health", get(health))
            .route("/ready", get(ready))
            .route("/metrics", get(metrics_text))
            .with_state(shared.clone());
        app.layer(middleware::from_fn_with_state(
            shared.clone(),
            inject_faults,
        ))
        .merge(ops)
        .layer(middleware::from_fn_with_state(shared, observe))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
    }
}

async fn health(State(rt): State<Arc<Runtime>>) -> impl IntoResponse {
    Json(json!({"status": "healthy", "service": rt.config.name}))
}

async fn ready(State(rt): State<Arc<Runtime>>) -> Response {
    let evaluation = rt.readiness.evaluate().await;
    let ready = evaluation.ready;
    rt.metrics.ready.set(if ready { 1.0 } else { 0.0 });
    for dependency in evaluation.checks.keys() {
        let up = evaluation.is_up(dependency) == Some(true);
        rt.metrics
            .dependency_up
            .get_or_create(&DependencyLabels {
                dependency: dependency.clone(),
            })
            .set(i64::from(up));
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if ready {"ready"} else {"not_ready"},
        "checks": evaluation.checks,
        "degraded": evaluation.degraded,
    });
    (status, Json(body)).into_response()
}

async fn metrics_text(State(rt): State<Arc<Runtime>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(metrics::CONTENT_TYPE),
        )],
        rt.metrics.encode(),
    )
        .into_response()
}

fn is_grpc(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/grpc"))
}

/// Times the request, labels it, and runs it inside its trace context and log span.
async fn observe(State(rt): State<Arc<Runtime>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let grpc = is_grpc(&req);
    let method = metrics::method_label(req.method());
    let path = req.uri().path().to_string();
    let matched = req.extensions().get::<MatchedPath>();
    let route_matched = matched.is_some();
    let route = matched
        .map_or(metrics::UNMATCHED, |m| m.as_str())
        .to_string();
    let trace = req
        .headers()
        .get(trace::HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(TraceParent::parse)
        .unwrap_or_else(TraceParent::new_root);
    let span = tracing::info_span!("request", trace_id = %trace.trace_id, %method, %path);

    rt.metrics.in_flight.inc();
    let mut response = trace
        .clone()
        .scope(next.run(req))
        .instrument(span.clone())
        .await;
    rt.metrics.in_flight.dec();
    let elapsed = started.elapsed().as_secs_f64();

    if grpc {
        let code = response
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<i32>().ok())
            .unwrap_or(0);
        rt.metrics
            .grpc_duration
            .get_or_create(&metrics::grpc_labels(
                route_matched,
                &path,
                tonic::Code::from_i32(code),
            ))
            .observe(elapsed);
    } else {
        let status = response.status().as_u16();
        rt.metrics
            .http_duration
            .get_or_create(&HttpLabels {
                method: method.to_string(),
                route,
                status: status.to_string(),
            })
            .observe(elapsed);
        if status >= 500 {
            span.in_scope(|| tracing::warn!(status, elapsed, "request failed"));
        }
    }
    if let Ok(value) = HeaderValue::from_str(&trace.header_value()) {
        response.headers_mut().insert(trace::HEADER, value);
    }
    response
}

/// Applies injected latency and errors to the service's own routes (not to the ops routes).
async fn inject_faults(State(rt): State<Arc<Runtime>>, req: Request, next: Next) -> Response {
    let _turn = rt.faults.turn().await;
    let decision = rt.faults.decide();
    if !decision.delay.is_zero() {
        rt.metrics
            .faults_injected
            .get_or_create(&KindLabels {
                kind: "latency".into(),
            })
            .inc();
        tokio::time::sleep(decision.delay).await;
    }
    if decision.fail {
        rt.metrics
            .faults_injected
            .get_or_create(&KindLabels {
                kind: "error".into(),
            })
            .inc();
        if is_grpc(&req) {
            return tonic::Status::unavailable("injected fault").into_http();
        }
        return ApiError::unavailable("injected fault").into_response();
    }
    next.run(req).await
}

fn admin_router(faults: Faults, service: String, accounting: Accounting) -> Router {
    Router::new()
        .route(
            "/admin/faults",
            get(get_faults).put(put_faults).delete(clear_faults),
        )
        .with_state(faults)
        .merge(
            Router::new()
                .route("/admin/accounting", get(get_accounting))
                .with_state((service, accounting)),
        )
}

/// `GET /admin/accounting`: the service's counts now (see [`super::accounting`]).
async fn get_accounting(
    State((service, accounting)): State<(String, Accounting)>,
) -> Result<Json<AccountingReport>, ApiError> {
    accounting.report(&service).await.map(Json).map_err(|e| {
        tracing::error!(error = %e, "accounting");
        ApiError::internal(e.to_string())
    })
}

async fn get_faults(State(faults): State<Faults>) -> Json<FaultSpec> {
    Json(faults.get())
}

async fn put_faults(
    State(faults): State<Faults>,
    ApiJson(spec): ApiJson<FaultSpec>,
) -> Result<Json<FaultSpec>, ApiError> {
    faults
        .set(spec)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(Json(spec))
}

async fn clear_faults(State(faults): State<Faults>) -> Json<FaultSpec> {
    faults
        .set(FaultSpec::default())
        .expect("the default spec is valid");
    Json(FaultSpec::default())
}

#[cfg(test)]
mod tests {
    use std::{
        io::{Read, Write},
        mem::ManuallyDrop,
        net::TcpStream,
        os::fd::{FromRawFd, RawFd},
    };

    use axum::body::Body;
    use tower::ServiceExt;

    use super::*;
    use crate::platform::shutdown::Shutdown;
    use crate::testkit;

    async fn get_ready(rt: &Runtime) -> (StatusCode, serde_json::Value) {
        let response = rt
            .router(Router::new())
            .oneshot(
                axum::http::Request::get("/ready")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    /// An optional dependency that fails leaves `/ready` at 200, names it in `degraded`, and
    /// shows it as down in `dependency_up`; a failing required one answers 503.
    #[tokio::test]
    async fn ready_reports_optional_dependencies_without_failing() {
        let dir = tempfile::tempdir().unwrap();
        let config = ServiceConfig::for_test("ready-test", dir.path());
        let mut rt = Runtime::with_shutdown(config, Shutdown::default()).unwrap();
        rt.readiness
            .add("ready-test-db", || async { Ok::<_, String>(()) });
        rt.readiness.add_optional("ready-test-broker", || async {
            Err::<(), _>("all brokers down")
        });
        let (status, body) = get_ready(&rt).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body,
            json!({"status": "ready",
                   "checks": {"ready-test-db": "ok", "ready-test-broker": "all brokers down"},
                   "degraded": ["ready-test-broker"]})
        );
        let text = rt.metrics.encode();
        let gauge = |dependency: &str| {
            text.lines()
                .find(|l| {
                    l.starts_with("dependency_up{")
                        && l.contains(&format!(r#"dependency="{dependency}""#))
                })
                .and_then(|l| l.rsplit(' ').next())
                .map(str::to_string)
        };
        assert_eq!(gauge("ready-test-db").as_deref(), Some("1"), "{text}");
        assert_eq!(gauge("ready-test-broker").as_deref(), Some("0"), "{text}");

        rt.readiness.add("ready-test-peer", || async {
            Err::<(), _>("connection refused")
        });
        let (status, body) = get_ready(&rt).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["status"], "not_ready");
    }

    /// Sends `GET path` on a fresh connection with Nagle left on at the client end and keeps the
    /// connection open once the answer has come (so the server's end is still there to look at).
    fn get_on_new_connection(addr: SocketAddr, path: &str) -> TcpStream {
        let mut client = TcpStream::connect(addr).unwrap();
        assert!(!client.nodelay().unwrap(), "the client end keeps Nagle");
        write!(client, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = client.read(&mut buf).unwrap();
            assert!(n > 0, "the server closed the connection");
            seen.extend_from_slice(&buf[..n]);
        }
        assert!(
            seen.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&seen)
        );
        client
    }

    /// `TCP_NODELAY` of the server's end of `client`'s connection. The service runs in this
    /// process, so that end is one of this process's descriptors: the socket whose local address
    /// is the client's peer and whose peer is the client.
    fn server_end_nodelay(client: &TcpStream) -> bool {
        let (client_addr, server_addr) =
            (client.local_addr().unwrap(), client.peer_addr().unwrap());
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
            let Some(fd) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<RawFd>().ok())
            else {
                continue;
            };
            // SAFETY: the descriptor is only borrowed (ManuallyDrop: never closed here); on one
            // that is not a socket, or closed meanwhile by another test, the calls just fail.
            let stream = ManuallyDrop::new(unsafe { TcpStream::from_raw_fd(fd) });
            if stream.local_addr().ok() == Some(server_addr)
                && stream.peer_addr().ok() == Some(client_addr)
            {
                found.push(stream.nodelay().unwrap());
            }
        }
        assert_eq!(
            found.len(),
            1,
            "one server end of {client_addr} -> {server_addr}"
        );
        found[0]
    }

    #[tokio::test]
    async fn accepted_connections_have_nagle_off() {
        let dir = tempfile::tempdir().unwrap();
        let service = testkit::start("nodelay", dir.path(), |rt| rt.serve(Router::new())).await;
        let admin: SocketAddr = service
            .admin_url
            .trim_start_matches("http://")
            .parse()
            .unwrap();
        let addr = service.addr;
        tokio::task::spawn_blocking(move || {
            for (listener, path) in [(addr, "/health"), (admin, "/admin/faults")] {
                let client = get_on_new_connection(listener, path);
                assert!(
                    server_end_nodelay(&client),
                    "TCP_NODELAY on the server end of {path}'s connection"
                );
            }
        })
        .await
        .unwrap();
        service.stop().await;
    }
}
