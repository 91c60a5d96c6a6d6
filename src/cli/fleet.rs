//! `shakedown run --workers N --on local|manual|k8s`: the process becomes the coordinator of N
//! workers (see `scenarios::fleet`) and writes the one report of the run.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, ValueEnum};
use scenarios::Overrides;
use scenarios::fleet::k8s::{Kube, KubeSpec};
use scenarios::fleet::{FleetPlan, Local, Manual, coordinate as run_fleet};

use super::exit::{self, Exit};
use super::gate::SloGate;
use super::live::Live;
use super::run::{RunArgs, profile_and_scale, validate, write};
use super::shutdown::Shutdown;

/// Where the workers of a coordinated run come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum On {
    /// N `shakedown worker` processes on this machine.
    Local,
    /// Started by you (other machines, containers): the coordinator prints the command.
    Manual,
    /// A Kubernetes Indexed Job created (and deleted) by the coordinator; needs --image and
    /// --advertise (a URL the pods reach the coordinator at).
    K8s,
}

#[derive(Args, Debug)]
pub struct FleetArgs {
    /// Coordinate --workers N workers and write one report: `local` spawns them on this
    /// machine, `manual` waits for `shakedown worker --coordinator URL` started elsewhere.
    #[arg(long, value_enum)]
    pub on: Option<On>,
    /// With --on: the address the coordinator listens on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0", requires = "on")]
    pub listen: SocketAddr,
    /// With --on: the URL workers reach the coordinator at, when not its listen address (a
    /// Service, a port-forward, a public address).
    #[arg(long, requires = "on")]
    pub advertise: Option<String>,
    /// With --on: how long every worker has to connect before the run is given up (exit 3).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration, requires = "on")]
    pub join_timeout: Duration,
    /// With --on k8s: the namespace of the workers' Job.
    #[arg(long, default_value = scenarios::fleet::k8s::DEFAULT_NAMESPACE, requires = "on")]
    pub namespace: String,
    /// With --on k8s: the shakedown image the workers run.
    #[arg(long, requires = "on")]
    pub image: Option<String>,
    /// With --on k8s: CPU of each worker (request = limit, so throttling does not skew latency).
    #[arg(long, default_value = "1", requires = "on")]
    pub cpu: String,
    /// With --on k8s: memory of each worker (request = limit).
    #[arg(long, default_value = "512Mi", requires = "on")]
    pub memory: String,
}

pub async fn coordinate(args: &RunArgs, on: On, quiet: bool, shutdown: &Shutdown) -> Result<Exit> {
    if args.url.url.is_some() {
        return Err(exit::usage(
            "--on coordinates a scenario and a profile; --url is not supported with it",
        ));
    }
    let Some(target) = args.target.clone() else {
        return Err(exit::usage(
            "--on coordinates workers against one system under test: give it --target",
        ));
    };
    validate(&args.scenario, Some(&target))?;
    let gate = SloGate::load(&args.slo)?;
    if let Some(gate) = &gate {
        gate.preflight(None).await?;
    }
    // Opened before any worker starts: a bad address is a usage error with nothing to undo.
    let live = args.live.start(quiet)?;
    let (profile, scale) = profile_and_scale(args);
    let plan = FleetPlan {
        scenario: args.scenario.clone(),
        profile: profile.to_string(),
        scale,
        overrides: Overrides {
            duration: args.duration,
            users: args.users,
            rate: args.rate,
        },
        target,
        workers: args.workers,
        listen: args.fleet.listen,
        advertise: args.fleet.advertise.clone(),
        join_timeout: args.fleet.join_timeout,
        quiet,
        live: Live::metrics(&live),
    };
    let cancel = shutdown.token();
    let outcome = match on {
        On::Local => {
            let program = std::env::current_exe()
                .map_err(|e| anyhow::anyhow!("cannot find the shakedown binary to spawn: {e}"))?;
            run_fleet(plan, Local::new(program, Some(args.out.clone())), &cancel).await
        }
        On::Manual => run_fleet(plan, Manual, &cancel).await,
        On::K8s => {
            let (Some(image), Some(_)) = (&args.fleet.image, &args.fleet.advertise) else {
                return Err(exit::usage(
                    "--on k8s needs --image (the shakedown image) and --advertise (the URL the \
                     worker pods reach this coordinator at, e.g. its Service)",
                ));
            };
            let spec = KubeSpec {
                namespace: args.fleet.namespace.clone(),
                image: image.clone(),
                cpu: args.fleet.cpu.clone(),
                memory: args.fleet.memory.clone(),
            };
            match Kube::from_environment(spec).await {
                Ok(kube) => run_fleet(plan, kube, &cancel).await,
                Err(error) => Err(error),
            }
        }
    };
    match &outcome {
        // The final figures are in: pushed, and served a while longer (--metrics-linger).
        Ok(_) => Live::finish(live, shutdown).await,
        // No run to show (no cluster, workers that never joined): nothing to linger for.
        Err(_) => drop(live),
    }
    let mut report = outcome.map_err(exit::classified)?;
    let slo_exit = match &gate {
        Some(gate) => gate.judge(&mut report, None, quiet).await,
        None => None,
    };
    if !quiet {
        for worker in &report.workers {
            eprintln!(
                "worker {} ({}): {} requests, {} errors, p95 {}, clock offset {:.1} ms, {}{}",
                worker.index,
                worker.name,
                worker.requests,
                worker.errors,
                worker
                    .p95_ms
                    .map_or("-".to_string(), |ms| format!("{ms:.1} ms")),
                worker.clock_offset_ms,
                worker.status,
                worker
                    .flag
                    .as_deref()
                    .map_or(String::new(), |flag| format!(" — {flag}"))
            );
        }
    }
    let dir = args.out.join(&report.run_id);
    super::run::inputs(args).stamp(&mut report);
    write(&dir, &report, quiet)?;
    Ok(slo_exit.unwrap_or(report.verdict.into()))
}
