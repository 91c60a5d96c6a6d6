//! From a parsed scenario file to what the interpreter runs, checking every rule that needs
//! the whole file first: each template's variables are defined by then (run variables, feeders,
//! user variables, the step's own `variables`, and what `on_start` and earlier steps extract),
//! feeder and body files exist and have content, names are usable. The first broken rule is a
//! [`config::Error`] with file, line, column and field path, before any request is sent.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use minijinja::Environment;
use reqwest::header::HeaderName;
use serde_json::Value;
use serde_json_path::JsonPath;

use super::feeder::Feeder;
use super::locate::{Seg, display, locate};
use super::model::{
    BodySpec, Checks, Item, JsonOp, JsonType, Pick, ScenarioFile, Source, StatusRule, StepSpec,
};
use super::template::{Builder, Text, Val};
use crate::profile::ThinkTime;

/// A scenario file ready to run.
pub struct Compiled {
    pub name: String,
    pub description: String,
    pub think: ThinkTime,
    pub orders: Option<String>,
    pub env: Arc<Environment<'static>>,
    pub run_vars: Vec<(String, Val)>,
    pub user_vars: Vec<(String, Val)>,
    pub feeders: Vec<Arc<Feeder>>,
    pub on_start: Vec<Arc<StepRt>>,
    pub items: Vec<ItemRt>,
}

pub enum ItemRt {
    Step(Arc<StepRt>, usize),
    Group {
        name: String,
        weight: usize,
        steps: Vec<Arc<StepRt>>,
    },
}

impl ItemRt {
    pub fn weight(&self) -> usize {
        match self {
            ItemRt::Step(_, w) | ItemRt::Group { weight: w, .. } => *w,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            ItemRt::Step(step, _) => step.name,
            ItemRt::Group { name, .. } => intern(name),
        }
    }
}

/// One step, compiled.
pub struct StepRt {
    pub name: &'static str,
    pub method: reqwest::Method,
    pub url: Text,
    /// The URL is relative to the target.
    pub relative: bool,
    pub query: Vec<(String, Text)>,
    pub headers: Vec<(HeaderName, Text)>,
    pub body: BodyRt,
    pub timeout: Option<Duration>,
    pub think: Option<ThinkTime>,
    pub variables: Vec<(String, Val)>,
    pub extract: Vec<(String, ExtractRt)>,
    pub checks: ChecksRt,
    /// Some string is a template or something is extracted: the user's variables are needed.
    pub needs_context: bool,
    /// A check or an extraction reads the body as JSON.
    pub needs_json: bool,
}

pub enum BodyRt {
    None,
    Json(Val),
    Raw(Text),
    Bytes(Arc<[u8]>),
    Form(Vec<(String, Text)>),
}

pub struct ExtractRt {
    pub source: Source,
    pub pick: Pick,
    pub default: Option<Val>,
}

pub struct ChecksRt {
    pub status: StatusRule,
    pub json: Vec<JsonCheckRt>,
    pub body_contains: Option<Text>,
    pub latency_below: Option<Duration>,
}

pub struct JsonCheckRt {
    pub path_text: String,
    pub path: JsonPath,
    pub op: JsonOpRt,
}

pub enum JsonOpRt {
    Equals(Val),
    Exists(bool),
    Matches(regex::Regex),
    Contains(Val),
    Excludes(Val),
    Type(JsonType),
}

/// Step names live as long as the process: the recorder keys its series by `&'static str`.
/// Interned, so loading the same file again does not grow memory.
pub fn intern(name: &str) -> &'static str {
    static NAMES: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    let names = names.get_or_insert_with(HashSet::new);
    if let Some(existing) = names.get(name) {
        return existing;
    }
    let leaked: &'static str = Box::leak(name.to_string().into_boxed_str());
    names.insert(leaked);
    leaked
}

struct Ctx<'a> {
    text: &'a str,
    origin: &'a Path,
    /// Where relative file names are resolved; `None` for built-ins (no files).
    base: Option<PathBuf>,
    templates: Builder,
    defined: BTreeSet<String>,
}

type Fail = Box<config::Error>;

impl Ctx<'_> {
    fn error(&self, path: &[Seg], message: impl Into<String>) -> Fail {
        let position = locate(self.text, path);
        Box::new(config::Error::Invalid {
            path: self.origin.to_path_buf(),
            line: position.map(|p| p.0),
            column: position.map(|p| p.1),
            field: display(path),
            message: message.into(),
        })
    }

    fn text(&mut self, path: &[Seg], source: &str) -> Result<Text, Fail> {
        let defined = self.defined.clone();
        self.templates
            .text(source, &defined)
            .map_err(|m| self.error(path, m))
    }

    fn value(&mut self, path: &[Seg], value: &Value) -> Result<Val, Fail> {
        let defined = self.defined.clone();
        self.templates
            .value(value, &defined)
            .map_err(|m| self.error(path, m))
    }

    fn file(&self, path: &[Seg], name: &str) -> Result<PathBuf, Fail> {
        match &self.base {
            Some(base) => Ok(base.join(name)),
            None => Err(self.error(path, "a built-in scenario cannot read files")),
        }
    }

    fn define(&mut self, path: &[Seg], name: &str) -> Result<(), Fail> {
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(self.error(
                path,
                format!("\"{name}\" is not a variable name (letters, digits and `_`, not starting with a digit)"),
            ));
        }
        if ["uuid", "random_int", "random_email", "unique_email", "pick"].contains(&name) {
            return Err(self.error(path, format!("\"{name}\" is a template function's name")));
        }
        self.defined.insert(name.to_string());
        Ok(())
    }
}

fn at(path: &[Seg], seg: Seg) -> Vec<Seg> {
    let mut p = path.to_vec();
    p.push(seg);
    p
}

fn key(k: &str) -> Seg {
    Seg::Key(k.to_string())
}

/// Compiles a parsed file. `origin` names it in errors; `base` is the directory of relative
/// file names (`None` for built-ins).
pub fn compile(
    file: ScenarioFile,
    text: &str,
    origin: &Path,
    base: Option<PathBuf>,
) -> Result<Compiled, Box<config::Error>> {
    let mut cx = Ctx {
        text,
        origin,
        base,
        templates: Builder::new(),
        defined: BTreeSet::new(),
    };
    if file.name.trim().is_empty() {
        return Err(cx.error(&[key("name")], "a scenario needs a name"));
    }
    if file.steps.is_empty() {
        return Err(cx.error(&[key("steps")], "a scenario needs at least one step"));
    }

    let mut run_vars = Vec::new();
    for (name, value) in &file.variables {
        let path = [key("variables"), key(name)];
        let val = cx.value(&path, value)?;
        cx.define(&path, name)?;
        run_vars.push((name.clone(), val));
    }
    let mut feeders = Vec::new();
    for (name, spec) in &file.feeders {
        let path = [key("feeders"), key(name), key("file")];
        let file_path = cx.file(&path, &spec.file)?;
        let feeder = Feeder::load(name, &spec.file, &file_path, spec.mode, spec.per)
            .map_err(|m| cx.error(&path, m))?;
        cx.define(&[key("feeders"), key(name)], name)?;
        feeders.push(Arc::new(feeder));
    }
    let mut user_vars = Vec::new();
    for (name, value) in &file.user_variables {
        let path = [key("user_variables"), key(name)];
        let val = cx.value(&path, value)?;
        cx.define(&path, name)?;
        user_vars.push((name.clone(), val));
    }

    let mut on_start = Vec::new();
    for (i, item) in file.on_start.iter().enumerate() {
        let path = [key("on_start"), Seg::Index(i)];
        match item {
            Item::Step(spec) => on_start.push(Arc::new(step(&mut cx, &path, spec)?)),
            Item::Group { .. } => {
                return Err(cx.error(&path, "`on_start` runs steps in order: no groups"));
            }
        }
    }
    let mut items = Vec::new();
    for (i, item) in file.steps.iter().enumerate() {
        let path = [key("steps"), Seg::Index(i)];
        items.push(match item {
            Item::Step(spec) => ItemRt::Step(Arc::new(step(&mut cx, &path, spec)?), spec.weight),
            Item::Group {
                name,
                weight,
                steps,
            } => {
                let mut compiled = Vec::new();
                for (j, inner) in steps.iter().enumerate() {
                    let inner_path = at(&at(&path, key("steps")), Seg::Index(j));
                    if let Item::Step(spec) = inner {
                        if spec.weight != 1 {
                            return Err(cx.error(
                                &inner_path,
                                "a step in a group runs once per group run: set the group's `weight`",
                            ));
                        }
                        compiled.push(Arc::new(step(&mut cx, &inner_path, spec)?));
                    }
                }
                ItemRt::Group {
                    name: name.clone(),
                    weight: *weight,
                    steps: compiled,
                }
            }
        });
    }

    let orders = file.accounting.and_then(|a| a.orders);
    if let Some(orders) = &orders {
        let names: Vec<&str> = on_start
            .iter()
            .map(|s| s.name)
            .chain(items.iter().flat_map(|item| match item {
                ItemRt::Step(s, _) => vec![s.name],
                ItemRt::Group { steps, .. } => steps.iter().map(|s| s.name).collect(),
            }))
            .collect();
        if !names.contains(&orders.as_str()) {
            return Err(cx.error(
                &[key("accounting"), key("orders")],
                format!("no step is named \"{orders}\""),
            ));
        }
    }

    Ok(Compiled {
        name: file.name,
        description: file.description.unwrap_or_default(),
        think: file.think_time.map_or(
            ThinkTime {
                min: Duration::ZERO,
                max: Duration::ZERO,
            },
            |t| t.0,
        ),
        orders,
        env: cx.templates.finish(),
        run_vars,
        user_vars,
        feeders,
        on_start,
        items,
    })
}

fn step(cx: &mut Ctx<'_>, path: &[Seg], spec: &StepSpec) -> Result<StepRt, Fail> {
    let mut variables = Vec::new();
    for (name, value) in &spec.variables {
        let p = at(&at(path, key("variables")), key(name));
        let val = cx.value(&p, value)?;
        cx.define(&p, name)?;
        variables.push((name.clone(), val));
    }
    let url = cx.text(&at(path, key("url")), &spec.url)?;
    let relative = !(spec.url.starts_with("http://") || spec.url.starts_with("https://"));
    if relative && !spec.url.starts_with('/') && !spec.url.starts_with("{{") {
        return Err(cx.error(
            &at(path, key("url")),
            format!(
                "\"{}\" is neither a path starting with `/` nor an http(s) URL",
                spec.url
            ),
        ));
    }
    let mut query = Vec::new();
    for (name, value) in &spec.query {
        let p = at(&at(path, key("query")), key(name));
        query.push((name.clone(), cx.text(&p, &value.0)?));
    }
    let mut headers = Vec::new();
    for (name, value) in &spec.headers {
        let p = at(&at(path, key("headers")), key(name));
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| cx.error(&p, format!("invalid header name \"{name}\"")))?;
        headers.push((header, cx.text(&p, &value.0)?));
    }
    let body = match &spec.body {
        BodySpec::None => BodyRt::None,
        BodySpec::Json(value) => BodyRt::Json(cx.value(&at(path, key("json")), value)?),
        BodySpec::Raw(text) => BodyRt::Raw(cx.text(&at(path, key("body")), text)?),
        BodySpec::File { path: name, field } => {
            let p = at(path, key(field));
            let file = cx.file(&p, name)?;
            let bytes = std::fs::read(&file).map_err(|e| {
                cx.error(&p, format!("cannot read body file {}: {e}", file.display()))
            })?;
            BodyRt::Bytes(bytes.into())
        }
        BodySpec::Form(fields) => {
            let mut form = Vec::new();
            for (name, value) in fields {
                let p = at(&at(path, key("form")), key(name));
                form.push((name.clone(), cx.text(&p, &value.0)?));
            }
            BodyRt::Form(form)
        }
    };

    let mut extract = Vec::new();
    let mut pending = Vec::new();
    for (name, spec_x) in &spec.extract {
        let p = at(&at(path, key("extract")), key(name));
        let default = spec_x
            .default
            .as_ref()
            .map(|d| cx.value(&at(&p, key("default")), d))
            .transpose()?;
        pending.push(p.clone());
        extract.push((
            name.clone(),
            ExtractRt {
                source: spec_x.source.clone(),
                pick: spec_x.pick,
                default,
            },
        ));
    }
    for (p, (name, _)) in pending.iter().zip(&extract) {
        cx.define(p, name)?;
    }
    let checks = checks(cx, &at(path, key("checks")), &spec.checks)?;

    let needs_json = checks_need_json(&checks)
        || extract
            .iter()
            .any(|(_, x)| matches!(x.source, Source::Json(_) | Source::Pointer(_)));
    let needs_context = !url.is_plain()
        || !variables.is_empty()
        || !extract.is_empty()
        || query.iter().any(|(_, t)| !t.is_plain())
        || headers.iter().any(|(_, t)| !t.is_plain())
        || match &body {
            BodyRt::Json(v) => !v.is_plain(),
            BodyRt::Raw(t) => !t.is_plain(),
            BodyRt::Form(f) => f.iter().any(|(_, t)| !t.is_plain()),
            BodyRt::None | BodyRt::Bytes(_) => false,
        }
        || checks.body_contains.as_ref().is_some_and(|t| !t.is_plain())
        || checks.json.iter().any(|c| match &c.op {
            JsonOpRt::Equals(v) | JsonOpRt::Contains(v) | JsonOpRt::Excludes(v) => !v.is_plain(),
            _ => false,
        });

    Ok(StepRt {
        name: intern(&spec.name),
        method: spec.method.clone(),
        url,
        relative,
        query,
        headers,
        body,
        timeout: spec.timeout,
        think: spec.think_time,
        variables,
        extract,
        checks,
        needs_context,
        needs_json,
    })
}

fn checks_need_json(checks: &ChecksRt) -> bool {
    !checks.json.is_empty()
}

fn checks(cx: &mut Ctx<'_>, path: &[Seg], spec: &Checks) -> Result<ChecksRt, Fail> {
    let mut json = Vec::new();
    for (i, check) in spec.json.iter().enumerate() {
        let p = at(&at(path, key("json")), Seg::Index(i));
        let op = match &check.op {
            JsonOp::Equals(v) => JsonOpRt::Equals(cx.value(&at(&p, key("equals")), v)?),
            JsonOp::Contains(v) => JsonOpRt::Contains(cx.value(&at(&p, key("contains")), v)?),
            JsonOp::Excludes(v) => JsonOpRt::Excludes(cx.value(&at(&p, key("excludes")), v)?),
            JsonOp::Exists(b) => JsonOpRt::Exists(*b),
            JsonOp::Matches(r) => JsonOpRt::Matches(r.clone()),
            JsonOp::Type(t) => JsonOpRt::Type(*t),
        };
        json.push(JsonCheckRt {
            path_text: check.path_text.clone(),
            path: check.path.clone(),
            op,
        });
    }
    let body_contains = spec
        .body_contains
        .as_ref()
        .map(|t| cx.text(&at(path, key("body_contains")), t))
        .transpose()?;
    Ok(ChecksRt {
        status: spec.status.clone().unwrap_or_default(),
        json,
        body_contains,
        latency_below: spec.latency_below.map(|d| d.0),
    })
}
