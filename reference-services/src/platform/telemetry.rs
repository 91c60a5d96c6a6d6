//! Structured JSON logs on stdout. Each request runs inside a span carrying its W3C trace id, so
//! every log line of that request can be found by `"trace_id":"..."`, across services.

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// Installs the JSON log subscriber for service `service` (level from `RUST_LOG`, default info).
pub fn init_logging(service: &str) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,rdkafka=warn,sqlx=warn,h2=warn,hyper=warn"));
    let json = fmt::layer()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false);
    // try_init: tests start several services in one process; the first subscriber wins.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(json)
        .try_init();
    tracing::info!(service, "starting");
}
