//! `GET /v1/worklist` (whom to contact now, P4/P6/P12) and `POST /v1/activities` (the
//! contact log, P18).

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Auth;
use crate::auth::roles::{COLLECTION_STAFF, Role};
use crate::db::{self, write_transaction};
use crate::error::AppError;
use crate::http::Routes;
use crate::service::worklist::{ActivityInput, ActivityResult, Worklist};
use crate::state::AppState;

pub fn routes(routes: &mut Routes) {
    routes.at("/worklist", |r| r.route(web::get().to(worklist)));
    routes.at("/activities", |r| r.route(web::post().to(log_activity)));
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WorklistQuery {
    /// A collector's subject (managers only); default the caller. `*` = everyone's.
    pub collector: Option<String>,
    /// The instant to plan for (RFC 3339, default now): calling windows are checked at it.
    pub at: Option<String>,
}

/// The caller's work, highest priority first (money at stake, broken promises, lateness),
/// each with its context and script; calls outside the contact's calling window are listed
/// apart with the next window.
#[utoipa::path(get, path = "/v1/worklist", tag = "collection", params(WorklistQuery),
    responses((status = 200, description = "The worklist", body = Worklist)),
    security(("bearer" = ["admin", "manager", "collector", "sales"])))]
pub async fn worklist(
    auth: Auth,
    state: web::Data<AppState>,
    query: web::Query<WorklistQuery>,
) -> Result<HttpResponse, AppError> {
    auth.require(COLLECTION_STAFF)?;
    let manager = auth.has(Role::Admin) || auth.has(Role::Manager);
    let collector = match query.collector.as_deref() {
        None => Some(auth.subject.clone()),
        Some(c) if c == auth.subject => Some(c.to_string()),
        Some("*") if manager => None,
        Some(c) if manager => Some(c.to_string()),
        Some(_) => {
            return Err(AppError::Forbidden(
                "only managers may see another collector's worklist".into(),
            ));
        }
    };
    let at = match query.at.as_deref() {
        None => Utc::now(),
        Some(t) => DateTime::parse_from_rfc3339(t)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| AppError::invalid("at", "must be an RFC 3339 instant"))?,
    };
    let org = auth.org_id;
    let list = db::run(&state.pool, move |c| {
        crate::service::credit_queue::settle_org(c, org)?;
        crate::service::worklist::worklist(c, org, collector.as_deref(), at)
    })
    .await?;
    Ok(HttpResponse::Ok().json(list))
}

/// Log a contact with its outcome: `promise_made` creates the promise, `dispute_raised` the
/// dispute, `not_received`/`in_spam` re-send the invoices and restart their clock,
/// `paid_already` creates a task to find the payment.
#[utoipa::path(post, path = "/v1/activities", tag = "collection", request_body = ActivityInput,
    responses((status = 201, description = "Logged, with what it created", body = ActivityResult)),
    security(("bearer" = ["admin", "manager", "collector", "sales"])))]
pub async fn log_activity(
    auth: Auth,
    state: web::Data<AppState>,
    body: web::Json<ActivityInput>,
) -> Result<HttpResponse, AppError> {
    auth.require(COLLECTION_STAFF)?;
    let (org, actor, today, input) = (auth.org_id, auth.subject.clone(), state.today(), body.into_inner());
    let result = db::run(&state.pool, move |c| {
        write_transaction(c, |c| {
            crate::service::worklist::log_contact(c, org, &actor, &input, today)
        })
    })
    .await?;
    Ok(HttpResponse::Created().json(result))
}
