//! `shakedown run --url URL`: the flags of ad-hoc URL mode and their translation into a one-step
//! scenario and a constant profile (`scenarios::adhoc`), refused with exit 2 before anything is
//! sent when they do not add up.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use scenarios::adhoc::{self, Body, Pace, Request};
use scenarios::{Profile, Scenario};

use super::exit;

#[derive(Args, Debug)]
pub struct UrlArgs {
    /// Ad-hoc mode: load this one URL (like hey or oha) instead of a scenario, with --users N or
    /// --rate R, and --duration D. The report, thresholds and --slo gate work as for any run.
    #[arg(long, conflicts_with_all = ["target", "profile", "scale", "workers"])]
    pub url: Option<String>,
    /// Ad-hoc mode: the request's method.
    #[arg(long, requires = "url", default_value = "GET")]
    pub method: String,
    /// Ad-hoc mode: a request header, `Name: value` (repeatable).
    #[arg(long = "header", short = 'H', requires = "url")]
    pub headers: Vec<String>,
    /// Ad-hoc mode: the request body, as text or `@FILE` for a file's bytes.
    #[arg(long, requires = "url")]
    pub body: Option<String>,
}

/// What ad-hoc mode runs.
pub struct AdHoc {
    pub scenario: Scenario,
    pub profile: Profile,
    /// The URL's origin: what the run is reported against.
    pub target: String,
}

/// The ad-hoc run the flags describe, `None` without `--url`.
pub fn prepare(
    args: &UrlArgs,
    users: Option<u32>,
    rate: Option<f64>,
    duration: Option<Duration>,
) -> Result<Option<AdHoc>> {
    let Some(url) = &args.url else {
        return Ok(None);
    };
    let headers = args
        .headers
        .iter()
        .map(|h| adhoc::parse_header(h).map_err(|e| exit::usage(format!("--header: {e}"))))
        .collect::<Result<Vec<_>>>()?;
    let body = match args.body.as_deref() {
        None => None,
        Some(text) => Some(match text.strip_prefix('@') {
            Some(path) => {
                let path = PathBuf::from(path);
                if !path.is_file() {
                    return Err(exit::usage(format!(
                        "--body @{}: no such file",
                        path.display()
                    )));
                }
                Body::File(std::path::absolute(&path)?)
            }
            None => Body::Text(text.to_string()),
        }),
    };
    let request = Request {
        url: url.clone(),
        method: args.method.clone(),
        headers,
        body,
    };
    let Some(duration) = duration else {
        return Err(exit::usage("--url needs --duration (e.g. --duration 30s)"));
    };
    let pace = match (users, rate) {
        (Some(users), None) => Pace::Users(users),
        (max_users, Some(rate)) => Pace::Rate { rate, max_users },
        (None, None) => {
            return Err(exit::usage(
                "--url needs --users N (closed model) or --rate R (iterations/s, open model)",
            ));
        }
    };
    let target = request.origin().map_err(|e| exit::usage(e.to_string()))?;
    let scenario = request.scenario().map_err(|e| exit::usage(e.to_string()))?;
    let profile = adhoc::profile(pace, duration).map_err(|e| exit::usage(e.to_string()))?;
    Ok(Some(AdHoc {
        scenario,
        profile,
        target,
    }))
}
