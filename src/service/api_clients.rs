//! API-client use cases shared by the HTTP API and the CLI.

use crate::auth::api_clients::{hash_secret, new_client_id, new_secret};
use crate::auth::roles::Role;
use crate::db::DbConnection;
use crate::db::repo::api_clients::{self as repo, ApiClient};
use crate::error::AppError;

/// Creates a client for `role` and returns it with its secret (shown once, stored hashed).
pub fn create(conn: &mut DbConnection, org_id: i64, name: &str, role: Role) -> Result<(ApiClient, String), AppError> {
    let secret = new_secret();
    let hash = hash_secret(&secret)?;
    let client = repo::create(conn, org_id, &new_client_id(), name, role.as_str(), &hash)?;
    Ok((client, secret))
}
