//! Configuration, read once from the environment into typed values. Every variable is
//! listed in the README's configuration table.

use std::path::PathBuf;
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
    pub token_issuer: String,
    pub token_audience: String,
    pub token_ttl: Duration,
    pub external_idp: Option<ExternalIdp>,
    /// The daily-jobs scheduler; `None` turns it off (`RECAUDO_SCHEDULER=off`).
    pub scheduler: Option<crate::scheduler::SchedulerConfig>,
    /// E-mail delivery by SMTP; `None` (no `RECAUDO_SMTP_URL`) leaves messages queued.
    pub smtp: Option<crate::delivery::SmtpSettings>,
}

/// An external identity provider whose tokens are accepted beside the service's own.
#[derive(Debug, Clone)]
pub struct ExternalIdp {
    pub public_key_pem: String,
    pub algorithm: Algorithm,
    pub issuer: String,
    pub audience: String,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Config {
    /// Reads `RECAUDO_*` variables (see the README); `DATABASE_URL` is a fallback for the URL.
    pub fn from_env() -> Result<Config, String> {
        let data_dir = PathBuf::from(var("RECAUDO_DATA_DIR").unwrap_or_else(|| "./data".into()));
        let database_url = var("RECAUDO_DATABASE_URL")
            .or_else(|| var("DATABASE_URL"))
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("recaudo.db").display()));
        let pool_size = match var("RECAUDO_DB_POOL_SIZE") {
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("RECAUDO_DB_POOL_SIZE must be a positive integer, got `{v}`"))?,
            None => 64,
        };
        let workers = match var("RECAUDO_WORKERS") {
            Some(v) => Some(
                v.parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("RECAUDO_WORKERS must be a positive integer, got `{v}`"))?,
            ),
            None => None,
        };
        let token_ttl = match var("RECAUDO_TOKEN_TTL") {
            Some(v) => parse_ttl(&v).map_err(|e| format!("RECAUDO_TOKEN_TTL: {e}"))?,
            None => Duration::from_secs(3600),
        };
        let log_json = matches!(var("RECAUDO_LOG_FORMAT").as_deref(), Some("json") | Some("JSON"));
        Ok(Config {
            database_url,
            data_dir,
            bind: var("RECAUDO_BIND").unwrap_or_else(|| "127.0.0.1:8080".into()),
            log_filter: var("RECAUDO_LOG").unwrap_or_else(|| "info".into()),
            log_json,
            pool_size,
            workers,
            token_issuer: var("RECAUDO_TOKEN_ISSUER").unwrap_or_else(|| "recaudo".into()),
            token_audience: var("RECAUDO_TOKEN_AUDIENCE").unwrap_or_else(|| "recaudo".into()),
            token_ttl,
            external_idp: ExternalIdp::from_env()?,
            scheduler: scheduler_from_env()?,
            smtp: smtp_from_env()?,
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
            token_issuer: "recaudo".into(),
            token_audience: "recaudo".into(),
            token_ttl: Duration::from_secs(3600),
            external_idp: None,
            scheduler: None,
            smtp: None,
        }
    }
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

/// `"1h"`, `"30m"`, `"7d"` → a duration (humantime syntax), at least one second.
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let ttl = humantime::parse_duration(text.trim()).map_err(|e| format!("`{text}` is not a duration: {e}"))?;
    if ttl < Duration::from_secs(1) {
        return Err("must be at least 1s".into());
    }
    Ok(ttl)
}
