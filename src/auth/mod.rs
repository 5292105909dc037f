//! Authentication and authorisation: signing keys, JWT claims, roles, the request
//! extractor that turns a bearer token into an `Auth` (organisation, subject, roles), and
//! API-client secrets.

pub mod api_clients;
pub mod keys;
pub mod roles;

pub use keys::{Claims, TokenKeys};
pub use roles::Role;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::header, web};

use crate::error::AppError;
use crate::state::AppState;

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Auth {
    pub org_id: i64,
    pub org_slug: String,
    pub subject: String,
    pub roles: Vec<Role>,
}

impl Auth {
    /// 403 unless the caller holds one of `allowed`.
    pub fn require(&self, allowed: &[Role]) -> Result<(), AppError> {
        if self.roles.iter().any(|r| allowed.contains(r)) {
            Ok(())
        } else {
            let names: Vec<&str> = allowed.iter().map(|r| r.as_str()).collect();
            Err(AppError::Forbidden(format!(
                "this operation needs one of the roles: {}",
                names.join(", ")
            )))
        }
    }

    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// Organisation slugs never change and organisations are never deleted, so the slug → id
/// mapping can be remembered per process without invalidation.
#[derive(Debug, Default, Clone)]
pub struct OrgDirectory(Arc<RwLock<HashMap<String, i64>>>);

impl OrgDirectory {
    pub fn get(&self, slug: &str) -> Option<i64> {
        self.0.read().ok().and_then(|m| m.get(slug).copied())
    }

    pub fn remember(&self, slug: &str, id: i64) {
        if let Ok(mut m) = self.0.write() {
            m.insert(slug.to_string(), id);
        }
    }
}

fn bearer_token(req: &HttpRequest) -> Result<&str, AppError> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| AppError::Unauthorized("missing bearer token".into()))?
        .to_str()
        .map_err(|_| AppError::Unauthorized("malformed Authorization header".into()))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| AppError::Unauthorized("expected `Authorization: Bearer <token>`".into()))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AppError::Unauthorized(
            "expected `Authorization: Bearer <token>`".into(),
        ));
    }
    Ok(token.trim())
}

impl FromRequest for Auth {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Auth, AppError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
            return Box::pin(async { Err(AppError::internal("application state missing")) });
        };
        let claims = bearer_token(req).and_then(|token| state.keys.verify(token));
        Box::pin(async move {
            let claims = claims?;
            let roles = claims.roles.iter().filter_map(|r| Role::parse(r)).collect::<Vec<_>>();
            if roles.is_empty() {
                return Err(AppError::Forbidden("the token carries no known role".into()));
            }
            let org_id = match state.orgs.get(&claims.org) {
                Some(id) => id,
                None => {
                    let slug = claims.org.clone();
                    let found = crate::db::run(&state.pool, move |conn| {
                        crate::db::repo::organizations::find_by_slug(conn, &slug)
                    })
                    .await?;
                    let org = found
                        .ok_or_else(|| AppError::Unauthorized(format!("unknown organisation `{}`", claims.org)))?;
                    state.orgs.remember(&org.slug, org.id);
                    org.id
                }
            };
            Ok(Auth {
                org_id,
                org_slug: claims.org,
                subject: claims.sub,
                roles,
            })
        })
    }
}
