//! `/v1/users`: the user directory (admins). Collectors, sales representatives and
//! managers by the subject of their tokens, with the name, e-mail and phone letters and
//! worklists show.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Auth;
use crate::auth::roles::{ADMINS, Role};
use crate::db::repo::users::{UserFilter, UserRow};
use crate::db::{self, write_transaction};
use crate::domain::ids::Kind;
use crate::domain::user::UserInput;
use crate::error::AppError;
use crate::http::{PageRequest, Routes, if_match, parse_instant, utc, with_etag};
use crate::service;
use crate::state::AppState;

pub fn routes(routes: &mut Routes) {
    routes.at("/users", |r| r.route(web::get().to(list)).route(web::post().to(create)));
    routes.at("/users/{id}", |r| {
        r.route(web::get().to(get)).route(web::patch().to(patch))
    });
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": "usr_1", "subject": "laura.marti", "display_name": "Laura Martí",
    "email": "laura.marti@example.com", "phone": "+34 933 000 222", "roles": ["collector"], "team": "Iberia",
    "language": "ca", "active": true, "version": 1,
    "created_at": "2026-11-23T09:00:00Z", "updated_at": "2026-11-23T09:00:00Z"}))]
pub struct UserResponse {
    pub id: String,
    /// The `sub` of the user's tokens.
    pub subject: String,
    pub display_name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub roles: Vec<Role>,
    pub team: Option<String>,
    pub language: Option<String>,
    pub active: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&UserRow> for UserResponse {
    fn from(u: &UserRow) -> UserResponse {
        UserResponse {
            id: Kind::User.encode(u.id),
            subject: u.subject.clone(),
            display_name: u.display_name.clone(),
            email: u.email.clone(),
            phone: u.phone.clone(),
            roles: u.role_names().iter().filter_map(|r| Role::parse(r)).collect(),
            team: u.team.clone(),
            language: u.language.clone(),
            active: u.active,
            version: u.version,
            created_at: utc(u.created_at),
            updated_at: utc(u.updated_at),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"items": [{"id": "usr_1", "subject": "laura.marti", "display_name": "Laura Martí",
    "email": "laura.marti@example.com", "phone": "+34 933 000 222", "roles": ["collector"], "team": "Iberia",
    "language": "ca", "active": true, "version": 1,
    "created_at": "2026-11-23T09:00:00Z", "updated_at": "2026-11-23T09:00:00Z"}], "next_cursor": null}))]
pub struct UserPage {
    pub items: Vec<UserResponse>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserListQuery {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    /// RFC 3339 instant: only users changed since.
    pub updated_since: Option<String>,
    pub active: Option<bool>,
    pub team: Option<String>,
    pub subject: Option<String>,
}

fn user_id(path: &str) -> Result<i64, AppError> {
    Kind::User.decode(path).ok_or_else(|| AppError::not_found("user"))
}

/// Add a user to the directory.
#[utoipa::path(post, path = "/v1/users", tag = "users", request_body = UserInput,
    responses((status = 201, description = "Created", body = UserResponse),
              (status = 409, description = "The subject is already in the directory", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin"])))]
pub async fn create(
    auth: Auth,
    state: web::Data<AppState>,
    body: web::Json<UserInput>,
) -> Result<HttpResponse, AppError> {
    auth.require(ADMINS)?;
    let (org, input) = (auth.org_id, body.into_inner());
    let row = db::run(&state.pool, move |c| {
        write_transaction(c, |c| service::users::create(c, org, &input))
    })
    .await?;
    let body = UserResponse::from(&row);
    Ok(with_etag(HttpResponse::Created(), body.version, body))
}

/// List the directory.
#[utoipa::path(get, path = "/v1/users", tag = "users", params(UserListQuery),
    responses((status = 200, description = "A page of users", body = UserPage)),
    security(("bearer" = ["admin"])))]
pub async fn list(
    auth: Auth,
    state: web::Data<AppState>,
    query: web::Query<UserListQuery>,
) -> Result<HttpResponse, AppError> {
    auth.require(ADMINS)?;
    let q = query.into_inner();
    let page = PageRequest::parse(q.limit, q.cursor.as_deref())?;
    let filter = UserFilter {
        active: q.active,
        team: q.team,
        subject: q.subject,
        updated_since: parse_instant("updated_since", q.updated_since.as_deref())?,
    };
    let org = auth.org_id;
    let rows = db::run(&state.pool, move |c| {
        db::repo::users::list(c, org, &filter, page.after_id, page.fetch_limit())
    })
    .await?;
    let (rows, next_cursor) = page.finish(rows, |r| r.id);
    Ok(HttpResponse::Ok().json(UserPage {
        items: rows.iter().map(UserResponse::from).collect(),
        next_cursor,
    }))
}

/// Get a user.
#[utoipa::path(get, path = "/v1/users/{id}", tag = "users",
    params(("id" = String, Path, description = "User id, e.g. `usr_1`")),
    responses((status = 200, description = "The user", body = UserResponse)),
    security(("bearer" = ["admin"])))]
pub async fn get(auth: Auth, state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, AppError> {
    auth.require(ADMINS)?;
    let (org, id) = (auth.org_id, user_id(&path)?);
    let row = db::run(&state.pool, move |c| db::repo::users::find(c, org, id)).await?;
    let body = UserResponse::from(&row);
    Ok(with_etag(HttpResponse::Ok(), body.version, body))
}

/// Change a user (JSON merge patch); `active: false` when someone leaves. The subject
/// cannot change.
#[utoipa::path(patch, path = "/v1/users/{id}", tag = "users",
    params(("id" = String, Path, description = "User id"),
           ("If-Match" = Option<String>, Header, description = "Expected version; a mismatch is 412")),
    request_body(content = UserInput, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The user", body = UserResponse),
              (status = 412, description = "Version mismatch", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin"])))]
pub async fn patch(
    auth: Auth,
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, AppError> {
    auth.require(ADMINS)?;
    let (org, id, expected) = (auth.org_id, user_id(&path)?, if_match(&req)?);
    let row = db::run(&state.pool, move |c| {
        write_transaction(c, |c| service::users::patch(c, org, id, expected, &body))
    })
    .await?;
    let body = UserResponse::from(&row);
    Ok(with_etag(HttpResponse::Ok(), body.version, body))
}
