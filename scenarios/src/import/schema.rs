//! Walking an OpenAPI document: following `$ref`s within it, and making an example value from a
//! schema when the document has none. The document is kept as a YAML value (not a typed model)
//! because OpenAPI 3.0 and 3.1 differ in schema details (`nullable` vs `type: [x, "null"]`,
//! `example` vs `examples`) that no one crate reads both ways, and a YAML mapping keeps the
//! document's order, which is the order of the steps.

use std::path::Path;

use serde_yaml_ng::{Mapping, Value};

use super::Error;

/// How deep generated values nest before the rest is left out (recursive schemas end here).
const MAX_DEPTH: usize = 12;

/// An OpenAPI document and the file it came from (for error messages).
pub struct Document<'a> {
    pub root: &'a Value,
    pub path: &'a Path,
}

impl<'a> Document<'a> {
    /// `node`, or what its `$ref` (chain) points at; `at` says where `node` is, for errors.
    pub fn resolve(&self, node: &'a Value, at: &str) -> Result<&'a Value, Error> {
        let mut node = node;
        for _ in 0..32 {
            let Some(reference) = node.get("$ref").and_then(Value::as_str) else {
                return Ok(node);
            };
            node = self.lookup(reference, at)?;
        }
        Err(self.reference_error(at, "?", "a chain of more than 32 $refs (a cycle?)"))
    }

    fn lookup(&self, reference: &str, at: &str) -> Result<&'a Value, Error> {
        let Some(pointer) = reference.strip_prefix('#') else {
            return Err(self.reference_error(
                at,
                reference,
                "only references within the same document (`#/...`) are followed; bundle the \
                 description into one file first",
            ));
        };
        let mut node = self.root;
        for token in pointer.split('/').skip(1) {
            let token = token.replace("~1", "/").replace("~0", "~");
            let next = match node {
                Value::Mapping(map) => get(map, &token),
                Value::Sequence(items) => token.parse::<usize>().ok().and_then(|i| items.get(i)),
                _ => None,
            };
            node = next.ok_or_else(|| {
                self.reference_error(at, reference, &format!("there is no `{token}` there"))
            })?;
        }
        Ok(node)
    }

    fn reference_error(&self, at: &str, reference: &str, reason: &str) -> Error {
        Error::Reference {
            path: self.path.to_path_buf(),
            at: at.to_string(),
            reference: reference.to_string(),
            reason: reason.to_string(),
        }
    }

    /// An example value for `schema`: the schema's own example or default where it has one,
    /// otherwise one generated from its type. `guessed` becomes true when any part was generated.
    pub fn example(&self, schema: &'a Value, at: &str, guessed: &mut bool) -> Result<Value, Error> {
        self.generate(schema, at, 0, &mut Vec::new(), guessed)
    }

    fn generate(
        &self,
        schema: &'a Value,
        at: &str,
        depth: usize,
        refs: &mut Vec<&'a str>,
        guessed: &mut bool,
    ) -> Result<Value, Error> {
        if depth > MAX_DEPTH {
            *guessed = true;
            return Ok(Value::Null);
        }
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            if refs.contains(&reference) {
                // A recursive schema: one level of it is example enough.
                *guessed = true;
                return Ok(Value::Null);
            }
            let target = self.lookup(reference, at)?;
            refs.push(reference);
            let value = self.generate(target, at, depth, refs, guessed);
            refs.pop();
            return value;
        }
        if let Some(value) = given(schema) {
            return Ok(value);
        }
        if let Some(parts) = schema.get("allOf").and_then(Value::as_sequence) {
            let mut merged = Mapping::new();
            let mut last = Value::Null;
            for (i, part) in parts.iter().enumerate() {
                match self.generate(part, &format!("{at}.allOf[{i}]"), depth, refs, guessed)? {
                    Value::Mapping(map) => merged.extend(map),
                    other => last = other,
                }
            }
            // allOf may also carry its own properties next to the parts.
            if schema.get("properties").is_some()
                && let Value::Mapping(own) = self.object(schema, at, depth, refs, guessed)?
            {
                merged.extend(own);
            }
            return Ok(if merged.is_empty() {
                last
            } else {
                Value::Mapping(merged)
            });
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(parts) = schema.get(key).and_then(Value::as_sequence) {
                let chosen = parts.iter().position(|p| !is_null_type(p)).unwrap_or(0);
                if let Some(part) = parts.get(chosen) {
                    *guessed = true;
                    return self.generate(
                        part,
                        &format!("{at}.{key}[{chosen}]"),
                        depth,
                        refs,
                        guessed,
                    );
                }
            }
        }
        *guessed = true;
        Ok(match type_of(schema).as_str() {
            "object" => self.object(schema, at, depth, refs, guessed)?,
            "array" => match schema.get("items") {
                Some(items) => Value::Sequence(vec![self.generate(
                    items,
                    &format!("{at}.items"),
                    depth + 1,
                    refs,
                    guessed,
                )?]),
                None => Value::Sequence(Vec::new()),
            },
            "integer" => Value::from(clamp(schema, 1.0) as i64),
            "number" => Value::from(clamp(schema, 1.0)),
            "boolean" => Value::Bool(true),
            "null" => Value::Null,
            _ => Value::from(string(schema)),
        })
    }

    /// The required properties (all of them when none is required), read-only ones left out
    /// since a request must not send them.
    fn object(
        &self,
        schema: &'a Value,
        at: &str,
        depth: usize,
        refs: &mut Vec<&'a str>,
        guessed: &mut bool,
    ) -> Result<Value, Error> {
        let mut out = Mapping::new();
        let Some(properties) = schema.get("properties").and_then(Value::as_mapping) else {
            return Ok(Value::Mapping(out));
        };
        let required: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_sequence)
            .map(|list| list.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for (key, property) in properties {
            let Some(name) = key.as_str() else { continue };
            if !required.is_empty() && !required.contains(&name) {
                continue;
            }
            let resolved = self.resolve(property, at)?;
            if resolved.get("readOnly").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            let value =
                self.generate(property, &format!("{at}.{name}"), depth + 1, refs, guessed)?;
            out.insert(Value::from(name), value);
        }
        Ok(Value::Mapping(out))
    }
}

/// A mapping entry by string key; YAML also allows the key `200` unquoted (an integer).
pub fn get<'v>(map: &'v Mapping, key: &str) -> Option<&'v Value> {
    map.get(key).or_else(|| {
        key.parse::<u64>()
            .ok()
            .and_then(|n| map.get(Value::from(n)))
    })
}

/// A mapping key as text (`200` written unquoted is a number in YAML).
pub fn key_text(key: &Value) -> Option<String> {
    match key {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The value the document itself gives for a schema: `example` (3.0), `examples[0]` (3.1),
/// `const`, `default`, or the first non-null `enum` value.
pub fn given(schema: &Value) -> Option<Value> {
    if let Some(example) = schema.get("example") {
        return Some(example.clone());
    }
    if let Some(first) = schema
        .get("examples")
        .and_then(Value::as_sequence)
        .and_then(|list| list.first())
    {
        return Some(first.clone());
    }
    for key in ["const", "default"] {
        if let Some(value) = schema.get(key) {
            return Some(value.clone());
        }
    }
    schema
        .get("enum")
        .and_then(Value::as_sequence)
        .and_then(|list| list.iter().find(|v| !v.is_null()))
        .cloned()
}

/// The schema's type; 3.1 allows a list (`[string, "null"]`): the first that is not null.
/// Without one, the shape says it.
fn type_of(schema: &Value) -> String {
    match schema.get("type") {
        Some(Value::String(t)) => return t.clone(),
        Some(Value::Sequence(list)) => {
            if let Some(t) = list.iter().filter_map(Value::as_str).find(|t| *t != "null") {
                return t.to_string();
            }
        }
        _ => {}
    }
    if schema.get("properties").is_some() || schema.get("additionalProperties").is_some() {
        "object".into()
    } else if schema.get("items").is_some() {
        "array".into()
    } else {
        "string".into()
    }
}

fn is_null_type(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("null")
}

/// `preferred` moved into the schema's bounds (3.0's boolean `exclusiveMinimum` and 3.1's
/// numeric one both respected well enough for an example).
fn clamp(schema: &Value, preferred: f64) -> f64 {
    let number = |key: &str| schema.get(key).and_then(Value::as_f64);
    let mut value = preferred;
    if let Some(min) = number("minimum").or(number("exclusiveMinimum")) {
        if value < min {
            value = min;
        }
        if value == min && schema.get("exclusiveMinimum").is_some() {
            value = min + 1.0;
        }
    }
    if let Some(max) = number("maximum").or(number("exclusiveMaximum"))
        && value > max
    {
        value = max;
    }
    value
}

/// A string of the schema's format, fitted to its length bounds.
fn string(schema: &Value) -> String {
    let format = schema.get("format").and_then(Value::as_str).unwrap_or("");
    let text = match format {
        "email" | "idn-email" => "user@example.com",
        "uuid" => "3fa85f64-5717-4562-b3fc-2c963f66afa6",
        "date-time" => "2025-01-01T12:00:00Z",
        "date" => "2025-01-01",
        "time" => "12:00:00",
        "uri" | "url" | "iri" => "https://example.com/",
        "hostname" | "idn-hostname" => "example.com",
        "ipv4" => "192.0.2.1",
        "ipv6" => "2001:db8::1",
        "byte" => "c3RyaW5n",
        "password" => "Password-123",
        _ => "string",
    };
    if !format.is_empty() && text != "string" {
        return text.to_string();
    }
    let length = |key: &str| schema.get(key).and_then(Value::as_u64).map(|n| n as usize);
    let mut text = text.to_string();
    if let Some(min) = length("minLength") {
        while text.len() < min {
            text.push('x');
        }
    }
    if let Some(max) = length("maxLength") {
        text.truncate(max.max(1));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example_of(doc: &str, schema: &str) -> (Value, bool) {
        let root: Value = serde_yaml_ng::from_str(doc).unwrap();
        let schema: Value = serde_yaml_ng::from_str(schema).unwrap();
        let document = Document {
            root: &root,
            path: Path::new("spec.yaml"),
        };
        let mut guessed = false;
        let value = document.example(&schema, "test", &mut guessed).unwrap();
        (value, guessed)
    }

    #[test]
    fn generated_values_follow_types_formats_enums_and_refs() {
        let doc = r##"
components:
  schemas:
    Id: { type: string, format: uuid }
    Status: { type: string, enum: [pending, paid] }
    Line:
      type: object
      required: [product_id, quantity]
      properties:
        product_id: { type: integer, minimum: 1 }
        quantity: { type: integer, minimum: 2, maximum: 99 }
        note: { type: string }
"##;
        let schema = r##"
type: object
required: [id, email, when, status, lines, price, ok, code]
properties:
  id: { $ref: "#/components/schemas/Id" }
  email: { type: string, format: email }
  when: { type: string, format: date-time }
  status: { $ref: "#/components/schemas/Status" }
  lines: { type: array, items: { $ref: "#/components/schemas/Line" } }
  price: { type: number, minimum: 0.5 }
  ok: { type: boolean }
  code: { type: string, minLength: 8, maxLength: 10 }
  created: { type: string, readOnly: true }
  optional: { type: string }
"##;
        let (value, guessed) = example_of(doc, schema);
        assert!(guessed);
        let expected: Value = serde_yaml_ng::from_str(
            r#"
id: 3fa85f64-5717-4562-b3fc-2c963f66afa6
email: user@example.com
when: "2025-01-01T12:00:00Z"
status: pending
lines: [{ product_id: 1, quantity: 2 }]
price: 1.0
ok: true
code: stringxx
"#,
        )
        .unwrap();
        assert_eq!(value, expected);
    }

    #[test]
    fn examples_win_and_are_not_guesses() {
        let (value, guessed) = example_of("{}", "{ type: object, example: { a: 1 } }");
        assert_eq!(value["a"], 1);
        assert!(!guessed);
        // 3.1: `examples` is a list, `type` may list "null".
        let (value, guessed) = example_of("{}", r#"{ type: [string, "null"], examples: [x] }"#);
        assert_eq!(value, Value::from("x"));
        assert!(!guessed);
        let (value, _) = example_of("{}", r#"{ type: ["null", integer], minimum: 5 }"#);
        assert_eq!(value, Value::from(5));
    }

    #[test]
    fn recursion_and_all_of_end_in_finite_values() {
        let doc = r##"
components:
  schemas:
    Node:
      type: object
      required: [name, child]
      properties:
        name: { type: string }
        child: { $ref: "#/components/schemas/Node" }
    Named: { type: object, required: [name], properties: { name: { type: string, example: n } } }
"##;
        let (value, _) = example_of(doc, r##"{ $ref: "#/components/schemas/Node" }"##);
        assert_eq!(value["name"], "string");
        assert_eq!(value["child"], Value::Null);
        let (value, _) = example_of(
            doc,
            r##"{ allOf: [ { $ref: "#/components/schemas/Named" }, { type: object, required: [age], properties: { age: { type: integer } } } ] }"##,
        );
        assert_eq!(value["name"], "n");
        assert_eq!(value["age"], 1);
    }

    #[test]
    fn a_reference_outside_the_document_or_to_nothing_is_an_error_saying_where() {
        let root: Value = serde_yaml_ng::from_str("components: { schemas: {} }").unwrap();
        let document = Document {
            root: &root,
            path: Path::new("spec.yaml"),
        };
        let schema: Value =
            serde_yaml_ng::from_str(r##"{ $ref: "#/components/schemas/Missing" }"##).unwrap();
        let error = document
            .example(&schema, "paths./x.post.requestBody", &mut false)
            .unwrap_err()
            .to_string();
        assert!(error.contains("spec.yaml"), "{error}");
        assert!(error.contains("paths./x.post.requestBody"), "{error}");
        assert!(error.contains("#/components/schemas/Missing"), "{error}");
        assert!(error.contains("no `Missing`"), "{error}");
        let schema: Value = serde_yaml_ng::from_str(r#"{ $ref: "other.yaml#/X" }"#).unwrap();
        let error = document
            .example(&schema, "here", &mut false)
            .unwrap_err()
            .to_string();
        assert!(error.contains("same document"), "{error}");
    }
}
