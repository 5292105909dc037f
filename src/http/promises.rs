//! `/v1/promises` (promises to pay, P3), `/v1/payment-plans` (P19) and
//! `/v1/promise-evaluations` (the evaluation job on demand).

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Auth;
use crate::auth::roles::{COLLECTION_STAFF, MANAGERS, PLAN_WRITERS, READERS};
use crate::db::repo::plans::{InstalmentRow, PlanFilter, PlanRow};
use crate::db::repo::promises::{PromiseFilter, PromiseRow};
use crate::db::{self, DbConnection, write_transaction};
use crate::domain::ids::Kind;
use crate::domain::money::format_stored;
use crate::domain::plan::PlanStatus;
use crate::domain::promise::PromiseStatus;
use crate::error::AppError;
use crate::http::{PageRequest, Routes, if_match, parse_date, parse_instant, utc, with_etag};
use crate::service::plans::PlanInput;
use crate::service::promises::{EvaluationSummary, PromiseInput};
use crate::service::{self};
use crate::state::AppState;

pub fn routes(routes: &mut Routes) {
    routes.at("/promises", |r| {
        r.route(web::get().to(list)).route(web::post().to(create))
    });
    routes.at("/promises/{id}", |r| {
        r.route(web::get().to(get)).route(web::patch().to(patch))
    });
    routes.at("/promises/{id}/cancel", |r| r.route(web::post().to(cancel)));
    routes.at("/promise-evaluations", |r| r.route(web::post().to(evaluate)));
    routes.at("/payment-plans", |r| {
        r.route(web::get().to(list_plans)).route(web::post().to(create_plan))
    });
    routes.at("/payment-plans/{id}", |r| r.route(web::get().to(get_plan)));
    routes.at("/payment-plans/{id}/cancel", |r| r.route(web::post().to(cancel_plan)));
}

/// A promise to pay and how it is going.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "ptp_1", "customer_id": "cus_1", "invoice_ids": ["inv_3"], "amount": "2350.00", "currency": "EUR",
    "promised_date": "2026-11-27", "window_end": "2026-11-29", "channel": "phone", "contact_name": "Marta Puig",
    "taken_by": "marta", "notes": "Will pay on Friday after their own customer pays", "status": "open",
    "paid_amount": "0.00", "evaluated_at": null, "version": 1, "created_at": "2026-11-23T10:00:00Z",
    "updated_at": "2026-11-23T10:00:00Z"
}))]
pub struct PromiseResponse {
    pub id: String,
    pub customer_id: String,
    /// Covered invoices; empty for a payment on account.
    pub invoice_ids: Vec<String>,
    pub amount: String,
    pub currency: String,
    pub promised_date: NaiveDate,
    /// Last day a payment still counts (promised date + the organisation's tolerance).
    pub window_end: NaiveDate,
    pub channel: String,
    pub contact_name: Option<String>,
    pub taken_by: String,
    pub notes: Option<String>,
    pub status: PromiseStatus,
    /// Paid towards the promise so far.
    pub paid_amount: String,
    pub evaluated_at: Option<DateTime<Utc>>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl PromiseResponse {
    fn load_many(c: &mut DbConnection, rows: &[PromiseRow]) -> Result<Vec<PromiseResponse>, AppError> {
        let ids: Vec<i64> = rows.iter().map(|p| p.id).collect();
        let links = db::repo::promises::links(c, &ids)?;
        Ok(rows
            .iter()
            .map(|p| PromiseResponse {
                id: Kind::Promise.encode(p.id),
                customer_id: Kind::Customer.encode(p.customer_id),
                invoice_ids: links
                    .iter()
                    .filter(|(pid, _)| *pid == p.id)
                    .map(|(_, i)| Kind::Invoice.encode(*i))
                    .collect(),
                amount: format_stored(p.amount_minor, &p.currency),
                currency: p.currency.clone(),
                promised_date: p.promised_date,
                window_end: p.window_end,
                channel: p.channel.clone(),
                contact_name: p.contact_name.clone(),
                taken_by: p.taken_by.clone(),
                notes: p.notes.clone(),
                status: PromiseStatus::parse(&p.status).unwrap_or(PromiseStatus::Open),
                paid_amount: format_stored(p.paid_minor, &p.currency),
                evaluated_at: p.evaluated_at.map(utc),
                version: p.version,
                created_at: utc(p.created_at),
                updated_at: utc(p.updated_at),
            })
            .collect())
    }

    fn load(c: &mut DbConnection, row: &PromiseRow) -> Result<PromiseResponse, AppError> {
        Self::load_many(c, std::slice::from_ref(row))?
            .pop()
            .ok_or_else(|| AppError::internal("promise vanished"))
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "items": [
        {
            "id": "ptp_1", "customer_id": "cus_1", "invoice_ids": ["inv_3"], "amount": "2350.00", "currency": "EUR",
            "promised_date": "2026-11-27", "window_end": "2026-11-29", "channel": "phone",
            "contact_name": "Marta Puig", "taken_by": "marta",
            "notes": "Will pay on Friday after their own customer pays", "status": "open", "paid_amount": "0.00",
            "evaluated_at": null, "version": 1, "created_at": "2026-11-23T10:00:00Z",
            "updated_at": "2026-11-23T10:00:00Z"
        }
    ],
    "next_cursor": "YWZ0ZXI6MQ"
}))]
pub struct PromisePage {
    pub items: Vec<PromiseResponse>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PromiseListQuery {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    pub updated_since: Option<String>,
    pub customer_id: Option<String>,
    /// `open`, `kept`, `partially_kept`, `broken` or `cancelled`.
    pub status: Option<String>,
    pub taken_by: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"as_of": "2026-11-23"}))]
pub struct EvaluationRequest {
    /// Business date to evaluate as of (default today).
    #[serde(default)]
    pub as_of: Option<NaiveDate>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "as_of": "2026-11-23", "promises_evaluated": 42, "promises_kept": 30, "promises_partially_kept": 4,
    "promises_broken": 8, "plans_evaluated": 6, "plans_completed": 1, "plans_defaulted": 1
}))]
pub struct EvaluationResponse {
    pub as_of: NaiveDate,
    #[serde(flatten)]
    pub summary: EvaluationSummary,
}

fn promise_id(path: &str) -> Result<i64, AppError> {
    Kind::Promise.decode(path).ok_or_else(|| AppError::not_found("promise"))
}

/// Take a promise to pay.
#[utoipa::path(post, path = "/v1/promises", tag = "promises", request_body = PromiseInput,
    responses((status = 201, description = "Taken", body = PromiseResponse)),
    security(("bearer" = ["admin", "manager", "collector", "sales"])))]
pub async fn create(
    auth: Auth,
    state: web::Data<AppState>,
    body: web::Json<PromiseInput>,
) -> Result<HttpResponse, AppError> {
    auth.require(COLLECTION_STAFF)?;
    let (org, actor, today, input) = (auth.org_id, auth.subject.clone(), state.today(), body.into_inner());
    let body = db::run(&state.pool, move |c| {
        write_transaction(c, |c| {
            let row = service::promises::create(c, org, &actor, &input, today)?;
            PromiseResponse::load(c, &row)
        })
    })
    .await?;
    Ok(with_etag(HttpResponse::Created(), body.version, body))
}

/// Get a promise.
#[utoipa::path(get, path = "/v1/promises/{id}", tag = "promises",
    params(("id" = String, Path, description = "Promise id, e.g. `ptp_1`")),
    responses((status = 200, description = "The promise", body = PromiseResponse)),
    security(("bearer" = ["admin", "manager", "collector", "sales", "integration", "viewer"])))]
pub async fn get(auth: Auth, state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, AppError> {
    auth.require(READERS)?;
    let (org, id) = (auth.org_id, promise_id(&path)?);
    let body = db::run(&state.pool, move |c| {
        let row = db::repo::promises::find(c, org, id)?;
        PromiseResponse::load(c, &row)
    })
    .await?;
    Ok(with_etag(HttpResponse::Ok(), body.version, body))
}

/// List promises.
#[utoipa::path(get, path = "/v1/promises", tag = "promises", params(PromiseListQuery),
    responses((status = 200, description = "A page of promises", body = PromisePage)),
    security(("bearer" = ["admin", "manager", "collector", "sales", "integration", "viewer"])))]
pub async fn list(
    auth: Auth,
    state: web::Data<AppState>,
    query: web::Query<PromiseListQuery>,
) -> Result<HttpResponse, AppError> {
    auth.require(READERS)?;
    let q = query.into_inner();
    let page = PageRequest::parse(q.limit, q.cursor.as_deref())?;
    if q.status.as_deref().is_some_and(|s| PromiseStatus::parse(s).is_none()) {
        return Err(AppError::invalid(
            "status",
            "must be open, kept, partially_kept, broken or cancelled",
        ));
    }
    let filter = PromiseFilter {
        customer_id: q
            .customer_id
            .as_deref()
            .map(|id| Kind::Customer.decode(id).unwrap_or(-1)),
        status: q.status,
        taken_by: q.taken_by,
        updated_since: parse_instant("updated_since", q.updated_since.as_deref())?,
    };
    let org = auth.org_id;
    let body = db::run(&state.pool, move |c| {
        let rows = db::repo::promises::list(c, org, &filter, page.after_id, page.fetch_limit())?;
        let (rows, next_cursor) = page.finish(rows, |r| r.id);
        Ok(PromisePage {
            items: PromiseResponse::load_many(c, &rows)?,
            next_cursor,
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(body))
}

/// Change an open promise (JSON merge patch): amount, date, channel, contact, notes.
#[utoipa::path(patch, path = "/v1/promises/{id}", tag = "promises",
    params(("id" = String, Path, description = "Promise id"),
           ("If-Match" = Option<String>, Header, description = "Expected version; a mismatch is 412")),
    request_body(content = PromiseInput, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The promise", body = PromiseResponse),
              (status = 409, description = "The promise is no longer open", body = crate::error::Problem, content_type = "application/problem+json"),
              (status = 412, description = "Version mismatch", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin", "manager", "collector", "sales"])))]
pub async fn patch(
    auth: Auth,
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, AppError> {
    auth.require(COLLECTION_STAFF)?;
    let (org, actor, id, expected, today) = (
        auth.org_id,
        auth.subject.clone(),
        promise_id(&path)?,
        if_match(&req)?,
        state.today(),
    );
    let body = db::run(&state.pool, move |c| {
        write_transaction(c, |c| {
            let row = service::promises::patch(c, org, &actor, id, expected, &body, today)?;
            PromiseResponse::load(c, &row)
        })
    })
    .await?;
    Ok(with_etag(HttpResponse::Ok(), body.version, body))
}

/// Cancel an open promise.
#[utoipa::path(post, path = "/v1/promises/{id}/cancel", tag = "promises",
    params(("id" = String, Path, description = "Promise id")),
    responses((status = 200, description = "The cancelled promise", body = PromiseResponse),
              (status = 409, description = "The promise is no longer open", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin", "manager", "collector", "sales"])))]
pub async fn cancel(auth: Auth, state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, AppError> {
    auth.require(COLLECTION_STAFF)?;
    let (org, id) = (auth.org_id, promise_id(&path)?);
    let body = db::run(&state.pool, move |c| {
        write_transaction(c, |c| {
            let row = service::promises::cancel(c, org, id)?;
            PromiseResponse::load(c, &row)
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(body))
}

/// Evaluate every open promise and active payment plan as of a date (the daily job, on
/// demand). Idempotent: a promise or plan changes status once.
#[utoipa::path(post, path = "/v1/promise-evaluations", tag = "promises", request_body = EvaluationRequest,
    responses((status = 200, description = "What changed", body = EvaluationResponse)),
    security(("bearer" = ["admin", "manager"])))]
pub async fn evaluate(
    auth: Auth,
    state: web::Data<AppState>,
    body: web::Json<EvaluationRequest>,
) -> Result<HttpResponse, AppError> {
    auth.require(MANAGERS)?;
    let (org, as_of) = (auth.org_id, body.as_of.unwrap_or_else(|| state.today()));
    let summary = db::run(&state.pool, move |c| {
        write_transaction(c, |c| {
            let mut summary = service::promises::evaluate_all(c, org, as_of)?;
            service::plans::evaluate(c, org, None, as_of, &mut summary)?;
            Ok(summary)
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(EvaluationResponse { as_of, summary }))
}

/// One instalment of a plan.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": "ins_1", "seq": 1, "due_date": "2026-12-15", "amount": "1175.00", "paid_amount": "0.00", "status": "pending"}))]
pub struct InstalmentResponse {
    pub id: String,
    pub seq: i32,
    pub due_date: NaiveDate,
    pub amount: String,
    pub paid_amount: String,
    /// `pending`, `paid`, `partially_paid` or `overdue`.
    pub status: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "plan_1", "customer_id": "cus_1", "invoice_ids": ["inv_3"], "currency": "EUR", "total": "2350.00",
    "paid_amount": "0.00", "frequency": "monthly", "grace_days": 5, "status": "active", "defaulted_on": null,
    "cancel_reason": null, "created_by": "marta",
    "instalments": [
        {
            "id": "ins_1", "seq": 1, "due_date": "2026-12-15", "amount": "1175.00", "paid_amount": "0.00",
            "status": "pending"
        },
        {
            "id": "ins_2", "seq": 2, "due_date": "2027-01-15", "amount": "1175.00", "paid_amount": "0.00",
            "status": "pending"
        }
    ],
    "evaluated_at": null, "version": 1, "created_at": "2026-11-23T10:00:00Z", "updated_at": "2026-11-23T10:00:00Z"
}))]
pub struct PlanResponse {
    pub id: String,
    pub customer_id: String,
    pub invoice_ids: Vec<String>,
    pub currency: String,
    pub total: String,
    pub paid_amount: String,
    pub frequency: Option<String>,
    pub grace_days: i32,
    pub status: PlanStatus,
    pub defaulted_on: Option<NaiveDate>,
    pub cancel_reason: Option<String>,
    pub created_by: String,
    pub instalments: Vec<InstalmentResponse>,
    pub evaluated_at: Option<DateTime<Utc>>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl PlanResponse {
    fn load_many(c: &mut DbConnection, rows: &[PlanRow]) -> Result<Vec<PlanResponse>, AppError> {
        let ids: Vec<i64> = rows.iter().map(|p| p.id).collect();
        let links = db::repo::plans::links(c, &ids)?;
        let instalments: Vec<InstalmentRow> = db::repo::plans::instalments(c, &ids)?;
        Ok(rows
            .iter()
            .map(|p| PlanResponse {
                id: Kind::Plan.encode(p.id),
                customer_id: Kind::Customer.encode(p.customer_id),
                invoice_ids: links
                    .iter()
                    .filter(|(pid, _)| *pid == p.id)
                    .map(|(_, i)| Kind::Invoice.encode(*i))
                    .collect(),
                currency: p.currency.clone(),
                total: format_stored(p.total_minor, &p.currency),
                paid_amount: format_stored(p.paid_minor, &p.currency),
                frequency: p.frequency.clone(),
                grace_days: p.grace_days,
                status: PlanStatus::parse(&p.status).unwrap_or(PlanStatus::Active),
                defaulted_on: p.defaulted_on,
                cancel_reason: p.cancel_reason.clone(),
                created_by: p.created_by.clone(),
                instalments: instalments
                    .iter()
                    .filter(|i| i.plan_id == p.id)
                    .map(|i| InstalmentResponse {
                        id: Kind::Instalment.encode(i.id),
                        seq: i.seq,
                        due_date: i.due_date,
                        amount: format_stored(i.amount_minor, &p.currency),
                        paid_amount: format_stored(i.paid_minor, &p.currency),
                        status: i.status.clone(),
                    })
                    .collect(),
                evaluated_at: p.evaluated_at.map(utc),
                version: p.version,
                created_at: utc(p.created_at),
                updated_at: utc(p.updated_at),
            })
            .collect())
    }

    fn load(c: &mut DbConnection, row: &PlanRow) -> Result<PlanResponse, AppError> {
        Self::load_many(c, std::slice::from_ref(row))?
            .pop()
            .ok_or_else(|| AppError::internal("plan vanished"))
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "items": [
        {
            "id": "plan_1", "customer_id": "cus_1", "invoice_ids": ["inv_3"], "currency": "EUR", "total": "2350.00",
            "paid_amount": "0.00", "frequency": "monthly", "grace_days": 5, "status": "active", "defaulted_on": null,
            "cancel_reason": null, "created_by": "marta",
            "instalments": [
                {
                    "id": "ins_1", "seq": 1, "due_date": "2026-12-15", "amount": "1175.00", "paid_amount": "0.00",
                    "status": "pending"
                },
                {
                    "id": "ins_2", "seq": 2, "due_date": "2027-01-15", "amount": "1175.00", "paid_amount": "0.00",
                    "status": "pending"
                }
            ],
            "evaluated_at": null, "version": 1, "created_at": "2026-11-23T10:00:00Z",
            "updated_at": "2026-11-23T10:00:00Z"
        }
    ],
    "next_cursor": "YWZ0ZXI6MQ"
}))]
pub struct PlanPage {
    pub items: Vec<PlanResponse>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PlanListQuery {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    pub updated_since: Option<String>,
    pub customer_id: Option<String>,
    /// `active`, `completed`, `defaulted` or `cancelled`.
    pub status: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "Customer paid everything at once"}))]
pub struct CancelPlanRequest {
    pub reason: String,
}

fn plan_id(path: &str) -> Result<i64, AppError> {
    Kind::Plan
        .decode(path)
        .ok_or_else(|| AppError::not_found("payment plan"))
}

/// Agree a payment plan over open invoices of one customer and currency.
#[utoipa::path(post, path = "/v1/payment-plans", tag = "payment-plans", request_body = PlanInput,
    responses((status = 201, description = "Agreed", body = PlanResponse)),
    security(("bearer" = ["admin", "manager", "collector"])))]
pub async fn create_plan(
    auth: Auth,
    state: web::Data<AppState>,
    body: web::Json<PlanInput>,
) -> Result<HttpResponse, AppError> {
    auth.require(PLAN_WRITERS)?;
    let (org, actor, today, input) = (auth.org_id, auth.subject.clone(), state.today(), body.into_inner());
    let body = db::run(&state.pool, move |c| {
        write_transaction(c, |c| {
            let row = service::plans::create(c, org, &actor, &input, today)?;
            PlanResponse::load(c, &row)
        })
    })
    .await?;
    Ok(HttpResponse::Created().json(body))
}

/// Get a payment plan with its instalments.
#[utoipa::path(get, path = "/v1/payment-plans/{id}", tag = "payment-plans",
    params(("id" = String, Path, description = "Plan id, e.g. `plan_1`")),
    responses((status = 200, description = "The plan", body = PlanResponse)),
    security(("bearer" = ["admin", "manager", "collector", "sales", "integration", "viewer"])))]
pub async fn get_plan(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    auth.require(READERS)?;
    let (org, id) = (auth.org_id, plan_id(&path)?);
    let body = db::run(&state.pool, move |c| {
        let row = db::repo::plans::find(c, org, id)?;
        PlanResponse::load(c, &row)
    })
    .await?;
    Ok(HttpResponse::Ok().json(body))
}

/// List payment plans.
#[utoipa::path(get, path = "/v1/payment-plans", tag = "payment-plans", params(PlanListQuery),
    responses((status = 200, description = "A page of plans", body = PlanPage)),
    security(("bearer" = ["admin", "manager", "collector", "sales", "integration", "viewer"])))]
pub async fn list_plans(
    auth: Auth,
    state: web::Data<AppState>,
    query: web::Query<PlanListQuery>,
) -> Result<HttpResponse, AppError> {
    auth.require(READERS)?;
    let q = query.into_inner();
    let page = PageRequest::parse(q.limit, q.cursor.as_deref())?;
    if q.status.as_deref().is_some_and(|s| PlanStatus::parse(s).is_none()) {
        return Err(AppError::invalid(
            "status",
            "must be active, completed, defaulted or cancelled",
        ));
    }
    let filter = PlanFilter {
        customer_id: q
            .customer_id
            .as_deref()
            .map(|id| Kind::Customer.decode(id).unwrap_or(-1)),
        status: q.status,
        updated_since: parse_instant("updated_since", q.updated_since.as_deref())?,
    };
    let org = auth.org_id;
    let body = db::run(&state.pool, move |c| {
        let rows = db::repo::plans::list(c, org, &filter, page.after_id, page.fetch_limit())?;
        let (rows, next_cursor) = page.finish(rows, |r| r.id);
        Ok(PlanPage {
            items: PlanResponse::load_many(c, &rows)?,
            next_cursor,
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(body))
}

/// Cancel an active plan; its invoices return to normal collection.
#[utoipa::path(post, path = "/v1/payment-plans/{id}/cancel", tag = "payment-plans",
    params(("id" = String, Path, description = "Plan id")), request_body = CancelPlanRequest,
    responses((status = 200, description = "The cancelled plan", body = PlanResponse),
              (status = 409, description = "The plan is not active", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin", "manager", "collector"])))]
pub async fn cancel_plan(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<CancelPlanRequest>,
) -> Result<HttpResponse, AppError> {
    auth.require(PLAN_WRITERS)?;
    let mut v = crate::error::Violations::new();
    let reason = crate::domain::text::required(&mut v, "reason", Some(&body.reason), 500);
    let reason = v.into_result(reason)?.unwrap_or_default();
    let (org, id) = (auth.org_id, plan_id(&path)?);
    let body = db::run(&state.pool, move |c| {
        write_transaction(c, |c| {
            let row = service::plans::cancel(c, org, id, &reason)?;
            PlanResponse::load(c, &row)
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(body))
}

/// Parses an optional `as_of` query value, defaulting to today.
pub fn as_of(state: &AppState, value: Option<&str>) -> Result<NaiveDate, AppError> {
    Ok(parse_date("as_of", value)?.unwrap_or_else(|| state.today()))
}
