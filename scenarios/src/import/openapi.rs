//! OpenAPI 3.0 / 3.1 → scenario file: one step per operation, in the document's order, with
//! path parameters as variables, required query and header parameters, a JSON (or form, or raw)
//! body from the document's examples or generated from its schema, the documented 2xx status as
//! the check, and bearer / API-key security as headers over a `token` variable.

use std::path::Path;

use serde_yaml_ng::{Mapping, Value};

use super::Error;
use super::doc::{Checks, Doc, Status, Step, Variable};
use super::names::{self, Unique};
use super::schema::{Document, get, key_text};

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];
const GENERATED: &str = "generated from the schema: edit";

pub fn import(text: &str, path: &Path) -> Result<String, Error> {
    let root: Value = config::parse(text, path)?;
    let version = check_version(&root, path)?;
    let document = Document { root: &root, path };
    let mut importer = Importer {
        document: &document,
        doc: Doc::default(),
        names: Unique::default(),
        token: None,
        login: None,
    };
    let base = base_path(&root);
    let Some(paths) = root.get("paths").and_then(Value::as_mapping) else {
        return Err(empty(path));
    };
    for (key, item) in paths {
        let Some(template) = key.as_str() else {
            continue;
        };
        let at = format!("paths.{template}");
        let item = document.resolve(item, &at)?;
        for method in METHODS {
            if let Some(operation) = item.get(method) {
                importer.operation(&base, template, method, item, operation)?;
            }
        }
    }
    if importer.doc.steps.is_empty() {
        return Err(empty(path));
    }
    importer.finish(&root, path, &version);
    Ok(importer.doc.render())
}

fn empty(path: &Path) -> Error {
    Error::Empty {
        path: path.to_path_buf(),
        message: "the description has no operations under `paths`".into(),
    }
}

fn check_version(root: &Value, path: &Path) -> Result<String, Error> {
    let not = |reason: &str| Error::NotThisKind {
        path: path.to_path_buf(),
        expected: "an OpenAPI 3 description",
        reason: reason.to_string(),
    };
    match root.get("openapi").and_then(Value::as_str) {
        Some(v) if v.starts_with("3.") => Ok(v.to_string()),
        Some(v) => Err(not(&format!("`openapi: {v}` (3.0 and 3.1 are read)"))),
        None if root.get("swagger").is_some() => Err(not(
            "this is Swagger 2.0; convert it to OpenAPI 3 first (e.g. with swagger2openapi)",
        )),
        None => Err(not("there is no top-level `openapi: 3.x` field")),
    }
}

/// The path part of the first server URL (`https://api.example.com/v2` → `/v2`), with server
/// variables at their defaults: step URLs are relative to `--target`, which is the server's
/// origin.
fn base_path(root: &Value) -> String {
    let Some(server) = root
        .get("servers")
        .and_then(Value::as_sequence)
        .and_then(|s| s.first())
    else {
        return String::new();
    };
    let mut url = server
        .get("url")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if let Some(variables) = server.get("variables").and_then(Value::as_mapping) {
        for (name, variable) in variables {
            if let (Some(name), Some(default)) = (
                name.as_str(),
                variable.get("default").and_then(Value::as_str),
            ) {
                url = url.replace(&format!("{{{name}}}"), default);
            }
        }
    }
    let path = match url.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("", |i| &rest[i..]),
        None => url.as_str(),
    };
    path.trim_end_matches('/').to_string()
}

struct Importer<'a> {
    document: &'a Document<'a>,
    doc: Doc,
    names: Unique,
    /// The security scheme that made a `token` variable, if any.
    token: Option<String>,
    /// `(step name, method, url, extract path)` of the operation that looks like the login.
    login: Option<(String, String, String, String)>,
}

impl<'a> Importer<'a> {
    fn operation(
        &mut self,
        base: &str,
        template: &str,
        method: &str,
        item: &'a Value,
        operation: &'a Value,
    ) -> Result<(), Error> {
        let at = format!("paths.{template}.{method}");
        let id = operation.get("operationId").and_then(Value::as_str);
        let wanted = match id {
            Some(id) => names::sanitize(id),
            None => names::sanitize(&format!("{method}_{template}")).to_lowercase(),
        };
        let mut step = Step {
            name: self.names.take(&wanted),
            method: method.to_uppercase(),
            url: format!("{base}{template}"),
            ..Step::default()
        };
        let summary = operation.get("summary").and_then(Value::as_str);
        step.notes.push(match summary {
            Some(summary) => format!("{} {template}: {summary}", step.method),
            None => format!("{} {template}", step.method),
        });
        if operation.get("deprecated").and_then(Value::as_bool) == Some(true) {
            step.notes.push("deprecated operation".into());
        }
        for parameter in self.parameters(item, operation, &at)? {
            self.parameter(&mut step, template, parameter, &at)?;
        }
        self.security(&mut step, operation)?;
        if let Some(body) = operation.get("requestBody") {
            self.body(
                &mut step,
                self.document.resolve(body, &at)?,
                &format!("{at}.requestBody"),
            )?;
        }
        if let Some(status) = status(operation) {
            step.checks = Some(Checks { status });
        }
        self.maybe_login(&step, operation, &at)?;
        self.doc.steps.push(step);
        Ok(())
    }

    /// The path item's parameters overridden by the operation's (same name and location).
    fn parameters(
        &self,
        item: &'a Value,
        operation: &'a Value,
        at: &str,
    ) -> Result<Vec<&'a Value>, Error> {
        let mut list: Vec<&'a Value> = Vec::new();
        for source in [item, operation] {
            let Some(parameters) = source.get("parameters").and_then(Value::as_sequence) else {
                continue;
            };
            for (i, parameter) in parameters.iter().enumerate() {
                let parameter = self
                    .document
                    .resolve(parameter, &format!("{at}.parameters[{i}]"))?;
                let same = |p: &&Value| {
                    p.get("name") == parameter.get("name") && p.get("in") == parameter.get("in")
                };
                list.retain(|p| !same(p));
                list.push(parameter);
            }
        }
        Ok(list)
    }

    fn parameter(
        &mut self,
        step: &mut Step,
        template: &str,
        parameter: &'a Value,
        at: &str,
    ) -> Result<(), Error> {
        let Some(name) = parameter.get("name").and_then(Value::as_str) else {
            return Ok(());
        };
        let location = parameter.get("in").and_then(Value::as_str).unwrap_or("");
        let required = parameter.get("required").and_then(Value::as_bool) == Some(true);
        let at = format!("{at}.parameters.{name}");
        match location {
            "path" => {
                let variable = path_variable(template, name);
                let (value, guessed) = self.parameter_value(parameter, &at)?;
                if !self.doc.variables.iter().any(|v| v.name == variable) {
                    self.doc.variables.push(Variable {
                        name: variable.clone(),
                        value,
                        note: Some(if guessed {
                            format!("`{name}` in {template}: {GENERATED}")
                        } else {
                            format!("`{name}` in {template}: the description's example")
                        }),
                    });
                }
                step.url = step
                    .url
                    .replace(&format!("{{{name}}}"), &format!("{{{{ {variable} }}}}"));
            }
            "query" | "header" if required => {
                let (value, guessed) = self.parameter_value(parameter, &at)?;
                let target = if location == "query" {
                    &mut step.query
                } else {
                    &mut step.headers
                };
                target.insert(Value::from(name), Value::from(scalar_text(&value)));
                if guessed {
                    step.notes
                        .push(format!("{location} parameter `{name}`: {GENERATED}"));
                }
            }
            "cookie" if required => step.notes.push(format!(
                "the required cookie `{name}` is not imported: add it as a Cookie header"
            )),
            _ => {}
        }
        Ok(())
    }

    /// A parameter's example (its own, its `examples`' first, its schema's), else generated.
    fn parameter_value(&self, parameter: &'a Value, at: &str) -> Result<(Value, bool), Error> {
        if let Some(example) = parameter.get("example") {
            return Ok((example.clone(), false));
        }
        if let Some(value) = self.first_example(parameter, at)? {
            return Ok((value, false));
        }
        let mut guessed = false;
        let value = match parameter.get("schema") {
            Some(schema) => self.document.example(schema, at, &mut guessed)?,
            None => {
                guessed = true;
                Value::from("string")
            }
        };
        Ok((value, guessed))
    }

    /// The value of the first entry of an `examples` map (an Example object, maybe a `$ref`).
    fn first_example(&self, holder: &'a Value, at: &str) -> Result<Option<Value>, Error> {
        let Some((_, example)) = holder
            .get("examples")
            .and_then(Value::as_mapping)
            .and_then(|m| m.iter().next())
        else {
            return Ok(None);
        };
        let example = self.document.resolve(example, &format!("{at}.examples"))?;
        Ok(example.get("value").cloned())
    }

    /// Headers for the operation's security: the first alternative of its requirement (or the
    /// document's); none when one alternative is `{}` (authentication optional).
    fn security(&mut self, step: &mut Step, operation: &'a Value) -> Result<(), Error> {
        let root = self.document.root;
        let Some(requirements) = operation
            .get("security")
            .or_else(|| root.get("security"))
            .and_then(Value::as_sequence)
        else {
            return Ok(());
        };
        if requirements
            .iter()
            .any(|r| r.as_mapping().is_some_and(Mapping::is_empty))
        {
            return Ok(());
        }
        let Some(first) = requirements.first().and_then(Value::as_mapping) else {
            return Ok(());
        };
        for scheme_name in first.keys().filter_map(Value::as_str) {
            let at = format!("components.securitySchemes.{scheme_name}");
            let Some(scheme) = root
                .get("components")
                .and_then(|c| c.get("securitySchemes"))
                .and_then(|s| s.get(scheme_name))
            else {
                step.notes.push(format!(
                    "security scheme `{scheme_name}` is not defined in the description"
                ));
                continue;
            };
            let scheme = self.document.resolve(scheme, &at)?;
            let kind = scheme.get("type").and_then(Value::as_str).unwrap_or("");
            let http = scheme
                .get("scheme")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_ascii_lowercase();
            match (kind, http.as_str()) {
                ("http", "bearer") | ("oauth2", _) | ("openIdConnect", _) => {
                    step.headers
                        .insert("Authorization".into(), "Bearer {{ token }}".into());
                    self.token.get_or_insert_with(|| scheme_name.to_string());
                }
                ("http", "basic") => {
                    step.headers
                        .insert("Authorization".into(), "Basic {{ basic_credentials }}".into());
                    self.declare(
                        "basic_credentials",
                        "dXNlcjpwYXNzd29yZA==",
                        format!("security scheme `{scheme_name}`: base64 of user:password (this is user:password): edit"),
                    );
                }
                ("apiKey", _) => {
                    let name = scheme.get("name").and_then(Value::as_str).unwrap_or("X-API-Key");
                    let value = Value::from("{{ api_key }}");
                    match scheme.get("in").and_then(Value::as_str) {
                        Some("query") => step.query.insert(name.into(), value),
                        Some("cookie") => step.headers.insert("Cookie".into(), format!("{name}={{{{ api_key }}}}").into()),
                        _ => step.headers.insert(name.into(), value),
                    };
                    self.declare(
                        "api_key",
                        "replace-with-your-api-key",
                        format!("security scheme `{scheme_name}`: your API key"),
                    );
                }
                _ => step.notes.push(format!(
                    "security scheme `{scheme_name}` ({kind} {http}) is not imported: add its header"
                )),
            }
        }
        Ok(())
    }

    fn declare(&mut self, name: &str, value: &str, note: String) {
        if !self.doc.variables.iter().any(|v| v.name == name) {
            self.doc.variables.push(Variable {
                name: name.into(),
                value: value.into(),
                note: Some(note),
            });
        }
    }

    /// The body of the first media type the engine can send: JSON, then a form, then text.
    fn body(&mut self, step: &mut Step, body: &'a Value, at: &str) -> Result<(), Error> {
        let Some(content) = body.get("content").and_then(Value::as_mapping) else {
            return Ok(());
        };
        let media_types: Vec<(&str, &'a Value)> = content
            .iter()
            .filter_map(|(k, v)| Some((k.as_str()?, v)))
            .collect();
        let is_json = |m: &str| {
            let m = m.split(';').next().unwrap_or("").trim();
            m == "application/json" || m.ends_with("+json") || m == "*/*"
        };
        let pick = media_types
            .iter()
            .find(|(m, _)| is_json(m))
            .or_else(|| {
                media_types
                    .iter()
                    .find(|(m, _)| m.starts_with("application/x-www-form-urlencoded"))
            })
            .or_else(|| media_types.iter().find(|(m, _)| m.starts_with("text/")))
            .or(media_types.first());
        let Some((media_type, media)) = pick else {
            return Ok(());
        };
        let at = format!("{at}.content.{media_type}");
        let (value, guessed) = if let Some(example) = media.get("example") {
            (example.clone(), false)
        } else if let Some(example) = self.first_example(media, &at)? {
            (example, false)
        } else if let Some(schema) = media.get("schema") {
            let mut guessed = false;
            let value = self
                .document
                .example(schema, &format!("{at}.schema"), &mut guessed)?;
            (value, guessed)
        } else {
            (Value::Null, true)
        };
        step.body_notes.push(if guessed {
            format!("{media_type} body {GENERATED}")
        } else {
            format!("{media_type} body: the description's example")
        });
        if is_json(media_type) {
            step.json = Some(value);
        } else if media_type.starts_with("application/x-www-form-urlencoded") {
            let form = match value {
                Value::Mapping(map) => map
                    .into_iter()
                    .map(|(k, v)| (k, Value::from(scalar_text(&v))))
                    .collect(),
                _ => Mapping::new(),
            };
            step.form = Some(form);
        } else {
            step.headers
                .insert("Content-Type".into(), Value::from(*media_type));
            step.body = Some(match value {
                Value::String(text) => text,
                Value::Null => String::new(),
                other => serde_yaml_ng::to_string(&other).unwrap_or_default(),
            });
            if !media_type.starts_with("text/") {
                step.body_notes.push(format!(
                    "{media_type} bodies are sent as raw text: replace it with a real one"
                ));
            }
        }
        Ok(())
    }

    /// Remembers the first unauthenticated POST whose name or path says login / token / session,
    /// so the comment about on_start can point at it.
    fn maybe_login(&mut self, step: &Step, operation: &'a Value, at: &str) -> Result<(), Error> {
        if self.login.is_some()
            || step.method != "POST"
            || step.headers.contains_key("Authorization")
        {
            return Ok(());
        }
        let text = format!("{} {}", step.name, step.url).to_ascii_lowercase();
        if !["login", "signin", "sign-in", "sign_in", "token", "session"]
            .iter()
            .any(|w| text.contains(w))
        {
            return Ok(());
        }
        let mut field = "token".to_string();
        if let Some(responses) = operation.get("responses").and_then(Value::as_mapping) {
            for (key, response) in responses {
                if !key_text(key).is_some_and(|k| k.starts_with('2')) {
                    continue;
                }
                let response = self.document.resolve(response, at)?;
                let schema = response
                    .get("content")
                    .and_then(Value::as_mapping)
                    .and_then(|c| c.values().next())
                    .and_then(|m| m.get("schema"));
                if let Some(schema) = schema {
                    let schema = self.document.resolve(schema, at)?;
                    if let Some(properties) = schema.get("properties").and_then(Value::as_mapping)
                        && let Some(name) =
                            ["token", "access_token", "accessToken", "id_token", "jwt"]
                                .iter()
                                .find(|n| get(properties, n).is_some())
                    {
                        field = name.to_string();
                    }
                }
            }
        }
        self.login = Some((
            step.name.clone(),
            step.method.clone(),
            step.url.clone(),
            format!("$.{field}"),
        ));
        Ok(())
    }

    fn finish(&mut self, root: &Value, path: &Path, version: &str) {
        let info = root.get("info");
        let text = |key: &str| info.and_then(|i| i.get(key)).and_then(Value::as_str);
        let title = text("title").unwrap_or("API");
        let file = path.file_name().map_or_else(
            || path.display().to_string(),
            |f| f.to_string_lossy().into_owned(),
        );
        self.doc.name = scenario_name(title);
        self.doc.description = Some(
            format!(
                "Every operation of {title} {} (imported from {file})",
                text("version").unwrap_or("")
            )
            .replace("  ", " "),
        );
        self.doc.header = vec![
            format!("Imported by `shakedown scenario import openapi` from {file} (OpenAPI {version})."),
            "One step per operation, in the order of the description; each iteration runs them all."
                .into(),
            "Reorder, weight or delete steps to make a realistic journey, and edit every value".into(),
            "marked \"generated from the schema\": it is a guess of the right type, not real data."
                .into(),
        ];
        if let Some(url) = root
            .get("servers")
            .and_then(Value::as_sequence)
            .and_then(|s| s.first())
            .and_then(|s| s.get("url"))
            .and_then(Value::as_str)
        {
            self.doc.header.push(format!(
                "The description's first server: {url} (give its origin as --target)."
            ));
        }
        if let Some(scheme) = self.token.clone() {
            self.doc.variables.insert(
                0,
                Variable {
                    name: "token".into(),
                    value: "replace-with-a-token".into(),
                    note: Some(format!(
                        "The bearer token of security scheme `{scheme}`. Log in once per user instead:\n\
                         add a login step in on_start that extracts `token` (see above `steps:`),\n\
                         then delete this line."
                    )),
                },
            );
            let mut note = vec![
                "Log in once per user before the steps, e.g.:".to_string(),
                "on_start:".into(),
            ];
            let (name, method, url, field) = self.login.clone().unwrap_or_else(|| {
                (
                    "login".into(),
                    "POST".into(),
                    "/login".into(),
                    "$.token".into(),
                )
            });
            note.extend([
                format!("  - name: {name}"),
                format!("    method: {method}"),
                format!("    url: {url}"),
                "    json: { email: \"{{ email }}\", password: \"{{ password }}\" }".into(),
                "    extract:".into(),
                format!("      token: {{ json: \"{field}\" }}"),
            ]);
            if self.login.is_some() {
                note.push(format!(
                    "(`{name}` looks like the login operation: move it there from the steps.)"
                ));
            }
            self.doc.steps_note = note;
        }
    }
}

/// The documented success statuses: one code, several, or the range `2xx`.
fn status(operation: &Value) -> Option<Status> {
    let responses = operation.get("responses").and_then(Value::as_mapping)?;
    let mut codes = Vec::new();
    for key in responses.keys().filter_map(key_text) {
        if key.eq_ignore_ascii_case("2xx") {
            return Some(Status::Range("2xx".into()));
        }
        if let Ok(code) = key.parse::<u16>()
            && (200..300).contains(&code)
        {
            codes.push(code);
        }
    }
    codes.sort_unstable();
    match codes.as_slice() {
        [] => None,
        [one] => Some(Status::One(*one)),
        _ => Some(Status::Any(codes)),
    }
}

/// The variable for a path parameter: its own name, except a bare `id`, which is named after
/// its collection (`/orders/{id}` → `order_id`) so that ids of different things stay apart.
fn path_variable(template: &str, name: &str) -> String {
    if name.eq_ignore_ascii_case("id") {
        let placeholder = format!("{{{name}}}");
        let segments: Vec<&str> = template.split('/').collect();
        if let Some(i) = segments.iter().position(|s| *s == placeholder)
            && let Some(previous) = segments[..i]
                .iter()
                .rev()
                .find(|s| !s.is_empty() && !s.starts_with('{'))
        {
            return names::variable(&format!("{}_id", names::singular(previous)));
        }
    }
    names::variable(name)
}

fn scenario_name(title: &str) -> String {
    let name = names::sanitize(&title.to_ascii_lowercase()).replace('_', "-");
    name.trim_matches('-').to_string()
}

/// A parameter value as the text sent on the wire.
fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        Value::Sequence(items) => items.iter().map(scalar_text).collect::<Vec<_>>().join(","),
        other => serde_yaml_ng::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

#[cfg(test)]
#[path = "openapi_tests.rs"]
mod tests;
