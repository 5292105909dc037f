//! Idempotent execution of money-moving requests: the key is claimed, the effect applied
//! and the response stored in one transaction, so a retry with the same key and body gets
//! the first response back and never a second effect; the same key with another body is
//! refused. Keys are kept per organisation (purged after `RETENTION`).

use sha2::{Digest, Sha256};

use crate::db::repo::idempotency as repo;
use crate::db::{DbConnection, write_transaction};
use crate::error::AppError;

/// Keys are kept at least this long.
pub const RETENTION: chrono::Duration = chrono::Duration::hours(48);

#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    pub key: String,
    pub request_hash: String,
}

impl IdempotencyKey {
    /// A key for `method path` with this request body; `None` when no key was sent.
    pub fn from_header(
        header: Option<&str>,
        method: &str,
        path: &str,
        body: &impl serde::Serialize,
    ) -> Result<Option<IdempotencyKey>, AppError> {
        let Some(raw) = header else { return Ok(None) };
        let key = raw.trim();
        if key.is_empty() || key.len() > 255 || !key.chars().all(|c| c.is_ascii_graphic()) {
            return Err(AppError::invalid(
                "Idempotency-Key",
                "must be 1–255 visible ASCII characters",
            ));
        }
        let canonical = serde_json::to_string(body).map_err(|e| AppError::internal(format!("serialise: {e}")))?;
        let mut hasher = Sha256::new();
        hasher.update(method.as_bytes());
        hasher.update(b" ");
        hasher.update(path.as_bytes());
        hasher.update(b"\n");
        hasher.update(canonical.as_bytes());
        Ok(Some(IdempotencyKey {
            key: key.to_string(),
            request_hash: hex::encode(hasher.finalize()),
        }))
    }
}

/// A response as sent, and whether it is a replay of a stored one.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: u16,
    pub body: serde_json::Value,
    pub replayed: bool,
}

/// Runs `effect` then `render` in one write transaction, guarded by `key` if given.
pub fn run<T>(
    conn: &mut DbConnection,
    org_id: i64,
    key: Option<&IdempotencyKey>,
    effect: impl Fn(&mut DbConnection) -> Result<T, AppError>,
    render: impl Fn(&mut DbConnection, &T) -> Result<(u16, serde_json::Value), AppError>,
) -> Result<Outcome, AppError> {
    let Some(key) = key else {
        return write_transaction(conn, |c| {
            let value = effect(c)?;
            let (status, body) = render(c, &value)?;
            Ok(Outcome {
                status,
                body,
                replayed: false,
            })
        });
    };
    // A concurrent request with the same key blocks on the claim and then fails on its
    // primary key; the retry finds the stored response.
    for _ in 0..3 {
        let attempt = write_transaction(conn, |c| {
            if let Some(stored) = repo::find(c, org_id, &key.key)? {
                return replay(&stored, key);
            }
            repo::insert(c, org_id, &key.key, &key.request_hash, 0, "")?;
            let value = effect(c)?;
            let (status, body) = render(c, &value)?;
            repo::complete(c, org_id, &key.key, status, &body.to_string())?;
            Ok(Outcome {
                status,
                body,
                replayed: false,
            })
        });
        match attempt {
            Err(AppError::Conflict(message))
                if message.contains("idempotency_keys") || message.contains("same key") =>
            {
                continue;
            }
            other => return other,
        }
    }
    Err(AppError::Conflict(
        "a request with this Idempotency-Key is still being processed; retry".into(),
    ))
}

/// The answer already given under `key`, if a request with it completed: its replay, or the
/// refusal of a different request under the same key. For callers that, unlike [`run`],
/// store the answer only after the effect ([`store`]): a key claimed meanwhile by a
/// concurrent request then makes [`store`] fail, and with it the caller's transaction.
pub fn stored(
    conn: &mut DbConnection,
    org_id: i64,
    key: &IdempotencyKey,
) -> Result<Option<Result<Outcome, AppError>>, AppError> {
    Ok(repo::find(conn, org_id, &key.key)?.map(|s| replay(&s, key)))
}

/// Stores the answer to `key` in the transaction that applied its effect.
pub fn store(
    conn: &mut DbConnection,
    org_id: i64,
    key: &IdempotencyKey,
    status: u16,
    body: &serde_json::Value,
) -> Result<(), AppError> {
    repo::insert(conn, org_id, &key.key, &key.request_hash, status, &body.to_string())
}

fn replay(stored: &repo::StoredResponse, key: &IdempotencyKey) -> Result<Outcome, AppError> {
    if stored.request_hash != key.request_hash {
        return Err(AppError::invalid(
            "Idempotency-Key",
            "was already used with a different request; use a new key for a new request",
        ));
    }
    let status = u16::try_from(stored.response_status).unwrap_or(500);
    let body = serde_json::from_str(&stored.response_body).unwrap_or(serde_json::Value::Null);
    Ok(Outcome {
        status,
        body,
        replayed: true,
    })
}
