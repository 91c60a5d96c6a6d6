//! The services of the platform, one module each, and the table that describes them: the port
//! each uses in a cluster, how it is reached, what it depends on. The embedded stack starts them
//! in the order of this table; `shakedown serve NAME` runs one.

use anyhow::{Result, bail};

use crate::platform::{config::ServiceConfig, http::Runtime};

pub mod analytics;
pub mod analytics_ingest;
pub mod audit;
pub mod auth;
pub mod cart;
pub mod gateway;
pub mod inventory;
pub mod notification;
pub mod offer;
pub mod order;
pub mod payment;
pub mod product;
pub mod recommendation;
pub mod user;

/// How clients reach a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// gRPC API (plus ops HTTP routes on the same port).
    Grpc,
    /// HTTP API.
    Http,
    /// Kafka consumer only (ops HTTP routes and a small read API for inspection).
    Consumer,
}

/// Static description of a service.
#[derive(Clone, Copy, Debug)]
pub struct ServiceSpec {
    pub name: &'static str,
    /// Port in a cluster (the embedded stack picks free ports instead).
    pub port: u16,
    pub protocol: Protocol,
    /// Services that must be ready before this one starts.
    pub depends_on: &'static [&'static str],
    /// Whether it needs Kafka.
    pub kafka: bool,
    /// Whether it publishes through an outbox (its `/admin/accounting` then reports the backlog):
    /// what it accepted while Kafka was down waits there, so a recovery includes its delivery.
    pub outbox: bool,
}

impl ServiceSpec {
    const fn with_outbox(self) -> Self {
        Self {
            outbox: true,
            ..self
        }
    }
}

const fn spec(
    name: &'static str,
    port: u16,
    protocol: Protocol,
    depends_on: &'static [&'static str],
    kafka: bool,
) -> ServiceSpec {
    ServiceSpec {
        name,
        port,
        protocol,
        depends_on,
        kafka,
        outbox: false,
    }
}

/// Every service, in a valid start order (dependencies first).
pub const ALL: &[ServiceSpec] = &[
    spec("auth", 50051, Protocol::Grpc, &[], false),
    spec("user", 50051, Protocol::Grpc, &[], false),
    spec("product", 50051, Protocol::Grpc, &[], false),
    spec("inventory", 50051, Protocol::Grpc, &[], false),
    spec("offer", 50051, Protocol::Grpc, &["product"], false),
    spec("cart", 7070, Protocol::Http, &[], false),
    spec(
        "order",
        50051,
        Protocol::Grpc,
        &["product", "offer", "inventory"],
        true,
    )
    .with_outbox(),
    spec("payment", 50051, Protocol::Grpc, &["order"], true).with_outbox(),
    spec("recommendation", 50051, Protocol::Grpc, &["product"], true),
    spec("notification", 8080, Protocol::Consumer, &[], true),
    spec("analytics-ingest", 8080, Protocol::Http, &[], true),
    spec("analytics", 8080, Protocol::Consumer, &[], true),
    spec("audit", 8080, Protocol::Consumer, &[], true),
    spec(
        "api-gateway",
        8080,
        Protocol::Http,
        &[
            "auth",
            "user",
            "product",
            "inventory",
            "offer",
            "cart",
            "order",
            "payment",
            "recommendation",
            "analytics-ingest",
        ],
        false,
    ),
];

/// The description of service `name`.
pub fn find(name: &str) -> Option<&'static ServiceSpec> {
    ALL.iter().find(|s| s.name == name)
}

/// The names of every service, for error messages and `--help`.
pub fn names() -> Vec<&'static str> {
    ALL.iter().map(|s| s.name).collect()
}

/// Runs service `name` with configuration from the environment until SIGTERM/SIGINT.
pub async fn serve(name: &str) -> Result<()> {
    let Some(spec) = find(name) else {
        bail!(
            "unknown service {name:?}; known services: {}",
            names().join(", ")
        );
    };
    let runtime = Runtime::new(ServiceConfig::from_env(spec.name, spec.port)?)?;
    start(runtime).await
}

/// Runs the service named by `runtime.config.name` on `runtime`.
pub async fn start(runtime: Runtime) -> Result<()> {
    match runtime.config.name.as_str() {
        "auth" => auth::run(runtime).await,
        "user" => user::run(runtime).await,
        "product" => product::run(runtime).await,
        "inventory" => inventory::run(runtime).await,
        "offer" => offer::run(runtime).await,
        "cart" => cart::run(runtime).await,
        "order" => order::run(runtime).await,
        "payment" => payment::run(runtime).await,
        "recommendation" => recommendation::run(runtime).await,
        "notification" => notification::run(runtime).await,
        "analytics-ingest" => analytics_ingest::run(runtime).await,
        "analytics" => analytics::run(runtime).await,
        "audit" => audit::run(runtime).await,
        "api-gateway" => gateway::run(runtime).await,
        other => bail!("service {other:?} is not implemented"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_order_respects_dependencies() {
        for (i, s) in ALL.iter().enumerate() {
            for dep in s.depends_on {
                let j = ALL
                    .iter()
                    .position(|d| d.name == *dep)
                    .expect("dependency is a service");
                assert!(j < i, "{} must start after {dep}", s.name);
            }
        }
    }
}
