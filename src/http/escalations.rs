//! `/v1/escalations` (P8, P9, P15): credit holds, agency placements, law-firm letters,
//! small-claims filings and repossession offers, with the invoices each covers, its
//! status, and the history of its transitions.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Auth;
use crate::auth::roles::{MANAGERS, READERS};
use crate::db::repo::escalations::{EscalationFilter, EscalationRow};
use crate::db::{self, DbConnection, write_transaction};
use crate::domain::escalation::EscalationKind;
use crate::domain::ids::Kind;
use crate::domain::money::format_stored;
use crate::error::AppError;
use crate::http::{PageRequest, Routes, if_match, parse_instant, utc, with_etag};
use crate::service::escalations::{EscalationInput, TransitionInput};
use crate::service::{self};
use crate::state::AppState;

pub fn routes(routes: &mut Routes) {
    routes.at("/escalations", |r| {
        r.route(web::get().to(list)).route(web::post().to(create))
    });
    routes.at("/escalations/{id}", |r| r.route(web::get().to(get)));
    routes.at("/escalations/{id}/transitions", |r| r.route(web::post().to(transition)));
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"invoice_id": "inv_7", "amount": "1210.00"}))]
pub struct EscalatedInvoice {
    pub invoice_id: String,
    /// The invoice's collectable amount when it was escalated.
    pub amount: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"from": "proposed", "to": "placed", "on": "2026-11-23",
    "reason": "Two final notices unanswered", "by": "laura", "at": "2026-11-23T09:12:00Z"}))]
pub struct EscalationTransition {
    /// Null for the opening.
    pub from: Option<String>,
    pub to: String,
    pub on: NaiveDate,
    pub reason: Option<String>,
    pub by: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "esc_3", "customer_id": "cus_1", "kind": "agency_placement", "status": "placed", "open": true,
    "next_statuses": ["recovered", "partially_recovered", "returned", "withdrawn"],
    "currency": "EUR", "amount": "1210.00", "recovered_amount": "0.00", "commission": "0.00",
    "invoices": [{"invoice_id": "inv_7", "amount": "1210.00"}],
    "action_id": "act_41", "opened_on": "2026-11-20", "agency": "Cobros Levante SL",
    "agency_reference": "CL-2026-778", "placed_on": "2026-11-23", "law_firm": null, "court": null,
    "filing_reference": null, "filed_on": null, "judgment_on": null, "closed_on": null,
    "reason": "collection strategy step `agency_placement`", "notes": null,
    "history": [
        {"from": null, "to": "proposed", "on": "2026-11-20", "reason": "collection strategy step `agency_placement`",
         "by": "laura", "at": "2026-11-20T05:00:03Z"},
        {"from": "proposed", "to": "placed", "on": "2026-11-23", "reason": null, "by": "laura",
         "at": "2026-11-23T09:12:00Z"}],
    "created_by": "laura", "version": 2,
    "created_at": "2026-11-20T05:00:03Z", "updated_at": "2026-11-23T09:12:00Z"}))]
pub struct EscalationResponse {
    pub id: String,
    pub customer_id: String,
    pub kind: EscalationKind,
    /// Its place in the kind's lifecycle (see `POST /v1/escalations/{id}/transitions`).
    pub status: String,
    /// Open escalations own their invoices: agency, legal and repossession ones keep them
    /// out of normal dunning; an active credit hold holds the customer's orders.
    pub open: bool,
    /// The statuses it may move to next.
    pub next_statuses: Vec<String>,
    pub currency: String,
    /// Sum of the covered invoices' collectable amounts when they were escalated.
    pub amount: String,
    /// Money recovered through the agency or the legal case.
    pub recovered_amount: String,
    /// The agency's commission.
    pub commission: String,
    pub invoices: Vec<EscalatedInvoice>,
    /// The collection-run action that opened it; null when opened by hand.
    pub action_id: Option<String>,
    pub opened_on: NaiveDate,
    pub agency: Option<String>,
    pub agency_reference: Option<String>,
    pub placed_on: Option<NaiveDate>,
    pub law_firm: Option<String>,
    pub court: Option<String>,
    pub filing_reference: Option<String>,
    pub filed_on: Option<NaiveDate>,
    pub judgment_on: Option<NaiveDate>,
    pub closed_on: Option<NaiveDate>,
    /// Why it was opened.
    pub reason: Option<String>,
    pub notes: Option<String>,
    pub history: Vec<EscalationTransition>,
    pub created_by: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl EscalationResponse {
    fn load_many(c: &mut DbConnection, rows: &[EscalationRow]) -> Result<Vec<EscalationResponse>, AppError> {
        let ids: Vec<i64> = rows.iter().map(|e| e.id).collect();
        let links = db::repo::escalations::invoices_of(c, &ids)?;
        let history = db::repo::escalations::transitions_of(c, &ids)?;
        rows.iter()
            .map(|e| {
                let kind =
                    EscalationKind::parse(&e.kind).ok_or_else(|| AppError::internal("unknown escalation kind"))?;
                let f = |m: i64| format_stored(m, &e.currency);
                let invoices: Vec<(i64, i64)> = links
                    .iter()
                    .filter(|(eid, _, _)| *eid == e.id)
                    .map(|(_, i, a)| (*i, *a))
                    .collect();
                Ok(EscalationResponse {
                    id: Kind::Escalation.encode(e.id),
                    customer_id: Kind::Customer.encode(e.customer_id),
                    kind,
                    status: e.status.clone(),
                    open: e.is_open,
                    next_statuses: kind.next_statuses(&e.status).into_iter().map(String::from).collect(),
                    currency: e.currency.clone(),
                    amount: f(invoices.iter().map(|(_, a)| a).sum()),
                    recovered_amount: f(e.recovered_minor),
                    commission: f(e.commission_minor),
                    invoices: invoices
                        .iter()
                        .map(|(i, a)| EscalatedInvoice {
                            invoice_id: Kind::Invoice.encode(*i),
                            amount: f(*a),
                        })
                        .collect(),
                    action_id: e.action_id.map(|a| Kind::Action.encode(a)),
                    opened_on: e.opened_on,
                    agency: e.agency.clone(),
                    agency_reference: e.agency_reference.clone(),
                    placed_on: e.placed_on,
                    law_firm: e.law_firm.clone(),
                    court: e.court.clone(),
                    filing_reference: e.filing_reference.clone(),
                    filed_on: e.filed_on,
                    judgment_on: e.judgment_on,
                    closed_on: e.closed_on,
                    reason: e.reason.clone(),
                    notes: e.notes.clone(),
                    history: history
                        .iter()
                        .filter(|t| t.escalation_id == e.id)
                        .map(|t| EscalationTransition {
                            from: t.from_status.clone(),
                            to: t.to_status.clone(),
                            on: t.on_date,
                            reason: t.reason.clone(),
                            by: t.created_by.clone(),
                            at: utc(t.created_at),
                        })
                        .collect(),
                    created_by: e.created_by.clone(),
                    version: e.version,
                    created_at: utc(e.created_at),
                    updated_at: utc(e.updated_at),
                })
            })
            .collect()
    }

    fn load(c: &mut DbConnection, row: &EscalationRow) -> Result<EscalationResponse, AppError> {
        Self::load_many(c, std::slice::from_ref(row))?
            .pop()
            .ok_or_else(|| AppError::internal("escalation vanished"))
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"items": [], "next_cursor": null}))]
pub struct EscalationPage {
    pub items: Vec<EscalationResponse>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EscalationQuery {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    pub updated_since: Option<String>,
    pub customer_id: Option<String>,
    pub invoice_id: Option<String>,
    /// `credit_hold`, `agency_placement`, `law_firm_letter`, `small_claims`,
    /// `repossession_offer`.
    pub kind: Option<String>,
    pub status: Option<String>,
    /// `true`: only escalations that still own their invoices; `false`: only closed ones.
    pub open: Option<bool>,
}

fn escalation_id(path: &str) -> Result<i64, AppError> {
    Kind::Escalation
        .decode(path)
        .ok_or_else(|| AppError::not_found("escalation"))
}

/// List escalations.
#[utoipa::path(get, path = "/v1/escalations", tag = "escalations", params(EscalationQuery),
    responses((status = 200, description = "A page of escalations", body = EscalationPage)),
    security(("bearer" = ["admin", "manager", "collector", "sales", "integration", "viewer"])))]
pub async fn list(
    auth: Auth,
    state: web::Data<AppState>,
    query: web::Query<EscalationQuery>,
) -> Result<HttpResponse, AppError> {
    auth.require(READERS)?;
    let q = query.into_inner();
    let page = PageRequest::parse(q.limit, q.cursor.as_deref())?;
    if q.kind.as_deref().is_some_and(|k| EscalationKind::parse(k).is_none()) {
        return Err(AppError::invalid(
            "kind",
            "must be credit_hold, agency_placement, law_firm_letter, small_claims or repossession_offer",
        ));
    }
    let filter = EscalationFilter {
        customer_id: q
            .customer_id
            .as_deref()
            .map(|id| Kind::Customer.decode(id).unwrap_or(-1)),
        invoice_id: q.invoice_id.as_deref().map(|id| Kind::Invoice.decode(id).unwrap_or(-1)),
        kind: q.kind,
        status: q.status,
        open: q.open,
        updated_since: parse_instant("updated_since", q.updated_since.as_deref())?,
    };
    let org = auth.org_id;
    let body = db::run(&state.pool, move |c| {
        let rows = db::repo::escalations::list(c, org, &filter, page.after_id, page.fetch_limit())?;
        let (rows, next_cursor) = page.finish(rows, |r| r.id);
        Ok(EscalationPage {
            items: EscalationResponse::load_many(c, &rows)?,
            next_cursor,
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(body))
}

/// Get an escalation with its invoices and history.
#[utoipa::path(get, path = "/v1/escalations/{id}", tag = "escalations",
    params(("id" = String, Path, description = "Escalation id, e.g. `esc_1`")),
    responses((status = 200, description = "The escalation", body = EscalationResponse)),
    security(("bearer" = ["admin", "manager", "collector", "sales", "integration", "viewer"])))]
pub async fn get(auth: Auth, state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, AppError> {
    auth.require(READERS)?;
    let (org, id) = (auth.org_id, escalation_id(&path)?);
    let body = db::run(&state.pool, move |c| {
        let row = db::repo::escalations::find(c, org, id)?;
        EscalationResponse::load(c, &row)
    })
    .await?;
    Ok(with_etag(HttpResponse::Ok(), body.version, body))
}

/// Open an escalation by hand: a repossession offer (P8), or an agency placement, a
/// law-firm letter, a small-claims filing or a credit hold outside the strategy. Agency,
/// legal and repossession escalations take their invoices out of normal dunning at once.
#[utoipa::path(post, path = "/v1/escalations", tag = "escalations", request_body = EscalationInput,
    responses((status = 201, description = "Opened", body = EscalationResponse),
              (status = 409, description = "The customer is already on an active credit hold", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin", "manager"])))]
pub async fn create(
    auth: Auth,
    state: web::Data<AppState>,
    body: web::Json<EscalationInput>,
) -> Result<HttpResponse, AppError> {
    auth.require(MANAGERS)?;
    let (org, actor, today, input) = (auth.org_id, auth.subject.clone(), state.today(), body.into_inner());
    let body = db::run(&state.pool, move |c| {
        write_transaction(c, |c| {
            let row = service::escalations::create(c, org, &actor, &input, today)?;
            EscalationResponse::load(c, &row)
        })
    })
    .await?;
    Ok(with_etag(HttpResponse::Created(), body.version, body))
}

/// Move an escalation to its next status: place it with an agency, record what the agency
/// recovered, file the claim in court, record the judgment or settlement, release a credit
/// hold, accept or decline a repossession offer. A move the kind's lifecycle does not allow
/// is a 409 and writes nothing.
#[utoipa::path(post, path = "/v1/escalations/{id}/transitions", tag = "escalations",
    params(("id" = String, Path, description = "Escalation id"),
           ("If-Match" = Option<String>, Header, description = "Expected version; a mismatch is 412")),
    request_body = TransitionInput,
    responses((status = 200, description = "The escalation", body = EscalationResponse),
              (status = 409, description = "Not a legal move from the current status", body = crate::error::Problem, content_type = "application/problem+json"),
              (status = 412, description = "Version mismatch", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin", "manager"])))]
pub async fn transition(
    auth: Auth,
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<TransitionInput>,
) -> Result<HttpResponse, AppError> {
    auth.require(MANAGERS)?;
    let (org, actor, id, expected, today, input) = (
        auth.org_id,
        auth.subject.clone(),
        escalation_id(&path)?,
        if_match(&req)?,
        state.today(),
        body.into_inner(),
    );
    let body = db::run(&state.pool, move |c| {
        write_transaction(c, |c| {
            let row = service::escalations::transition(c, org, &actor, id, expected, &input, today)?;
            EscalationResponse::load(c, &row)
        })
    })
    .await?;
    Ok(with_etag(HttpResponse::Ok(), body.version, body))
}
