//! `/v1/settings`: the caller's organisation settings (business-rule choices).

use actix_web::{HttpResponse, web};

use crate::auth::Auth;
use crate::auth::roles::{ADMINS, READERS};
use crate::db::{self, write_transaction};
use crate::domain::settings::OrgSettings;
use crate::error::AppError;
use crate::http::Routes;
use crate::state::AppState;

pub fn routes(routes: &mut Routes) {
    routes.at("/settings", |r| {
        r.route(web::get().to(get)).route(web::patch().to(patch))
    });
}

/// The organisation's settings.
#[utoipa::path(get, path = "/v1/settings", tag = "settings",
    responses((status = 200, description = "Current settings", body = OrgSettings)),
    security(("bearer" = ["admin", "manager", "collector", "sales", "integration", "viewer"])))]
pub async fn get(auth: Auth, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    auth.require(READERS)?;
    let org = auth.org_id;
    let settings = db::run(&state.pool, move |c| {
        Ok(OrgSettings::from_stored(
            &db::repo::organizations::find(c, org)?.settings,
        ))
    })
    .await?;
    Ok(HttpResponse::Ok().json(settings))
}

/// Change settings (JSON merge patch).
#[utoipa::path(patch, path = "/v1/settings", tag = "settings",
    request_body(content = OrgSettings, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The new settings", body = OrgSettings)),
    security(("bearer" = ["admin"])))]
pub async fn patch(
    auth: Auth,
    state: web::Data<AppState>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, AppError> {
    auth.require(ADMINS)?;
    let org = auth.org_id;
    let settings = db::run(&state.pool, move |c| {
        write_transaction(c, |c| {
            let current = OrgSettings::from_stored(&db::repo::organizations::find(c, org)?.settings);
            let next: OrgSettings = crate::service::merge_patch(&current, &body)?;
            next.validate().map_err(AppError::Validation)?;
            let text = serde_json::to_string(&next).map_err(|e| AppError::internal(e.to_string()))?;
            db::repo::organizations::update_settings(c, org, &text)?;
            Ok(next)
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(settings))
}
