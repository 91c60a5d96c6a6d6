//! The runner with fake actions and a fake hypothesis: the timeline, halting, rollbacks that
//! always run, Ctrl-C, and the dry run.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chaos::action::{Action, ActionFuture, hold};
use chaos::runner::{Bound, run};
use chaos::steady::Hypothesis;
use chaos::{ActionRecord, Outcome};
use chrono::{DateTime, Utc};
use futures::FutureExt;
use futures::future::BoxFuture;
use reports::{JournalEvent, SloStatus, SloVerdict};
use slo::{CheckOutcome, Checked};
use tokio_util::sync::CancellationToken;

/// Records when it ran and holds for `hold` (cut short by cancellation, like faults).
struct Fake {
    name: &'static str,
    hold: Duration,
    log: Arc<Mutex<Vec<(&'static str, Duration)>>>,
    start: Instant,
}

impl Action for Fake {
    fn kind(&self) -> &str {
        "fake"
    }
    fn target(&self) -> String {
        self.name.into()
    }
    fn run<'a>(&'a self, cancel: &'a CancellationToken) -> ActionFuture<'a> {
        async move {
            self.log
                .lock()
                .unwrap()
                .push((self.name, self.start.elapsed()));
            let started_at = Utc::now();
            let full = hold(self.hold, cancel).await;
            Ok(ActionRecord {
                action: "fake".into(),
                target: self.name.into(),
                started_at,
                ended_at: Some(Utc::now()),
                outcome: Outcome::Ok,
                affected: vec![],
                recovery: None,
                detail: (!full).then(|| "cut short".to_string()),
            })
        }
        .boxed()
    }
}

/// Holds before and after; halts once `halt_after` has passed (if set).
struct FakeHypothesis {
    start: Instant,
    halt_after: Option<Duration>,
    checks: Mutex<usize>,
}

fn outcome(status: SloStatus, from: DateTime<Utc>, to: DateTime<Utc>) -> CheckOutcome {
    CheckOutcome {
        set: "fake".into(),
        from,
        to,
        results: vec![Checked {
            verdict: SloVerdict {
                name: "p95".into(),
                status,
                measured: Some(0.1),
                unit: Some("s".into()),
                objective: "< 0.5 s".into(),
                source: "fake".into(),
                query: None,
                window: None,
                message: None,
            },
            description: None,
            from,
            to,
            problem: None,
        }],
        partial_run: None,
    }
}

impl Hypothesis for FakeHypothesis {
    fn check<'a>(
        &'a self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        _journal: &'a [JournalEvent],
    ) -> BoxFuture<'a, CheckOutcome> {
        *self.checks.lock().unwrap() += 1;
        // Like the real one: the answer comes when the window is over.
        async move {
            if let Ok(left) = (to - Utc::now()).to_std() {
                tokio::time::sleep(left).await;
            }
            outcome(SloStatus::Pass, from, to)
        }
        .boxed()
    }
    fn halt(&self) -> BoxFuture<'_, Option<String>> {
        let halt = self
            .halt_after
            .is_some_and(|after| self.start.elapsed() >= after);
        async move { halt.then(|| "halted: p95 = 0.9 s breaks < 0.6 s".to_string()) }.boxed()
    }
    fn allow_unknown(&self) -> bool {
        false
    }
}

const FILE: &str = "apiVersion: shakedown/v1\nkind: Experiment\nmetadata: {name: t}\ntarget: {local: {}}\nsteady_state:\n  before: 1s\n  after: 1s\n  slos:\n    - name: p95\n      sli: {latency: {quantile: 0.95}}\n      objective: {lt: 500ms}\nmethod:\n  - name: a\n    action: {process-kill: {service: order}}\n    at: 200ms\n    repeat_every: 300ms\n    count: 3\n  - name: b\n    action: {process-kill: {service: cart}}\n    at: 2s\nrollbacks:\n  - name: r\n    action: {faults-clear: {service: order}}\n";

struct Setup {
    log: Arc<Mutex<Vec<(&'static str, Duration)>>>,
    start: Instant,
}

impl Setup {
    fn new() -> Setup {
        Setup {
            log: Arc::default(),
            start: Instant::now(),
        }
    }
    fn fake(&self, name: &'static str, hold: Duration) -> Box<dyn Action> {
        Box::new(Fake {
            name,
            hold,
            log: self.log.clone(),
            start: self.start,
        })
    }
    fn bound(&self, b_hold: Duration) -> Bound<'static> {
        Bound {
            method: vec![self.fake("a", Duration::ZERO), self.fake("b", b_hold)],
            rollbacks: vec![self.fake("rollback", Duration::ZERO)],
        }
    }
}

fn quiet(_: String) {}

#[tokio::test]
async fn the_timeline_runs_every_occurrence_then_the_rollbacks() {
    let experiment = chaos::parse(FILE, Path::new("t.yaml")).unwrap();
    let setup = Setup::new();
    let hypothesis = FakeHypothesis {
        start: setup.start,
        halt_after: None,
        checks: Mutex::new(0),
    };
    let out = run(
        &experiment,
        setup.bound(Duration::ZERO),
        Some(&hypothesis),
        Duration::from_millis(100),
        &CancellationToken::new(),
        &quiet,
    )
    .await;
    let log = setup.log.lock().unwrap().clone();
    let names: Vec<_> = log.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["a", "a", "a", "b", "rollback"]);
    // Offsets are from the start of the method, which begins after the 1 s "before" check.
    let a_times: Vec<f64> = log
        .iter()
        .filter(|(n, _)| *n == "a")
        .map(|(_, t)| t.as_secs_f64())
        .collect();
    for (t, expected) in a_times.iter().zip([1.2, 1.5, 1.8]) {
        assert!((t - expected).abs() < 0.15, "a at {t}, expected {expected}");
    }
    assert_eq!(out.exit_code(), 0, "{:?}", out.failures());
    assert_eq!(
        *hypothesis.checks.lock().unwrap(),
        3,
        "before, during, after"
    );
    let kinds: Vec<_> = out.journal.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(kinds.first(), Some(&"steady-state.before"));
    assert_eq!(kinds.last(), Some(&"steady-state.after"));
    let experiment_verdict = out
        .verdicts()
        .into_iter()
        .find(|v| v.name == "experiment")
        .unwrap();
    assert_eq!(experiment_verdict.status, SloStatus::Pass);
}

#[tokio::test]
async fn a_halt_stops_the_method_and_rollbacks_still_run() {
    let experiment = chaos::parse(FILE, Path::new("t.yaml")).unwrap();
    let setup = Setup::new();
    // Halts 1.5 s in: after the first two `a`s, before `b` is due (t+2 s of the method).
    let hypothesis = FakeHypothesis {
        start: setup.start,
        halt_after: Some(Duration::from_millis(1500)),
        checks: Mutex::new(0),
    };
    let out = run(
        &experiment,
        setup.bound(Duration::ZERO),
        Some(&hypothesis),
        Duration::from_millis(100),
        &CancellationToken::new(),
        &quiet,
    )
    .await;
    let names: Vec<_> = setup.log.lock().unwrap().iter().map(|(n, _)| *n).collect();
    assert!(!names.contains(&"b"), "{names:?}");
    assert_eq!(names.last(), Some(&"rollback"));
    assert!(out.halted.as_deref().unwrap().contains("p95"));
    assert!(
        out.journal
            .iter()
            .any(|r| r.target == "b" && r.outcome == Outcome::Skipped)
    );
    assert_eq!(out.exit_code(), 1);
    assert!(
        out.after.is_some(),
        "the after check still runs after a halt"
    );
}

#[tokio::test]
async fn ctrl_c_cuts_a_running_action_short_and_rollbacks_still_run() {
    let experiment = chaos::parse(FILE, Path::new("t.yaml")).unwrap();
    let setup = Setup::new();
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(3500)).await;
        trigger.cancel();
    });
    // `b` would hold for a minute: Ctrl-C at ~3.5 s must cut it short.
    let out = run(
        &experiment,
        setup.bound(Duration::from_secs(60)),
        None,
        Duration::from_millis(100),
        &cancel,
        &quiet,
    )
    .await;
    assert!(setup.start.elapsed() < Duration::from_secs(10));
    let b = out.journal.iter().find(|r| r.target == "b").unwrap();
    assert_eq!(b.detail.as_deref(), Some("cut short"));
    assert_eq!(out.journal.last().unwrap().target, "rollback");
    assert!(out.interrupted);
    assert_eq!(out.exit_code(), 1);
}

#[test]
fn the_dry_run_prints_the_plan_in_time_order() {
    let experiment = chaos::parse(FILE, Path::new("t.yaml")).unwrap();
    let (lines, records) = chaos::plan::dry_run(&experiment, &chaos::local::describe);
    let plan: Vec<&String> = lines.iter().filter(|l| l.starts_with("t+")).collect();
    assert_eq!(plan.len(), 4);
    assert!(plan[0].starts_with("t+200ms a"), "{plan:?}");
    assert!(plan[3].starts_with("t+2s b"), "{plan:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("SIGKILL the running process of service `cart`"))
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("DELETE <admin URL of order>/admin/faults"))
    );
    assert_eq!(records.len(), 5);
    assert!(records.iter().all(|r| r.outcome == Outcome::DryRun));
    assert_eq!(
        chaos::plan::span(&experiment.method),
        Duration::from_secs(2)
    );
}
