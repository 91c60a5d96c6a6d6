//! `shakedown serve SERVICE`: one reference service in the foreground, configured from the
//! environment (what a container runs, and what the embedded stack starts for each child). It
//! binds `LISTEN_ADDR` and `ADMIN_ADDR`, unless `LISTEN_FD` / `ADMIN_FD` name listening sockets
//! inherited from the parent (the embedded stack binds its ports itself and passes them down).

use anyhow::Result;
use clap::Args;

use super::{Exit, exit::usage};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The service: api-gateway, auth, user, product, inventory, offer, cart, order, payment,
    /// recommendation, notification, analytics-ingest, analytics, audit.
    pub service: String,
}

pub async fn run(args: ServeArgs) -> Result<Exit> {
    if shop::services::find(&args.service).is_none() {
        return Err(usage(format!(
            "unknown service {:?}; known services: {}",
            args.service,
            shop::services::names().join(", ")
        )));
    }
    shop::services::serve(&args.service).await?;
    Ok(Exit::Pass)
}
