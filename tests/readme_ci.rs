//! The README's CI example, run as written: after two runs into `reports/runs`, its `report
//! diff` and job-summary lines are taken from README.md verbatim and run by a shell, with the
//! binary on PATH. They name the newest run as `reports/runs/latest/`, so they work on the
//! second run as on the first (a `*` glob stopped working once two runs existed).

mod common;

use std::path::Path;
use std::process::Command;

use common::RecordingServer;

/// The shell commands of the README's CI example that follow `run:`, for steps after the load.
fn readme_ci_commands() -> Vec<String> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let commands: Vec<String> = readme
        .lines()
        .filter_map(|line| line.trim().strip_prefix("run: "))
        .filter(|command| !command.starts_with('|'))
        .map(str::to_string)
        .collect();
    assert!(
        commands
            .iter()
            .any(|c| c.starts_with("shakedown report diff"))
            && commands.iter().any(|c| c.contains("report.md")),
        "the README's CI example has a diff step and a job-summary step: {commands:?}"
    );
    commands
}

fn load_run(cwd: &Path, target: &str) {
    let output = common::cli::shakedown()
        .args([
            "run",
            "health",
            "--target",
            target,
            "--profile",
            "smoke",
            "--duration",
            "3s",
            "--users",
            "2",
            "--out",
            "reports/runs",
        ])
        .current_dir(cwd)
        .output()
        .unwrap();
    assert!(
        output.status.code().is_some_and(|c| c <= 1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_ci_example_works_on_every_run() {
    let target = RecordingServer::start();
    let cwd = tempfile::tempdir().unwrap();
    load_run(cwd.path(), &target.url);
    std::fs::create_dir(cwd.path().join("baseline")).unwrap();
    std::fs::copy(
        cwd.path().join("reports/runs/latest/report.json"),
        cwd.path().join("baseline/report.json"),
    )
    .unwrap();
    load_run(cwd.path(), &target.url);

    let bin_dir = common::binary().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let summary = cwd.path().join("summary.md");
    for command in readme_ci_commands()
        .iter()
        .filter(|c| !c.starts_with("shakedown run "))
    {
        let output = Command::new("sh")
            .args(["-c", command])
            .current_dir(cwd.path())
            .env("PATH", &path)
            .env("GITHUB_STEP_SUMMARY", &summary)
            .env("CI", "true")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        // The diff may judge a regression (exit 1) between two tiny runs; what must never happen
        // is a usage error (2) or a missing file.
        assert!(
            output.status.code().is_some_and(|c| c <= 1),
            "`{command}` failed ({:?}): {stderr}",
            output.status.code()
        );
    }
    let summary = std::fs::read_to_string(&summary).unwrap();
    assert!(
        summary.contains("health"),
        "the job summary is the newest run's report.md: {summary}"
    );
}
