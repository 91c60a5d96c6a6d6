//! Templates in scenario files: minijinja, compiled once when the file is loaded.
//!
//! Every string of a step may hold `{{ ... }}`; strings without one stay plain text and cost
//! nothing per request. A string that is exactly one expression (`"{{ total_amount }}"`) keeps
//! its value's JSON type where a JSON value is expected (a body field, a variable, a check's
//! expected value), so a number extracted from one response goes back as the same number.
//! Templates see run variables, user variables, feeder rows and extracted values; the
//! generator functions are `uuid()`, `random_int(a, b)`, `random_email()`, `unique_email()` and
//! `pick(list)`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use minijinja::{Environment, Error, ErrorKind, UndefinedBehavior, Value as Mj};
use rand::Rng;
use rand::seq::IndexedRandom;
use serde_json::Value;

/// Functions every template may call, and minijinja's own globals: never "undefined".
const GLOBALS: [&str; 9] = [
    "uuid",
    "random_int",
    "random_email",
    "unique_email",
    "pick",
    "range",
    "dict",
    "namespace",
    "debug",
];

/// A string that may be a template.
#[derive(Clone, Debug)]
pub enum Text {
    Plain(String),
    /// The name of a compiled template in the environment.
    Template(String),
}

/// A JSON value whose strings may be templates.
#[derive(Clone, Debug)]
pub enum Val {
    Plain(Value),
    /// A whole-string expression whose result keeps its JSON type.
    Typed(String),
    /// A string with templates inside: the result is text.
    Text(String),
    Array(Vec<Val>),
    Object(Vec<(String, Val)>),
}

impl Val {
    /// Whether rendering does any work.
    pub fn is_plain(&self) -> bool {
        matches!(self, Val::Plain(_))
    }
}

impl Text {
    pub fn is_plain(&self) -> bool {
        matches!(self, Text::Plain(_))
    }
}

/// Builds the environment while a file is compiled.
pub struct Builder {
    env: Environment<'static>,
    next: usize,
}

fn has_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%") || text.contains("{#")
}

/// `{{ expr }}` and nothing else: the expression.
fn whole_expression(text: &str) -> Option<&str> {
    let inner = text.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    if inner.contains("{{") || inner.contains("}}") || inner.contains("{%") {
        return None;
    }
    let inner = inner.strip_prefix('-').unwrap_or(inner);
    let inner = inner.strip_suffix('-').unwrap_or(inner);
    Some(inner.trim()).filter(|i| !i.is_empty())
}

impl Builder {
    pub fn new() -> Builder {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Text is not HTML: never escape.
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        register_functions(&mut env);
        Builder { env, next: 0 }
    }

    /// Compiles `source` as text; `Err` says what is wrong (syntax, or which variables are
    /// not among `defined`).
    pub fn text(&mut self, source: &str, defined: &BTreeSet<String>) -> Result<Text, String> {
        if !has_template(source) {
            return Ok(Text::Plain(source.to_string()));
        }
        Ok(Text::Template(self.add(source.to_string(), defined)?))
    }

    /// Compiles a JSON value whose strings may be templates.
    pub fn value(&mut self, value: &Value, defined: &BTreeSet<String>) -> Result<Val, String> {
        Ok(match value {
            Value::String(text) if has_template(text) => match whole_expression(text) {
                Some(expr) => {
                    Val::Typed(self.add(format!("{{{{ ({expr}) | tojson }}}}"), defined)?)
                }
                None => Val::Text(self.add(text.clone(), defined)?),
            },
            Value::Array(items) => {
                let vals = items
                    .iter()
                    .map(|v| self.value(v, defined))
                    .collect::<Result<Vec<_>, _>>()?;
                if vals.iter().all(Val::is_plain) {
                    Val::Plain(value.clone())
                } else {
                    Val::Array(vals)
                }
            }
            Value::Object(map) => {
                let vals = map
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), self.value(v, defined)?)))
                    .collect::<Result<Vec<_>, String>>()?;
                if vals.iter().all(|(_, v)| v.is_plain()) {
                    Val::Plain(value.clone())
                } else {
                    Val::Object(vals)
                }
            }
            other => Val::Plain(other.clone()),
        })
    }

    fn add(&mut self, source: String, defined: &BTreeSet<String>) -> Result<String, String> {
        let name = format!("t{}", self.next);
        self.next += 1;
        self.env
            .add_template_owned(name.clone(), source)
            .map_err(|e| format!("invalid template: {}", e.detail().unwrap_or(&e.to_string())))?;
        let template = self.env.get_template(&name).map_err(|e| e.to_string())?;
        let mut undefined: Vec<String> = template
            .undeclared_variables(false)
            .into_iter()
            .filter(|v| !defined.contains(v) && !GLOBALS.contains(&v.as_str()))
            .collect();
        if !undefined.is_empty() {
            undefined.sort();
            let known: Vec<&str> = defined.iter().map(String::as_str).collect();
            return Err(format!(
                "undefined variable{} {} (defined here: {})",
                if undefined.len() > 1 { "s" } else { "" },
                undefined
                    .iter()
                    .map(|v| format!("`{v}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ));
        }
        Ok(name)
    }

    pub fn finish(self) -> Arc<Environment<'static>> {
        Arc::new(self.env)
    }
}

/// Renders text.
pub fn render_text(env: &Environment<'static>, text: &Text, ctx: &Mj) -> Result<String, String> {
    match text {
        Text::Plain(text) => Ok(text.clone()),
        Text::Template(name) => render(env, name, ctx),
    }
}

/// Renders a JSON value.
pub fn render_value(env: &Environment<'static>, val: &Val, ctx: &Mj) -> Result<Value, String> {
    Ok(match val {
        Val::Plain(v) => v.clone(),
        Val::Text(name) => Value::String(render(env, name, ctx)?),
        Val::Typed(name) => {
            let json = render(env, name, ctx)?;
            serde_json::from_str(&json).map_err(|e| format!("template result is not JSON: {e}"))?
        }
        Val::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| render_value(env, v, ctx))
                .collect::<Result<_, _>>()?,
        ),
        Val::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| Ok((k.clone(), render_value(env, v, ctx)?)))
                .collect::<Result<_, String>>()?,
        ),
    })
}

fn render(env: &Environment<'static>, name: &str, ctx: &Mj) -> Result<String, String> {
    let template = env.get_template(name).map_err(|e| e.to_string())?;
    template.render(ctx).map_err(|e| describe(&e))
}

fn describe(error: &Error) -> String {
    match error.detail() {
        Some(detail) => format!("template error: {detail}"),
        None => format!("template error: {error}"),
    }
}

/// A tag unique to this process and load, so `unique_email()` never repeats across runs.
fn run_tag() -> String {
    let id = uuid::Uuid::now_v7().simple().to_string();
    id[id.len() - 12..].to_string()
}

fn register_functions(env: &mut Environment<'static>) {
    env.add_function("uuid", || uuid::Uuid::new_v4().to_string());
    env.add_function("random_int", |low: i64, high: i64| {
        if low > high {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("random_int({low}, {high}): the first bound is above the second"),
            ));
        }
        Ok(rand::rng().random_range(low..=high))
    });
    env.add_function("random_email", || {
        format!("shakedown-{}@example.com", uuid::Uuid::new_v4().simple())
    });
    let tag = run_tag();
    let counter = Arc::new(AtomicU64::new(0));
    env.add_function("unique_email", move || {
        let n = counter.fetch_add(1, Ordering::Relaxed);
        format!("shakedown-{tag}-{n}@example.com")
    });
    env.add_function("pick", |list: Vec<Mj>| {
        list.choose(&mut rand::rng())
            .cloned()
            .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "pick() of an empty list"))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defined(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn whole_expressions_keep_their_type() {
        let mut b = Builder::new();
        let val = b
            .value(
                &serde_json::json!({"amount": "{{ total }}", "note": "id {{ total }}", "n": 1}),
                &defined(&["total"]),
            )
            .unwrap();
        let env = b.finish();
        let ctx = Mj::from_serialize(serde_json::json!({"total": 12.5}));
        assert_eq!(
            render_value(&env, &val, &ctx).unwrap(),
            serde_json::json!({"amount": 12.5, "note": "id 12.5", "n": 1})
        );
    }

    #[test]
    fn undefined_variables_and_bad_syntax_are_named() {
        let mut b = Builder::new();
        let error = b
            .text("Bearer {{ tokn }} {{ uuid() }}", &defined(&["token"]))
            .unwrap_err();
        assert!(error.contains("undefined variable `tokn`"), "{error}");
        assert!(error.contains("defined here: token"), "{error}");
        let error = b.text("{{ token ", &defined(&["token"])).unwrap_err();
        assert!(error.starts_with("invalid template"), "{error}");
        assert!(matches!(
            b.text("/plain", &defined(&[])).unwrap(),
            Text::Plain(_)
        ));
    }

    #[test]
    fn generators_work() {
        let mut b = Builder::new();
        let t = b
            .text(
                "{{ random_int(3, 3) }} {{ pick([7]) }} {{ unique_email() }} {{ unique_email() }}",
                &defined(&[]),
            )
            .unwrap();
        let env = b.finish();
        let out = render_text(&env, &t, &Mj::from(())).unwrap();
        let parts: Vec<&str> = out.split(' ').collect();
        assert_eq!(&parts[..2], &["3", "7"]);
        assert_ne!(parts[2], parts[3]);
    }
}
