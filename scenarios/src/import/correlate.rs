//! Correlation: a recording holds values the server handed out (a session token, a new order's
//! id) that later requests send back. Replayed literally they are stale: the token expired or was
//! signed by another instance, the order belongs to someone else. So a value from a JSON response
//! that a later request sends back is extracted from that response into a variable, and the later
//! requests use the variable. Likewise an email a recording registers with becomes a unique email
//! per user, since an account can be registered once.

use serde_yaml_ng::{Mapping, Value};

use super::doc::{Step, Variable};
use super::har::Entry;
use super::names::{self, Unique};

/// Shorter strings (`ok`, `card`, a quantity) are too likely to match by chance.
const MIN_LEN: usize = 8;

#[derive(Default)]
pub struct Correlator {
    /// The raw text of every request (URL, header values, body), by step index: what a value
    /// must appear in to be worth extracting.
    requests: Vec<String>,
    /// Recorded value → variable, longest first when replacing.
    known: Vec<(String, String)>,
    names: Unique,
    /// `(variable, step name, step index)`, in order.
    extracted: Vec<(String, String, usize)>,
    /// The email the recording registered with, and the index of the registration step.
    email: Option<(String, usize)>,
    index: usize,
}

impl Correlator {
    pub fn new(requests: Vec<String>) -> Self {
        Correlator {
            requests,
            ..Correlator::default()
        }
    }

    /// Replaces recorded values in the step's request with the variables that hold them now.
    pub fn request(&mut self, step: &mut Step) {
        if self.email.is_none()
            && is_registration(step)
            && let Some(email) = step
                .json
                .as_ref()
                .and_then(|j| j.get("email"))
                .and_then(Value::as_str)
        {
            self.email = Some((email.to_string(), self.index));
            self.known.push((email.to_string(), "email".into()));
            self.names.take("email");
        }
        if self.known.is_empty() {
            return;
        }
        self.known
            .sort_by_key(|(value, _)| std::cmp::Reverse(value.len()));
        let known = &self.known;
        let replace = |text: &str| {
            let mut text = text.to_string();
            for (value, variable) in known {
                text = text.replace(value.as_str(), &format!("{{{{ {variable} }}}}"));
            }
            text
        };
        step.url = replace(&step.url);
        for map in [&mut step.query, &mut step.headers] {
            replace_in_mapping(map, &replace);
        }
        if let Some(form) = &mut step.form {
            replace_in_mapping(form, &replace);
        }
        if let Some(json) = &mut step.json {
            replace_in_value(json, &replace);
        }
        if let Some(body) = &mut step.body {
            *body = replace(body);
        }
    }

    /// Extracts from the entry's JSON response every string that a later request sends back.
    pub fn response(&mut self, step: &mut Step, entry: &Entry) {
        let index = self.index;
        self.index += 1;
        let content = &entry.response.content;
        // Browsers store binary-looking (and sometimes compressed-then-decoded) bodies as base64.
        let text = match (content.encoding.as_deref(), content.text.as_deref()) {
            (Some("base64"), Some(text)) => {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .ok()
                    .and_then(|bytes| String::from_utf8(bytes).ok())
            }
            (None, Some(text)) => Some(text.to_string()),
            _ => None,
        };
        let Some(json) = text.and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        else {
            return;
        };
        let mut leaves = Vec::new();
        leaves_of(&json, String::from("$"), None, &mut leaves);
        for (path, key, value) in leaves {
            if value.len() < MIN_LEN
                || self.known.iter().any(|(v, _)| *v == value)
                || self.requests[..=index].iter().any(|r| r.contains(&value))
                || !self.requests[index + 1..]
                    .iter()
                    .any(|r| r.contains(&value))
            {
                continue;
            }
            let wanted = match key.as_deref() {
                Some("id") | None => {
                    let collection = step
                        .url
                        .split('/')
                        .rev()
                        .find(|s| !s.is_empty() && !s.contains("{{"))
                        .unwrap_or("value");
                    format!("{}_id", names::singular(collection))
                }
                Some(key) => key.to_string(),
            };
            let variable = self.names.take(&names::variable(&wanted));
            let mut rule = Mapping::new();
            rule.insert("json".into(), path.into());
            step.extract
                .insert(variable.as_str().into(), Value::Mapping(rule));
            self.extracted
                .push((variable.clone(), step.name.clone(), index));
            self.known.push((value, variable));
        }
    }

    /// `email: "{{ unique_email() }}"` when the recording registered an account.
    pub fn user_variables(&self) -> Vec<Variable> {
        self.email
            .iter()
            .map(|(recorded, _)| Variable {
                name: "email".into(),
                value: "{{ unique_email() }}".into(),
                note: Some(format!(
                    "the recording registered {recorded}: each user registers its own account"
                )),
            })
            .collect()
    }

    /// The steps a user runs once, not every iteration: the registration (an account is
    /// registered once) and the steps that hand out a token later sent in `Authorization`
    /// (the login).
    pub fn once_per_user(&self, steps: &[Step]) -> Vec<usize> {
        let mut once: Vec<usize> = self.email.iter().map(|(_, i)| *i).collect();
        for (variable, _, index) in &self.extracted {
            let used = format!("{{{{ {variable} }}}}");
            let authorizes = steps.iter().any(|s| {
                s.headers.iter().any(|(k, v)| {
                    k.as_str()
                        .is_some_and(|k| k.eq_ignore_ascii_case("authorization"))
                        && v.as_str().is_some_and(|v| v.contains(&used))
                })
            });
            if authorizes && !once.contains(index) {
                once.push(*index);
            }
        }
        once.sort_unstable();
        once
    }

    /// Comment lines saying what was correlated.
    pub fn summary(&self) -> Vec<String> {
        if self.extracted.is_empty() {
            return Vec::new();
        }
        let list: Vec<String> = self
            .extracted
            .iter()
            .map(|(variable, step, _)| format!("`{variable}` (from {step})"))
            .collect();
        vec![
            "Values the server handed out and later requests sent back are extracted into".into(),
            format!("variables: {}.", list.join(", ")),
        ]
    }
}

fn is_registration(step: &Step) -> bool {
    let url = step.url.to_ascii_lowercase();
    step.method == "POST"
        && ["register", "signup", "sign-up", "sign_up"]
            .iter()
            .any(|w| url.contains(w))
}

fn replace_in_mapping(map: &mut Mapping, replace: &impl Fn(&str) -> String) {
    for (_, value) in map.iter_mut() {
        replace_in_value(value, replace);
    }
}

fn replace_in_value(value: &mut Value, replace: &impl Fn(&str) -> String) {
    match value {
        Value::String(s) => *s = replace(s),
        Value::Sequence(items) => items.iter_mut().for_each(|v| replace_in_value(v, replace)),
        Value::Mapping(map) => replace_in_mapping(map, replace),
        _ => {}
    }
}

/// Every string leaf as `(JSONPath, its key, value)`.
fn leaves_of(
    json: &serde_json::Value,
    path: String,
    key: Option<String>,
    out: &mut Vec<(String, Option<String>, String)>,
) {
    match json {
        serde_json::Value::String(s) => out.push((path, key, s.clone())),
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                leaves_of(item, format!("{path}[{i}]"), key.clone(), out);
            }
        }
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let plain = !k.is_empty()
                    && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !k.starts_with(|c: char| c.is_ascii_digit());
                let child = if plain {
                    format!("{path}.{k}")
                } else {
                    format!("{path}['{}']", k.replace('\'', "\\'"))
                };
                leaves_of(v, child, Some(k.clone()), out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_leaves_have_json_paths() {
        let json = serde_json::json!({"a": {"b-c": ["x", {"id": "y"}]}, "n": 1});
        let mut out = Vec::new();
        leaves_of(&json, "$".into(), None, &mut out);
        assert_eq!(
            out,
            [
                (
                    "$.a['b-c'][0]".to_string(),
                    Some("b-c".to_string()),
                    "x".to_string()
                ),
                (
                    "$.a['b-c'][1].id".to_string(),
                    Some("id".to_string()),
                    "y".to_string()
                ),
            ]
        );
    }
}
