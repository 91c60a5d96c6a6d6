//! Signals during a drill, through the real binary: a terminal's Ctrl-C (SIGINT to the whole
//! process group, which also reaches the process directly — two signals at once, as `timeout`
//! and terminals deliver them) and a SIGTERM (CI cancellation, pod termination). Either way the
//! injected fault is cleared before the stack goes away (the service's admin endpoint says so),
//! the report is written and partial, and the exit code is 1.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// One drill at a time: each starts a whole stack.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const EXPERIMENT: &str = r#"
apiVersion: shakedown/v1
kind: Experiment
metadata:
  name: fault-then-signal
target:
  local: {}
method:
  - name: slow orders
    action:
      faults:
        service: order
        latency: 300ms
        duration: 40s
    at: 1s
rollbacks:
  - name: clear order faults
    action:
      faults-clear:
        service: order
"#;

#[derive(Clone, Copy, Debug)]
enum Interrupt {
    /// SIGINT to the process group and to the process, at once.
    TerminalCtrlC,
    /// SIGTERM to the process.
    Terminate,
}

struct Outcome {
    code: Option<i32>,
    stderr: String,
    report: Value,
    /// Whether the admin endpoint answered "no faults" before the stack went away.
    cleared_before_exit: bool,
    /// Whether the admin endpoint still answered after shakedown exited.
    admin_alive_after_exit: bool,
}

async fn drill_interrupted(interrupt: Interrupt) -> Outcome {
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let experiment = dir.path().join("experiment.yaml");
    std::fs::write(&experiment, EXPERIMENT).unwrap();
    let data = dir.path().join("stack");
    let out = dir.path().join("runs");
    let mut child = common::cli::shakedown()
        .arg("drill")
        .arg(&experiment)
        .args([
            "--scenario",
            "health",
            "--profile",
            "smoke",
            "--warmup",
            "1s",
        ])
        .arg("--data-dir")
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .arg("--no-prometheus")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, as a terminal gives a foreground job: the group signal below
        // must not reach this test.
        .process_group(0)
        .spawn()
        .unwrap();
    let stderr = collect(child.stderr.take().unwrap());

    let admin = admin_url_of(&data, "order", &mut child).await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let in_force = common::eventually(Duration::from_secs(60), || async {
        let faults = faults(&http, &admin).await?;
        (faults["latency_ms"] == 300).then_some(())
    })
    .await;
    assert!(
        in_force.is_some(),
        "the fault never came into force: {}",
        stderr.lock().unwrap()
    );

    let pid = child.id().to_string();
    match interrupt {
        Interrupt::TerminalCtrlC => {
            kill(&["-INT", "--", &format!("-{pid}")]);
            kill(&["-INT", &pid]);
        }
        Interrupt::Terminate => kill(&["-TERM", &pid]),
    }

    // Watch the admin endpoint until the fault is gone or the service is.
    let mut cleared_before_exit = false;
    let watch_until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < watch_until {
        match faults(&http, &admin).await {
            Some(f) if f["latency_ms"] == 0 => {
                cleared_before_exit = true;
                break;
            }
            Some(_) => {}
            None => break,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let code = wait(&mut child, Duration::from_secs(90));
    let admin_alive_after_exit = faults(&http, &admin).await.is_some();
    let report_path = out.join("latest/report.json");
    let report = std::fs::read_to_string(&report_path)
        .map(|text| serde_json::from_str(&text).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}\n{}", report_path.display(), stderr.lock().unwrap()));
    let stderr = stderr.lock().unwrap().clone();
    eprintln!("{stderr}");
    Outcome {
        code,
        stderr,
        report,
        cleared_before_exit,
        admin_alive_after_exit,
    }
}

fn assert_stopped_safely(outcome: &Outcome) {
    assert!(
        outcome.cleared_before_exit,
        "the fault was cleared while the stack still ran"
    );
    assert!(
        !outcome.admin_alive_after_exit,
        "the embedded stack is stopped on exit"
    );
    assert_eq!(outcome.code, Some(1), "interrupted: partial, exit 1");
    assert!(
        !outcome.stderr.contains("exiting immediately")
            && !outcome.stderr.contains("exiting at once"),
        "a duplicated signal must not abandon the rollbacks: {}",
        outcome.stderr
    );
    let report = &outcome.report;
    assert_eq!(report["partial"], true);
    assert_eq!(report["partial_reason"], "interrupted (Ctrl-C or SIGTERM)");
    let journal = report["journal"].as_array().unwrap();
    let event = |kind: &str| {
        journal
            .iter()
            .find(|e| e["kind"] == kind)
            .unwrap_or_else(|| panic!("{kind} is journaled: {journal:?}"))
    };
    assert_eq!(
        event("chaos.faults-clear")["outcome"],
        "ok",
        "the rollback ran"
    );
    let fault = event("chaos.faults");
    assert_eq!(fault["outcome"], "ok", "the fault was cleared: {fault}");
    assert!(
        fault["detail"].as_str().unwrap_or("").contains("cut short"),
        "the 40 s fault was cut short by the signal: {fault}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_to_the_process_group_clears_the_fault_and_writes_a_partial_report() {
    let outcome = drill_interrupted(Interrupt::TerminalCtrlC).await;
    assert_stopped_safely(&outcome);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_clears_the_fault_and_writes_a_partial_report() {
    let outcome = drill_interrupted(Interrupt::Terminate).await;
    assert_stopped_safely(&outcome);
}

/// Reads a pipe to the end in the background.
fn collect(pipe: impl std::io::Read + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let shared = text.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let mut text = shared.lock().unwrap();
            text.push_str(&line);
            text.push('\n');
        }
    });
    text
}

/// The admin URL of `service`, from the endpoints file the stack writes in its data dir.
async fn admin_url_of(data: &Path, service: &str, child: &mut Child) -> String {
    let file = data.join("endpoints.json");
    let found = common::eventually(Duration::from_secs(120), || async {
        let text = std::fs::read_to_string(&file).ok()?;
        let document: Value = serde_json::from_str(&text).ok()?;
        document["services"]
            .as_array()?
            .iter()
            .find(|s| s["name"] == service)
            .and_then(|s| s["admin_url"].as_str())
            .map(str::to_string)
    })
    .await;
    found.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("the stack never wrote {}", file.display())
    })
}

/// The faults in force at `admin`, or `None` when it does not answer.
async fn faults(http: &reqwest::Client, admin: &str) -> Option<Value> {
    let response = http
        .get(format!("{admin}/admin/faults"))
        .send()
        .await
        .ok()?;
    response.json().await.ok()
}

fn kill(args: &[&str]) {
    let status = Command::new("kill").args(args).status().unwrap();
    assert!(status.success(), "kill {args:?}");
}

fn wait(child: &mut Child, limit: Duration) -> Option<i32> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("shakedown did not stop within {limit:?} of the signal");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
