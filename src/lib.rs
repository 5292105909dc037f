//! Recaudo: a headless REST/JSON service for collecting accounts receivable.
//!
//! `Application::build` assembles the service from a `Config`: database (SQLite or
//! PostgreSQL), migrations, first-start bootstrap, keys and the HTTP server. The binary in
//! `main.rs` and the integration tests both start it this way.

pub mod auth;
pub mod config;
pub mod db;
pub mod delivery;
pub mod domain;
pub mod error;
pub mod http;
pub mod payment_groups;
pub mod refresher;
pub mod scheduler;
pub mod service;
pub mod state;
pub mod telemetry;

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use tracing_actix_web::TracingLogger;

use crate::auth::{OrgDirectory, TokenKeys};
use crate::config::Config;
use crate::db::{Database, DbPool, Engine};
use crate::payment_groups::PaymentPoster;
use crate::state::AppState;
use crate::telemetry::Metrics;

/// The organisation created on first start.
pub const DEFAULT_ORG: &str = "default";

pub struct Application {
    port: u16,
    server: Server,
    pub state: web::Data<AppState>,
    scheduler: Option<Arc<std::sync::atomic::AtomicBool>>,
    delivery: Option<Arc<std::sync::atomic::AtomicBool>>,
    refresher: Option<Arc<std::sync::atomic::AtomicBool>>,
    wal_keeper: Option<Arc<std::sync::atomic::AtomicBool>>,
}

/// Opens the database named by the configuration, creating the SQLite folder if needed,
/// and applies pending migrations.
pub fn open_database(config: &Config) -> Result<Database, String> {
    let database = Database::new(&config.database_url)?;
    if database.engine == Engine::Sqlite {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| format!("cannot create data folder {}: {e}", config.data_dir.display()))?;
    }
    database.migrate()?;
    Ok(database)
}

/// Creates the `default` organisation when there is none; returns whether it did.
pub fn bootstrap(pool: &DbPool) -> Result<bool, String> {
    let mut conn = pool.get().map_err(|e| format!("cannot connect: {e}"))?;
    let count = db::repo::organizations::count(&mut conn).map_err(|e| e.to_string())?;
    if count > 0 {
        return Ok(false);
    }
    let org =
        db::repo::organizations::create(&mut conn, DEFAULT_ORG, "Default organisation").map_err(|e| e.to_string())?;
    service::strategies::ensure_defaults(&mut conn, org.id).map_err(|e| e.to_string())?;
    Ok(true)
}

impl Application {
    pub async fn build(config: Config) -> Result<Application, String> {
        let database = open_database(&config)?;
        let (pool, wal_keeper) = database.serving_pool(config.pool_size)?;
        let created_org = bootstrap(&pool)?;
        let (keys, created_key) = TokenKeys::load_or_create(&config)?;
        if created_org || created_key {
            tracing::info!(
                "first start: organisation `{DEFAULT_ORG}` and signing key {} ready; mint an admin token with: \
                 RECAUDO_DATA_DIR={} recaudo token --org {DEFAULT_ORG} --role admin",
                crate::auth::keys::signing_key_path(&config).display(),
                config.data_dir.display(),
            );
        }
        let metrics = Metrics::new(pool.clone())?;
        let state = web::Data::new(AppState {
            payments: PaymentPoster::start(
                pool.clone(),
                metrics.clone(),
                config.payment_posters,
                http::payments::posted_body,
            )?,
            metrics,
            pool,
            engine: database.engine,
            keys: Arc::new(keys),
            orgs: OrgDirectory::default(),
        });
        let scheduler = config
            .scheduler
            .clone()
            .map(|s| scheduler::start(state.pool.clone(), s));
        let delivery = config.smtp.clone().map(|smtp| {
            // A weak reference: the worker ends with the application's state.
            let weak = Arc::downgrade(&state.clone().into_inner());
            delivery::start(weak, smtp)
        });
        let refresher = config
            .credit_refresh_interval
            .map(|interval| refresher::start(state.pool.clone(), interval, database.engine == Engine::Sqlite));
        let listener = TcpListener::bind(&config.bind).map_err(|e| format!("cannot listen on {}: {e}", config.bind))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let app_state = state.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                .wrap(from_fn(telemetry::observe_request))
                .wrap(TracingLogger::default())
                .configure(http::configure)
                .default_service(web::to(http::not_found))
        })
        .listen(listener)
        .map_err(|e| format!("cannot start the server: {e}"))?;
        server = server
            .workers(config.http_workers())
            .worker_max_blocking_threads(config.blocking_threads_per_worker());
        tracing::info!(
            engine = database.engine.name(),
            port,
            "recaudo listening on {}",
            config.bind
        );
        Ok(Application {
            port,
            server: server.run(),
            state,
            scheduler,
            delivery,
            refresher,
            wal_keeper,
        })
    }

    /// A handle to stop the server (tests stop theirs so that pools close).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        for stop in [&self.scheduler, &self.delivery, &self.refresher, &self.wal_keeper]
            .into_iter()
            .flatten()
        {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        result
    }
}
