//! Customer use cases: create, merge-patch, upsert by external id (one or a batch of
//! up to 1 000, set-based).

use std::collections::HashMap;

use crate::db::repo::customers::{self as repo, CustomerRow};
use crate::db::{DbConnection, write_transaction};
use crate::domain::customer::{CustomerData, CustomerInput};
use crate::domain::ids::Kind;
use crate::error::AppError;
use crate::service::{
    BatchItemResult, BatchKeys, UpsertOutcome, check_version, claimed_external_id, merge_patch, parse_item,
};

pub fn create(conn: &mut DbConnection, org_id: i64, input: &CustomerInput) -> Result<CustomerRow, AppError> {
    let data = input.validate().map_err(AppError::Validation)?;
    write_transaction(conn, |c| {
        if let Some(ext) = &data.external_id
            && !repo::find_by_external_ids(c, org_id, &[ext.as_str()])?.is_empty()
        {
            return Err(AppError::Conflict(format!(
                "a customer with external_id `{ext}` exists; use PUT /v1/customers/by-external-id/{ext} to update it"
            )));
        }
        repo::insert(c, org_id, &data)
    })
}

pub fn patch(
    conn: &mut DbConnection,
    org_id: i64,
    id: i64,
    expected_version: Option<i64>,
    patch: &serde_json::Value,
) -> Result<CustomerRow, AppError> {
    write_transaction(conn, |c| {
        let current = repo::lock(c, org_id, id)?;
        check_version(expected_version, current.version)?;
        let input = merge_patch(&current.data().to_input(), patch)?;
        let data = input.validate().map_err(AppError::Validation)?;
        if data == current.data() {
            return Ok(current);
        }
        if data.external_id != current.external_id
            && let Some(ext) = &data.external_id
            && !repo::find_by_external_ids(c, org_id, &[ext.as_str()])?.is_empty()
        {
            return Err(AppError::Conflict(format!("another customer has external_id `{ext}`")));
        }
        if !repo::update(c, org_id, id, current.version, &data)? {
            return Err(AppError::PreconditionFailed(
                "the customer changed meanwhile; retry".into(),
            ));
        }
        if data.credit_limit_minor != current.credit_limit_minor || data.currency.code() != current.currency {
            crate::service::hooks::credit_inputs_changed(c, org_id, &[id])?;
        }
        repo::find(c, org_id, id)
    })
}

/// PUT by external id: the body is the whole customer; `external_id` comes from the path.
pub fn upsert_one(
    conn: &mut DbConnection,
    org_id: i64,
    external_id: &str,
    mut input: CustomerInput,
) -> Result<(UpsertOutcome, CustomerRow), AppError> {
    if let Some(body_id) = &input.external_id
        && body_id != external_id
    {
        return Err(AppError::invalid(
            "external_id",
            "differs from the external id in the path",
        ));
    }
    input.external_id = Some(external_id.to_string());
    let item = [(0, input.validate().map_err(AppError::Validation)?)];
    write_transaction(conn, |c| {
        let written = upsert_valid(c, org_id, &item)?;
        let (_, _, outcome, id) = written
            .into_iter()
            .next()
            .ok_or_else(|| AppError::internal("empty upsert result"))?;
        Ok((outcome, repo::find(c, org_id, id)?))
    })
}

/// Upserts up to 1 000 customers by external id. Each item is validated on its own; the
/// valid ones are written with one statement, the others get their problem.
pub fn upsert_batch(
    conn: &mut DbConnection,
    org_id: i64,
    items: Vec<serde_json::Value>,
) -> Result<Vec<BatchItemResult>, AppError> {
    let mut results: Vec<Option<BatchItemResult>> = vec![None; items.len()];
    let mut valid: Vec<(usize, CustomerData)> = Vec::with_capacity(items.len());
    let mut keys = BatchKeys::new("is required in a batch upsert");
    for (index, value) in items.into_iter().enumerate() {
        let claimed = claimed_external_id(&value);
        let parsed = parse_item::<CustomerInput>(value).and_then(|input| {
            let data = input.validate().map_err(AppError::Validation)?;
            keys.claim(data.external_id.as_deref())?;
            Ok(data)
        });
        match parsed {
            Ok(data) => valid.push((index, data)),
            Err(e) => results[index] = Some(BatchItemResult::error(index, claimed, &e)),
        }
    }
    let written = write_transaction(conn, |c| upsert_valid(c, org_id, &valid))?;
    for (index, key, outcome, id) in written {
        results[index] = Some(BatchItemResult::written(index, key, outcome, Kind::Customer.encode(id)));
    }
    Ok(results.into_iter().flatten().collect())
}

/// Writes validated customers that all carry distinct external ids: one SELECT of the
/// existing rows, one INSERT … ON CONFLICT for the new and changed ones, one SELECT for
/// the new ids. Returns (item index, outcome, row id).
fn upsert_valid(
    c: &mut DbConnection,
    org_id: i64,
    valid: &[(usize, CustomerData)],
) -> Result<Vec<(usize, String, UpsertOutcome, i64)>, AppError> {
    let keys: Vec<&str> = valid.iter().filter_map(|(_, d)| d.external_id.as_deref()).collect();
    let existing: HashMap<String, CustomerRow> = repo::find_by_external_ids(c, org_id, &keys)?
        .into_iter()
        .filter_map(|row| row.external_id.clone().map(|k| (k, row)))
        .collect();
    let mut to_write = Vec::with_capacity(valid.len());
    let mut outcomes = Vec::with_capacity(valid.len());
    for (index, data) in valid {
        let key = data.external_id.clone().unwrap_or_default();
        let outcome = match existing.get(&key) {
            None => UpsertOutcome::Created,
            Some(row) if row.data() == *data => UpsertOutcome::Unchanged,
            Some(_) => UpsertOutcome::Updated,
        };
        if outcome != UpsertOutcome::Unchanged {
            to_write.push(data);
        }
        outcomes.push((*index, key, outcome));
    }
    repo::upsert_many(c, org_id, &to_write)?;
    let limit_changed: Vec<i64> = valid
        .iter()
        .filter_map(|(_, d)| {
            let row = existing.get(d.external_id.as_deref()?)?;
            (row.credit_limit_minor != d.credit_limit_minor || row.currency != d.currency.code()).then_some(row.id)
        })
        .collect();
    crate::service::hooks::credit_inputs_changed(c, org_id, &limit_changed)?;
    let created: Vec<&str> = outcomes
        .iter()
        .filter(|(_, _, o)| *o == UpsertOutcome::Created)
        .map(|(_, k, _)| k.as_str())
        .collect();
    let mut ids: HashMap<String, i64> = existing.iter().map(|(k, r)| (k.clone(), r.id)).collect();
    for row in repo::find_by_external_ids(c, org_id, &created)? {
        if let Some(k) = row.external_id {
            ids.insert(k, row.id);
        }
    }
    outcomes
        .into_iter()
        .map(|(index, key, outcome)| {
            ids.get(&key)
                .map(|id| (index, key.clone(), outcome, *id))
                .ok_or_else(|| AppError::internal(format!("customer `{key}` missing after upsert")))
        })
        .collect()
}
