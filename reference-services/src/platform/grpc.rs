//! gRPC client plumbing: lazily connected channels (a service starts even when a peer is not up
//! yet, and reconnects when it comes back) with deadlines, and an interceptor that forwards the
//! W3C trace context of the current request and its remaining time budget (`grpc-timeout`, see
//! [`super::deadline`]), and the latency of every call ([`super::outbound`]).

use std::time::Duration;

use anyhow::{Context, Result};
use tonic::{
    Request, Status,
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Channel, Endpoint},
};

pub use super::outbound::Metered;
use super::trace;

/// Adds `traceparent` (a child of the current request's context) to every call, and the
/// request's remaining time budget as its deadline when it has one.
#[derive(Clone, Copy, Debug, Default)]
pub struct TraceInterceptor;

impl Interceptor for TraceInterceptor {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Ok(value) = trace::outgoing_header().parse() {
            request.metadata_mut().insert(trace::HEADER, value);
        }
        super::deadline::apply(&mut request)?;
        Ok(request)
    }
}

/// A channel with the trace interceptor and call latency metrics, as every generated client
/// takes it.
pub type TracedChannel = InterceptedService<Metered<Channel>, TraceInterceptor>;

/// A lazily connected channel to `url` (`http://host:port`).
pub fn channel(url: &str) -> Result<TracedChannel> {
    let endpoint = endpoint(url).with_context(|| format!("invalid gRPC peer URL {url:?}"))?;
    Ok(InterceptedService::new(
        Metered::new(endpoint.connect_lazy()),
        TraceInterceptor,
    ))
}

/// The endpoint settings of every client connection (one per address of a balanced channel).
pub fn endpoint(url: &str) -> Result<Endpoint, tonic::transport::Error> {
    Ok(Endpoint::from_shared(url.to_string())?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(10))
        .tcp_nodelay(true))
}
