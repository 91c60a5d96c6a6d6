//! Client-side balancing of gRPC calls over every address of a backend's host name, so a caller
//! spreads its calls over all pods of a backend when it scales out, with no service mesh.
//!
//! A gRPC client multiplexes every call over one long-lived HTTP/2 connection. Behind a ClusterIP
//! Service that connection lands on one pod (kube-proxy balances connections, not calls), so a
//! scaled-out backend's new pods get nothing from a running caller. Behind a headless Service
//! (`clusterIP: None`) the name resolves to every ready pod instead: [`channel`] keeps one
//! connection per address (tonic's balance channel, power of two choices over the ready ones) and
//! re-resolves the name every [`Balancing::interval`], adding new addresses and dropping the ones
//! that left. A URL whose host is an IP literal gets today's single lazily connected channel.
//!
//! Name resolution sits behind [`Resolve`]: [`DnsResolver`] in services, [`StaticResolver`] in
//! tests (two instances behind one name on loopback, and an instance removed from the name).

use std::{
    collections::BTreeSet,
    io,
    net::{IpAddr, SocketAddr},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use futures::future::BoxFuture;
use tonic::{
    service::interceptor::InterceptedService,
    transport::{Channel, Uri, channel::Change},
};

use super::{
    config::parse_env,
    grpc::{self, TraceInterceptor, TracedChannel},
};

/// How often a backend's name is resolved again by default: the TTL CoreDNS gives Kubernetes
/// records by default (5 s), so resolving more often would mostly read its cache.
pub const DEFAULT_RESOLVE_INTERVAL: Duration = Duration::from_secs(5);

/// Endpoint changes buffered between the resolver task and the balancer (one resolution sends
/// one change per address that came or went).
const CHANGE_CAPACITY: usize = 64;

/// Turns a host name into the addresses of the instances behind it.
pub trait Resolve: Send + Sync + 'static {
    /// Every address `host` stands for, each with `port`.
    fn resolve<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> BoxFuture<'a, io::Result<Vec<SocketAddr>>>;
}

/// The system resolver (in Kubernetes, cluster DNS: a headless Service's name gives every ready
/// pod's address).
#[derive(Clone, Copy, Debug, Default)]
pub struct DnsResolver;

impl Resolve for DnsResolver {
    fn resolve<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> BoxFuture<'a, io::Result<Vec<SocketAddr>>> {
        Box::pin(async move { Ok(tokio::net::lookup_host((host, port)).await?.collect()) })
    }
}

/// A resolver answering a set of addresses that the test changes at will (whatever the host and
/// port asked), and counting the resolutions so a test can wait until a change was picked up.
#[derive(Clone, Debug, Default)]
pub struct StaticResolver {
    addrs: Arc<Mutex<Vec<SocketAddr>>>,
    lookups: Arc<AtomicU64>,
}

impl StaticResolver {
    pub fn new(addrs: impl IntoIterator<Item = SocketAddr>) -> Self {
        let resolver = Self::default();
        resolver.set(addrs);
        resolver
    }

    /// What the next resolutions answer.
    pub fn set(&self, addrs: impl IntoIterator<Item = SocketAddr>) {
        *self.addrs.lock().expect("resolver lock") = addrs.into_iter().collect();
    }

    /// Resolutions answered so far.
    pub fn lookups(&self) -> u64 {
        self.lookups.load(Ordering::SeqCst)
    }
}

impl Resolve for StaticResolver {
    fn resolve<'a>(
        &'a self,
        _host: &'a str,
        _port: u16,
    ) -> BoxFuture<'a, io::Result<Vec<SocketAddr>>> {
        let addrs = self.addrs.lock().expect("resolver lock").clone();
        self.lookups.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move { Ok(addrs) })
    }
}

/// How balanced channels find their backends' instances.
#[derive(Clone)]
pub struct Balancing {
    pub resolver: Arc<dyn Resolve>,
    /// Time between two resolutions of a name.
    pub interval: Duration,
}

impl std::fmt::Debug for Balancing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Balancing")
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl Default for Balancing {
    /// DNS, re-resolved every [`DEFAULT_RESOLVE_INTERVAL`].
    fn default() -> Self {
        Self {
            resolver: Arc::new(DnsResolver),
            interval: DEFAULT_RESOLVE_INTERVAL,
        }
    }
}

impl Balancing {
    /// DNS, re-resolved every `GRPC_RESOLVE_INTERVAL_MS` milliseconds (default 5000).
    pub fn from_env() -> Result<Self, BalanceError> {
        let interval = parse_env::<u64>("GRPC_RESOLVE_INTERVAL_MS")
            .map_err(|e| BalanceError::Setting(format!("{e:#}")))?
            .map_or(DEFAULT_RESOLVE_INTERVAL, Duration::from_millis);
        if interval.is_zero() {
            return Err(BalanceError::Setting(
                "GRPC_RESOLVE_INTERVAL_MS must be at least 1".into(),
            ));
        }
        Ok(Self {
            interval,
            ..Self::default()
        })
    }

    /// A resolver of the caller's choice (tests), re-resolved every `interval`.
    pub fn with(resolver: impl Resolve, interval: Duration) -> Self {
        Self {
            resolver: Arc::new(resolver),
            interval,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BalanceError {
    #[error("invalid gRPC peer URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("{0}")]
    Setting(String),
}

/// A channel to `url` (`http://host:port`) whose calls are spread over every address of `host`,
/// re-resolved every `balancing.interval`; for an IP literal, one lazily connected channel as
/// [`grpc::channel`] makes. Needs a Tokio runtime (the resolver runs in a task of its own, which
/// ends when the last clone of the channel is dropped).
pub fn channel(url: &str, balancing: &Balancing) -> Result<TracedChannel, BalanceError> {
    let invalid = |reason: String| BalanceError::InvalidUrl {
        url: url.to_string(),
        reason,
    };
    let uri: Uri = url.parse().map_err(|e| invalid(format!("{e}")))?;
    let host = uri
        .host()
        .ok_or_else(|| invalid("no host".into()))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    if host.parse::<IpAddr>().is_ok() {
        return grpc::channel(url).map_err(|e| invalid(format!("{e:#}")));
    }
    let scheme = uri.scheme_str().unwrap_or("http").to_string();
    let port = match uri.port_u16() {
        Some(port) => port,
        None if scheme == "https" => 443,
        None => 80,
    };
    let (channel, changes) = Channel::balance_channel::<SocketAddr>(CHANGE_CAPACITY);
    let target = Target {
        host,
        port,
        scheme,
        origin: uri,
    };
    tokio::spawn(follow(
        target,
        balancing.resolver.clone(),
        balancing.interval,
        changes,
    ));
    Ok(InterceptedService::new(
        grpc::Metered::new(channel),
        TraceInterceptor,
    ))
}

/// What a balanced channel resolves, and how it names the backend in its requests.
struct Target {
    host: String,
    port: u16,
    scheme: String,
    /// The URL as configured: requests carry its authority (the Service name), not a pod's address.
    origin: Uri,
}

/// Resolves `target` every `interval` and turns the differences into endpoint changes, until the
/// balancer is dropped.
async fn follow(
    target: Target,
    resolver: Arc<dyn Resolve>,
    interval: Duration,
    changes: tokio::sync::mpsc::Sender<Change<SocketAddr, tonic::transport::Endpoint>>,
) {
    let mut current = BTreeSet::new();
    loop {
        match resolver.resolve(&target.host, target.port).await {
            // No address (every pod gone or not ready) or a failed lookup keeps the last known
            // ones: a DNS hiccup must not empty the balancer, and calls to pods that are really
            // gone fail on their own.
            Ok(addrs) if addrs.is_empty() => {
                tracing::warn!(host = %target.host, "resolved to no address; keeping the last known ones");
            }
            Err(e) => {
                tracing::warn!(host = %target.host, error = %e, "resolution failed; keeping the last known addresses");
            }
            Ok(addrs) => {
                let next: BTreeSet<SocketAddr> = addrs.into_iter().collect();
                // New instances first, so the balancer is never left with none in between.
                for &addr in next.difference(&current) {
                    let url = format!("{}://{addr}", target.scheme);
                    let endpoint = match grpc::endpoint(&url) {
                        Ok(endpoint) => endpoint.origin(target.origin.clone()),
                        Err(e) => {
                            tracing::error!(%url, error = %e, "cannot make an endpoint");
                            continue;
                        }
                    };
                    if changes.send(Change::Insert(addr, endpoint)).await.is_err() {
                        return;
                    }
                }
                for &addr in current.difference(&next) {
                    if changes.send(Change::Remove(addr)).await.is_err() {
                        return;
                    }
                }
                if next != current {
                    tracing::info!(host = %target.host, addresses = ?next, "backend instances changed");
                }
                current = next;
            }
        }
        tokio::select! {
            () = changes.closed() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

#[cfg(test)]
mod tests;
