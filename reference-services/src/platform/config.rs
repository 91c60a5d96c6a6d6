//! Service configuration, read only from the environment (twelve-factor), with errors that name
//! the variable and the bad value.
//!
//! One listener per service carries both its HTTP routes and its gRPC services (HTTP/1.1 and h2c
//! on the same port), so a pod exposes one port; the fault-injection admin API listens on a
//! separate address that defaults to loopback, so it is never public by accident.
//!
//! Either listener can instead be a socket inherited from the parent process (`LISTEN_FD`,
//! `ADMIN_FD`): the embedded stack binds every port itself so that no other process can take a
//! port between choosing it and the service binding it (see [`super::sockets`]).

use std::{net::SocketAddr, os::fd::RawFd, path::PathBuf, str::FromStr};

use anyhow::{Context, Result, bail};

/// Everything a service needs to start.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// Service name as used in metrics labels, logs and the stack (`order`, `api-gateway`, ...).
    pub name: String,
    /// Address of the main listener (HTTP + gRPC).
    pub listen: SocketAddr,
    /// Address of the admin listener (fault injection); loopback by default.
    pub admin_listen: SocketAddr,
    /// An inherited listening socket to serve instead of binding `listen` (`LISTEN_FD`).
    pub listen_fd: Option<RawFd>,
    /// An inherited listening socket to serve instead of binding `admin_listen` (`ADMIN_FD`).
    pub admin_fd: Option<RawFd>,
    /// Directory for SQLite files when `DATABASE_URL` is not set.
    pub data_dir: PathBuf,
    /// `postgres://...` or `sqlite://...`; `None` means a SQLite file in `data_dir`.
    pub database_url: Option<String>,
    /// Kafka bootstrap servers (`host:port,...`); `None` disables Kafka for services that can run without it.
    pub kafka_bootstrap: Option<String>,
    /// Redis URL for the cart; `None` keeps carts in memory.
    pub redis_url: Option<String>,
}

impl ServiceConfig {
    /// Reads the configuration of service `name`; `default_port` is the port it uses in a cluster.
    pub fn from_env(name: &str, default_port: u16) -> Result<Self> {
        Ok(Self {
            name: name.to_string(),
            listen: parse_env("LISTEN_ADDR")?
                .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], default_port))),
            admin_listen: parse_env("ADMIN_ADDR")?
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9901))),
            listen_fd: parse_env("LISTEN_FD")?,
            admin_fd: parse_env("ADMIN_FD")?,
            data_dir: std::env::var_os("DATA_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("data")),
            database_url: non_empty_env("DATABASE_URL"),
            kafka_bootstrap: non_empty_env("KAFKA_BOOTSTRAP_SERVERS"),
            redis_url: non_empty_env("REDIS_URL"),
        })
    }

    /// A configuration for tests: loopback listeners on free ports, data in `data_dir`.
    pub fn for_test(name: &str, data_dir: &std::path::Path) -> Self {
        Self {
            name: name.to_string(),
            listen: SocketAddr::from(([127, 0, 0, 1], free_port())),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], free_port())),
            listen_fd: None,
            admin_fd: None,
            data_dir: data_dir.to_path_buf(),
            database_url: None,
            kafka_bootstrap: None,
            redis_url: None,
        }
    }

    /// The Kafka bootstrap servers, or an error saying which variable to set.
    pub fn require_kafka(&self) -> Result<&str> {
        match &self.kafka_bootstrap {
            Some(servers) => Ok(servers),
            None => bail!(
                "service {} needs Kafka: set KAFKA_BOOTSTRAP_SERVERS",
                self.name
            ),
        }
    }
}

/// A loopback port that was free a moment ago (the OS picks it; the caller binds it next).
///
/// Racy by nature: anything on the machine may take the port before the caller binds it. Fine for
/// in-process test helpers and for servers that cannot be handed a socket; the embedded stack
/// binds its listeners itself instead (see [`super::sockets`]).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding a loopback port")
}

/// Base URL of a peer service: `<NAME>_URL` from the environment, else its in-cluster DNS name.
pub fn peer_url(service: &str, default_port: u16) -> String {
    let var = format!("{}_URL", service.to_uppercase().replace('-', "_"));
    non_empty_env(&var).unwrap_or_else(|| format!("http://{service}:{default_port}"))
}

/// A variable's value, treating empty as unset.
pub fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Parses a variable if set; the error names the variable and the value.
pub fn parse_env<T>(name: &str) -> Result<Option<T>>
where
    T: FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    non_empty_env(name)
        .map(|raw| {
            raw.parse::<T>()
                .with_context(|| format!("environment variable {name}={raw:?} is invalid"))
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_url_falls_back_to_cluster_dns() {
        assert_eq!(peer_url("no-such-peer", 50051), "http://no-such-peer:50051");
    }

    #[test]
    fn parse_env_names_the_variable() {
        // SAFETY: the variable name is unique to this test, so no other test reads it concurrently.
        unsafe { std::env::set_var("SHOP_TEST_BAD_ADDR", "not-an-address") };
        let err = parse_env::<SocketAddr>("SHOP_TEST_BAD_ADDR").unwrap_err();
        assert!(format!("{err:#}").contains("SHOP_TEST_BAD_ADDR=\"not-an-address\""));
    }
}
