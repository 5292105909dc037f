use reqwest::Method;

use crate::helpers::{Engine, spawn};

/// The committed document must be what the code produces. Regenerate with
/// `cargo run -q -- openapi > openapi/openapi.json`.
#[test]
fn committed_openapi_matches_the_code() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
        .expect("openapi/openapi.json is committed");
    let generated = recaudo::http::openapi::document_json();
    assert!(
        committed == generated,
        "openapi/openapi.json is out of date: run `cargo run -q -- openapi > openapi/openapi.json`"
    );
}

#[test]
fn every_operation_documents_its_roles_and_problems() {
    let doc: serde_json::Value = serde_json::from_str(&recaudo::http::openapi::document_json()).expect("json");
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 15);
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("item") {
            let responses = op["responses"].as_object().expect("responses");
            assert!(responses.contains_key("500"), "{method} {path}");
            if path.starts_with("/v1/") && path != "/v1/auth/token" {
                assert!(
                    op["security"][0]["bearer"].as_array().is_some_and(|r| !r.is_empty()),
                    "{method} {path}"
                );
                assert!(
                    op["description"].as_str().is_some_and(|d| d.contains("**Roles:**")),
                    "{method} {path}"
                );
                assert!(
                    responses.contains_key("401") && responses.contains_key("403"),
                    "{method} {path}"
                );
            }
            if op.get("requestBody").is_some() {
                assert!(
                    responses.contains_key("422") && responses.contains_key("400"),
                    "{method} {path}"
                );
            }
        }
    }
}

/// The properties of an object schema, following `$ref`s and `allOf` (flattened structs).
fn properties<'a>(
    schemas: &'a serde_json::Map<String, serde_json::Value>,
    schema: &'a serde_json::Value,
) -> (Vec<&'a str>, Vec<&'a str>) {
    if let Some(name) = schema["$ref"].as_str().and_then(|r| r.rsplit('/').next()) {
        return schemas.get(name).map(|s| properties(schemas, s)).unwrap_or_default();
    }
    let mut names: Vec<&str> = schema["properties"]
        .as_object()
        .map(|p| p.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let mut required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    for part in schema["allOf"].as_array().into_iter().flatten() {
        let (more, more_required) = properties(schemas, part);
        names.extend(more);
        required.extend(more_required);
    }
    (names, required)
}

/// Every component schema carries an example, and an object's example has every required
/// field and no field the schema lacks, so examples cannot drift from the types.
#[test]
fn every_schema_has_an_example_that_fits_it() {
    let doc: serde_json::Value = serde_json::from_str(&recaudo::http::openapi::document_json()).expect("json");
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    assert!(schemas.len() >= 100);
    let mut problems = Vec::new();
    for (name, schema) in schemas {
        let example = match (
            schema.get("example"),
            schema["examples"].as_array().and_then(|e| e.first()),
        ) {
            (Some(example), _) | (None, Some(example)) => example,
            (None, None) => {
                problems.push(format!("{name}: no example"));
                continue;
            }
        };
        if let Some(values) = schema["enum"].as_array() {
            if !values.contains(example) {
                problems.push(format!("{name}: example {example} is not one of its values"));
            }
            continue;
        }
        let (fields, required) = properties(schemas, schema);
        if fields.is_empty() {
            continue;
        }
        let Some(object) = example.as_object() else {
            problems.push(format!("{name}: example is not an object"));
            continue;
        };
        for field in required {
            if !object.contains_key(field) {
                problems.push(format!("{name}: example lacks required `{field}`"));
            }
        }
        for field in object.keys() {
            if !fields.contains(&field.as_str()) {
                problems.push(format!("{name}: example has `{field}`, which the schema does not"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} schema example problem(s); add or fix `#[schema(example = ...)]` on the type:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_and_the_offline_docs_page_are_served() {
    let app = spawn(Engine::Sqlite).await.expect("app");
    let served = app.send(Method::GET, "/openapi.json", None, None).await.expect(200);
    let generated: serde_json::Value = serde_json::from_str(&recaudo::http::openapi::document_json()).expect("json");
    assert_eq!(served.body, generated);
    let page = app
        .client
        .get(format!("{}/docs/", app.address))
        .send()
        .await
        .expect("sent");
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.expect("html");
    assert!(html.contains("swagger-ui"));
    assert!(!html.contains("cdn."), "the docs page must not load assets from a CDN");
    let init = app
        .client
        .get(format!("{}/docs/swagger-initializer.js", app.address))
        .send()
        .await
        .expect("sent");
    assert_eq!(init.status().as_u16(), 200);
    assert!(
        init.text().await.expect("js").contains("/openapi.json"),
        "the page loads the served document"
    );
}
