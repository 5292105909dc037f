//! `/v1/api-clients`: admins create (the secret is shown once), list and revoke the API
//! clients an ERP or script uses with the client-credentials grant.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Auth;
use crate::auth::roles::{ADMINS, Role};
use crate::db::repo::api_clients::ApiClient;
use crate::db::{self};
use crate::domain::ids::Kind;
use crate::domain::text;
use crate::error::{AppError, Violations};
use crate::http::{PageRequest, Routes, utc};
use crate::state::AppState;

pub fn routes(routes: &mut Routes) {
    routes.at("/api-clients", |r| {
        r.route(web::get().to(list)).route(web::post().to(create))
    });
    routes.at("/api-clients/{id}", |r| r.route(web::get().to(get)));
    routes.at("/api-clients/{id}/revoke", |r| r.route(web::post().to(revoke)));
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "SAP nightly sync", "role": "integration"}))]
pub struct ApiClientCreate {
    pub name: String,
    pub role: Role,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "apc_1", "client_id": "rc_5f0c2a9e8b7d6c5b4a39281f", "name": "SAP nightly sync", "role": "integration",
    "created_at": "2026-11-23T10:00:00Z", "revoked_at": null
}))]
pub struct ApiClientResponse {
    pub id: String,
    pub client_id: String,
    pub name: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The created client with its secret: the only time the secret is shown.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "apc_1", "client_id": "rc_5f0c2a9e8b7d6c5b4a39281f", "name": "SAP nightly sync", "role": "integration",
    "created_at": "2026-11-23T10:00:00Z", "revoked_at": null,
    "client_secret": "x4C0a9Vq3mZr7TnE1yLbKd2WuH8sJfPoG5iQeR6tYlA"
}))]
pub struct ApiClientCreated {
    #[serde(flatten)]
    pub client: ApiClientResponse,
    pub client_secret: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "items": [
        {
            "id": "apc_1", "client_id": "rc_5f0c2a9e8b7d6c5b4a39281f", "name": "SAP nightly sync",
            "role": "integration", "created_at": "2026-11-23T10:00:00Z", "revoked_at": null
        }
    ],
    "next_cursor": "YWZ0ZXI6MQ"
}))]
pub struct ApiClientPage {
    pub items: Vec<ApiClientResponse>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApiClientListQuery {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

impl From<&ApiClient> for ApiClientResponse {
    fn from(c: &ApiClient) -> Self {
        ApiClientResponse {
            id: Kind::ApiClient.encode(c.id),
            client_id: c.client_id.clone(),
            name: c.name.clone(),
            role: c.role.clone(),
            created_at: utc(c.created_at),
            revoked_at: c.revoked_at.map(utc),
        }
    }
}

fn client_id(path: &str) -> Result<i64, AppError> {
    Kind::ApiClient
        .decode(path)
        .ok_or_else(|| AppError::not_found("API client"))
}

/// Create an API client; the response carries its secret once.
#[utoipa::path(post, path = "/v1/api-clients", tag = "api-clients", request_body = ApiClientCreate,
    responses((status = 201, description = "Created, with the secret", body = ApiClientCreated)),
    security(("bearer" = ["admin"])))]
pub async fn create(
    auth: Auth,
    state: web::Data<AppState>,
    body: web::Json<ApiClientCreate>,
) -> Result<HttpResponse, AppError> {
    auth.require(ADMINS)?;
    let mut v = Violations::new();
    let name = text::required(&mut v, "name", Some(&body.name), 200);
    let name = v.into_result(name)?.unwrap_or_default();
    let (org, role) = (auth.org_id, body.role);
    let (client, secret) = db::run(&state.pool, move |c| {
        crate::service::api_clients::create(c, org, &name, role)
    })
    .await?;
    Ok(HttpResponse::Created().json(ApiClientCreated {
        client: ApiClientResponse::from(&client),
        client_secret: secret,
    }))
}

/// List the organisation's API clients (secrets are never shown again).
#[utoipa::path(get, path = "/v1/api-clients", tag = "api-clients", params(ApiClientListQuery),
    responses((status = 200, description = "A page of API clients", body = ApiClientPage)),
    security(("bearer" = ["admin"])))]
pub async fn list(
    auth: Auth,
    state: web::Data<AppState>,
    query: web::Query<ApiClientListQuery>,
) -> Result<HttpResponse, AppError> {
    auth.require(ADMINS)?;
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let org = auth.org_id;
    let rows = db::run(&state.pool, move |c| {
        db::repo::api_clients::list(c, org, page.after_id, page.fetch_limit())
    })
    .await?;
    let (rows, next_cursor) = page.finish(rows, |r| r.id);
    Ok(HttpResponse::Ok().json(ApiClientPage {
        items: rows.iter().map(ApiClientResponse::from).collect(),
        next_cursor,
    }))
}

/// Get an API client.
#[utoipa::path(get, path = "/v1/api-clients/{id}", tag = "api-clients",
    params(("id" = String, Path, description = "API client id, e.g. `apc_1`")),
    responses((status = 200, description = "The API client", body = ApiClientResponse)),
    security(("bearer" = ["admin"])))]
pub async fn get(auth: Auth, state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, AppError> {
    auth.require(ADMINS)?;
    let (org, id) = (auth.org_id, client_id(&path)?);
    let row = db::run(&state.pool, move |c| db::repo::api_clients::find(c, org, id)).await?;
    Ok(HttpResponse::Ok().json(ApiClientResponse::from(&row)))
}

/// Revoke an API client: it can no longer obtain tokens.
#[utoipa::path(post, path = "/v1/api-clients/{id}/revoke", tag = "api-clients",
    params(("id" = String, Path, description = "API client id")),
    responses((status = 200, description = "The revoked client", body = ApiClientResponse)),
    security(("bearer" = ["admin"])))]
pub async fn revoke(auth: Auth, state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, AppError> {
    auth.require(ADMINS)?;
    let (org, id) = (auth.org_id, client_id(&path)?);
    let row = db::run(&state.pool, move |c| db::repo::api_clients::revoke(c, org, id)).await?;
    Ok(HttpResponse::Ok().json(ApiClientResponse::from(&row)))
}
