//! `/v1/disputes` (P1) and the root-cause report `/v1/reports/disputes`.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Auth;
use crate::auth::roles::{DISPUTE_WRITERS, MANAGERS, READERS};
use crate::db::repo::disputes::{DisputeFilter, DisputeRow};
use crate::db::{self, DbConnection, write_transaction};
use crate::domain::dispute::DisputeStatus;
use crate::domain::ids::Kind;
use crate::domain::money::format_stored;
use crate::error::AppError;
use crate::http::{PageRequest, Routes, if_match, parse_date, parse_instant, utc, with_etag};
use crate::service::disputes::{DisputeInput, DisputeReport, ResolveInput};
use crate::service::{self};
use crate::state::AppState;

pub fn routes(routes: &mut Routes) {
    routes.at("/disputes", |r| {
        r.route(web::get().to(list)).route(web::post().to(create))
    });
    routes.at("/disputes/{id}", |r| {
        r.route(web::get().to(get)).route(web::patch().to(patch))
    });
    routes.at("/disputes/{id}/comments", |r| r.route(web::post().to(comment)));
    routes.at("/disputes/{id}/resolve", |r| r.route(web::post().to(resolve)));
    routes.at("/reports/disputes", |r| r.route(web::get().to(report)));
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "cmt_1", "author": "jordi", "body": "Logistics confirms the damage; credit note requested",
    "created_at": "2026-11-24T09:15:00Z"
}))]
pub struct CommentResponse {
    pub id: String,
    pub author: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "dsp_1", "customer_id": "cus_1", "invoice_id": "inv_2", "amount": "120.00", "currency": "EUR",
    "reason": "damaged_goods", "description": "Two boxes arrived crushed", "raised_via": "phone",
    "raised_on": "2026-11-23", "owner_department": "logistics", "assignee": "jordi", "due_by": "2026-12-05",
    "status": "under_review", "resolution": null, "resolved_on": null, "credit_note_id": null, "created_by": "marta",
    "comments": [
        {
            "id": "cmt_1", "author": "jordi", "body": "Logistics confirms the damage; credit note requested",
            "created_at": "2026-11-24T09:15:00Z"
        }
    ],
    "version": 2, "created_at": "2026-11-23T10:00:00Z", "updated_at": "2026-11-24T09:15:00Z"
}))]
pub struct DisputeResponse {
    pub id: String,
    pub customer_id: String,
    pub invoice_id: String,
    pub amount: String,
    pub currency: String,
    pub reason: String,
    pub description: Option<String>,
    pub raised_via: Option<String>,
    pub raised_on: NaiveDate,
    pub owner_department: String,
    pub assignee: Option<String>,
    pub due_by: Option<NaiveDate>,
    pub status: DisputeStatus,
    pub resolution: Option<String>,
    pub resolved_on: Option<NaiveDate>,
    pub credit_note_id: Option<String>,
    pub created_by: String,
    pub comments: Vec<CommentResponse>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl DisputeResponse {
    fn load_many(c: &mut DbConnection, rows: &[DisputeRow]) -> Result<Vec<DisputeResponse>, AppError> {
        let ids: Vec<i64> = rows.iter().map(|d| d.id).collect();
        let comments = db::repo::disputes::comments(c, &ids)?;
        Ok(rows
            .iter()
            .map(|d| DisputeResponse {
                id: Kind::Dispute.encode(d.id),
                customer_id: Kind::Customer.encode(d.customer_id),
                invoice_id: Kind::Invoice.encode(d.invoice_id),
                amount: format_stored(d.amount_minor, &d.currency),
                currency: d.currency.clone(),
                reason: d.reason.clone(),
                description: d.description.clone(),
                raised_via: d.raised_via.clone(),
                raised_on: d.raised_on,
                owner_department: d.owner_department.clone(),
                assignee: d.assignee.clone(),
                due_by: d.due_by,
                status: DisputeStatus::parse(&d.status).unwrap_or(DisputeStatus::Open),
                resolution: d.resolution.clone(),
                resolved_on: d.resolved_on,
                credit_note_id: d.credit_note_id.map(|i| Kind::Invoice.encode(i)),
                created_by: d.created_by.clone(),
                comments: comments
                    .iter()
                    .filter(|cm| cm.dispute_id == d.id)
                    .map(|cm| CommentResponse {
                        id: Kind::Comment.encode(cm.id),
                        author: cm.author.clone(),
                        body: cm.body.clone(),
                        created_at: utc(cm.created_at),
                    })
                    .collect(),
                version: d.version,
                created_at: utc(d.created_at),
                updated_at: utc(d.updated_at),
            })
            .collect())
    }

    fn load(c: &mut DbConnection, row: &DisputeRow) -> Result<DisputeResponse, AppError> {
        Self::load_many(c, std::slice::from_ref(row))?
            .pop()
            .ok_or_else(|| AppError::internal("dispute vanished"))
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "items": [
        {
            "id": "dsp_1", "customer_id": "cus_1", "invoice_id": "inv_2", "amount": "120.00", "currency": "EUR",
            "reason": "damaged_goods", "description": "Two boxes arrived crushed", "raised_via": "phone",
            "raised_on": "2026-11-23", "owner_department": "logistics", "assignee": "jordi", "due_by": "2026-12-05",
            "status": "under_review", "resolution": null, "resolved_on": null, "credit_note_id": null,
            "created_by": "marta",
            "comments": [
                {
                    "id": "cmt_1", "author": "jordi", "body": "Logistics confirms the damage; credit note requested",
                    "created_at": "2026-11-24T09:15:00Z"
                }
            ],
            "version": 2, "created_at": "2026-11-23T10:00:00Z", "updated_at": "2026-11-24T09:15:00Z"
        }
    ],
    "next_cursor": "YWZ0ZXI6MQ"
}))]
pub struct DisputePage {
    pub items: Vec<DisputeResponse>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DisputeListQuery {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    pub updated_since: Option<String>,
    pub customer_id: Option<String>,
    pub invoice_id: Option<String>,
    /// `open`, `under_review`, `resolved` or `withdrawn`.
    pub status: Option<String>,
    pub reason: Option<String>,
    pub owner_department: Option<String>,
    pub assignee: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"body": "Logistics confirms the damage; credit note requested"}))]
pub struct CommentRequest {
    pub body: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// First day of the period (disputes raised on or after), default 90 days ago.
    pub from: Option<String>,
    /// Last day of the period, default today.
    pub to: Option<String>,
}

fn dispute_id(path: &str) -> Result<i64, AppError> {
    Kind::Dispute.decode(path).ok_or_else(|| AppError::not_found("dispute"))
}

/// Raise a dispute on (part of) an invoice's open amount; that amount leaves collection.
#[utoipa::path(post, path = "/v1/disputes", tag = "disputes", request_body = DisputeInput,
    responses((status = 201, description = "Raised", body = DisputeResponse)),
    security(("bearer" = ["admin", "manager", "collector", "sales", "integration"])))]
pub async fn create(
    auth: Auth,
    state: web::Data<AppState>,
    body: web::Json<DisputeInput>,
) -> Result<HttpResponse, AppError> {
    auth.require(DISPUTE_WRITERS)?;
    let (org, actor, today, input) = (auth.org_id, auth.subject.clone(), state.today(), body.into_inner());
    let body = db::run(&state.pool, move |c| {
        write_transaction(c, |c| {
            let row = service::disputes::create(c, org, &actor, &input, today)?;
            DisputeResponse::load(c, &row)
        })
    })
    .await?;
    Ok(with_etag(HttpResponse::Created(), body.version, body))
}

/// Get a dispute with its comments.
#[utoipa::path(get, path = "/v1/disputes/{id}", tag = "disputes",
    params(("id" = String, Path, description = "Dispute id, e.g. `dsp_1`")),
    responses((status = 200, description = "The dispute", body = DisputeResponse)),
    security(("bearer" = ["admin", "manager", "collector", "sales", "integration", "viewer"])))]
pub async fn get(auth: Auth, state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, AppError> {
    auth.require(READERS)?;
    let (org, id) = (auth.org_id, dispute_id(&path)?);
    let body = db::run(&state.pool, move |c| {
        let row = db::repo::disputes::find(c, org, id)?;
        DisputeResponse::load(c, &row)
    })
    .await?;
    Ok(with_etag(HttpResponse::Ok(), body.version, body))
}

/// List disputes.
#[utoipa::path(get, path = "/v1/disputes", tag = "disputes", params(DisputeListQuery),
    responses((status = 200, description = "A page of disputes", body = DisputePage)),
    security(("bearer" = ["admin", "manager", "collector", "sales", "integration", "viewer"])))]
pub async fn list(
    auth: Auth,
    state: web::Data<AppState>,
    query: web::Query<DisputeListQuery>,
) -> Result<HttpResponse, AppError> {
    auth.require(READERS)?;
    let q = query.into_inner();
    let page = PageRequest::parse(q.limit, q.cursor.as_deref())?;
    if q.status.as_deref().is_some_and(|s| DisputeStatus::parse(s).is_none()) {
        return Err(AppError::invalid(
            "status",
            "must be open, under_review, resolved or withdrawn",
        ));
    }
    let filter = DisputeFilter {
        customer_id: q
            .customer_id
            .as_deref()
            .map(|id| Kind::Customer.decode(id).unwrap_or(-1)),
        invoice_id: q.invoice_id.as_deref().map(|id| Kind::Invoice.decode(id).unwrap_or(-1)),
        status: q.status,
        reason: q.reason,
        owner_department: q.owner_department,
        assignee: q.assignee,
        updated_since: parse_instant("updated_since", q.updated_since.as_deref())?,
    };
    let org = auth.org_id;
    let body = db::run(&state.pool, move |c| {
        let rows = db::repo::disputes::list(c, org, &filter, page.after_id, page.fetch_limit())?;
        let (rows, next_cursor) = page.finish(rows, |r| r.id);
        Ok(DisputePage {
            items: DisputeResponse::load_many(c, &rows)?,
            next_cursor,
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(body))
}

/// Change a dispute (JSON merge patch): amount, reason, owner, assignee, due date, or its
/// status between open, under review and withdrawn.
#[utoipa::path(patch, path = "/v1/disputes/{id}", tag = "disputes",
    params(("id" = String, Path, description = "Dispute id"),
           ("If-Match" = Option<String>, Header, description = "Expected version; a mismatch is 412")),
    request_body(content = DisputeInput, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The dispute", body = DisputeResponse),
              (status = 409, description = "The dispute is closed", body = crate::error::Problem, content_type = "application/problem+json"),
              (status = 412, description = "Version mismatch", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin", "manager", "collector", "sales", "integration"])))]
pub async fn patch(
    auth: Auth,
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, AppError> {
    auth.require(DISPUTE_WRITERS)?;
    let (org, id, expected) = (auth.org_id, dispute_id(&path)?, if_match(&req)?);
    let body = db::run(&state.pool, move |c| {
        write_transaction(c, |c| {
            let row = service::disputes::patch(c, org, id, expected, &body)?;
            DisputeResponse::load(c, &row)
        })
    })
    .await?;
    Ok(with_etag(HttpResponse::Ok(), body.version, body))
}

/// Add a comment to a dispute.
#[utoipa::path(post, path = "/v1/disputes/{id}/comments", tag = "disputes",
    params(("id" = String, Path, description = "Dispute id")), request_body = CommentRequest,
    responses((status = 201, description = "The dispute with its comments", body = DisputeResponse)),
    security(("bearer" = ["admin", "manager", "collector", "sales", "integration"])))]
pub async fn comment(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<CommentRequest>,
) -> Result<HttpResponse, AppError> {
    auth.require(DISPUTE_WRITERS)?;
    let (org, actor, id, text) = (
        auth.org_id,
        auth.subject.clone(),
        dispute_id(&path)?,
        body.into_inner().body,
    );
    let body = db::run(&state.pool, move |c| {
        write_transaction(c, |c| {
            let row = service::disputes::comment(c, org, &actor, id, &text)?;
            DisputeResponse::load(c, &row)
        })
    })
    .await?;
    Ok(HttpResponse::Created().json(body))
}

/// Resolve a dispute. `rejected_invoice_valid` returns the amount to collection; a linked
/// credit note is applied to the disputed invoice.
#[utoipa::path(post, path = "/v1/disputes/{id}/resolve", tag = "disputes",
    params(("id" = String, Path, description = "Dispute id")), request_body = ResolveInput,
    responses((status = 200, description = "The resolved dispute", body = DisputeResponse),
              (status = 409, description = "Already resolved or withdrawn", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin", "manager"])))]
pub async fn resolve(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<ResolveInput>,
) -> Result<HttpResponse, AppError> {
    auth.require(MANAGERS)?;
    let (org, actor, id, today, input) = (
        auth.org_id,
        auth.subject.clone(),
        dispute_id(&path)?,
        state.today(),
        body.into_inner(),
    );
    let body = db::run(&state.pool, move |c| {
        write_transaction(c, |c| {
            let row = service::disputes::resolve(c, org, &actor, id, &input, today)?;
            DisputeResponse::load(c, &row)
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(body))
}

/// Root-cause report (P1): disputes raised in a period by reason and by owner department,
/// open vs resolved, days to resolve, and the oldest still open.
#[utoipa::path(get, path = "/v1/reports/disputes", tag = "reports", params(ReportQuery),
    responses((status = 200, description = "The report", body = DisputeReport)),
    security(("bearer" = ["admin", "manager", "collector", "sales", "integration", "viewer"])))]
pub async fn report(
    auth: Auth,
    state: web::Data<AppState>,
    query: web::Query<ReportQuery>,
) -> Result<HttpResponse, AppError> {
    auth.require(READERS)?;
    let today = state.today();
    let to = parse_date("to", query.to.as_deref())?.unwrap_or(today);
    let from = parse_date("from", query.from.as_deref())?.unwrap_or(to - chrono::Days::new(90));
    if from > to {
        return Err(AppError::invalid("from", "must not be after `to`"));
    }
    let org = auth.org_id;
    let report = db::run(&state.pool, move |c| service::disputes::report(c, org, from, to, today)).await?;
    Ok(HttpResponse::Ok().json(report))
}
