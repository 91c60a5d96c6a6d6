//! Latency of this service's outbound gRPC calls, as `grpc_client_handling_seconds{grpc_service,
//! grpc_method}` (time to the response headers, which for the platform's unary calls is the
//! call). A service whose own latency grows because a dependency slows down shows the growth
//! here too, which is how a capacity run tells the service that saturated from the callers that
//! wait on it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tonic::codegen::http;
use tower::Service;

use super::metrics::{ClientLabels, Metrics};

/// Wraps a channel: every call's latency is observed when its response (or failure) arrives.
#[derive(Clone, Debug)]
pub struct Metered<S> {
    inner: S,
}

impl<S> Metered<S> {
    pub fn new(inner: S) -> Self {
        Self { inner }
    }
}

impl<S, B> Service<http::Request<B>> for Metered<S>
where
    S: Service<http::Request<B>>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let labels = labels(request.uri().path());
        let started = Instant::now();
        let call = self.inner.call(request);
        Box::pin(async move {
            let result = call.await;
            Metrics::global()
                .grpc_client_duration
                .get_or_create(&labels)
                .observe(started.elapsed().as_secs_f64());
            result
        })
    }
}

/// `/package.Service/Method` → its two labels (the path is the generated client's, so bounded).
fn labels(path: &str) -> ClientLabels {
    let (service, method) = path
        .trim_start_matches('/')
        .split_once('/')
        .unwrap_or(("unknown", "unknown"));
    ClientLabels {
        grpc_service: service.to_string(),
        grpc_method: method.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_call_is_observed_under_its_service_and_method() {
        let inner = tower::service_fn(|_: http::Request<()>| async {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            Ok::<_, std::convert::Infallible>(http::Response::new(()))
        });
        let mut metered = Metered::new(inner);
        let request = http::Request::builder()
            .uri("http://product:50051/shop.product.v1.ProductService/GetProduct")
            .body(())
            .unwrap();
        metered.call(request).await.unwrap();
        // The registry is the process's: other tests of this binary call GetProduct of the
        // real `shop.v1.ProductService`, so the series is found by both of its labels.
        let text = Metrics::global().encode();
        let series = |name: &str| {
            text.lines()
                .find(|l| {
                    l.starts_with(&format!("grpc_client_handling_seconds_{name}{{"))
                        && l.contains("grpc_service=\"shop.product.v1.ProductService\"")
                        && l.contains("grpc_method=\"GetProduct\"")
                })
                .unwrap_or_else(|| panic!("no {name} series in:\n{text}"))
        };
        let count = series("count");
        assert!(count.ends_with(" 1"), "{count}");
        let sum = series("sum");
        let seconds: f64 = sum.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(seconds >= 0.02, "{sum}");
    }
}
