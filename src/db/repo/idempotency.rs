//! Idempotency keys: the first response to a money-moving POST, stored in the same
//! transaction as its effect and replayed for a retry with the same key.

use diesel::prelude::*;

use crate::db::schema::idempotency_keys;
use crate::db::{DbConnection, now};
use crate::error::AppError;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = idempotency_keys)]
pub struct StoredResponse {
    pub org_id: i64,
    pub idempotency_key: String,
    pub request_hash: String,
    pub response_status: i32,
    pub response_body: String,
    pub created_at: chrono::NaiveDateTime,
}

pub fn find(conn: &mut DbConnection, org_id: i64, key: &str) -> Result<Option<StoredResponse>, AppError> {
    Ok(idempotency_keys::table
        .filter(idempotency_keys::org_id.eq(org_id))
        .filter(idempotency_keys::idempotency_key.eq(key))
        .select(StoredResponse::as_select())
        .first(conn)
        .optional()?)
}

pub fn insert(
    conn: &mut DbConnection,
    org_id: i64,
    key: &str,
    request_hash: &str,
    status: u16,
    body: &str,
) -> Result<(), AppError> {
    diesel::insert_into(idempotency_keys::table)
        .values((
            idempotency_keys::org_id.eq(org_id),
            idempotency_keys::idempotency_key.eq(key),
            idempotency_keys::request_hash.eq(request_hash),
            idempotency_keys::response_status.eq(i32::from(status)),
            idempotency_keys::response_body.eq(body),
            idempotency_keys::created_at.eq(now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Stores the response of a claimed key.
pub fn complete(conn: &mut DbConnection, org_id: i64, key: &str, status: u16, body: &str) -> Result<(), AppError> {
    diesel::update(
        idempotency_keys::table
            .filter(idempotency_keys::org_id.eq(org_id))
            .filter(idempotency_keys::idempotency_key.eq(key)),
    )
    .set((
        idempotency_keys::response_status.eq(i32::from(status)),
        idempotency_keys::response_body.eq(body),
    ))
    .execute(conn)?;
    Ok(())
}

/// Deletes an organisation's keys older than `before`; returns how many.
pub fn purge(conn: &mut DbConnection, org_id: i64, before: chrono::NaiveDateTime) -> Result<usize, AppError> {
    Ok(diesel::delete(
        idempotency_keys::table
            .filter(idempotency_keys::org_id.eq(org_id))
            .filter(idempotency_keys::created_at.lt(before)),
    )
    .execute(conn)?)
}
