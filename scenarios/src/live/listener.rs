//! The `--metrics-listen` endpoint: `GET /metrics` answers the live figures in OpenMetrics text.
//!
//! Bound before any load starts, so a bad address or a port in use stops the command at once
//! (a usage error) instead of after minutes of load nobody could watch; served until the
//! caller's token is cancelled, then shut down gracefully (a scrape in flight completes).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::LiveMetrics;
use super::metrics::OPENMETRICS_CONTENT_TYPE;

/// Why the endpoint could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error(
        "--metrics-listen {address:?}: not an address such as 127.0.0.1:9464 or 0.0.0.0:9464: {reason}"
    )]
    Address { address: String, reason: String },
    #[error("--metrics-listen {address}: cannot listen: {source}")]
    Bind {
        address: SocketAddr,
        source: std::io::Error,
    },
}

/// A bound, not yet serving, metrics endpoint.
#[derive(Debug)]
pub struct MetricsListener {
    listener: std::net::TcpListener,
    address: SocketAddr,
}

impl MetricsListener {
    /// Binds `address` (`HOST:PORT`; port 0 picks a free one).
    pub fn bind(address: &str) -> Result<Self, ListenError> {
        let parsed: SocketAddr =
            address
                .trim()
                .parse()
                .map_err(|e: std::net::AddrParseError| ListenError::Address {
                    address: address.to_string(),
                    reason: e.to_string(),
                })?;
        let bind = |source| ListenError::Bind {
            address: parsed,
            source,
        };
        let listener = std::net::TcpListener::bind(parsed).map_err(bind)?;
        listener.set_nonblocking(true).map_err(bind)?;
        let address = listener.local_addr().map_err(bind)?;
        Ok(Self { listener, address })
    }

    /// The bound address (with the chosen port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// Serves `metrics` until `stop` is cancelled; the task ends after the graceful shutdown.
    /// Must be called inside a Tokio runtime.
    pub fn serve(self, metrics: Arc<LiveMetrics>, stop: CancellationToken) -> JoinHandle<()> {
        let app = Router::new().route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)],
                        metrics.encode(),
                    )
                        .into_response()
                }
            }),
        );
        let address = self.address;
        tokio::spawn(async move {
            let listener = match tokio::net::TcpListener::from_std(self.listener) {
                Ok(listener) => listener,
                Err(error) => {
                    tracing::warn!("metrics endpoint {address}: {error}");
                    return;
                }
            };
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
            if let Err(error) = served {
                tracing::warn!("metrics endpoint {address}: {error}");
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_address_or_a_port_in_use_is_refused_naming_it() {
        let error = MetricsListener::bind("localhost").unwrap_err();
        assert!(matches!(error, ListenError::Address { .. }), "{error}");
        assert!(error.to_string().contains("\"localhost\""), "{error}");

        let taken = MetricsListener::bind("127.0.0.1:0").unwrap();
        let address = taken.local_addr().to_string();
        let error = MetricsListener::bind(&address).unwrap_err();
        assert!(matches!(error, ListenError::Bind { .. }), "{error}");
        assert!(error.to_string().contains(&address), "{error}");
    }

    #[tokio::test]
    async fn serves_openmetrics_until_stopped() {
        let metrics = Arc::new(LiveMetrics::new());
        super::super::LiveSink::request(
            metrics.as_ref(),
            "browse",
            std::time::Duration::from_millis(5),
            None,
        );
        let listener = MetricsListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/metrics", listener.local_addr());
        let stop = CancellationToken::new();
        let task = listener.serve(metrics, stop.clone());
        let response = reqwest::get(&url).await.unwrap();
        assert_eq!(
            response.headers()[reqwest::header::CONTENT_TYPE],
            OPENMETRICS_CONTENT_TYPE
        );
        let text = response.text().await.unwrap();
        assert!(
            text.contains(r#"shakedown_requests_total{transaction="browse"} 1"#),
            "{text}"
        );
        stop.cancel();
        task.await.unwrap();
        assert!(
            reqwest::get(&url).await.is_err(),
            "still serving after stop"
        );
    }
}
