//! Running a compiled scenario file: its steps become Goose transactions.
//!
//! Each request is timed with our own clock and recorded once under the step's name, like
//! every request the harness makes (see `request.rs`). What a file adds is per-user state —
//! variables, feeder rows, extracted values — and two rules: a failed step ends the user's
//! iteration (later steps usually need what it would have extracted), and `on_start` steps
//! that failed are retried, from the failed one on, before the user's next iteration.
//! Steps pace themselves: the think time after a step is the step's own, else the profile's,
//! else the scenario's (none in the open model, where arrivals set the pace).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use goose::prelude::*;
use minijinja::Value as Mj;
use rand::Rng;
use rand::seq::IndexedRandom;
use reports::ErrorKind;
use serde_json::Value;

use super::compile::{BodyRt, Compiled, ItemRt, JsonCheckRt, JsonOpRt, StepRt};
use super::feeder::Cursor;
use super::model::{FeederPer, JsonType, Pick, Source};
use super::template::{Val, render_text, render_value};
use crate::pacing::WAIT_SLICE;
use crate::profile::ThinkTime;
use crate::recorder::RequestRecord;
use crate::request::transport_error;
use crate::rust_steps::{ScenarioDef, Step};
use crate::session::{custom_error, session, session_mut, transaction_fn};

/// One run of a file scenario: the compiled file, run variables, feeder cursors.
pub struct RunState {
    compiled: Arc<Compiled>,
    run_vars: Vec<(String, Mj)>,
    cursors: Vec<Cursor>,
    /// Weighted transactions per iteration, to tell where an iteration starts.
    per_iteration: usize,
    /// Users keep a trace of their exchanges (`scenario check`).
    tracing: bool,
}

/// A user's variables and progress through the file.
#[derive(Clone, Default)]
pub struct UserState {
    vars: BTreeMap<String, Mj>,
    context: Option<Mj>,
    /// `on_start` steps that succeeded so far (all of them once the user is signed up).
    on_start_done: usize,
    /// Transactions run so far; `position % per_iteration == 0` starts an iteration.
    position: usize,
    iteration_failed: bool,
    /// The user can do nothing more (a unique feeder ran out).
    stopped: bool,
    /// `scenario check`: every exchange, for printing.
    pub(crate) trace: Option<Vec<Exchange>>,
}

/// One request and its outcome, as `shakedown scenario check` prints it.
#[derive(Clone, Debug)]
pub struct Exchange {
    /// The step (transaction) name.
    pub name: String,
    pub method: String,
    /// The URL with its query, as sent (empty when the request could not be built).
    pub url: String,
    pub status: Option<u16>,
    pub latency: Duration,
    /// What the step extracted, as JSON text.
    pub extracted: Vec<(String, String)>,
    /// `None` when every check passed; else the error kind and message.
    pub error: Option<(ErrorKind, String)>,
}

fn trace(user: &mut GooseUser, exchange: impl FnOnce() -> Exchange) {
    if let Some(trace) = state(user).and_then(|s| s.trace.as_mut()) {
        trace.push(exchange());
    }
}

impl UserState {
    fn set(&mut self, name: &str, value: Mj) {
        self.vars.insert(name.to_string(), value);
        self.context = None;
    }

    fn context(&mut self) -> Mj {
        self.context
            .get_or_insert_with(|| Mj::from(self.vars.clone()))
            .clone()
    }
}

/// Why a step did not succeed; the request (if any) is already recorded.
struct StepFailed;

impl RunState {
    /// Evaluates the run variables and opens the feeders.
    pub fn new(compiled: Arc<Compiled>) -> Result<RunState, String> {
        let mut vars = BTreeMap::new();
        let mut run_vars = Vec::new();
        for (name, val) in &compiled.run_vars {
            let ctx = Mj::from(vars.clone());
            let value = render_value(&compiled.env, val, &ctx)
                .map_err(|e| format!("variables.{name}: {e}"))?;
            let value = Mj::from_serialize(&value);
            vars.insert(name.clone(), value.clone());
            run_vars.push((name.clone(), value));
        }
        let cursors = compiled
            .feeders
            .iter()
            .map(|f| Cursor::new(f.clone()))
            .collect();
        let per_iteration = compiled.items.iter().map(ItemRt::weight).sum();
        Ok(RunState {
            compiled,
            run_vars,
            cursors,
            per_iteration,
            tracing: false,
        })
    }

    /// Users of this run keep a trace of every exchange.
    pub fn traced(mut self) -> RunState {
        self.tracing = true;
        self
    }

    /// One user: `on_start`, then one iteration; the exchanges in order. The user's session
    /// must be installed, with no think time.
    pub async fn try_once(&self, user: &mut GooseUser) -> Vec<Exchange> {
        self.start_user(user).await;
        for (index, item) in self.compiled.items.iter().enumerate() {
            for _ in 0..item.weight() {
                let _ = self.item(user, index).await;
            }
        }
        state(user).and_then(|s| s.trace.take()).unwrap_or_default()
    }

    /// The Goose-ready definition: one `on_start` transaction, one transaction per item.
    pub fn definition(self: &Arc<Self>, description: &'static str) -> ScenarioDef {
        let start = self.clone();
        let on_start = Step::new(
            "on_start",
            transaction_fn(move |user| {
                let run = start.clone();
                Box::pin(async move {
                    run.start_user(user).await;
                    Ok(())
                })
            }),
        );
        let steps = self
            .compiled
            .items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                let run = self.clone();
                Step::new(
                    item.name(),
                    transaction_fn(move |user| {
                        let run = run.clone();
                        Box::pin(async move { run.item(user, index).await })
                    }),
                )
                .weight(item.weight())
            })
            .collect();
        ScenarioDef {
            name: crate::file::compile::intern(&self.compiled.name),
            description,
            think_time: self.compiled.think,
            on_start: vec![on_start],
            steps,
        }
    }

    /// A new user: feeder rows, user variables, then the `on_start` steps.
    async fn start_user(&self, user: &mut GooseUser) {
        let mut state = UserState {
            trace: self.tracing.then(Vec::new),
            ..UserState::default()
        };
        for (name, value) in &self.run_vars {
            state.set(name, value.clone());
        }
        if !self.draw(user, &mut state, FeederPer::User) {
            state.stopped = true;
        }
        if !state.stopped {
            for (name, val) in &self.compiled.user_vars {
                match render_value(&self.compiled.env, val, &state.context()) {
                    Ok(value) => state.set(name, Mj::from_serialize(&value)),
                    Err(message) => {
                        self.record_failure(user, "user_variables", ErrorKind::Other, message);
                        state.stopped = true;
                        break;
                    }
                }
            }
        }
        let Ok(session) = session_mut(user) else {
            return;
        };
        session.file = Some(Box::new(state));
        if !self.stopped(user) {
            let _ = self.run_on_start(user).await;
        }
    }

    /// Runs the `on_start` steps not yet done, stopping at the first failure.
    async fn run_on_start(&self, user: &mut GooseUser) -> Result<(), StepFailed> {
        loop {
            let done = state(user).map_or(usize::MAX, |s| s.on_start_done);
            let Some(step) = self.compiled.on_start.get(done) else {
                return Ok(());
            };
            run_step(user, &self.compiled, step).await?;
            if let Some(state) = state(user) {
                state.on_start_done += 1;
            }
        }
    }

    /// Draws a row from every feeder that hands out rows `per` user or iteration; false when
    /// a unique feeder is used up (recorded once as a `check` error).
    fn draw(&self, user: &GooseUser, state: &mut UserState, per: FeederPer) -> bool {
        for cursor in &self.cursors {
            if cursor.feeder.per != per {
                continue;
            }
            match cursor.draw() {
                Some(row) => state.set(&cursor.feeder.name, row),
                None => {
                    let message = format!(
                        "feeder `{}` is used up: all {} rows of {} are taken (unique mode); this user stops",
                        cursor.feeder.name,
                        cursor.feeder.len(),
                        cursor.feeder.file
                    );
                    self.record_failure(user, &cursor.feeder.name, ErrorKind::Check, message);
                    return false;
                }
            }
        }
        true
    }

    fn stopped(&self, user: &mut GooseUser) -> bool {
        state(user).is_none_or(|s| s.stopped)
    }

    /// Something went wrong that is not a request: recorded under `name` so it shows.
    fn record_failure(&self, user: &GooseUser, name: &str, kind: ErrorKind, message: String) {
        if let Ok(session) = session(user) {
            session.run.recorder.record(RequestRecord {
                transaction: crate::file::compile::intern(name),
                latency: Duration::ZERO,
                lateness: session.lateness,
                status: None,
                error: Some((kind, message)),
            });
        }
    }

    /// One weighted transaction: a step or a group, inside the iteration's rules.
    async fn item(&self, user: &mut GooseUser, index: usize) -> TransactionResult {
        let open = session(user)?.iteration_open;
        let (first, stopped) = {
            let Some(state) = state(user) else {
                return Err(custom_error("user state missing"));
            };
            let first = state.position % self.per_iteration.max(1) == 0;
            state.position += 1;
            (first, state.stopped)
        };
        if !open {
            return Ok(());
        }
        if stopped {
            if first {
                tokio::time::sleep(WAIT_SLICE).await;
            }
            return Ok(());
        }
        if first {
            let Some(mut taken) = session_mut(user)?.file.take() else {
                return Err(custom_error("user state missing"));
            };
            taken.iteration_failed = false;
            let drawn = self.draw(user, &mut taken, FeederPer::Iteration);
            taken.stopped |= !drawn;
            let pending = taken.on_start_done < self.compiled.on_start.len();
            session_mut(user)?.file = Some(taken);
            if !drawn {
                return Ok(());
            }
            if pending && self.run_on_start(user).await.is_err() {
                if let Some(state) = state(user) {
                    state.iteration_failed = true;
                }
                // A user still failing to sign up does not retry in a tight loop.
                if let Some(step) = self.compiled.on_start.first() {
                    self.think(user, step).await;
                }
            }
        }
        if state(user).is_none_or(|s| s.iteration_failed) {
            return Ok(());
        }
        let steps: Vec<&Arc<StepRt>> = match &self.compiled.items[index] {
            ItemRt::Step(step, _) => vec![step],
            ItemRt::Group { steps, .. } => steps.iter().collect(),
        };
        for step in steps {
            let failed = run_step(user, &self.compiled, step).await.is_err();
            // The user pauses after a failed step too: a failing first step must not turn
            // into a tight loop against the target.
            self.think(user, step).await;
            if failed {
                if let Some(state) = state(user) {
                    state.iteration_failed = true;
                }
                return Ok(());
            }
        }
        Ok(())
    }

    /// The pause after a step (closed model only).
    async fn think(&self, user: &GooseUser, step: &StepRt) {
        let Ok(session) = session(user) else {
            return;
        };
        if session.run.pacer.is_some() {
            return;
        }
        let think = step
            .think
            .or(session.run.think_override)
            .unwrap_or(self.compiled.think);
        let pause = pick_duration(think);
        let until = Instant::now() + pause;
        // In slices, so a user ends soon after the run does.
        while Instant::now() < until {
            if goose::is_killswitch_triggered() {
                return;
            }
            tokio::time::sleep((until - Instant::now()).min(Duration::from_millis(250))).await;
        }
    }
}

fn pick_duration(think: ThinkTime) -> Duration {
    if think.max <= think.min {
        return think.min;
    }
    rand::rng().random_range(think.min..=think.max)
}

fn state(user: &mut GooseUser) -> Option<&mut UserState> {
    session_mut(user).ok()?.file.as_deref_mut()
}

/// What a step sends, rendered.
struct Prepared {
    url: String,
    query: Vec<(String, String)>,
    headers: Vec<(reqwest::header::HeaderName, String)>,
    body: PreparedBody,
}

enum PreparedBody {
    None,
    Json(Value),
    Raw(String),
    Bytes(Arc<[u8]>),
    Form(Vec<(String, String)>),
}

fn prepare(compiled: &Compiled, step: &StepRt, ctx: &Mj) -> Result<Prepared, String> {
    let env = &compiled.env;
    let text = |t| render_text(env, t, ctx);
    Ok(Prepared {
        url: text(&step.url)?,
        query: step
            .query
            .iter()
            .map(|(k, v)| Ok((k.clone(), text(v)?)))
            .collect::<Result<_, String>>()?,
        headers: step
            .headers
            .iter()
            .map(|(k, v)| Ok((k.clone(), text(v)?)))
            .collect::<Result<_, String>>()?,
        body: match &step.body {
            BodyRt::None => PreparedBody::None,
            BodyRt::Json(val) => PreparedBody::Json(render_value(env, val, ctx)?),
            BodyRt::Raw(t) => PreparedBody::Raw(text(t)?),
            BodyRt::Bytes(bytes) => PreparedBody::Bytes(bytes.clone()),
            BodyRt::Form(fields) => PreparedBody::Form(
                fields
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), text(v)?)))
                    .collect::<Result<_, String>>()?,
            ),
        },
    })
}

/// Sends one step's request, times it, checks it, extracts from it and records it.
async fn run_step(
    user: &mut GooseUser,
    compiled: &Compiled,
    step: &StepRt,
) -> Result<(), StepFailed> {
    let Ok(session) = session(user) else {
        return Err(StepFailed);
    };
    let recorder = session.run.recorder.clone();
    let lateness = session.lateness;
    let base_url = session.run.base_url.clone();
    let record = |status, latency, error| {
        recorder.record(RequestRecord {
            transaction: step.name,
            latency,
            lateness,
            status,
            error,
        })
    };

    let ctx = if step.needs_context {
        let Some(state) = state(user) else {
            return Err(StepFailed);
        };
        for (name, val) in &step.variables {
            match render_value(&compiled.env, val, &state.context()) {
                Ok(value) => state.set(name, Mj::from_serialize(&value)),
                Err(message) => {
                    let error = Some((ErrorKind::Other, message));
                    record(None, Duration::ZERO, error.clone());
                    trace(user, || failed_before_sending(step, error));
                    return Err(StepFailed);
                }
            }
        }
        state.context()
    } else {
        Mj::UNDEFINED
    };
    let prepared = match prepare(compiled, step, &ctx) {
        Ok(p) => p,
        Err(message) => {
            let error = Some((ErrorKind::Other, message));
            record(None, Duration::ZERO, error.clone());
            trace(user, || failed_before_sending(step, error));
            return Err(StepFailed);
        }
    };

    let url = if step.relative {
        format!("{base_url}{}", prepared.url)
    } else {
        prepared.url
    };
    let mut builder = user.client.request(step.method.clone(), &url);
    if !prepared.query.is_empty() {
        builder = builder.query(&prepared.query);
    }
    for (name, value) in prepared.headers {
        builder = builder.header(name, value);
    }
    builder = match prepared.body {
        PreparedBody::None => builder,
        PreparedBody::Json(value) => builder.json(&value),
        PreparedBody::Raw(text) => builder.body(text),
        PreparedBody::Bytes(bytes) => builder.body(bytes.to_vec()),
        PreparedBody::Form(fields) => builder.form(&fields),
    };
    if let Some(timeout) = step.timeout {
        builder = builder.timeout(timeout);
    }
    let tracing = state(user).is_some_and(|s| s.trace.is_some());
    let (builder, sent_url) = if tracing {
        match builder.build() {
            Ok(request) => {
                let url = request.url().to_string();
                (
                    reqwest::RequestBuilder::from_parts(user.client.clone(), request),
                    url,
                )
            }
            Err(error) => {
                let error = Some(transport_error(&error));
                record(None, Duration::ZERO, error.clone());
                trace(user, || failed_before_sending(step, error));
                return Err(StepFailed);
            }
        }
    } else {
        (builder, String::new())
    };

    let started = Instant::now();
    let (status, headers, outcome) = match builder.send().await {
        Err(error) => (None, None, Err(transport_error(&error))),
        Ok(response) => {
            let status = response.status().as_u16();
            let headers = (!step.extract.is_empty()).then(|| response.headers().clone());
            match response.bytes().await {
                Err(error) => (Some(status), headers, Err(transport_error(&error))),
                Ok(body) => (Some(status), headers, Ok(body)),
            }
        }
    };
    let latency = started.elapsed();

    let first = outcome.and_then(|body| {
        let (json, extracted) = extract(
            compiled,
            step,
            status.unwrap_or_default(),
            headers.as_ref(),
            &body,
            &ctx,
        )?;
        Ok((body, json, extracted))
    });
    let mut extracted_text = Vec::new();
    let judged = match first {
        Err(error) => Err(error),
        Ok((body, json, extracted)) => {
            if tracing {
                extracted_text = extracted
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect();
            }
            let ctx = match state(user) {
                Some(state) if !extracted.is_empty() => {
                    for (name, value) in &extracted {
                        state.set(name, Mj::from_serialize(value));
                    }
                    if checks_need_context(step) {
                        state.context()
                    } else {
                        ctx
                    }
                }
                _ => ctx,
            };
            check(compiled, step, json.as_ref(), &body, latency, &ctx)
        }
    };
    let error = judged.err();
    record(status, latency, error.clone());
    let failed = error.is_some();
    trace(user, || Exchange {
        name: step.name.to_string(),
        method: step.method.to_string(),
        url: sent_url,
        status,
        latency,
        extracted: extracted_text,
        error,
    });
    if failed { Err(StepFailed) } else { Ok(()) }
}

fn failed_before_sending(step: &StepRt, error: Option<(ErrorKind, String)>) -> Exchange {
    Exchange {
        name: step.name.to_string(),
        method: step.method.to_string(),
        url: String::new(),
        status: None,
        latency: Duration::ZERO,
        extracted: Vec::new(),
        error,
    }
}

type Failure = (ErrorKind, String);

/// The body as JSON (when a check or extraction needs it) and the extracted values.
type Extracted<'a> = (Option<Value>, Vec<(&'a str, Value)>);

fn check_error(message: String) -> Failure {
    (ErrorKind::Check, message)
}

/// The status rule, then the extractions: the body as JSON (when needed) and the values.
fn extract<'a>(
    compiled: &Compiled,
    step: &'a StepRt,
    status: u16,
    headers: Option<&reqwest::header::HeaderMap>,
    body: &[u8],
    ctx: &Mj,
) -> Result<Extracted<'a>, Failure> {
    let checks = &step.checks;
    let parsed = if step.needs_json || !checks.status.accepts(status) {
        if body.iter().all(u8::is_ascii_whitespace) {
            Some(Value::Null)
        } else {
            serde_json::from_slice::<Value>(body).ok()
        }
    } else {
        None
    };
    if !checks.status.accepts(status) {
        return Err(crate::request::status_error(
            &checks.status,
            status,
            parsed.as_ref(),
        ));
    }
    if step.needs_json && parsed.is_none() {
        return Err(check_error("body is not JSON".to_string()));
    }
    let json = parsed.as_ref().unwrap_or(&Value::Null);

    let mut extracted = Vec::with_capacity(step.extract.len());
    for (name, extract) in &step.extract {
        let found = match &extract.source {
            Source::Json(path) => {
                let nodes = path.query(json).all();
                match extract.pick {
                    Pick::First => nodes.first().map(|v| (*v).clone()),
                    Pick::Random => nodes.choose(&mut rand::rng()).map(|v| (*v).clone()),
                    Pick::All => (!nodes.is_empty())
                        .then(|| Value::Array(nodes.into_iter().cloned().collect())),
                }
            }
            Source::Pointer(pointer) => json.pointer(pointer).cloned(),
            Source::Header(header) => headers
                .and_then(|h| h.get(header.as_str()))
                .and_then(|v| v.to_str().ok())
                .map(|v| Value::String(v.to_string())),
            Source::Status => Some(Value::from(status)),
            Source::Regex(regex, group) => std::str::from_utf8(body)
                .ok()
                .and_then(|text| regex.captures(text))
                .and_then(|c| c.get(*group))
                .map(|m| Value::String(m.as_str().to_string())),
        };
        let value = match (found, &extract.default) {
            (Some(value), _) => value,
            (None, Some(default)) => {
                render_value(&compiled.env, default, ctx).map_err(check_error)?
            }
            (None, None) => {
                return Err(check_error(format!(
                    "extract `{name}`: {} matched nothing",
                    source_text(&extract.source)
                )));
            }
        };
        extracted.push((name.as_str(), value));
    }
    Ok((parsed, extracted))
}

/// The checks after the status rule: JSON fields, body text, latency.
fn check(
    compiled: &Compiled,
    step: &StepRt,
    json: Option<&Value>,
    body: &[u8],
    latency: Duration,
    ctx: &Mj,
) -> Result<(), Failure> {
    let checks = &step.checks;
    for check in &checks.json {
        json_check(compiled, check, json.unwrap_or(&Value::Null), ctx).map_err(check_error)?;
    }
    if let Some(needle) = &checks.body_contains {
        let needle = render_text(&compiled.env, needle, ctx).map_err(check_error)?;
        let found = std::str::from_utf8(body).is_ok_and(|text| text.contains(&needle));
        if !found {
            return Err(check_error(format!("body does not contain \"{needle}\"")));
        }
    }
    if let Some(bound) = checks.latency_below
        && latency >= bound
    {
        return Err(check_error(format!(
            "latency not below {}",
            humantime::format_duration(bound)
        )));
    }
    Ok(())
}

fn checks_need_context(step: &StepRt) -> bool {
    step.checks.body_contains.is_some()
        || step.checks.json.iter().any(|c| {
            matches!(
                c.op,
                JsonOpRt::Equals(_) | JsonOpRt::Contains(_) | JsonOpRt::Excludes(_)
            )
        })
}

fn source_text(source: &Source) -> String {
    match source {
        Source::Json(path) => format!("JSONPath {path}"),
        Source::Pointer(pointer) => format!("JSON Pointer {pointer}"),
        Source::Header(header) => format!("header {header}"),
        Source::Status => "status".to_string(),
        Source::Regex(regex, _) => format!("regex {}", regex.as_str()),
    }
}

/// Equal as JSON, or as text when one side is a string (`"5"` from a template and `5`).
fn loosely_equal(actual: &Value, expected: &Value) -> bool {
    if actual == expected {
        return true;
    }
    match (actual, expected) {
        (Value::String(a), other) | (other, Value::String(a)) if !other.is_string() => {
            match other {
                Value::Number(_) | Value::Bool(_) => a.as_str() == other.to_string().as_str(),
                _ => false,
            }
        }
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => false,
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::String(s) => format!("\"{s}\""),
        other => other.to_string(),
    }
}

fn json_check(
    compiled: &Compiled,
    check: &JsonCheckRt,
    json: &Value,
    ctx: &Mj,
) -> Result<(), String> {
    let nodes = check.path.query(json).all();
    let path = &check.path_text;
    let expected = |val: &Val| render_value(&compiled.env, val, ctx);
    match &check.op {
        JsonOpRt::Exists(true) if nodes.is_empty() => Err(format!("`{path}` missing")),
        JsonOpRt::Exists(false) if !nodes.is_empty() => Err(format!("`{path}` is present")),
        JsonOpRt::Exists(_) => Ok(()),
        JsonOpRt::Equals(val) => {
            let want = expected(val)?;
            match nodes.first() {
                None => Err(format!("`{path}` missing")),
                Some(actual) if loosely_equal(actual, &want) => Ok(()),
                // A templated value is usually an id: keep per-request values out of the
                // message so the report groups these errors.
                Some(_) if !val.is_plain() => Err(format!("`{path}` is not the expected value")),
                Some(actual) => Err(format!(
                    "`{path}` is {}, expected {}",
                    describe(actual),
                    describe(&want)
                )),
            }
        }
        JsonOpRt::Contains(val) => {
            let want = expected(val)?;
            if nodes.iter().any(|n| loosely_equal(n, &want)) {
                Ok(())
            } else if val.is_plain() {
                Err(format!("`{path}` does not contain {}", describe(&want)))
            } else {
                Err(format!("`{path}` does not contain the expected value"))
            }
        }
        JsonOpRt::Excludes(val) => {
            let want = expected(val)?;
            if !nodes.iter().any(|n| loosely_equal(n, &want)) {
                Ok(())
            } else if val.is_plain() {
                Err(format!("`{path}` contains {}", describe(&want)))
            } else {
                Err(format!("`{path}` still contains the value"))
            }
        }
        JsonOpRt::Matches(regex) => match nodes.first() {
            None => Err(format!("`{path}` missing")),
            Some(actual) => {
                let text = match actual {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                if regex.is_match(&text) {
                    Ok(())
                } else {
                    Err(format!("`{path}` does not match /{}/", regex.as_str()))
                }
            }
        },
        JsonOpRt::Type(kind) => match nodes.first() {
            None => Err(format!("`{path}` missing")),
            Some(actual) if JsonType::of(actual) == *kind => Ok(()),
            Some(actual) => Err(format!(
                "`{path}` is {}, expected {}",
                JsonType::of(actual).name(),
                kind.name()
            )),
        },
    }
}
