//! Distributed load as the Kubernetes Indexed Job runs it, on one machine: two `shakedown run`
//! workers share one profile against the embedded stack (JOB_COMPLETION_INDEX picks the share),
//! and `shakedown report merge` turns their reports into one that adds up.

mod common;

use common::cli::{all_output as text, json, only_run_dir as only_dir, shakedown};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_share_a_profile_and_their_reports_merge_into_one() {
    let stack = common::start_stack(false).await;
    let out = tempfile::tempdir().unwrap();
    let profile = out.path().join("four-users.yaml");
    std::fs::write(
        &profile,
        "name: four-users\nclosed:\n  stages:\n    - { duration: 1s, users: 4 }\n    - { duration: 5s, users: 4 }\n",
    )
    .unwrap();
    let workers: Vec<_> = (0..2)
        .map(|index| {
            let dir = out.path().join(format!("worker-{index}"));
            let child = shakedown()
                .args([
                    "run",
                    "browse",
                    "--target",
                    stack.gateway_url(),
                    "--workers",
                    "2",
                ])
                .arg("--profile")
                .arg(&profile)
                .arg("--out")
                .arg(&dir)
                .env("JOB_COMPLETION_INDEX", index.to_string())
                .spawn()
                .unwrap();
            (dir, child)
        })
        .collect();
    let mut reports = Vec::new();
    for (dir, mut child) in workers {
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "worker in {}", dir.display());
        reports.push(only_dir(&dir).join("report.json"));
    }
    stack.stop().await;

    let worker_reports: Vec<Value> = reports.iter().map(|p| json(p)).collect();
    for (index, report) in worker_reports.iter().enumerate() {
        assert_eq!(
            report["profile"]["name"], "four-users",
            "the whole profile's name"
        );
        assert_eq!(report["profile"]["worker"]["index"], index);
        assert_eq!(report["profile"]["worker"]["workers"], 2);
        assert_eq!(
            report["profile"]["stages"][1]["target"], 2.0,
            "half the users each"
        );
    }

    let merged_dir = out.path().join("merged");
    let output = shakedown()
        .args(["report", "merge", "--out"])
        .arg(&merged_dir)
        .args(&reports)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let merged = json(&merged_dir.join("report.json"));
    let total = |r: &Value| r["totals"]["requests"].as_u64().unwrap();
    assert_eq!(
        total(&merged),
        worker_reports.iter().map(total).sum::<u64>(),
        "the merged report counts every worker's requests"
    );
    let series: u64 = merged["timeseries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(series, total(&merged));
    assert_eq!(
        merged["profile"]["stages"][1]["target"], 4.0,
        "the whole profile"
    );
    assert_eq!(merged["profile"]["name"], "four-users");
    assert_eq!(merged["profile"]["merged_workers"], 2);
    assert!(merged["profile"]["worker"].is_null());

    // The same worker's report twice would count its requests twice: refused.
    let output = shakedown()
        .args(["report", "merge", "--out"])
        .arg(out.path().join("twice"))
        .args([&reports[0], &reports[0]])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    for file in ["report.md", "report.html", "junit.xml"] {
        assert!(merged_dir.join(file).is_file(), "{file}");
    }
}
