//! A Prometheus server for the embedded stack, when a `prometheus` binary is available: its own
//! config (every service's `/metrics`, scraped every second so short runs still have series) and
//! data dir. It runs as a supervised child like the services.
//!
//! Prometheus cannot be handed a listening socket, so it binds `127.0.0.1:0` itself and the
//! supervisor reads the port it got from its log ([`announce`]) — no port is probed beforehand,
//! so nothing can take it between choosing and binding. A restart re-binds that same port, to
//! keep the URL the stack reported: only then is there a short window in which another process
//! could take it (the restart would fail and be retried with back-off, visible in its log).

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use super::supervisor::Announce;

/// Where the embedded Prometheus listens: the kernel picks the port.
pub const LISTEN: &str = "127.0.0.1:0";

/// How often the embedded Prometheus scrapes.
pub const SCRAPE_INTERVAL: &str = "1s";

/// Finds `prometheus` on `PATH`.
pub fn find_on_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("prometheus"))
        .find(|candidate| candidate.is_file())
}

/// The file [`write_config`] writes in `dir`.
pub fn config_file(dir: &Path) -> PathBuf {
    dir.join("prometheus.yml")
}

/// The rule file [`write_config`] writes in `dir` when given rules.
pub const RULES_FILE: &str = "rules.yml";

/// Writes the scrape config for `targets` (service name, `host:port`) into
/// [`config_file`]`(dir)`, and `rules` (a rule file's text), if any, into [`RULES_FILE`] next to
/// it, evaluated every [`SCRAPE_INTERVAL`] like the scrapes (so burn-rate alerts with second-long
/// windows work).
pub fn write_config(
    dir: &Path,
    targets: &[(String, String)],
    rules: Option<&str>,
) -> std::io::Result<PathBuf> {
    let mut config = format!(
        "# Written by shakedown for the embedded stack.\nglobal:\n  scrape_interval: {SCRAPE_INTERVAL}\n  evaluation_interval: {SCRAPE_INTERVAL}\n"
    );
    if let Some(rules) = rules {
        std::fs::write(dir.join(RULES_FILE), rules)?;
        config.push_str(&format!("rule_files:\n  - {RULES_FILE}\n"));
    }
    config.push_str("scrape_configs:\n");
    for (name, address) in targets {
        // One job per service: `job` then names the service in queries and in the targets page.
        config.push_str(&format!(
            "  - job_name: {name}\n    static_configs:\n      - targets: ['{address}']\n"
        ));
    }
    let file = config_file(dir);
    std::fs::write(&file, config)?;
    Ok(file)
}

/// Command-line arguments for a server using `config`, storing in `data`, listening on `listen`.
pub fn args(config: &Path, data: &Path, listen: &str) -> Vec<String> {
    vec![
        format!("--config.file={}", config.display()),
        format!("--storage.tsdb.path={}", data.display()),
        "--storage.tsdb.retention.time=7d".to_string(),
        format!("--web.listen-address={listen}"),
        "--web.enable-lifecycle".to_string(),
    ]
}

/// How the supervisor learns the port: Prometheus 2.x logs
/// `msg="Listening on" address=127.0.0.1:NNNNN` once its web listener is bound.
pub fn announce() -> Announce {
    Announce {
        marker: r#"msg="Listening on" address="#.into(),
        ready_path: "/-/ready".into(),
        pin_arg: Some("--web.listen-address=".into()),
    }
}

/// The readiness URL of a server listening on `listen`.
pub fn ready_url(listen: &str) -> String {
    format!("http://{listen}/-/ready")
}

/// The timeout for Prometheus to become ready (it replays its WAL on start).
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long Prometheus may take to scrape every target once after it is ready: its scrape
/// manager applies new targets on a 5 s tick, so the first scrapes come seconds after `/-/ready`.
pub const FIRST_SCRAPES: Duration = Duration::from_secs(20);

/// Waits until Prometheus at `url` has scraped each of its `targets` once (an `up` series for
/// each), so a run started at once is measured from its first second. `Err` says what was
/// still missing after `timeout`; the stack stays usable without it.
pub async fn wait_first_scrapes(
    url: &str,
    targets: usize,
    timeout: Duration,
) -> Result<(), String> {
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut seen = 0;
    loop {
        let answer = client
            // `count(up)`, URL-encoded.
            .get(format!("{url}/api/v1/query?query=count%28up%29"))
            .timeout(Duration::from_secs(2))
            .send()
            .await;
        if let Ok(response) = answer
            && let Ok(body) = response.json::<serde_json::Value>().await
        {
            seen = body["data"]["result"][0]["value"][1]
                .as_str()
                .and_then(|v| v.parse::<f64>().ok())
                .map_or(0, |v| v as usize);
            if seen >= targets {
                return Ok(());
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "Prometheus had scraped {seen} of {targets} targets after {}s",
                timeout.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_lists_every_target_as_a_job() {
        let dir = tempfile::tempdir().unwrap();
        let file = write_config(
            dir.path(),
            &[
                ("order".into(), "127.0.0.1:4001".into()),
                ("audit".into(), "127.0.0.1:4002".into()),
            ],
            Some("groups: []\n"),
        )
        .unwrap();
        let text = std::fs::read_to_string(file).unwrap();
        assert!(
            text.contains(
                "job_name: order\n    static_configs:\n      - targets: ['127.0.0.1:4001']"
            )
        );
        assert!(text.contains("job_name: audit"));
        assert!(text.contains("scrape_interval: 1s"));
        assert!(text.contains("rule_files:\n  - rules.yml\n"), "{text}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join(RULES_FILE)).unwrap(),
            "groups: []\n"
        );
    }
}
