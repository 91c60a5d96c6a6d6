//! The scenario file an importer writes: serializable structs with the format's field names, and
//! a renderer that puts the user's comments next to the values they are about. serde_yaml_ng does
//! the quoting (a URL with `{{ }}`, a string that looks like a number); comments, which serde
//! cannot write, are added line by line around what it wrote.

use serde::Serialize;
use serde_yaml_ng::{Mapping, Value};

/// A whole scenario file.
#[derive(Debug, Default)]
pub struct Doc {
    /// Comment lines at the top of the file (without `# `).
    pub header: Vec<String>,
    pub name: String,
    pub description: Option<String>,
    pub variables: Vec<Variable>,
    pub user_variables: Vec<Variable>,
    /// Steps once per user, before the iterations.
    pub on_start: Vec<Step>,
    /// Comment lines right above `steps:`.
    pub steps_note: Vec<String>,
    pub steps: Vec<Step>,
}

/// One entry of `variables:` or `user_variables:`.
#[derive(Debug)]
pub struct Variable {
    pub name: String,
    pub value: Value,
    /// Comment above the entry, e.g. `generated from the schema: edit`.
    pub note: Option<String>,
}

/// One step, with the format's field names.
#[derive(Debug, Default, Serialize)]
pub struct Step {
    pub name: String,
    pub method: String,
    pub url: String,
    #[serde(skip_serializing_if = "Mapping::is_empty")]
    pub query: Mapping,
    #[serde(skip_serializing_if = "Mapping::is_empty")]
    pub headers: Mapping,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub form: Option<Mapping>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub think_time: Option<String>,
    #[serde(skip_serializing_if = "Mapping::is_empty")]
    pub extract: Mapping,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checks: Option<Checks>,
    /// Comment lines above the step.
    #[serde(skip)]
    pub notes: Vec<String>,
    /// Comment lines above the step's body (`json:`, `form:` or `body:`).
    #[serde(skip)]
    pub body_notes: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Checks {
    pub status: Status,
}

/// `status:` as the format spells it: one code, a list, or a range such as `2xx`.
#[derive(Debug, Serialize, PartialEq)]
#[serde(untagged)]
pub enum Status {
    One(u16),
    Any(Vec<u16>),
    Range(String),
}

#[derive(Serialize)]
struct Head<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'a str,
    kind: &'a str,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
}

impl Doc {
    /// The file's text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for line in &self.header {
            comment(&mut out, "", line);
        }
        out.push_str(&yaml(&Head {
            api_version: "shakedown/v1",
            kind: "Scenario",
            name: &self.name,
            description: self.description.as_deref(),
        }));
        variables(&mut out, "variables", &self.variables);
        variables(&mut out, "user_variables", &self.user_variables);
        for line in &self.steps_note {
            comment(&mut out, "", line);
        }
        if !self.on_start.is_empty() {
            out.push_str("on_start:\n");
            steps(&mut out, &self.on_start);
        }
        out.push_str("steps:\n");
        steps(&mut out, &self.steps);
        out
    }
}

fn steps(out: &mut String, list: &[Step]) {
    for step in list {
        for line in &step.notes {
            comment(out, "  ", line);
        }
        let text = yaml(step);
        for (i, line) in text.lines().enumerate() {
            let is_body = ["json:", "form:", "body:"]
                .iter()
                .any(|key| line.starts_with(key));
            if is_body {
                for note in &step.body_notes {
                    comment(out, "    ", note);
                }
            }
            out.push_str(if i == 0 { "  - " } else { "    " });
            out.push_str(line);
            out.push('\n');
        }
    }
}

fn variables(out: &mut String, key: &str, list: &[Variable]) {
    if list.is_empty() {
        return;
    }
    out.push_str(key);
    out.push_str(":\n");
    for variable in list {
        if let Some(note) = &variable.note {
            comment(out, "  ", note);
        }
        let mut one = Mapping::new();
        one.insert(Value::from(variable.name.as_str()), variable.value.clone());
        for line in yaml(&one).lines() {
            out.push_str("  ");
            out.push_str(line);
            out.push('\n');
        }
    }
}

fn comment(out: &mut String, indent: &str, text: &str) {
    for line in text.lines() {
        out.push_str(indent);
        out.push_str("# ");
        out.push_str(line);
        out.push('\n');
    }
}

fn yaml(value: &impl Serialize) -> String {
    // Serializing these plain structs and YAML values cannot fail (no non-string map keys).
    serde_yaml_ng::to_string(value).expect("scenario structs serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_land_above_their_values_and_the_result_parses() {
        let mut json = Mapping::new();
        json.insert("email".into(), "ada@example.com".into());
        let doc = Doc {
            header: vec!["imported".into()],
            name: "api".into(),
            variables: vec![Variable {
                name: "product_id".into(),
                value: 1.into(),
                note: Some("generated from the schema: edit".into()),
            }],
            steps: vec![Step {
                name: "get_product".into(),
                method: "POST".into(),
                url: "/products/{{ product_id }}".into(),
                json: Some(Value::Mapping(json)),
                body_notes: vec!["generated from the schema: edit".into()],
                notes: vec!["POST /products/{id}".into()],
                checks: Some(Checks {
                    status: Status::One(200),
                }),
                ..Step::default()
            }],
            ..Doc::default()
        };
        let text = doc.render();
        let lines: Vec<&str> = text.lines().collect();
        let at = |needle: &str| lines.iter().position(|l| l.contains(needle)).unwrap();
        assert_eq!(lines[0], "# imported");
        assert_eq!(at("# generated") + 1, at("product_id: 1"));
        assert_eq!(lines[at("# POST /products") + 1], "  - name: get_product");
        assert!(lines[at("json:") - 1].starts_with("    # generated from the schema"));
        let parsed: Value = serde_yaml_ng::from_str(&text).unwrap();
        assert_eq!(parsed["apiVersion"], "shakedown/v1");
        assert_eq!(parsed["variables"]["product_id"], 1);
        let step = &parsed["steps"][0];
        assert_eq!(step["url"], "/products/{{ product_id }}");
        assert_eq!(step["json"]["email"], "ada@example.com");
        assert_eq!(step["checks"]["status"], 200);
        assert!(step.get("query").is_none(), "empty maps are left out");
    }
}
