//! Fixtures the integration tests of the order, payment and event-driven services share: the mock
//! Kafka cluster, fake peers and a throwaway PostgreSQL server. Starting services and waiting is
//! the crate's one test harness, `shop::testkit`.
//!
//! Each test binary uses a part of it, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod fakes;
pub mod kafka;
pub mod postgres;
