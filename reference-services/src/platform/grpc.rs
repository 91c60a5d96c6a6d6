//! gRPC client plumbing: lazily connected channels (a service starts even when a peer is not up
//! yet, and reconnects when it comes back) with deadlines, and an interceptor that forwards the
//! W3C trace context of the current request.

use std::time::Duration;

use anyhow::{Context, Result};
use tonic::{
    Request, Status,
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Channel, Endpoint},
};

use super::trace;

/// Adds `traceparent` (a child of the current request's context) to every call.
#[derive(Clone, Copy, Debug, Default)]
pub struct TraceInterceptor;

impl Interceptor for TraceInterceptor {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Ok(value) = trace::outgoing_header().parse() {
            request.metadata_mut().insert(trace::HEADER, value);
        }
        Ok(request)
    }
}

/// A channel with the trace interceptor, as every generated client takes it.
pub type TracedChannel = InterceptedService<Channel, TraceInterceptor>;

/// A lazily connected channel to `url` (`http://host:port`).
pub fn channel(url: &str) -> Result<TracedChannel> {
    let endpoint = Endpoint::from_shared(url.to_string())
        .with_context(|| format!("invalid gRPC peer URL {url:?}"))?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(10))
        .tcp_nodelay(true);
    Ok(InterceptedService::new(
        endpoint.connect_lazy(),
        TraceInterceptor,
    ))
}
