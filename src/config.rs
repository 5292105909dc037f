//! Configuration, read once into typed values from the environment and, optionally, a TOML
//! file (`--config PATH` or `RECAUDO_CONFIG`). Every variable is listed in the README's
//! configuration table.
//!
//! The file has the same keys as the variables, lower-case and without `RECAUDO_`
//! (`bind = "0.0.0.0:8080"`, `db_pool_size = 32`, `scheduler = false`); a variable that is
//! set wins over the file. An unreadable file, invalid TOML, a key that names no variable
//! or a value that is not a string, integer or boolean is an error. A new setting is read
//! with [`var`] like the others and its key added to [`FILE_KEYS`].

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use jsonwebtoken::Algorithm;

#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    pub data_dir: PathBuf,
    pub bind: String,
    pub log_filter: String,
    pub log_json: bool,
    pub pool_size: u32,
    pub workers: Option<usize>,
    /// Requests doing database work at once, over all workers (`RECAUDO_DB_CONCURRENCY`);
    /// `None`: two per CPU core. See [`Config::blocking_threads_per_worker`].
    pub db_concurrency: Option<usize>,
    pub token_issuer: String,
    pub token_audience: String,
    pub token_ttl: Duration,
    pub external_idp: Option<ExternalIdp>,
    /// The daily-jobs scheduler; `None` turns it off (`RECAUDO_SCHEDULER=off`).
    pub scheduler: Option<crate::scheduler::SchedulerConfig>,
    /// E-mail delivery by SMTP; `None` (no `RECAUDO_SMTP_URL`) leaves messages queued.
    pub smtp: Option<crate::delivery::SmtpSettings>,
    /// How often the background credit recomputation looks at its queue when it was empty
    /// (`RECAUDO_CREDIT_REFRESH_MS`, default 200); `None` (`0`) leaves the queue to the
    /// reads that drain it.
    pub credit_refresh_interval: Option<Duration>,
    /// Threads posting `POST /v1/payments` requests in groups (`RECAUDO_PAYMENT_POSTERS`,
    /// default one per CPU core); see `payment_groups`.
    pub payment_posters: usize,
}

/// An external identity provider whose tokens are accepted beside the service's own.
#[derive(Debug, Clone)]
pub struct ExternalIdp {
    pub public_key_pem: String,
    pub algorithm: Algorithm,
    pub issuer: String,
    pub audience: String,
}

/// How often the credit recomputation worker polls an empty queue.
pub const DEFAULT_CREDIT_REFRESH: Duration = Duration::from_millis(200);

/// The keys a configuration file may have: each is the variable `RECAUDO_<KEY>`.
pub const FILE_KEYS: &[&str] = &[
    "database_url",
    "data_dir",
    "bind",
    "log",
    "log_format",
    "db_pool_size",
    "workers",
    "db_concurrency",
    "token_ttl",
    "token_issuer",
    "token_audience",
    "scheduler",
    "daily_at",
    "credit_refresh_ms",
    "payment_posters",
    "idp_public_key_file",
    "idp_algorithm",
    "idp_issuer",
    "idp_audience",
];

/// What [`var`] reads while a configuration is being loaded: the environment (in tests, a
/// map standing in for it) over the file's values, keyed by variable name.
#[derive(Debug, Default)]
struct Sources {
    env: Option<BTreeMap<String, String>>,
    file: BTreeMap<String, String>,
    /// Variables asked for, so a file key that some setting reads is never called unknown.
    asked: BTreeSet<String>,
}

thread_local! {
    static SOURCES: RefCell<Option<Sources>> = const { RefCell::new(None) };
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

/// The variable from the environment only.
fn env_var(name: &str) -> Option<String> {
    let from_map = SOURCES.with(|s| {
        s.borrow_mut().as_mut().and_then(|s| {
            s.asked.insert(name.to_string());
            s.env.as_ref().map(|env| env.get(name).cloned())
        })
    });
    non_empty(from_map.unwrap_or_else(|| std::env::var(name).ok()))
}

/// The variable from the configuration file only.
fn file_var(name: &str) -> Option<String> {
    non_empty(SOURCES.with(|s| s.borrow().as_ref().and_then(|s| s.file.get(name).cloned())))
}

/// A setting: the environment variable if set, else the file's key for it.
fn var(name: &str) -> Option<String> {
    env_var(name).or_else(|| file_var(name))
}

/// Runs `read` with `sources` behind [`var`], and refuses file keys that name no setting.
fn with_sources(
    sources: Sources,
    origin: &str,
    read: impl FnOnce() -> Result<Config, String>,
) -> Result<Config, String> {
    SOURCES.with(|s| *s.borrow_mut() = Some(sources));
    let result = read();
    let sources = SOURCES.with(|s| s.borrow_mut().take()).unwrap_or_default();
    let unknown: Vec<String> = sources
        .file
        .keys()
        .filter(|name| !sources.asked.contains(*name) && !FILE_KEYS.iter().any(|k| variable(k) == **name))
        .map(|name| key_of(name))
        .collect();
    if !unknown.is_empty() {
        return Err(format!(
            "{origin}: unknown key{} `{}`; the keys are {}",
            if unknown.len() == 1 { "" } else { "s" },
            unknown.join("`, `"),
            FILE_KEYS.join(", ")
        ));
    }
    result.map_err(|e| {
        if sources.file.is_empty() {
            e
        } else {
            format!("{e} (settings from the environment and {origin})")
        }
    })
}

/// `bind` → `RECAUDO_BIND`.
fn variable(key: &str) -> String {
    format!("RECAUDO_{}", key.to_ascii_uppercase())
}

/// `RECAUDO_BIND` → `bind`.
fn key_of(variable: &str) -> String {
    variable
        .strip_prefix("RECAUDO_")
        .unwrap_or(variable)
        .to_ascii_lowercase()
}

/// The file's values keyed by variable name; every error is one line naming the file.
fn parse_file(path: &Path, text: &str) -> Result<BTreeMap<String, String>, String> {
    let origin = format!("config file `{}`", path.display());
    let table: toml::Table = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|span| text.get(..span.start).unwrap_or(text).matches('\n').count() + 1);
        let message = e.message().lines().next().unwrap_or("invalid TOML").trim().to_string();
        match line {
            Some(line) => format!("{origin}: line {line}: {message}"),
            None => format!("{origin}: {message}"),
        }
    })?;
    let mut values = BTreeMap::new();
    for (key, value) in table {
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            _ => return Err(format!("{origin}: `{key}` must be a string, an integer or a boolean")),
        };
        values.insert(variable(&key), text);
    }
    Ok(values)
}

impl Config {
    /// Reads the optional TOML file, then the environment over it (see the module comment).
    pub fn load(file: Option<&Path>) -> Result<Config, String> {
        Config::load_with(file, None)
    }

    /// [`Config::load`] with a map standing in for the environment (`None`: the process's).
    fn load_with(file: Option<&Path>, env: Option<BTreeMap<String, String>>) -> Result<Config, String> {
        let Some(path) = file else {
            let sources = Sources {
                env,
                ..Sources::default()
            };
            return with_sources(sources, "configuration", Config::from_env);
        };
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read config file `{}`: {e}", path.display()))?;
        let sources = Sources {
            env,
            file: parse_file(path, &text)?,
            ..Sources::default()
        };
        with_sources(sources, &format!("config file `{}`", path.display()), Config::from_env)
    }

    /// Reads `RECAUDO_*` variables (see the README); `DATABASE_URL` is a fallback for the URL.
    /// Inside [`Config::load`], each variable falls back to the file's key.
    pub fn from_env() -> Result<Config, String> {
        let data_dir = PathBuf::from(var("RECAUDO_DATA_DIR").unwrap_or_else(|| "./data".into()));
        let database_url = env_var("RECAUDO_DATABASE_URL")
            .or_else(|| env_var("DATABASE_URL"))
            .or_else(|| file_var("RECAUDO_DATABASE_URL"))
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("recaudo.db").display()));
        let pool_size = positive::<u32>("RECAUDO_DB_POOL_SIZE")?.unwrap_or(64);
        let workers = positive::<usize>("RECAUDO_WORKERS")?;
        let db_concurrency = positive::<usize>("RECAUDO_DB_CONCURRENCY")?;
        let token_ttl = match var("RECAUDO_TOKEN_TTL") {
            Some(v) => parse_ttl(&v).map_err(|e| format!("RECAUDO_TOKEN_TTL: {e}"))?,
            None => Duration::from_secs(3600),
        };
        let log_json = matches!(var("RECAUDO_LOG_FORMAT").as_deref(), Some("json") | Some("JSON"));
        let credit_refresh_interval = match var("RECAUDO_CREDIT_REFRESH_MS") {
            Some(v) => match v.parse::<u64>() {
                Ok(0) => None,
                Ok(ms) => Some(Duration::from_millis(ms)),
                Err(_) => {
                    return Err(format!(
                        "RECAUDO_CREDIT_REFRESH_MS must be a number of milliseconds, got `{v}`"
                    ));
                }
            },
            None => Some(DEFAULT_CREDIT_REFRESH),
        };
        Ok(Config {
            database_url,
            data_dir,
            bind: var("RECAUDO_BIND").unwrap_or_else(|| "127.0.0.1:8080".into()),
            log_filter: var("RECAUDO_LOG").unwrap_or_else(|| "info".into()),
            log_json,
            pool_size,
            workers,
            db_concurrency,
            token_issuer: var("RECAUDO_TOKEN_ISSUER").unwrap_or_else(|| "recaudo".into()),
            token_audience: var("RECAUDO_TOKEN_AUDIENCE").unwrap_or_else(|| "recaudo".into()),
            token_ttl,
            external_idp: ExternalIdp::from_env()?,
            scheduler: scheduler_from_env()?,
            smtp: smtp_from_env()?,
            credit_refresh_interval,
            payment_posters: positive::<usize>("RECAUDO_PAYMENT_POSTERS")?.unwrap_or_else(cpu_cores),
        })
    }

    /// A configuration for tests and embedding: everything default but the two locations.
    pub fn for_database(database_url: &str, data_dir: PathBuf) -> Config {
        Config {
            database_url: database_url.to_string(),
            data_dir,
            bind: "127.0.0.1:0".into(),
            log_filter: "warn".into(),
            log_json: false,
            pool_size: 8,
            workers: Some(2),
            db_concurrency: None,
            token_issuer: "recaudo".into(),
            token_audience: "recaudo".into(),
            token_ttl: Duration::from_secs(3600),
            external_idp: None,
            scheduler: None,
            smtp: None,
            credit_refresh_interval: Some(DEFAULT_CREDIT_REFRESH),
            payment_posters: 2,
        }
    }
}

/// Database work per CPU core by default. Measured on 2 cores, quick book, alternating runs
/// of the same binary: against actix's default (512 blocking threads shared by the workers:
/// GET 7 094–8 448 req/s at p99 50–58 ms, credit checks 5 225–5 930/s), 4 per core gave GET
/// 9 462–9 501 req/s at p99 26–27 ms and credit checks 6 461–6 778/s; later, 2 per core
/// against 4: GET 12 649–13 102 req/s at p99 13–14 ms against 10 721–12 413 at 18–22 ms,
/// credit checks at p99 15 ms against 31–36 ms at the same rate, and the same invoice-load
/// and payment rates.
pub const DB_CONCURRENCY_PER_CORE: usize = 2;

impl Config {
    /// HTTP worker threads: the configured number, or one per CPU core (actix's default).
    pub fn http_workers(&self) -> usize {
        self.workers.unwrap_or_else(cpu_cores)
    }

    /// The size of each worker's blocking pool, where handlers run diesel: the database
    /// concurrency shared out over the workers (at least one each).
    ///
    /// Every request waiting on the database holds a blocking thread. With hundreds of them
    /// runnable on a few cores, the scheduler gives each worker thread (which serves all of
    /// its connections) the same share as any one of them, and a few requests stall for
    /// whole time slices: the p99 of reads was 50–400 ms where the median was a few ms.
    /// Bounded, requests wait in the pool's FIFO queue instead, and the database sees no
    /// more concurrent statements than it has cores to run them.
    pub fn blocking_threads_per_worker(&self) -> usize {
        let total = self
            .db_concurrency
            .unwrap_or_else(|| DB_CONCURRENCY_PER_CORE * cpu_cores());
        total.div_ceil(self.http_workers()).max(1)
    }
}

fn cpu_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl ExternalIdp {
    fn from_env() -> Result<Option<ExternalIdp>, String> {
        let Some(key_file) = var("RECAUDO_IDP_PUBLIC_KEY_FILE") else {
            return Ok(None);
        };
        let public_key_pem = std::fs::read_to_string(&key_file)
            .map_err(|e| format!("cannot read RECAUDO_IDP_PUBLIC_KEY_FILE `{key_file}`: {e}"))?;
        let algorithm = match var("RECAUDO_IDP_ALGORITHM").as_deref() {
            None | Some("RS256") => Algorithm::RS256,
            Some("ES256") => Algorithm::ES256,
            Some(other) => return Err(format!("RECAUDO_IDP_ALGORITHM must be RS256 or ES256, got `{other}`")),
        };
        let issuer =
            var("RECAUDO_IDP_ISSUER").ok_or("RECAUDO_IDP_ISSUER is required with RECAUDO_IDP_PUBLIC_KEY_FILE")?;
        let audience =
            var("RECAUDO_IDP_AUDIENCE").ok_or("RECAUDO_IDP_AUDIENCE is required with RECAUDO_IDP_PUBLIC_KEY_FILE")?;
        Ok(Some(ExternalIdp {
            public_key_pem,
            algorithm,
            issuer,
            audience,
        }))
    }
}

fn scheduler_from_env() -> Result<Option<crate::scheduler::SchedulerConfig>, String> {
    if matches!(
        var("RECAUDO_SCHEDULER").as_deref(),
        Some("off") | Some("false") | Some("0")
    ) {
        return Ok(None);
    }
    let daily_at = match var("RECAUDO_DAILY_AT") {
        Some(v) => chrono::NaiveTime::parse_from_str(&v, "%H:%M")
            .map_err(|_| format!("RECAUDO_DAILY_AT must be a UTC time HH:MM, got `{v}`"))?,
        None => chrono::NaiveTime::from_hms_opt(5, 0, 0).unwrap_or_default(),
    };
    Ok(Some(crate::scheduler::SchedulerConfig {
        daily_at,
        tick: Duration::from_secs(60),
    }))
}

fn smtp_from_env() -> Result<Option<crate::delivery::SmtpSettings>, String> {
    let Some(url) = var("RECAUDO_SMTP_URL") else {
        return Ok(None);
    };
    let from = var("RECAUDO_SMTP_FROM").ok_or("RECAUDO_SMTP_FROM is required with RECAUDO_SMTP_URL")?;
    let mut smtp = crate::delivery::SmtpSettings::new(&url, &from, var("RECAUDO_SMTP_REPLY_TO").as_deref())?;
    if let Some(v) = var("RECAUDO_SMTP_POLL_INTERVAL") {
        smtp.poll_interval = parse_ttl(&v).map_err(|e| format!("RECAUDO_SMTP_POLL_INTERVAL: {e}"))?;
    }
    if let Some(v) = var("RECAUDO_SMTP_MAX_ATTEMPTS") {
        smtp.retry.max_attempts = v
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| format!("RECAUDO_SMTP_MAX_ATTEMPTS must be an integer from 1 to 100, got `{v}`"))?;
    }
    if let Some(v) = var("RECAUDO_SMTP_RETRY_AFTER") {
        smtp.retry.base = parse_ttl(&v).map_err(|e| format!("RECAUDO_SMTP_RETRY_AFTER: {e}"))?;
        smtp.retry.cap = smtp.retry.cap.max(smtp.retry.base);
    }
    Ok(Some(smtp))
}

/// A variable that must be an integer above zero when set.
fn positive<T: std::str::FromStr + PartialOrd + From<u8>>(name: &str) -> Result<Option<T>, String> {
    var(name)
        .map(|v| {
            v.parse::<T>()
                .ok()
                .filter(|n| *n > T::from(0))
                .ok_or_else(|| format!("{name} must be a positive integer, got `{v}`"))
        })
        .transpose()
}

/// `"1h"`, `"30m"`, `"7d"` → a duration (humantime syntax), at least one second.
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let ttl = humantime::parse_duration(text.trim()).map_err(|e| format!("`{text}` is not a duration: {e}"))?;
    if ttl < Duration::from_secs(1) {
        return Err("must be at least 1s".into());
    }
    Ok(ttl)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_concurrency_is_shared_out_over_the_workers() {
        let threads = |concurrency: &str, workers: &str| {
            load(
                "",
                &[("RECAUDO_DB_CONCURRENCY", concurrency), ("RECAUDO_WORKERS", workers)],
            )
            .expect("valid")
            .blocking_threads_per_worker()
        };
        assert_eq!(threads("8", "2"), 4);
        assert_eq!(threads("9", "2"), 5);
        assert_eq!(threads("1", "4"), 1);
        let default = load("", &[("RECAUDO_WORKERS", "1")]).expect("valid");
        assert_eq!(default.db_concurrency, None);
        assert_eq!(
            default.blocking_threads_per_worker(),
            DB_CONCURRENCY_PER_CORE * cpu_cores()
        );
        let error = load("", &[("RECAUDO_DB_CONCURRENCY", "0")]).expect_err("zero");
        assert!(
            error.contains("RECAUDO_DB_CONCURRENCY must be a positive integer"),
            "{error}"
        );
        let from_file = load("db_concurrency = 6\nworkers = 3\n", &[]).expect("valid");
        assert_eq!(from_file.blocking_threads_per_worker(), 2);
    }

    fn env(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
        Some(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    /// Loads `toml` as a config file with `pairs` as the whole environment.
    fn load(toml: &str, pairs: &[(&str, &str)]) -> Result<Config, String> {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("recaudo.toml");
        std::fs::write(&path, toml).expect("written");
        Config::load_with(Some(&path), env(pairs))
    }

    #[test]
    fn without_a_file_the_defaults_apply() {
        let config = Config::load_with(None, env(&[])).expect("valid");
        assert_eq!(config.bind, "127.0.0.1:8080");
        assert_eq!(config.data_dir, PathBuf::from("./data"));
        assert_eq!(config.database_url, "sqlite://./data/recaudo.db");
        assert_eq!(config.pool_size, 64);
        assert!(config.scheduler.is_some());
    }

    #[test]
    fn the_file_sets_every_kind_of_value() {
        let config = load(
            "bind = \"0.0.0.0:9000\"\ndata_dir = \"/srv/recaudo\"\ndb_pool_size = 16\nworkers = 3\n\
             log_format = \"json\"\ntoken_ttl = \"30m\"\nscheduler = false\n",
            &[],
        )
        .expect("valid");
        assert_eq!(config.bind, "0.0.0.0:9000");
        assert_eq!(config.database_url, "sqlite:///srv/recaudo/recaudo.db");
        assert_eq!(config.pool_size, 16);
        assert_eq!(config.workers, Some(3));
        assert!(config.log_json);
        assert_eq!(config.token_ttl, Duration::from_secs(1800));
        assert!(config.scheduler.is_none());
    }

    #[test]
    fn environment_variables_override_the_file() {
        let file = "bind = \"0.0.0.0:9000\"\ndb_pool_size = 16\ndatabase_url = \"postgres://file@db/recaudo\"\n";
        let config = load(file, &[("RECAUDO_BIND", "127.0.0.1:7000")]).expect("valid");
        assert_eq!(config.bind, "127.0.0.1:7000");
        assert_eq!(config.pool_size, 16);
        assert_eq!(config.database_url, "postgres://file@db/recaudo");
        // DATABASE_URL is an environment variable too: it wins over the file's URL.
        let config = load(file, &[("DATABASE_URL", "postgres://env@db/recaudo")]).expect("valid");
        assert_eq!(config.database_url, "postgres://env@db/recaudo");
        let config = load(
            file,
            &[
                ("DATABASE_URL", "postgres://env@db/recaudo"),
                ("RECAUDO_DATABASE_URL", "postgres://recaudo@db/recaudo"),
            ],
        )
        .expect("valid");
        assert_eq!(config.database_url, "postgres://recaudo@db/recaudo");
        // An empty variable counts as unset, as without a file.
        let config = load(file, &[("RECAUDO_BIND", " ")]).expect("valid");
        assert_eq!(config.bind, "0.0.0.0:9000");
    }

    #[test]
    fn an_unknown_key_is_a_one_line_error() {
        let error = load("bnd = \"0.0.0.0:9000\"\n", &[]).expect_err("unknown key");
        assert!(error.contains("unknown key `bnd`"), "{error}");
        assert!(error.contains("recaudo.toml"), "{error}");
        assert!(!error.contains('\n'), "{error}");
        // Variable names are not keys, and tables are not accepted.
        assert!(load("RECAUDO_BIND = \"x\"\n", &[]).is_err());
        let error = load("[server]\nbind = \"0.0.0.0:9000\"\n", &[]).expect_err("table");
        assert!(
            error.contains("`server` must be a string, an integer or a boolean"),
            "{error}"
        );
    }

    #[test]
    fn an_unreadable_or_invalid_file_is_a_one_line_error() {
        let missing = Path::new("/nonexistent/recaudo.toml");
        let error = Config::load_with(Some(missing), env(&[])).expect_err("missing");
        assert!(
            error.starts_with("cannot read config file `/nonexistent/recaudo.toml`"),
            "{error}"
        );
        assert!(!error.contains('\n'), "{error}");
        let error = load("bind = \"0.0.0.0:9000\"\nworkers = = 3\n", &[]).expect_err("invalid TOML");
        assert!(error.contains("line 2"), "{error}");
        assert!(!error.contains('\n'), "{error}");
    }

    #[test]
    fn a_bad_value_in_the_file_names_the_setting_and_the_file() {
        let error = load("db_pool_size = 0\n", &[]).expect_err("invalid");
        assert!(
            error.contains("RECAUDO_DB_POOL_SIZE must be a positive integer"),
            "{error}"
        );
        assert!(error.contains("recaudo.toml"), "{error}");
        // The environment's valid value wins over the file's invalid one.
        let config = load("db_pool_size = 0\n", &[("RECAUDO_DB_POOL_SIZE", "8")]).expect("valid");
        assert_eq!(config.pool_size, 8);
    }
}
