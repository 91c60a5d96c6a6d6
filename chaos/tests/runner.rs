//! The runner with fake actions and a fake hypothesis: the timeline, halting, rollbacks that
//! always run, Ctrl-C, and the dry run.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chaos::action::{Action, ActionFuture, hold};
use chaos::runner::{Bound, run};
use chaos::steady::Hypothesis;
use chaos::{ActionRecord, Conclusion, Outcome};
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

/// Holds before and after; halts once `halt_after` has passed (if set). Answers the n-th check
/// (0 before, 1 during, 2 after) with `statuses[n]` (pass when not given), and remembers every
/// window it was asked about.
struct FakeHypothesis {
    start: Instant,
    halt_after: Option<Duration>,
    checks: Mutex<usize>,
    statuses: Vec<SloStatus>,
    allow_unknown: bool,
    windows: Mutex<Vec<(DateTime<Utc>, DateTime<Utc>)>>,
    /// The step its sources count in (whole seconds unless set).
    step: Duration,
}

impl FakeHypothesis {
    fn new(start: Instant, halt_after: Option<Duration>) -> FakeHypothesis {
        FakeHypothesis {
            start,
            halt_after,
            checks: Mutex::new(0),
            statuses: Vec::new(),
            allow_unknown: false,
            windows: Mutex::default(),
            step: Duration::from_secs(1),
        }
    }
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
        let n = {
            let mut checks = self.checks.lock().unwrap();
            *checks += 1;
            *checks - 1
        };
        self.windows.lock().unwrap().push((from, to));
        let status = self.statuses.get(n).copied().unwrap_or(SloStatus::Pass);
        // Like the real one: the answer comes when the window is over.
        async move {
            if let Ok(left) = (to - Utc::now()).to_std() {
                tokio::time::sleep(left).await;
            }
            outcome(status, from, to)
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
        self.allow_unknown
    }
    fn clean_start(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        slo::clean_start(at, self.step)
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
    let hypothesis = FakeHypothesis::new(setup.start, None);
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
    assert_eq!(out.conclusion(), Conclusion::Pass, "{:?}", out.failures());
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
    let hypothesis = FakeHypothesis::new(setup.start, Some(Duration::from_millis(1500)));
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
    assert_eq!(out.conclusion(), Conclusion::Failed);
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
    assert_eq!(out.conclusion(), Conclusion::Failed);
}

#[test]
fn the_dry_run_prints_the_plan_in_time_order() {
    let experiment = chaos::parse(FILE, Path::new("t.yaml")).unwrap();
    let dry = chaos::plan::dry_run(&experiment, &chaos::local::StackShape::planned(3)).unwrap();
    let (lines, records) = (dry.lines, dry.records);
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

fn probe<'a>(out: &'a chaos::ExperimentOutcome, phase: &str) -> &'a ActionRecord {
    out.journal
        .iter()
        .find(|r| r.action == format!("steady-state.{phase}"))
        .unwrap_or_else(|| panic!("no {phase} probe in {:#?}", out.journal))
}

/// Runs [`FILE`] with `b`, due at t+2 s, "recovering" 700 ms later: an instant action (no
/// duration in the file) whose disruption lasts until its recovery.
async fn run_with_a_recovery(
    setup: &Setup,
    hypothesis: &FakeHypothesis,
) -> chaos::ExperimentOutcome {
    let experiment = chaos::parse(FILE, Path::new("t.yaml")).unwrap();
    run(
        &experiment,
        setup.bound(Duration::from_millis(700)),
        Some(hypothesis),
        Duration::from_millis(100),
        &CancellationToken::new(),
        &quiet,
    )
    .await
}

#[tokio::test]
async fn during_spans_every_action_from_its_start_through_its_recovery_and_after_follows() {
    let setup = Setup::new();
    let hypothesis = FakeHypothesis::new(setup.start, None);
    let out = run_with_a_recovery(&setup, &hypothesis).await;
    assert_eq!(out.conclusion(), Conclusion::Pass, "{:?}", out.failures());
    let actions: Vec<&ActionRecord> = out
        .journal
        .iter()
        .filter(|r| r.action == "fake" && r.target != "rollback")
        .collect();
    assert_eq!(actions.len(), 4);
    let first_start = actions.iter().map(|r| r.started_at).min().unwrap();
    let last_end = actions.iter().filter_map(|r| r.ended_at).max().unwrap();
    let before = probe(&out, "before");
    let during = probe(&out, "during");
    let after = probe(&out, "after");
    assert_eq!(
        during.started_at, first_start,
        "during starts at the first action"
    );
    assert_eq!(
        during.ended_at,
        Some(last_end),
        "during ends with the last recovery"
    );
    // Not the calm 200 ms between the start of the method and the first action.
    let calm = first_start - before.ended_at.unwrap();
    assert!(calm.num_milliseconds() >= 150, "{calm}");
    // The 2.2 s from the first `a` through `b`'s recovery, not the 1.8 s of the old
    // "method start to last start".
    let span = last_end - first_start;
    assert!(span.num_milliseconds() >= 2400, "{span}");
    assert!(
        after.started_at >= last_end,
        "after starts once recovery is over"
    );
    assert_eq!(
        after.started_at.timestamp_subsec_nanos(),
        0,
        "after starts on the first whole second the sources count from"
    );
    assert!((after.started_at - last_end).num_milliseconds() < 1000);
    assert_eq!(
        (after.ended_at.unwrap() - after.started_at).num_seconds(),
        1,
        "after lasts steady_state.after"
    );
    // The hypothesis was asked about exactly these windows, and the journal says so.
    let windows = hypothesis.windows.lock().unwrap().clone();
    assert_eq!(windows[1], (during.started_at, during.ended_at.unwrap()));
    assert_eq!(windows[2], (after.started_at, after.ended_at.unwrap()));
    assert!(
        during.detail.as_deref().unwrap().starts_with("window "),
        "{:?}",
        during.detail
    );
    assert_eq!(during.to_journal_event().kind, "chaos.steady-state.during");
}

#[tokio::test]
async fn after_starts_on_the_step_its_sources_count_from_not_inside_the_faults_tail() {
    let setup = Setup::new();
    let mut hypothesis = FakeHypothesis::new(setup.start, None);
    hypothesis.step = Duration::from_secs(3);
    let out = run_with_a_recovery(&setup, &hypothesis).await;
    let during = probe(&out, "during");
    let after = probe(&out, "after");
    let recovered = during.ended_at.unwrap();
    assert!(after.started_at >= recovered);
    assert_eq!(after.started_at.timestamp() % 3, 0, "{}", after.started_at);
    assert_eq!(after.started_at.timestamp_subsec_nanos(), 0);
    assert!((after.started_at - recovered).num_milliseconds() < 3000);
    assert_eq!(
        (after.ended_at.unwrap() - after.started_at).num_seconds(),
        1,
        "after still lasts steady_state.after"
    );
}

async fn unknown_after(allow_unknown: bool) -> (chaos::ExperimentOutcome, Vec<String>) {
    let experiment = chaos::parse(FILE, Path::new("t.yaml")).unwrap();
    let setup = Setup::new();
    let mut hypothesis = FakeHypothesis::new(setup.start, None);
    hypothesis.statuses = vec![SloStatus::Pass, SloStatus::Pass, SloStatus::Unknown];
    hypothesis.allow_unknown = allow_unknown;
    let said = Mutex::new(Vec::new());
    let say = |line: String| said.lock().unwrap().push(line);
    let out = run(
        &experiment,
        setup.bound(Duration::ZERO),
        Some(&hypothesis),
        Duration::from_millis(100),
        &CancellationToken::new(),
        &say,
    )
    .await;
    (out, said.into_inner().unwrap())
}

#[tokio::test]
async fn an_unknown_after_check_is_unknown_and_fails_unless_allowed() {
    let (out, said) = unknown_after(false).await;
    let line = said
        .iter()
        .find(|l| l.starts_with("steady state after:") && !l.contains("observing"))
        .unwrap();
    assert!(line.contains("unknown"), "{line}");
    assert!(line.contains("does NOT hold"), "{line}");
    assert!(!line.contains(": holds"), "{line}");
    assert_eq!(probe(&out, "after").outcome, Outcome::Unknown);
    assert_eq!(probe(&out, "after").to_journal_event().outcome, "unknown");
    assert_eq!(out.conclusion(), Conclusion::Failed);
    assert!(
        out.failures()
            .iter()
            .any(|f| f.contains("after the method: unknown")),
        "{:?}",
        out.failures()
    );
    let verdicts = out.verdicts();
    let after = verdicts.iter().find(|v| v.name == "after: p95").unwrap();
    assert_eq!(after.status, SloStatus::Fail);
    assert!(after.message.as_deref().unwrap().contains("unknown"));
}

#[tokio::test]
async fn an_allowed_unknown_passes_but_is_still_called_unknown() {
    let (out, said) = unknown_after(true).await;
    let line = said
        .iter()
        .find(|l| l.starts_with("steady state after:") && !l.contains("observing"))
        .unwrap();
    assert!(line.contains("unknown"), "{line}");
    assert!(line.contains("allow_unknown"), "{line}");
    assert!(!line.contains("holds"), "{line}");
    assert_eq!(probe(&out, "after").outcome, Outcome::Unknown);
    assert_eq!(out.conclusion(), Conclusion::Pass, "{:?}", out.failures());
    let verdicts = out.verdicts();
    let after = verdicts.iter().find(|v| v.name == "after: p95").unwrap();
    assert_eq!(after.status, SloStatus::Unknown, "never turned into pass");
    let experiment_verdict = verdicts.iter().find(|v| v.name == "experiment").unwrap();
    assert_eq!(experiment_verdict.status, SloStatus::Pass);
    assert!(
        experiment_verdict
            .message
            .as_deref()
            .unwrap()
            .contains("steady state after: unknown"),
        "{experiment_verdict:?}"
    );
}

#[tokio::test]
async fn an_unknown_before_check_skips_the_method() {
    let experiment = chaos::parse(FILE, Path::new("t.yaml")).unwrap();
    let setup = Setup::new();
    let mut hypothesis = FakeHypothesis::new(setup.start, None);
    hypothesis.statuses = vec![SloStatus::Unknown];
    let out = run(
        &experiment,
        setup.bound(Duration::ZERO),
        Some(&hypothesis),
        Duration::from_millis(100),
        &CancellationToken::new(),
        &quiet,
    )
    .await;
    assert_eq!(probe(&out, "before").outcome, Outcome::Unknown);
    let ran: Vec<_> = setup.log.lock().unwrap().iter().map(|(n, _)| *n).collect();
    assert_eq!(
        ran,
        ["rollback"],
        "the method is skipped, rollbacks still run"
    );
    assert_eq!(out.conclusion(), Conclusion::Failed);
}
