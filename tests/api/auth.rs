use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::both_engines;
use crate::helpers::{Engine, Options, TestApp, spawn_with};

both_engines!(
    requests_without_a_valid_token_are_401,
    wrong_role_is_403,
    api_client_credentials_give_a_token,
    revoked_and_wrong_secrets_are_refused,
    only_admins_manage_api_clients,
);

async fn requests_without_a_valid_token_are_401(app: TestApp) {
    let none = app
        .send(Method::GET, "/v1/customers", None, None)
        .await
        .expect_problem(401);
    assert!(none.header("www-authenticate").is_some_and(|h| h.starts_with("Bearer")));
    app.send(Method::GET, "/v1/customers", Some("garbage"), None)
        .await
        .expect_problem(401);
    // Signed by another key.
    let other_dir = tempfile::tempdir().expect("dir");
    let other = recaudo::config::Config::for_database("sqlite://x.db", other_dir.path().to_path_buf());
    let (foreign, _) = recaudo::auth::TokenKeys::load_or_create(&other).expect("keys");
    let forged = foreign
        .mint("default", "mallory", &["admin"], Duration::from_secs(600))
        .expect("mint");
    app.send(Method::GET, "/v1/customers", Some(&forged), None)
        .await
        .expect_problem(401);
    // Expired beyond the leeway: mint with our key but an exp in the past.
    let expired = mint_raw(
        &app,
        json!({"sub": "a", "org": "default", "roles": ["admin"], "exp": 1_000_000, "iat": 999_000, "iss": "recaudo", "aud": "recaudo"}),
    );
    let r = app
        .send(Method::GET, "/v1/customers", Some(&expired), None)
        .await
        .expect_problem(401);
    assert!(r.body["detail"].as_str().is_some_and(|d| d.contains("expired")));
    // Unknown organisation.
    let ghost = app.token_for("ghost-org", "admin");
    app.send(Method::GET, "/v1/customers", Some(&ghost), None)
        .await
        .expect_problem(401);
    // Wrong audience.
    let now = chrono::Utc::now().timestamp();
    let aud = mint_raw(
        &app,
        json!({"sub": "a", "org": "default", "roles": ["admin"], "exp": now + 600, "iat": now, "iss": "recaudo", "aud": "other"}),
    );
    app.send(Method::GET, "/v1/customers", Some(&aud), None)
        .await
        .expect_problem(401);
}

/// Signs arbitrary claims with the app's own key (read from its data folder).
fn mint_raw(app: &TestApp, claims: serde_json::Value) -> String {
    let _ = app;
    let path = app_key_path(app);
    let secret = std::fs::read_to_string(path).expect("key");
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(secret.trim())
        .expect("b64");
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(&bytes),
    )
    .expect("encode")
}

fn app_key_path(app: &TestApp) -> std::path::PathBuf {
    app.data_dir().join(recaudo::auth::keys::SIGNING_KEY_FILE)
}

async fn wrong_role_is_403(app: TestApp) {
    let viewer = app.token("viewer");
    let r = app
        .send(
            Method::POST,
            "/v1/customers",
            Some(&viewer),
            Some(&json!({"name": "X"})),
        )
        .await
        .expect_problem(403);
    assert!(r.body["detail"].as_str().is_some_and(|d| d.contains("admin")));
    app.send(Method::GET, "/v1/customers", Some(&viewer), None)
        .await
        .expect(200);
    // A token with no known role at all.
    let odd = app.keys_mint_roles(&["superuser"]);
    app.send(Method::GET, "/v1/customers", Some(&odd), None)
        .await
        .expect_problem(403);
}

async fn api_client_credentials_give_a_token(app: TestApp) {
    let created = app
        .post("/v1/api-clients", &json!({"name": "ERP sync", "role": "integration"}))
        .await
        .expect(201);
    let client_id = created.body["client_id"].as_str().expect("id").to_string();
    let secret = created.body["client_secret"].as_str().expect("secret").to_string();
    // JSON body.
    let token = app
        .send(
            Method::POST,
            "/v1/auth/token",
            None,
            Some(&json!({"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret})),
        )
        .await
        .expect(200);
    assert_eq!(token.body["token_type"], "Bearer");
    assert_eq!(token.body["expires_in"], 3600);
    let access = token.body["access_token"].as_str().expect("token").to_string();
    app.send(
        Method::POST,
        "/v1/customers",
        Some(&access),
        Some(&json!({"name": "From ERP"})),
    )
    .await
    .expect(201);
    // The integration role cannot manage API clients.
    app.send(Method::GET, "/v1/api-clients", Some(&access), None)
        .await
        .expect_problem(403);
    // Form body.
    let form = app
        .client
        .post(format!("{}/v1/auth/token", app.address))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &client_id),
            ("client_secret", &secret),
        ])
        .send()
        .await
        .expect("sent");
    assert_eq!(form.status().as_u16(), 200);
    // The list never shows the secret.
    let list = app.get("/v1/api-clients").await.expect(200);
    assert_eq!(list.body["items"].as_array().map(Vec::len), Some(1));
    assert!(list.body["items"][0].get("client_secret").is_none());
    assert!(!list.body.to_string().contains(&secret));
}

async fn revoked_and_wrong_secrets_are_refused(app: TestApp) {
    let created = app
        .post("/v1/api-clients", &json!({"name": "Script", "role": "viewer"}))
        .await
        .expect(201);
    let id = created.body["id"].as_str().expect("id").to_string();
    let client_id = created.body["client_id"].as_str().expect("client id").to_string();
    let secret = created.body["client_secret"].as_str().expect("secret").to_string();
    app.send(
        Method::POST,
        "/v1/auth/token",
        None,
        Some(&json!({"client_id": client_id, "client_secret": "wrong"})),
    )
    .await
    .expect_problem(401);
    app.send(
        Method::POST,
        "/v1/auth/token",
        None,
        Some(&json!({"client_id": "rc_nobody", "client_secret": secret})),
    )
    .await
    .expect_problem(401);
    app.send(
        Method::POST,
        "/v1/auth/token",
        None,
        Some(&json!({"grant_type": "password", "client_id": client_id, "client_secret": secret})),
    )
    .await
    .expect_problem(422);
    let revoked = app
        .post(&format!("/v1/api-clients/{id}/revoke"), &json!({}))
        .await
        .expect(200);
    assert!(revoked.body["revoked_at"].is_string());
    app.send(
        Method::POST,
        "/v1/auth/token",
        None,
        Some(&json!({"client_id": client_id, "client_secret": secret})),
    )
    .await
    .expect_problem(401);
}

async fn only_admins_manage_api_clients(app: TestApp) {
    for role in ["manager", "collector", "sales", "integration", "viewer"] {
        let token = app.token(role);
        app.send(
            Method::POST,
            "/v1/api-clients",
            Some(&token),
            Some(&json!({"name": "x", "role": "viewer"})),
        )
        .await
        .expect_problem(403);
    }
    app.post("/v1/api-clients", &json!({"name": "x", "role": "root"}))
        .await
        .expect_problem(400);
    app.post("/v1/api-clients", &json!({"name": " ", "role": "viewer"}))
        .await
        .expect_problem(422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_identity_provider_tokens_are_accepted() {
    for engine in [Engine::Sqlite, Engine::Postgres] {
        let Some(app) = spawn_with(
            engine,
            Options {
                external_idp: true,
                ..Options::default()
            },
        )
        .await
        else {
            continue;
        };
        let key =
            jsonwebtoken::EncodingKey::from_rsa_pem(include_bytes!("../fixtures/idp-test-private.pem")).expect("key");
        let now = chrono::Utc::now().timestamp();
        let sign = |iss: &str| {
            jsonwebtoken::encode(
                &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
                &json!({"sub": "alice@example.com", "org": "default", "roles": ["manager"], "exp": now + 600, "iat": now, "iss": iss, "aud": "recaudo-api"}),
                &key,
            )
            .expect("sign")
        };
        let good = sign("https://idp.example.test");
        app.send(Method::GET, "/v1/customers", Some(&good), None)
            .await
            .expect(200);
        let wrong_issuer = sign("https://evil.example.test");
        app.send(Method::GET, "/v1/customers", Some(&wrong_issuer), None)
            .await
            .expect_problem(401);
    }
}
