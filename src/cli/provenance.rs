//! Stamps every report this binary writes with what produced it: this build (version, git
//! commit), the command line (secrets redacted), the host, digests of the input files, every
//! PromQL query whose answer is in the report, and the run's window and target. The runner
//! itself records the generator's health; this module adds the facts only the command knows.
//!
//! Input files are digested when the command starts, the moment it reads them, so a file edited
//! during a long run is recorded as it was used.

use std::ffi::OsString;

use reports::provenance::{Build, Host, InputFile};
use reports::{Provenance, Report};

/// The files a command read, digested as it started.
#[derive(Clone, Debug, Default)]
pub(super) struct Inputs(Vec<InputFile>);

impl Inputs {
    /// Adds `name` in `role` (a file is digested; a built-in name is recorded as such).
    pub fn with(mut self, role: &str, name: Option<&str>) -> Inputs {
        if let Some(name) = name {
            self.0.push(InputFile::of(role, name));
        }
        self
    }

    /// Provenance of a document that is not a run's (an `slo check`, a capacity summary).
    pub fn provenance(&self) -> Provenance {
        Provenance {
            shakedown: Some(build()),
            command_line: Some(command_line(std::env::args_os())),
            host: Some(Host::this()),
            files: self.0.clone(),
            ..Provenance::default()
        }
    }

    /// Puts this command's provenance on `report`, keeping what the run recorded (generator
    /// health, queries of a merge) and collecting the queries of its SLOs and server figures.
    pub fn stamp(&self, report: &mut Report) {
        let recorded = std::mem::take(&mut report.provenance);
        let mut provenance = Provenance {
            target: Some(report.target.clone()),
            started_at: Some(report.started_at),
            ended_at: Some(report.ended_at),
            queries: recorded.queries,
            generator: recorded.generator,
            ..self.provenance()
        };
        provenance.add_queries(report.slos.iter().filter_map(|slo| slo.query.as_deref()));
        if let Some(server) = &report.server_side {
            provenance.add_queries(server.queries.iter().map(String::as_str));
        }
        report.provenance = provenance;
    }
}

/// This binary's build.
pub(super) fn build() -> Build {
    Build {
        version: env!("CARGO_PKG_VERSION").to_string(),
        commit: option_env!("SHAKEDOWN_GIT_COMMIT").map(str::to_string),
        dirty: option_env!("SHAKEDOWN_GIT_DIRTY") == Some("true"),
        profile: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
        .to_string(),
    }
}

/// Header names whose values are credentials.
const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
    "api-key",
    "x-auth-token",
];

/// The command line, shell-quoted so it can be pasted back, with credentials replaced by `***`:
/// values of credential headers (`-H 'Authorization: Bearer …'`) and passwords in URLs.
pub(super) fn command_line(args: impl IntoIterator<Item = OsString>) -> String {
    let mut words: Vec<String> = Vec::new();
    let mut header_next = false;
    for (index, arg) in args.into_iter().enumerate() {
        let mut word = arg.to_string_lossy().into_owned();
        if index == 0 {
            // The program as invoked may be a long build path; its name says enough.
            word = std::path::Path::new(&word)
                .file_name()
                .map_or(word.clone(), |name| name.to_string_lossy().into_owned());
        }
        if header_next {
            word = redact_header(&word);
            header_next = false;
        } else if word == "-H" || word == "--header" {
            header_next = true;
        } else if let Some(value) = word.strip_prefix("--header=") {
            word = format!("--header={}", redact_header(value));
        }
        words.push(redact_url_password(&word));
    }
    shlex::try_join(words.iter().map(String::as_str)).unwrap_or_else(|_| words.join(" "))
}

fn redact_header(header: &str) -> String {
    match header.split_once(':') {
        Some((name, _)) if SECRET_HEADERS.contains(&name.trim().to_ascii_lowercase().as_str()) => {
            format!("{name}: ***")
        }
        _ => header.to_string(),
    }
}

/// `scheme://user:secret@host` → `scheme://user:***@host`, anywhere in a word.
fn redact_url_password(word: &str) -> String {
    let Some(scheme_end) = word.find("://") else {
        return word.to_string();
    };
    let authority_start = scheme_end + 3;
    let rest = &word[authority_start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return word.to_string();
    };
    let Some(colon) = rest[..at].find(':') else {
        return word.to_string();
    };
    format!(
        "{}{}:***{}",
        &word[..authority_start],
        &rest[..colon],
        &rest[at..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(args: &[&str]) -> String {
        command_line(args.iter().map(OsString::from))
    }

    #[test]
    fn the_command_line_can_be_pasted_back() {
        assert_eq!(
            line(&[
                "/home/ci/target/release/shakedown",
                "run",
                "my scenario.yaml",
                "--rate",
                "10"
            ]),
            "shakedown run 'my scenario.yaml' --rate 10"
        );
    }

    #[test]
    fn credentials_never_reach_a_report() {
        assert_eq!(
            line(&[
                "shakedown",
                "run",
                "--url",
                "https://ci:hunter2@staging.example/api?q=1",
                "-H",
                "Authorization: Bearer eyJhbGci",
                "--header=Cookie: session=abc",
                "-H",
                "Accept: application/json",
            ]),
            "shakedown run --url 'https://ci:***@staging.example/api?q=1' -H 'Authorization: ***' \
             '--header=Cookie: ***' -H 'Accept: application/json'"
        );
        assert_eq!(
            redact_url_password("http://user@host/a:b@c"),
            "http://user@host/a:b@c"
        );
        assert_eq!(redact_url_password("no url"), "no url");
    }

    #[test]
    fn a_stamp_keeps_what_the_run_recorded_and_collects_queries() {
        let mut report = slo::testing::report::run_report(chrono::Utc::now(), 2, &[]);
        report.provenance.generator = Some(reports::GeneratorHealth::default());
        report.provenance.queries = vec!["up".into()];
        report.slos.push(reports::SloVerdict {
            name: "latency".into(),
            status: reports::SloStatus::Pass,
            measured: Some(1.0),
            unit: None,
            objective: "p95 < 500 ms".into(),
            source: "prometheus".into(),
            query: Some("histogram_quantile(0.95, x)".into()),
            window: None,
            message: None,
        });
        let inputs = Inputs::default().with("scenario", Some("checkout"));
        inputs.stamp(&mut report);
        let p = &report.provenance;
        assert_eq!(p.queries, ["up", "histogram_quantile(0.95, x)"]);
        assert!(p.generator.is_some(), "the runner's figures are kept");
        assert_eq!(p.target.as_deref(), Some(report.target.as_str()));
        assert_eq!(p.started_at, Some(report.started_at));
        assert_eq!(p.files[0].short_digest(), "built-in");
        assert_eq!(
            p.shakedown.as_ref().unwrap().version,
            env!("CARGO_PKG_VERSION")
        );
        assert!(p.host.as_ref().unwrap().cpus >= 1);
    }
}
