//! What produced a report, so it can be trusted in a CI gate or an incident review months later:
//! the build of shakedown, the command line, the host, digests of every input file, every PromQL
//! query asked, and whether the load generator itself kept up.
//!
//! A run whose generator was saturated measured the generator as much as the system: its report
//! is marked `degraded` with the reasons ([`GeneratorHealth::judge`]). Degraded does not change
//! the verdict (a busy CI runner would turn it into a flaky gate); it is shown next to the verdict
//! in every rendering so nobody reads the numbers without knowing.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// An open-model iteration that started this late (ms) behind its schedule means the generator
/// could not keep up: its load was not sent as planned.
pub const BEHIND_MS: f64 = 250.0;
/// The share of the machine's cores the shakedown process may use before it counts as CPU-bound.
pub const CPU_BOUND_SHARE: f64 = 0.9;
/// The share of scheduled open-model iterations that must have started.
pub const STARTED_SHARE: f64 = 0.99;

/// Everything known about how a report was produced. Every part is optional so reports written
/// before provenance existed still load, and a part that could not be found is left out rather
/// than guessed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// The shakedown build that wrote the report.
    #[serde(default)]
    pub shakedown: Option<Build>,
    /// The command line, shell-quoted.
    #[serde(default)]
    pub command_line: Option<String>,
    /// Where the load or the checks went.
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub ended_at: Option<DateTime<Utc>>,
    /// The machine the command ran on.
    #[serde(default)]
    pub host: Option<Host>,
    /// The scenario, profile, SLO, experiment (and merged report) files, with their digests.
    #[serde(default)]
    pub files: Vec<InputFile>,
    /// Every PromQL query whose answer is in the report, in the order asked, once each.
    #[serde(default)]
    pub queries: Vec<String>,
    /// How the load generator fared; absent for reports that sent no load.
    #[serde(default)]
    pub generator: Option<GeneratorHealth>,
}

impl Provenance {
    /// True when nothing is recorded (a report from before provenance existed).
    pub fn is_empty(&self) -> bool {
        self == &Provenance::default()
    }

    /// Whether the generator was saturated, and why (empty when it kept up or is unknown).
    pub fn degraded_because(&self) -> &[String] {
        self.generator.as_ref().map_or(&[], |g| g.why.as_slice())
    }

    /// Adds queries not yet listed, keeping the order they were asked in.
    pub fn add_queries<'a>(&mut self, queries: impl IntoIterator<Item = &'a str>) {
        for query in queries {
            if !self.queries.iter().any(|known| known == query) {
                self.queries.push(query.to_string());
            }
        }
    }
}

/// The build of shakedown.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Build {
    pub version: String,
    /// The git commit it was built from, when the build could ask git (or was told through
    /// `SHAKEDOWN_GIT_COMMIT`).
    pub commit: Option<String>,
    /// The work tree had changes not in `commit` when it was built.
    #[serde(default)]
    pub dirty: bool,
    /// `release` or `debug`: a debug build generates far less load per core.
    pub profile: String,
}

/// The machine a command ran on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Host {
    pub name: String,
    /// The operating system as it names itself, e.g. `Debian GNU/Linux 13 (trixie)`.
    pub os: String,
    /// The kernel release, when the OS says (Linux: `/proc/sys/kernel/osrelease`).
    pub kernel: Option<String>,
    pub arch: String,
    /// CPUs this process may use (cgroup and affinity limits included).
    pub cpus: usize,
}

impl Host {
    /// This machine.
    pub fn this() -> Host {
        Host {
            name: whoami::fallible::hostname().unwrap_or_else(|_| "unknown".to_string()),
            os: whoami::distro(),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .ok()
                .map(|release| release.trim().to_string()),
            arch: std::env::consts::ARCH.to_string(),
            cpus: std::thread::available_parallelism().map_or(1, usize::from),
        }
    }
}

/// One input of a command: a file with its SHA-256, or a built-in name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputFile {
    /// What the file is to the command: `scenario`, `profile`, `slo`, `experiment`, `report`.
    pub role: String,
    /// The path as given, or the built-in name.
    pub path: String,
    /// Hex SHA-256 of the file's bytes; `None` for a built-in.
    pub sha256: Option<String>,
    pub bytes: Option<u64>,
}

impl InputFile {
    /// `name` as the command took it: the file's digest when it is a file, else a built-in
    /// (shakedown resolves a name that is not a file to a built-in, or refuses it before this).
    pub fn of(role: &str, name: &str) -> InputFile {
        match std::fs::read(Path::new(name)) {
            Ok(bytes) => InputFile {
                role: role.to_string(),
                path: name.to_string(),
                sha256: Some(format!("{:x}", Sha256::digest(&bytes))),
                bytes: Some(bytes.len() as u64),
            },
            Err(_) => InputFile {
                role: role.to_string(),
                path: name.to_string(),
                sha256: None,
                bytes: None,
            },
        }
    }

    /// `sha256:<first 12 hex digits>`, or `built-in`.
    pub fn short_digest(&self) -> String {
        match &self.sha256 {
            Some(hex) => format!("sha256:{}", &hex[..hex.len().min(12)]),
            None => "built-in".to_string(),
        }
    }
}

/// What the load generator's process used while the load ran.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CpuUsage {
    /// User plus system CPU seconds of the whole shakedown process.
    pub process_cpu_s: f64,
    /// Wall-clock seconds the load ran.
    pub wall_s: f64,
    /// The CPUs the process may use.
    pub cores: usize,
    /// How busy the machine's CPUs were (every process), 0..1, when the OS says (Linux).
    pub host_busy: Option<f64>,
}

/// How the load generator fared during the run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GeneratorHealth {
    /// CPU seconds the shakedown process used while the load ran.
    #[serde(default)]
    pub cpu_seconds: Option<f64>,
    /// Average cores it kept busy (`cpu_seconds` over the run's wall time).
    #[serde(default)]
    pub cpu_cores_used: Option<f64>,
    /// The cores it could use.
    #[serde(default)]
    pub cores: Option<usize>,
    /// How busy the whole machine's CPUs were, 0..1 (other processes included).
    #[serde(default)]
    pub host_cpu_busy: Option<f64>,
    /// Open model: the longest delay of an iteration behind its schedule.
    #[serde(default)]
    pub max_lateness_ms: Option<f64>,
    /// The generator could not keep up; `why` says how.
    pub degraded: bool,
    #[serde(default)]
    pub why: Vec<String>,
}

impl GeneratorHealth {
    /// Judges a run's generator from its CPU use and, in the open model, how far behind its
    /// schedule it fell (`scheduled` and `started` iterations, longest lateness).
    pub fn judge(cpu: Option<CpuUsage>, open_model: Option<(u64, u64, f64)>) -> GeneratorHealth {
        let mut health = GeneratorHealth::default();
        if let Some(cpu) = cpu {
            let used = if cpu.wall_s > 0.0 {
                cpu.process_cpu_s / cpu.wall_s
            } else {
                0.0
            };
            health.cpu_seconds = Some(round(cpu.process_cpu_s, 3));
            health.cpu_cores_used = Some(round(used, 3));
            health.cores = Some(cpu.cores);
            health.host_cpu_busy = cpu.host_busy.map(|busy| round(busy, 3));
            if cpu.cores > 0 && used >= cpu.cores as f64 * CPU_BOUND_SHARE {
                health.why.push(format!(
                    "the shakedown process kept {used:.2} of its {} cores busy ({:.0} %): the \
                     generator was CPU-bound, its own queueing is in the latencies",
                    cpu.cores,
                    100.0 * used / cpu.cores as f64
                ));
            }
        }
        if let Some((scheduled, started, max_lateness_ms)) = open_model {
            health.max_lateness_ms = Some(round(max_lateness_ms, 3));
            if max_lateness_ms > BEHIND_MS {
                health.why.push(format!(
                    "iterations started up to {max_lateness_ms:.0} ms behind their schedule \
                     (more than {BEHIND_MS:.0} ms)"
                ));
            }
            if scheduled > 0 && (started as f64) < scheduled as f64 * STARTED_SHARE {
                health.why.push(format!(
                    "only {started} of {scheduled} scheduled iterations started"
                ));
            }
        }
        health.degraded = !health.why.is_empty();
        health
    }

    /// The health of a run made of several: degraded when any part was, each reason prefixed
    /// with the part's name (parts in name order); figures are the worst part's (CPU: the
    /// busiest).
    pub fn worst_of<'a>(
        parts: impl IntoIterator<Item = (&'a str, &'a GeneratorHealth)>,
    ) -> Option<GeneratorHealth> {
        // Sorted by name, so the merge of the same parts reads the same in any order.
        let mut parts: Vec<(&str, &GeneratorHealth)> = parts.into_iter().collect();
        parts.sort_by(|a, b| a.0.cmp(b.0));
        let mut merged: Option<GeneratorHealth> = None;
        for (name, part) in parts {
            let whole = merged.get_or_insert_with(GeneratorHealth::default);
            let max = |a: Option<f64>, b: Option<f64>| match (a, b) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            if part.cpu_cores_used > whole.cpu_cores_used {
                whole.cpu_seconds = part.cpu_seconds;
                whole.cpu_cores_used = part.cpu_cores_used;
                whole.cores = part.cores;
            }
            whole.host_cpu_busy = max(whole.host_cpu_busy, part.host_cpu_busy);
            whole.max_lateness_ms = max(whole.max_lateness_ms, part.max_lateness_ms);
            whole
                .why
                .extend(part.why.iter().map(|why| format!("{name}: {why}")));
        }
        if let Some(whole) = &mut merged {
            whole.degraded = !whole.why.is_empty();
        }
        merged
    }
}

fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu(process_cpu_s: f64, wall_s: f64) -> Option<CpuUsage> {
        Some(CpuUsage {
            process_cpu_s,
            wall_s,
            cores: 2,
            host_busy: Some(0.5),
        })
    }

    #[test]
    fn a_generator_that_kept_up_is_not_degraded() {
        let health = GeneratorHealth::judge(cpu(10.0, 20.0), Some((1000, 1000, 12.0)));
        assert!(!health.degraded, "{health:?}");
        assert_eq!(health.cpu_cores_used, Some(0.5));
        assert_eq!(health.max_lateness_ms, Some(12.0));
        assert!(health.why.is_empty());
    }

    #[test]
    fn a_cpu_bound_generator_is_degraded_and_says_how_busy() {
        let health = GeneratorHealth::judge(cpu(37.0, 20.0), None);
        assert!(health.degraded);
        assert_eq!(health.why.len(), 1);
        assert!(
            health.why[0].contains("1.85 of its 2 cores") && health.why[0].contains("92 %"),
            "{:?}",
            health.why
        );
        // Just under the bound: 1.79 of 2 cores.
        assert!(!GeneratorHealth::judge(cpu(35.8, 20.0), None).degraded);
    }

    #[test]
    fn an_open_model_behind_its_schedule_is_degraded_for_each_reason() {
        let late = GeneratorHealth::judge(cpu(1.0, 20.0), Some((1000, 1000, 251.0)));
        assert!(late.degraded);
        assert!(late.why[0].contains("251 ms behind"), "{:?}", late.why);

        let dropped = GeneratorHealth::judge(None, Some((1000, 989, 10.0)));
        assert!(dropped.degraded);
        assert_eq!(
            dropped.why,
            ["only 989 of 1000 scheduled iterations started"]
        );
        assert!(!GeneratorHealth::judge(None, Some((1000, 990, 250.0))).degraded);
    }

    #[test]
    fn the_worst_part_decides_a_merged_run() {
        let calm = GeneratorHealth::judge(cpu(4.0, 20.0), Some((500, 500, 3.0)));
        let busy = GeneratorHealth::judge(cpu(38.0, 20.0), Some((500, 500, 300.0)));
        let merged = GeneratorHealth::worst_of([("worker 0", &calm), ("worker 1", &busy)])
            .expect("two parts");
        assert!(merged.degraded);
        assert_eq!(merged.cpu_cores_used, Some(1.9));
        assert_eq!(merged.max_lateness_ms, Some(300.0));
        assert_eq!(merged.why.len(), 2);
        assert!(merged.why.iter().all(|why| why.starts_with("worker 1: ")));
        assert_eq!(GeneratorHealth::worst_of(std::iter::empty()), None);
    }

    #[test]
    fn files_are_digested_and_built_ins_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profile.yaml");
        std::fs::write(&path, "abc").unwrap();
        let file = InputFile::of("profile", path.to_str().unwrap());
        // SHA-256 of "abc" (FIPS 180-2, appendix B.1).
        assert_eq!(
            file.sha256.as_deref(),
            Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        assert_eq!(file.bytes, Some(3));
        assert_eq!(file.short_digest(), "sha256:ba7816bf8f01");
        let builtin = InputFile::of("scenario", "checkout");
        assert_eq!(builtin.short_digest(), "built-in");
        assert_eq!((builtin.sha256, builtin.bytes), (None, None));
    }

    #[test]
    fn queries_are_listed_once_in_the_order_asked() {
        let mut provenance = Provenance::default();
        provenance.add_queries(["up", "rate(x[1m])"]);
        provenance.add_queries(["up", "sum(y)"]);
        assert_eq!(provenance.queries, ["up", "rate(x[1m])", "sum(y)"]);
    }

    #[test]
    fn this_host_names_itself() {
        let host = Host::this();
        assert!(host.cpus >= 1);
        assert!(!host.os.is_empty() && !host.arch.is_empty());
    }
}
