//! Test harness: starts the real application on a random port against a fresh database
//! (a new SQLite file, or a new PostgreSQL schema when `TEST_DATABASE_URL` is set) and
//! talks to it over HTTP.

use std::time::Duration;

use diesel::Connection;
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use recaudo::config::{Config, ExternalIdp};
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub engine: Engine,
    pub admin: String,
    keys: recaudo::auth::TokenKeys,
    pub state: actix_web::web::Data<recaudo::state::AppState>,
    pg_schema: Option<(String, String)>,
    server: actix_web::dev::ServerHandle,
    _dir: tempfile::TempDir,
}

pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub headers: HeaderMap,
}

impl Resp {
    /// The field names of a 422's `errors`.
    pub fn error_fields(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e["field"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
    }

    #[track_caller]
    pub fn expect(self, status: u16) -> Resp {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.body);
        self
    }

    /// Asserts a problem+json of this status.
    #[track_caller]
    pub fn expect_problem(self, status: u16) -> Resp {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.body);
        assert_eq!(self.header("content-type").as_deref(), Some("application/problem+json"));
        assert_eq!(self.body["status"], status);
        assert!(self.body["type"].as_str().is_some_and(|t| !t.is_empty()));
        assert!(self.body["title"].as_str().is_some());
        assert!(self.body["detail"].as_str().is_some());
        self
    }
}

#[derive(Default)]
pub struct Options {
    pub external_idp: bool,
    /// E-mail delivery: the app starts its delivery worker with these settings.
    pub smtp: Option<recaudo::delivery::SmtpSettings>,
    /// The background credit recomputation, polling at this interval. Off by default so
    /// that tests see recomputations only where reads trigger them (deterministic).
    pub credit_refresh: Option<Duration>,
}

pub async fn spawn(engine: Engine) -> Option<TestApp> {
    spawn_with(engine, Options::default()).await
}

/// Starts an app, or returns `None` for PostgreSQL when `TEST_DATABASE_URL` is not set.
pub async fn spawn_with(engine: Engine, options: Options) -> Option<TestApp> {
    recaudo::telemetry::init_tracing("warn", false);
    let dir = tempfile::tempdir().expect("temp dir");
    let (url, pg_schema) = match engine {
        Engine::Sqlite => (format!("sqlite://{}", dir.path().join("test.db").display()), None),
        Engine::Postgres => {
            let Ok(base) = std::env::var("TEST_DATABASE_URL") else {
                eprintln!("TEST_DATABASE_URL is not set: PostgreSQL variant skipped");
                return None;
            };
            let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
            let mut admin = PgConnection::establish(&base)
                .unwrap_or_else(|e| panic!("TEST_DATABASE_URL is set but PostgreSQL is unreachable: {e}"));
            admin
                .batch_execute(&format!("CREATE SCHEMA {schema}"))
                .expect("create schema");
            let sep = if base.contains('?') { '&' } else { '?' };
            (
                format!("{base}{sep}options=-csearch_path%3D{schema}"),
                Some((base, schema)),
            )
        }
    };
    let mut config = Config::for_database(&url, dir.path().to_path_buf());
    if options.external_idp {
        config.external_idp = Some(ExternalIdp {
            public_key_pem: include_str!("../fixtures/idp-test-public.pem").to_string(),
            algorithm: jsonwebtoken::Algorithm::RS256,
            issuer: "https://idp.example.test".into(),
            audience: "recaudo-api".into(),
        });
    }
    config.smtp = options.smtp;
    config.credit_refresh_interval = options.credit_refresh;
    let (keys, _) = recaudo::auth::TokenKeys::load_or_create(&config).expect("keys");
    let app = recaudo::Application::build(config).await.expect("app starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let state = app.state.clone();
    let server = app.handle();
    tokio::spawn(app.run_until_stopped());
    let admin = keys
        .mint(
            recaudo::DEFAULT_ORG,
            "admin-user",
            &["admin"],
            Duration::from_secs(3600),
        )
        .expect("token");
    Some(TestApp {
        address,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client"),
        engine,
        admin,
        keys,
        state,
        pg_schema,
        server,
        _dir: dir,
    })
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // The stop command is sent when `stop` is called; its workers then drop the pool.
        drop(self.server.stop(false));
        if let Some((base, schema)) = &self.pg_schema
            && let Ok(mut conn) = PgConnection::establish(base)
        {
            let _ = conn.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
        }
    }
}

impl TestApp {
    pub fn token(&self, role: &str) -> String {
        self.token_for(recaudo::DEFAULT_ORG, role)
    }

    pub fn token_for(&self, org: &str, role: &str) -> String {
        self.keys
            .mint(org, &format!("{role}-user"), &[role], Duration::from_secs(3600))
            .expect("token")
    }

    pub fn data_dir(&self) -> std::path::PathBuf {
        self._dir.path().to_path_buf()
    }

    pub fn keys_mint_roles(&self, roles: &[&str]) -> String {
        self.keys
            .mint(recaudo::DEFAULT_ORG, "someone", roles, Duration::from_secs(3600))
            .expect("token")
    }

    /// Creates another organisation and returns an admin token for it.
    pub fn create_org(&self, slug: &str) -> String {
        let mut conn = self.state.pool.get().expect("connection");
        let org = recaudo::db::repo::organizations::create(&mut conn, slug, slug).expect("org");
        recaudo::service::strategies::ensure_defaults(&mut conn, org.id).expect("defaults");
        self.token_for(slug, "admin")
    }

    pub async fn send(&self, method: Method, path: &str, token: Option<&str>, body: Option<&Value>) -> Resp {
        let mut req = self.client.request(method, format!("{}{}", self.address, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req.send().await.expect("request sent");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Resp { status, body, headers }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(Method::GET, path, Some(&self.admin), None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Resp {
        self.send(Method::POST, path, Some(&self.admin), Some(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Resp {
        self.send(Method::PUT, path, Some(&self.admin), Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Resp {
        self.send(Method::PATCH, path, Some(&self.admin), Some(body)).await
    }

    /// Sends raw bytes with a content type.
    pub async fn raw(&self, method: Method, path: &str, content_type: &str, body: &str) -> Resp {
        let res = self
            .client
            .request(method, format!("{}{}", self.address, path))
            .bearer_auth(&self.admin)
            .header("content-type", content_type)
            .body(body.to_string())
            .send()
            .await
            .expect("request sent");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = res.json::<Value>().await.unwrap_or(Value::Null);
        Resp { status, body, headers }
    }

    /// POSTs a resource that must be created (201) and returns its id.
    pub async fn create(&self, path: &str, body: &Value) -> String {
        let r = self.post(path, body).await.expect(201);
        r.body["id"].as_str().expect("id").to_string()
    }

    /// Creates a customer with an external id and returns its id.
    pub async fn customer(&self, external_id: &str) -> String {
        let name = format!("Customer {external_id}");
        self.create(
            "/v1/customers",
            &serde_json::json!({"external_id": external_id, "name": name, "currency": "EUR"}),
        )
        .await
    }

    /// Creates an EUR credit note for a customer, issued on 1 February 2026, and returns its id.
    pub async fn credit_note(&self, customer_id: &str, number: &str, amount: &str) -> String {
        self.create(
            "/v1/invoices",
            &serde_json::json!({"customer_id": customer_id, "kind": "credit_note", "number": number,
                    "amount": amount, "issue_date": "2026-02-01"}),
        )
        .await
    }

    /// Creates an EUR invoice for a customer and returns its id.
    pub async fn invoice(&self, customer_id: &str, number: &str, amount: &str, due: &str) -> String {
        self.create(
            "/v1/invoices",
            &serde_json::json!({"customer_id": customer_id, "external_id": number, "number": number,
                    "amount": amount, "issue_date": "2026-01-01", "due_date": due}),
        )
        .await
    }
}

/// Declares each listed `async fn name(app: TestApp)` as two tests, one per engine.
#[macro_export]
macro_rules! both_engines {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let app = $crate::helpers::spawn($crate::helpers::Engine::Sqlite).await.expect("sqlite app");
                    super::$name(app).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(app) = $crate::helpers::spawn($crate::helpers::Engine::Postgres).await {
                        super::$name(app).await;
                    }
                }
            )*
        }
    };
}
