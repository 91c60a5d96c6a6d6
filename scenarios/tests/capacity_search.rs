//! The capacity search's rules, against the in-memory gateway: steps go up until one breaks or
//! the plan ends; a step the caller cannot judge is kept and ends the search; a load that cannot
//! run ends it too (keeping the partial report when there is one); `holds` is the gate.

mod support;

use std::time::Duration;

use reports::Report;
use scenarios::capacity::{CapacityPlan, Plan, Searched, Step, Steps, Stop, search};
use support::{Behaviour, Gateway};
use tokio_util::sync::CancellationToken;

/// Records what the search asked of it; `fail_judge_at` makes judging that step fail.
#[derive(Default)]
struct Recorder {
    judged: Vec<u32>,
    kept: Vec<(u32, bool)>,
    lines: Vec<String>,
    fail_judge_at: Option<u32>,
}

impl Steps for Recorder {
    type Error = String;

    async fn judge(&mut self, step: &Step, _report: &mut Report) -> Result<(), String> {
        let users = step.load as u32;
        self.judged.push(users);
        match self.fail_judge_at {
            Some(at) if at == users => Err(format!("no SLO source at {users} users")),
            _ => Ok(()),
        }
    }

    fn keep(&mut self, step: &Step, report: &Report) -> Result<(), String> {
        self.kept.push((step.load as u32, report.partial));
        Ok(())
    }

    fn say(&mut self, line: String) {
        self.lines.push(line);
    }
}

fn plan(max: u32) -> Plan {
    Plan::Users(CapacityPlan {
        start: 1,
        step: 1,
        max,
        hold: Duration::from_secs(1),
        ramp: Duration::ZERO,
    })
}

/// One search at a time: a run points the process's stdout elsewhere while Goose runs (see
/// `quiet_stdout`), and two runs at once would leave the test harness's output pointed there.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn run(target: &str, scenario: &str, max: u32, steps: &mut Recorder) -> Searched<String> {
    let _turn = ONE_AT_A_TIME.lock().await;
    search(
        &plan(max),
        scenario,
        target,
        None,
        true,
        &CancellationToken::new(),
        steps,
    )
    .await
    .expect("keeping never fails here")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_step_of_a_healthy_target_holds() {
    let gateway = Gateway::start(Behaviour::default());
    let mut steps = Recorder::default();
    let searched = run(&gateway.url(), "health", 2, &mut steps).await;
    assert!(searched.stopped.is_none(), "{:?}", searched.stopped);
    assert_eq!(searched.result.highest_holding, Some(2.0));
    assert_eq!(searched.result.breaking_point, None);
    assert_eq!(steps.judged, vec![1, 2]);
    assert_eq!(steps.kept, vec![(1, false), (2, false)]);
    assert!(
        steps.lines[1].starts_with("step 1/2: 1 users"),
        "{:?}",
        steps.lines
    );
    assert!(searched.holds(None));
    assert!(searched.holds(Some(2.0)));
    assert!(!searched.holds(Some(3.0)), "fewer users held than required");
    assert!(gateway.requests() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_that_cannot_be_judged_is_kept_and_ends_the_search() {
    let gateway = Gateway::start(Behaviour::default());
    let mut steps = Recorder {
        fail_judge_at: Some(1),
        ..Recorder::default()
    };
    let searched = run(&gateway.url(), "health", 3, &mut steps).await;
    match &searched.stopped {
        Some(Stop::Judge(why)) => assert!(why.contains("1 users"), "{why}"),
        other => panic!("expected the judge to stop the search, got {other:?}"),
    }
    assert_eq!(steps.kept, vec![(1, false)]);
    assert_eq!(searched.result.steps.len(), 1);
    assert_eq!(
        searched.result.interrupted.as_deref(),
        Some("an SLO source failed")
    );
    assert!(!searched.holds(None));
}

#[tokio::test]
async fn an_unreachable_target_keeps_the_partial_report_and_stops() {
    let target = support::closed_port_url();
    let mut steps = Recorder::default();
    let searched = run(&target, "health", 3, &mut steps).await;
    match &searched.stopped {
        Some(Stop::Load(error)) => assert!(error.is_unreachable(), "{error}"),
        other => panic!("expected the load to stop the search, got {other:?}"),
    }
    assert_eq!(steps.kept, vec![(1, true)], "the partial report is kept");
    assert!(steps.judged.is_empty());
    assert!(searched.result.steps.is_empty());
    let why = searched.result.interrupted.as_deref().unwrap();
    assert!(why.contains(&target), "{why}");
    assert!(!searched.holds(None));
}

#[tokio::test]
async fn an_unknown_scenario_stops_before_any_load() {
    let mut steps = Recorder::default();
    let searched = run(&support::closed_port_url(), "shopping-spree", 3, &mut steps).await;
    match &searched.stopped {
        Some(Stop::Load(error)) => assert!(error.is_usage(), "{error}"),
        other => panic!("expected a usage error, got {other:?}"),
    }
    assert!(steps.kept.is_empty() && steps.judged.is_empty());
    assert!(!searched.holds(None));
}
