//! Unit tests of the OpenAPI importer on small inline inputs, one behaviour each.

use super::*;

fn import_text(spec: &str) -> Value {
    let text = import(spec, Path::new("spec.yaml")).unwrap();
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

const PETS: &str = r##"
openapi: 3.1.0
info: { title: Pet Store, version: "2" }
servers: [{ url: "https://{env}.example.com/v2/", variables: { env: { default: api } } }]
security: [{ key: [] }]
paths:
  /pets/{petId}:
    parameters:
      - { name: petId, in: path, required: true, schema: { type: integer, examples: [7] } }
    get:
      responses: { "200": { description: ok }, "404": { description: no } }
    patch:
      operationId: updatePet
      security: []
      parameters:
        - { name: X-Trace, in: header, required: true, schema: { type: string, format: uuid } }
        - { name: verbose, in: query, schema: { type: boolean } }
      requestBody:
        content:
          application/json:
            examples:
              first: { $ref: "#/components/examples/Pet" }
      responses: { "200": { description: ok }, "202": { description: later } }
  /pets:
    post:
      operationId: addPet
      requestBody:
        content:
          application/x-www-form-urlencoded:
            schema: { type: object, required: [name], properties: { name: { type: string }, tag: { type: string } } }
      responses: { 2XX: { description: ok } }
components:
  securitySchemes:
    key: { type: apiKey, in: header, name: X-API-Key }
  examples:
    Pet: { value: { name: Rex } }
"##;

#[test]
fn operations_become_steps_with_variables_parameters_bodies_and_statuses() {
    let doc = import_text(PETS);
    assert_eq!(doc["name"], "pet-store");
    let steps = doc["steps"].as_sequence().unwrap();
    let names: Vec<&str> = steps.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["get_pets_petid", "updatePet", "addPet"]);
    assert_eq!(steps[0]["url"], "/v2/pets/{{ pet_id }}");
    assert_eq!(doc["variables"]["pet_id"], 7);
    assert_eq!(steps[0]["checks"]["status"], 200);
    assert_eq!(steps[0]["headers"]["X-API-Key"], "{{ api_key }}");
    assert_eq!(doc["variables"]["api_key"], "replace-with-your-api-key");

    assert_eq!(steps[1]["method"], "PATCH");
    assert!(
        steps[1]["headers"].get("X-API-Key").is_none(),
        "security: [] turns it off"
    );
    assert_eq!(
        steps[1]["headers"]["X-Trace"],
        "3fa85f64-5717-4562-b3fc-2c963f66afa6"
    );
    assert!(
        steps[1].get("query").is_none(),
        "optional query parameters are left out"
    );
    assert_eq!(steps[1]["json"]["name"], "Rex");
    assert_eq!(steps[1]["checks"]["status"], Value::from(vec![200, 202]));

    assert_eq!(steps[2]["form"]["name"], "string");
    assert!(steps[2]["form"].get("tag").is_none());
    assert_eq!(steps[2]["checks"]["status"], "2xx");
}

#[test]
fn comments_mark_guesses_and_examples() {
    let text = import(PETS, Path::new("spec.yaml")).unwrap();
    assert!(
        text.contains("# application/json body: the description's example"),
        "{text}"
    );
    assert!(
        text.contains("# application/x-www-form-urlencoded body generated from the schema: edit"),
        "{text}"
    );
    assert!(
        text.contains("# header parameter `X-Trace`: generated from the schema: edit"),
        "{text}"
    );
    assert!(
        text.contains("# `petId` in /pets/{petId}: the description's example"),
        "{text}"
    );
    assert!(text.contains("https://{env}.example.com/v2/"), "{text}");
}

#[test]
fn bearer_security_makes_a_token_header_and_points_at_the_login() {
    let spec = r##"
openapi: 3.0.3
info: { title: t, version: "1" }
paths:
  /auth/login:
    post:
      operationId: login
      responses:
        "200":
          description: ok
          content: { application/json: { schema: { $ref: "#/components/schemas/Session" } } }
  /me:
    get:
      operationId: me
      security: [{ bearer: [] }]
      responses: { "200": { description: ok } }
  /events:
    post:
      operationId: track
      security: [{}, { bearer: [] }]
      responses: { "202": { description: ok } }
components:
  securitySchemes: { bearer: { type: http, scheme: bearer } }
  schemas:
    Session: { type: object, properties: { access_token: { type: string } } }
"##;
    let text = import(spec, Path::new("spec.yaml")).unwrap();
    let doc: Value = serde_yaml_ng::from_str(&text).unwrap();
    assert_eq!(
        doc["steps"][1]["headers"]["Authorization"],
        "Bearer {{ token }}"
    );
    assert!(
        doc["steps"][2].get("headers").is_none(),
        "optional auth sends none"
    );
    assert!(doc["steps"][0].get("headers").is_none());
    assert_eq!(doc["variables"]["token"], "replace-with-a-token");
    assert!(
        text.contains("#       token: { json: \"$.access_token\" }"),
        "{text}"
    );
    assert!(
        text.contains("`login` looks like the login operation"),
        "{text}"
    );
}

#[test]
fn ids_are_named_after_their_collection() {
    assert_eq!(path_variable("/orders/{id}", "id"), "order_id");
    assert_eq!(path_variable("/categories/{id}/items", "id"), "category_id");
    assert_eq!(
        path_variable("/cart/items/{product_id}", "product_id"),
        "product_id"
    );
    assert_eq!(path_variable("/{id}", "id"), "id");
}

#[test]
fn other_documents_are_refused_with_the_reason() {
    let error = |text: &str| import(text, Path::new("x.yaml")).unwrap_err().to_string();
    assert!(error("swagger: '2.0'\npaths: {}").contains("Swagger 2.0"));
    assert!(error("openapi: 2.5.0\npaths: {}").contains("`openapi: 2.5.0`"));
    assert!(error("log: { entries: [] }").contains("not an OpenAPI 3 description"));
    assert!(error("openapi: 3.0.0\npaths: {}").contains("no operations"));
    let broken = error("openapi: 3.0.0\npaths:\n  /a: [\n");
    assert!(broken.starts_with("x.yaml:"), "{broken}");
    let reference = error(
        "openapi: 3.0.0\npaths:\n  /a:\n    post:\n      requestBody: { $ref: '#/components/requestBodies/Nope' }\n      responses: {}\n",
    );
    assert!(reference.contains("at paths./a.post"), "{reference}");
    assert!(
        reference.contains("#/components/requestBodies/Nope"),
        "{reference}"
    );
}
