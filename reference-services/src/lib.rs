//! `shop`: the reference e-commerce platform that shakedown tests.
//!
//! Lean but real implementations of every service named in the platform documents (gateway, auth,
//! user, product, inventory, cart, order, payment, offer, recommendation, notification,
//! analytics-ingest, analytics, audit), sharing one platform layer (config, telemetry, health,
//! shutdown, storage, events, fault injection), plus the embedded [`stack`] that runs them all on
//! one machine against librdkafka's mock Kafka cluster.
//!
//! Errors are typed (thiserror) at the crate's public entry points — [`stack::StackError`] for
//! starting the stack, the supervisor's and mock Kafka's errors for acting on it, and the checks,
//! counts and validations the platform exposes — so callers can tell a usage problem from an
//! infrastructure one; anyhow is used inside a service's own process (its `run`), as in any
//! application.

pub mod platform;
pub mod proto;
pub mod services;
pub mod stack;
/// Test support for the services' unit and integration tests (feature `testing`).
#[cfg(any(test, feature = "testing"))]
pub mod testkit;
