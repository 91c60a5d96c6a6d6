//! Scenario files (`apiVersion: shakedown/v1`, `kind: Scenario`): user journeys as data.
//!
//! A file is read with the `config` crate (file:line:column and field path on every error),
//! compiled once — templates, JSONPaths, regexes, feeder rows, body files, every variable
//! checked — and interpreted per request. The built-in scenarios are such files, embedded from
//! `scenarios/builtin/`, so what users copy is exactly what the built-in names run. The format
//! is documented in `scenarios/README.md` and `scenarios/schema/scenario.schema.json`.

mod compile;
mod feeder;
mod locate;
mod model;
mod paths;
pub(crate) mod run;
mod template;

use std::path::Path;
use std::sync::Arc;

use compile::Compiled;
pub(crate) use compile::intern;
pub use paths::{RequestPath, path_pattern};
pub use run::Exchange;

use crate::rust_steps::ScenarioDef;

/// The built-in scenarios, in the order help texts list them.
const BUILTIN: [(&str, &str); 5] = [
    ("smoke", include_str!("../../builtin/smoke.yaml")),
    ("browse", include_str!("../../builtin/browse.yaml")),
    ("checkout", include_str!("../../builtin/checkout.yaml")),
    ("ingest", include_str!("../../builtin/ingest.yaml")),
    ("health", include_str!("../../builtin/health.yaml")),
];

/// Why a scenario could not be used (a usage error, exit 2).
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// Neither a built-in name nor a file.
    #[error("unknown scenario \"{name}\" (built-in: {}; or a path to a scenario file)", known.join(", "))]
    Unknown {
        name: String,
        known: Vec<&'static str>,
    },
    /// The file cannot be read or breaks a rule: file, line, column, field and what is wrong.
    #[error(transparent)]
    Invalid(#[from] Box<config::Error>),
    /// Only scenario files can be tried request by request.
    #[error(
        "scenario \"{name}\" is written in Rust: only scenario files can be checked step by step"
    )]
    NotAFile { name: String },
}

/// A scenario ready to run: a built-in, a scenario file, or Rust steps ([`ScenarioDef`]).
#[derive(Clone)]
pub struct Scenario {
    inner: Arc<Inner>,
}

enum Inner {
    File(Arc<Compiled>),
    Rust(ScenarioDef),
}

impl std::fmt::Debug for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scenario")
            .field("name", &self.name())
            .finish()
    }
}

impl Scenario {
    /// A built-in name (`checkout`) or the path of a scenario file.
    pub fn resolve(name_or_path: &str) -> Result<Scenario, ScenarioError> {
        if let Some(builtin) = Scenario::builtin(name_or_path) {
            return Ok(builtin);
        }
        let path = Path::new(name_or_path);
        let looks_like_a_file = path.exists()
            || name_or_path.contains(std::path::MAIN_SEPARATOR)
            || name_or_path.contains('/')
            || name_or_path.ends_with(".yaml")
            || name_or_path.ends_with(".yml");
        if looks_like_a_file {
            return Scenario::from_file(path);
        }
        Err(ScenarioError::Unknown {
            name: name_or_path.to_string(),
            known: builtin_names(),
        })
    }

    /// The built-in scenario called `name`.
    pub fn builtin(name: &str) -> Option<Scenario> {
        let (_, text) = BUILTIN.iter().find(|(n, _)| *n == name)?;
        let origin = format!("built-in scenario \"{name}\"");
        let compiled = parse(text, Path::new(&origin), None)
            .unwrap_or_else(|e| panic!("the built-in scenario {name} is invalid: {e}"));
        Some(Scenario::compiled(compiled))
    }

    /// Reads, checks and compiles a scenario file; relative file names in it (feeders, body
    /// files) are resolved from its directory.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Scenario, ScenarioError> {
        let path = path.as_ref();
        let text = config::read_text(path, "scenario file").map_err(Box::new)?;
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| ".".into());
        Ok(Scenario::compiled(parse(&text, path, Some(base))?))
    }

    /// Compiles scenario text; `origin` names it in errors and `base` is the directory of
    /// relative file names (`None`: the text may not name files).
    pub fn from_yaml(
        text: &str,
        origin: impl AsRef<Path>,
        base: Option<&Path>,
    ) -> Result<Scenario, ScenarioError> {
        Ok(Scenario::compiled(parse(
            text,
            origin.as_ref(),
            base.map(Path::to_path_buf),
        )?))
    }

    /// A scenario written in Rust (the extension point for what a file cannot express).
    pub fn from_rust(def: ScenarioDef) -> Scenario {
        Scenario {
            inner: Arc::new(Inner::Rust(def)),
        }
    }

    fn compiled(compiled: Compiled) -> Scenario {
        Scenario {
            inner: Arc::new(Inner::File(Arc::new(compiled))),
        }
    }

    /// The name reports carry.
    pub fn name(&self) -> &str {
        match &*self.inner {
            Inner::File(c) => &c.name,
            Inner::Rust(def) => def.name,
        }
    }

    pub fn description(&self) -> &str {
        match &*self.inner {
            Inner::File(c) => &c.description,
            Inner::Rust(def) => def.description,
        }
    }

    /// The transaction that places exactly one order per success (`accounting.orders`), for
    /// drills that count acknowledged orders.
    pub fn order_transaction(&self) -> Option<&str> {
        match &*self.inner {
            Inner::File(c) => c.orders.as_deref(),
            Inner::Rust(_) => None,
        }
    }

    /// Each step's transaction, method and URL path with every template written `*`
    /// (`/api/v1/products/*` for `/api/v1/products/{{ product_id }}`), in file order, for
    /// matching transactions with the routes a server reports. Rust scenarios have none.
    pub fn request_paths(&self) -> Vec<RequestPath> {
        let Inner::File(c) = &*self.inner else {
            return Vec::new();
        };
        let steps = c
            .on_start
            .iter()
            .chain(c.items.iter().flat_map(|item| match item {
                compile::ItemRt::Step(s, _) => std::slice::from_ref(s),
                compile::ItemRt::Group { steps, .. } => steps.as_slice(),
            }));
        steps
            .filter_map(|step| {
                let url = match &step.url {
                    template::Text::Plain(url) => url.clone(),
                    template::Text::Template(name) => {
                        c.env.get_template(name).ok()?.source().to_string()
                    }
                };
                Some(RequestPath {
                    transaction: step.name.to_string(),
                    method: step.method.to_string(),
                    path: path_pattern(&url),
                })
            })
            .collect()
    }

    /// Transaction names of the steps, in file order (duplicates removed).
    pub fn transaction_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        let mut push = |n: &'static str| {
            if !names.contains(&n) {
                names.push(n);
            }
        };
        match &*self.inner {
            Inner::File(c) => {
                for step in &c.on_start {
                    push(step.name);
                }
                for item in &c.items {
                    match item {
                        compile::ItemRt::Step(s, _) => push(s.name),
                        compile::ItemRt::Group { steps, .. } => {
                            steps.iter().for_each(|s| push(s.name))
                        }
                    }
                }
            }
            Inner::Rust(def) => def
                .on_start
                .iter()
                .chain(&def.steps)
                .for_each(|s| push(s.name)),
        }
        names
    }

    /// The definition Goose runs, with fresh per-run state (run variables, feeder cursors).
    pub(crate) fn definition(&self) -> Result<(ScenarioDef, bool), String> {
        match &*self.inner {
            Inner::Rust(def) => Ok((def.clone(), false)),
            Inner::File(compiled) => {
                let state = Arc::new(run::RunState::new(compiled.clone())?);
                Ok((state.definition(intern(&compiled.description)), true))
            }
        }
    }
}

impl Scenario {
    /// `shakedown scenario check FILE --target URL`: one user runs `on_start` and one
    /// iteration against `target`, without think time; returns every exchange in order (the
    /// first failed step ends the iteration, as in a run). Nothing is recorded anywhere.
    pub async fn try_once(&self, target: &str) -> Result<Vec<Exchange>, crate::RunError> {
        let Inner::File(compiled) = &*self.inner else {
            return Err(ScenarioError::NotAFile {
                name: self.name().to_string(),
            }
            .into());
        };
        let base = crate::runner::normalize_target(target)?;
        let invalid = |reason: String| crate::RunError::InvalidTarget {
            target: target.to_string(),
            reason,
        };
        let url = reqwest::Url::parse(&base).map_err(|e| invalid(e.to_string()))?;
        let no_think = crate::profile::ThinkTime {
            min: std::time::Duration::ZERO,
            max: std::time::Duration::ZERO,
        };
        let run = Arc::new(crate::session::RunContext::new(
            Arc::new(crate::recorder::Recorder::new(false)),
            None,
            base,
            Some(no_think),
        ));
        let mut user =
            goose::prelude::GooseUser::single(url, &goose::config::GooseConfiguration::default())
                .map_err(|e| invalid(e.to_string()))?;
        user.client = reqwest::Client::builder()
            .timeout(crate::profile::DEFAULT_REQUEST_TIMEOUT)
            .build()
            .map_err(|e| invalid(e.to_string()))?;
        user.set_session_data(crate::session::UserSession::new(run));
        let state = run::RunState::new(compiled.clone())
            .map_err(|message| {
                ScenarioError::Invalid(Box::new(config::Error::field(
                    &compiled.name,
                    "variables",
                    message,
                )))
            })?
            .traced();
        Ok(state.try_once(&mut user).await)
    }
}

fn parse(
    text: &str,
    origin: &Path,
    base: Option<std::path::PathBuf>,
) -> Result<Compiled, Box<config::Error>> {
    let file: model::ScenarioFile = config::parse(text, origin).map_err(Box::new)?;
    compile::compile(file, text, origin, base)
}

/// Names of the built-in scenarios.
pub fn builtin_names() -> Vec<&'static str> {
    BUILTIN.iter().map(|(name, _)| *name).collect()
}

/// `(name, description)` of every built-in scenario, for help texts.
pub fn builtin_descriptions() -> Vec<(&'static str, &'static str)> {
    builtin_names()
        .into_iter()
        .filter_map(|name| {
            let scenario = Scenario::builtin(name)?;
            Some((name, intern(scenario.description())))
        })
        .collect()
}
