//! Use cases: each public function runs one operation in one transaction on a connection,
//! combining repositories and domain rules. Handlers call these and nothing below them.

use std::collections::HashSet;

pub mod analytics;
pub mod api_clients;
pub mod collectable;
pub mod collection_run;
pub mod credit;
pub mod credit_applications;
pub mod credit_queue;
pub mod customers;
pub mod delivery;
pub mod directory;
pub mod disputes;
pub mod escalations;
pub mod hooks;
pub mod idempotency;
pub mod instalment_reminders;
pub mod invoices;
pub mod payments;
pub mod plans;
pub mod promises;
pub mod statements;
pub mod strategies;
pub mod users;
pub mod worklist;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{AppError, Problem};

/// The organisation's settings (business-rule choices), with defaults for anything unset.
pub fn org_settings(
    c: &mut crate::db::DbConnection,
    org_id: i64,
) -> Result<crate::domain::settings::OrgSettings, AppError> {
    Ok(crate::domain::settings::OrgSettings::from_stored(
        &crate::db::repo::organizations::find(c, org_id)?.settings,
    ))
}

/// What an upsert did to the resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UpsertOutcome {
    Created,
    Updated,
    Unchanged,
}

/// The result of one item of a batch.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"index": 0, "status": "created", "id": "inv_1", "external_id": "F-2026-0042"}))]
pub struct BatchItemResult {
    /// Position of the item in the request.
    pub index: usize,
    /// `created`, `updated`, `unchanged` or `error`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Why this item was not written; the other items are not affected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<Problem>,
}

impl BatchItemResult {
    pub fn written(index: usize, external_id: String, outcome: UpsertOutcome, id: String) -> BatchItemResult {
        let status = match outcome {
            UpsertOutcome::Created => "created",
            UpsertOutcome::Updated => "updated",
            UpsertOutcome::Unchanged => "unchanged",
        };
        BatchItemResult {
            index,
            status: status.into(),
            id: Some(id),
            external_id: Some(external_id),
            problem: None,
        }
    }

    pub fn error(index: usize, external_id: Option<String>, err: &AppError) -> BatchItemResult {
        BatchItemResult {
            index,
            status: "error".into(),
            id: None,
            external_id,
            problem: Some(err.problem()),
        }
    }
}

/// The external id an item claims, for echoing it in its result even when it is invalid.
pub fn claimed_external_id(value: &serde_json::Value) -> Option<String> {
    value.get("external_id").and_then(|v| v.as_str()).map(str::to_string)
}

/// The batch rule on keys: every item of a batch names its `external_id` (a retried batch
/// must land on the same rows), and no two items of one batch name the same one.
pub struct BatchKeys {
    seen: HashSet<String>,
    missing: &'static str,
}

impl BatchKeys {
    /// `missing` is the problem detail for an item without an external id.
    pub fn new(missing: &'static str) -> Self {
        Self {
            seen: HashSet::new(),
            missing,
        }
    }

    /// Accepts an item's external id the first time the batch names it.
    pub fn claim(&mut self, external_id: Option<&str>) -> Result<(), AppError> {
        match external_id {
            None => Err(AppError::invalid("external_id", self.missing)),
            Some(ext) if !self.seen.insert(ext.to_string()) => {
                Err(AppError::invalid("external_id", "appears more than once in this batch"))
            }
            Some(_) => Ok(()),
        }
    }
}

pub const MAX_BATCH: usize = 1000;

/// Parses a JSON value into a request type; shape errors of one batch item become a 400
/// problem for that item only.
pub fn parse_item<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, AppError> {
    serde_json::from_value(value).map_err(|e| AppError::BadRequest(format!("item is not valid: {e}")))
}

/// RFC 7396 merge patch of `patch` onto `base`, parsed back into `T`. Unknown fields and
/// wrong types are a 400, like any malformed body.
pub fn merge_patch<T>(base: &T, patch: &serde_json::Value) -> Result<T, AppError>
where
    T: Serialize + serde::de::DeserializeOwned,
{
    if !patch.is_object() {
        return Err(AppError::BadRequest("a merge patch must be a JSON object".into()));
    }
    let mut doc = serde_json::to_value(base).map_err(|e| AppError::internal(format!("serialise: {e}")))?;
    json_patch::merge(&mut doc, patch);
    serde_json::from_value(doc).map_err(|e| AppError::BadRequest(format!("patch is not valid: {e}")))
}

/// The version a client expects, from `If-Match` (`"3"`, `W/"3"` or `3`); `*` means any.
pub fn parse_if_match(header: Option<&str>) -> Result<Option<i64>, AppError> {
    let Some(raw) = header else { return Ok(None) };
    let raw = raw.trim();
    if raw == "*" {
        return Ok(None);
    }
    let tag = raw.strip_prefix("W/").unwrap_or(raw).trim_matches('"');
    tag.parse::<i64>()
        .map(Some)
        .map_err(|_| AppError::PreconditionFailed(format!("If-Match `{raw}` is not a version of this resource")))
}

pub fn check_version(expected: Option<i64>, current: i64) -> Result<(), AppError> {
    match expected {
        Some(v) if v != current => Err(AppError::PreconditionFailed(format!(
            "the resource is at version {current}, not {v}; reload it and retry"
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_key_is_required_and_claimed_once() {
        let mut keys = BatchKeys::new("is required in a batch");
        assert!(keys.claim(Some("INV-1")).is_ok());
        assert!(keys.claim(Some("INV-2")).is_ok());
        let problem = |r: Result<(), AppError>| match r {
            Err(AppError::Validation(errors)) => (errors[0].field.clone(), errors[0].message.clone()),
            other => panic!("expected a validation problem, got {other:?}"),
        };
        assert_eq!(
            problem(keys.claim(Some("INV-1"))),
            ("external_id".into(), "appears more than once in this batch".into())
        );
        assert_eq!(
            problem(keys.claim(None)),
            ("external_id".into(), "is required in a batch".into())
        );
    }
}
