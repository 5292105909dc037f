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
}
