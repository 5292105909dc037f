//! API clients of an organisation (OAuth2 client credentials).

use diesel::prelude::*;

use crate::db::schema::api_clients;
use crate::db::{DbConnection, now};
use crate::error::AppError;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_clients)]
pub struct ApiClient {
    pub id: i64,
    pub org_id: i64,
    pub client_id: String,
    pub name: String,
    pub role: String,
    pub secret_hash: String,
    pub created_at: chrono::NaiveDateTime,
    pub revoked_at: Option<chrono::NaiveDateTime>,
}

#[derive(Insertable)]
#[diesel(table_name = api_clients)]
struct NewApiClient<'a> {
    org_id: i64,
    client_id: &'a str,
    name: &'a str,
    role: &'a str,
    secret_hash: &'a str,
    created_at: chrono::NaiveDateTime,
}

pub fn create(
    conn: &mut DbConnection,
    org_id: i64,
    client_id: &str,
    name: &str,
    role: &str,
    secret_hash: &str,
) -> Result<ApiClient, AppError> {
    diesel::insert_into(api_clients::table)
        .values(NewApiClient {
            org_id,
            client_id,
            name,
            role,
            secret_hash,
            created_at: now(),
        })
        .execute(conn)?;
    find_by_client_id(conn, client_id)?.ok_or_else(|| AppError::internal("API client vanished after insert"))
}

/// Any organisation's client by its public id (the token endpoint does not know the org).
pub fn find_by_client_id(conn: &mut DbConnection, client_id: &str) -> Result<Option<ApiClient>, AppError> {
    Ok(api_clients::table
        .filter(api_clients::client_id.eq(client_id))
        .select(ApiClient::as_select())
        .first(conn)
        .optional()?)
}

pub fn list(conn: &mut DbConnection, org_id: i64, after_id: i64, limit: i64) -> Result<Vec<ApiClient>, AppError> {
    Ok(api_clients::table
        .filter(api_clients::org_id.eq(org_id))
        .filter(api_clients::id.gt(after_id))
        .order(api_clients::id.asc())
        .limit(limit)
        .select(ApiClient::as_select())
        .load(conn)?)
}

pub fn find(conn: &mut DbConnection, org_id: i64, id: i64) -> Result<ApiClient, AppError> {
    api_clients::table
        .filter(api_clients::org_id.eq(org_id))
        .filter(api_clients::id.eq(id))
        .select(ApiClient::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| AppError::not_found("API client"))
}

/// Revokes a client (idempotent: revoking twice keeps the first revocation time).
pub fn revoke(conn: &mut DbConnection, org_id: i64, id: i64) -> Result<ApiClient, AppError> {
    diesel::update(
        api_clients::table
            .filter(api_clients::org_id.eq(org_id))
            .filter(api_clients::id.eq(id))
            .filter(api_clients::revoked_at.is_null()),
    )
    .set(api_clients::revoked_at.eq(now()))
    .execute(conn)?;
    find(conn, org_id, id)
}
