//! `/v1/payments`: posting payments (one, by external id, batch) with automatic or
//! explicit allocation, applying and unapplying cash, reversals; and credit-note
//! applications under `/v1/invoices/{id}/applications`. Every POST that moves money
//! honours `Idempotency-Key`.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Auth;
use crate::auth::roles::{LEDGER_WRITERS, READERS};
use crate::db::repo::payments::{AllocationRow, PaymentFilter, PaymentRow};
use crate::db::{self, DbConnection};
use crate::domain::ids::Kind;
use crate::domain::money::format_stored;
use crate::domain::payment::{AllocationInput, PaymentInput, PaymentStatus};
use crate::domain::text;
use crate::error::{AppError, Violations};
use crate::http::customers::{BatchResponse, check_batch_size};
use crate::http::invoices::InvoiceResponse;
use crate::http::{PageRequest, Routes, parse_date, parse_instant, utc};
use crate::service::idempotency::{self, IdempotencyKey, Outcome};
use crate::service::{self, UpsertOutcome};
use crate::state::AppState;

pub fn routes(routes: &mut Routes) {
    routes.at("/payments", |r| {
        r.route(web::get().to(list)).route(web::post().to(create))
    });
    routes.at("/payments/batch", |r| r.route(web::post().to(batch)));
    routes.at("/payments/by-external-id/{external_id}", |r| {
        r.route(web::put().to(upsert))
    });
    routes.at("/payments/{id}", |r| r.route(web::get().to(get)));
    routes.at("/payments/{id}/allocations", |r| r.route(web::post().to(allocate)));
    routes.at("/payments/{id}/allocations/{allocation_id}", |r| {
        r.route(web::delete().to(unallocate))
    });
    routes.at("/payments/{id}/reverse", |r| r.route(web::post().to(reverse)));
    routes.at("/invoices/{id}/applications", |r| {
        r.route(web::post().to(apply_credit_note))
    });
}

/// Money applied to an invoice, from a payment or a credit note.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "alc_1", "invoice_id": "inv_1", "payment_id": "pay_1", "credit_note_id": null, "amount": "1210.00",
    "rule": "reference", "applied_on": "2026-11-23", "created_by": "sap-sync", "created_at": "2026-11-23T10:00:00Z",
    "released_at": null, "release_reason": null
}))]
pub struct AllocationResponse {
    pub id: String,
    pub invoice_id: String,
    pub payment_id: Option<String>,
    pub credit_note_id: Option<String>,
    pub amount: String,
    /// `explicit`, `reference`, `exact_amount` or `oldest_due`: which rule made it.
    pub rule: String,
    pub applied_on: NaiveDate,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    /// Set when the allocation was unapplied or its payment reversed.
    pub released_at: Option<DateTime<Utc>>,
    pub release_reason: Option<String>,
}

impl AllocationResponse {
    pub fn new(a: &AllocationRow, currency: &str) -> AllocationResponse {
        AllocationResponse {
            id: Kind::Allocation.encode(a.id),
            invoice_id: Kind::Invoice.encode(a.invoice_id),
            payment_id: a.payment_id.map(|id| Kind::Payment.encode(id)),
            credit_note_id: a.credit_note_id.map(|id| Kind::Invoice.encode(id)),
            amount: format_stored(a.amount_minor, currency),
            rule: a.rule.clone(),
            applied_on: a.applied_on,
            created_by: a.created_by.clone(),
            created_at: utc(a.created_at),
            released_at: a.released_at.map(utc),
            release_reason: a.release_reason.clone(),
        }
    }
}

/// A payment with its allocations (live and released).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "pay_1", "external_id": "BANK-2026-11-23-0007", "customer_id": "cus_1", "amount": "1690.00",
    "currency": "EUR", "received_on": "2026-11-23", "method": "bank_transfer",
    "reference": "PAGO FRAS 2026/0042 2026/0057", "allocated_amount": "1690.00", "unapplied_amount": "0.00",
    "status": "applied", "reversed_at": null, "reversal_reason": null, "allocations": [], "version": 1,
    "created_at": "2026-11-23T10:00:00Z", "updated_at": "2026-11-23T10:00:00Z"
}))]
pub struct PaymentResponse {
    pub id: String,
    pub external_id: Option<String>,
    pub customer_id: String,
    pub amount: String,
    pub currency: String,
    pub received_on: NaiveDate,
    pub method: String,
    pub reference: Option<String>,
    pub allocated_amount: String,
    /// Cash not yet applied to any invoice: it stays on the customer's account.
    pub unapplied_amount: String,
    pub status: PaymentStatus,
    pub reversed_at: Option<DateTime<Utc>>,
    pub reversal_reason: Option<String>,
    pub allocations: Vec<AllocationResponse>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl PaymentResponse {
    pub fn new(p: &PaymentRow, allocations: &[AllocationRow]) -> PaymentResponse {
        let unapplied = if p.status == "reversed" {
            0
        } else {
            p.amount_minor - p.allocated_minor
        };
        PaymentResponse {
            id: Kind::Payment.encode(p.id),
            external_id: p.external_id.clone(),
            customer_id: Kind::Customer.encode(p.customer_id),
            amount: format_stored(p.amount_minor, &p.currency),
            currency: p.currency.clone(),
            received_on: p.received_on,
            method: p.method.clone(),
            reference: p.reference.clone(),
            allocated_amount: format_stored(p.allocated_minor, &p.currency),
            unapplied_amount: format_stored(unapplied, &p.currency),
            status: PaymentStatus::parse(&p.status).unwrap_or(PaymentStatus::Unapplied),
            reversed_at: p.reversed_at.map(utc),
            reversal_reason: p.reversal_reason.clone(),
            allocations: allocations
                .iter()
                .filter(|a| a.payment_id == Some(p.id))
                .map(|a| AllocationResponse::new(a, &p.currency))
                .collect(),
            version: p.version,
            created_at: utc(p.created_at),
            updated_at: utc(p.updated_at),
        }
    }

    /// Payments with their allocations, loaded with one query for the whole list.
    pub fn load_many(c: &mut DbConnection, rows: &[PaymentRow]) -> Result<Vec<PaymentResponse>, AppError> {
        let ids: Vec<i64> = rows.iter().map(|p| p.id).collect();
        let allocations = db::repo::payments::allocations_of_payments(c, &ids)?;
        Ok(rows.iter().map(|p| PaymentResponse::new(p, &allocations)).collect())
    }

    fn posted(p: &service::payments::PostedPayment) -> PaymentResponse {
        PaymentResponse::new(&p.payment, &p.allocations)
    }

    fn load(c: &mut DbConnection, row: &PaymentRow) -> Result<PaymentResponse, AppError> {
        let allocations = db::repo::payments::allocations_of_payments(c, &[row.id])?;
        Ok(PaymentResponse::new(row, &allocations))
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "items": [
        {
            "id": "pay_1", "external_id": "BANK-2026-11-23-0007", "customer_id": "cus_1", "amount": "1450.00",
            "currency": "EUR", "received_on": "2026-11-23", "method": "bank_transfer",
            "reference": "PAGO FRAS 2026/0042 2026/0057", "allocated_amount": "1450.00", "unapplied_amount": "0.00",
            "status": "applied", "reversed_at": null, "reversal_reason": null,
            "allocations": [
                {
                    "id": "alc_1", "invoice_id": "inv_1", "payment_id": "pay_1", "credit_note_id": null,
                    "amount": "1210.00", "rule": "reference", "applied_on": "2026-11-23", "created_by": "sap-sync",
                    "created_at": "2026-11-23T10:00:00Z", "released_at": null, "release_reason": null
                },
                {
                    "id": "alc_2", "invoice_id": "inv_2", "payment_id": "pay_1", "credit_note_id": null,
                    "amount": "240.00", "rule": "reference", "applied_on": "2026-11-23", "created_by": "sap-sync",
                    "created_at": "2026-11-23T10:00:00Z", "released_at": null, "release_reason": null
                }
            ],
            "version": 1, "created_at": "2026-11-23T10:00:00Z", "updated_at": "2026-11-23T10:00:00Z"
        }
    ],
    "next_cursor": "YWZ0ZXI6MQ"
}))]
pub struct PaymentPage {
    pub items: Vec<PaymentResponse>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PaymentListQuery {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    /// Only payments changed at or after this instant (RFC 3339).
    pub updated_since: Option<String>,
    pub customer_id: Option<String>,
    /// `unapplied`, `partially_applied`, `applied` or `reversed`.
    pub status: Option<String>,
    /// Received on or after this date.
    pub received_from: Option<String>,
    /// Received on or before this date.
    pub received_to: Option<String>,
    /// `true`: only payments with unapplied cash.
    pub unapplied: Option<bool>,
    pub external_id: Option<String>,
}

/// Up to 1 000 payments, each with an `external_id`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "items": [
        {
            "external_id": "BANK-2026-11-23-0007", "customer_external_id": "C-1001", "amount": "1450.00",
            "currency": "EUR", "received_on": "2026-11-23", "method": "bank_transfer",
            "reference": "PAGO FRAS 2026/0042 2026/0057"
        },
        {
            "external_id": "BANK-2026-11-23-0008", "customer_external_id": "C-1002", "amount": "312.40",
            "currency": "EUR", "received_on": "2026-11-23", "method": "bank_transfer"
        }
    ]
}))]
pub struct PaymentBatchRequest {
    #[schema(value_type = Vec<PaymentInput>, max_items = 1000)]
    pub items: Vec<serde_json::Value>,
}

/// Allocations to make from unapplied cash (or credit); leave `allocations` out to apply
/// it by the organisation's automatic rules.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"allocations": [{"invoice_id": "inv_1", "amount": "500.00"}]}))]
pub struct AllocateRequest {
    #[serde(default)]
    pub allocations: Option<Vec<AllocationInput>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "Cheque returned unpaid by the bank"}))]
pub struct ReverseRequest {
    pub reason: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "credit_note": {
        "id": "inv_9", "external_id": "AB-2026-0003", "customer_id": "cus_1", "kind": "credit_note",
        "number": "AB-2026/0003", "currency": "EUR", "amount": "60.50", "tax_amount": "10.50",
        "issue_date": "2026-11-10", "due_date": "2026-11-10", "purchase_order": null, "delivered_on": null,
        "status": "paid", "status_reason": null, "open_amount": "0.00", "disputed_amount": "0.00",
        "written_off_amount": "0.00", "paid_on": "2026-11-23", "days_overdue": 0, "version": 2,
        "created_at": "2026-11-23T10:00:00Z", "updated_at": "2026-11-23T10:00:00Z"
    },
    "applications": [
        {
            "id": "alc_3", "invoice_id": "inv_4", "payment_id": null, "credit_note_id": "inv_9", "amount": "60.50",
            "rule": "explicit", "applied_on": "2026-11-23", "created_by": "laura",
            "created_at": "2026-11-23T10:00:00Z", "released_at": null, "release_reason": null
        }
    ]
}))]
pub struct CreditNoteApplicationResponse {
    pub credit_note: InvoiceResponse,
    /// Every application of this credit note, live and released.
    pub applications: Vec<AllocationResponse>,
}

fn payment_id(path: &str) -> Result<i64, AppError> {
    Kind::Payment.decode(path).ok_or_else(|| AppError::not_found("payment"))
}

fn key_for(req: &HttpRequest, body: &impl Serialize) -> Result<Option<IdempotencyKey>, AppError> {
    let header = req
        .headers()
        .get("idempotency-key")
        .map(|v| {
            v.to_str()
                .map_err(|_| AppError::invalid("Idempotency-Key", "must be visible ASCII"))
        })
        .transpose()?;
    IdempotencyKey::from_header(header, req.method().as_str(), req.path(), body)
}

fn respond(outcome: Outcome) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(outcome.status).unwrap_or(actix_web::http::StatusCode::OK);
    let mut builder = HttpResponse::build(status);
    if outcome.replayed {
        builder.insert_header(("idempotent-replayed", "true"));
    }
    builder.json(outcome.body)
}

/// The body of the `201 Created` answer to a posted payment.
pub fn posted_body(posted: &service::payments::PostedPayment) -> Result<serde_json::Value, AppError> {
    to_json(&PaymentResponse::posted(posted))
}

fn to_json(value: &impl Serialize) -> Result<serde_json::Value, AppError> {
    serde_json::to_value(value).map_err(|e| AppError::internal(format!("serialise: {e}")))
}

/// Post a payment; without `allocations` it is applied by the automatic rules.
#[utoipa::path(post, path = "/v1/payments", tag = "payments", request_body = PaymentInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for a retry with the same body")),
    responses((status = 201, description = "Posted", body = PaymentResponse),
              (status = 409, description = "The external id is taken, or a concurrent change", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin", "manager", "integration"])))]
pub async fn create(
    auth: Auth,
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<PaymentInput>,
) -> Result<HttpResponse, AppError> {
    auth.require(LEDGER_WRITERS)?;
    let key = key_for(&req, &*body)?;
    let (org, actor, today, input) = (auth.org_id, auth.subject.clone(), state.today(), body.into_inner());
    // Posted with whatever other payments are waiting (`payment_groups`).
    let outcome = state.payments.post(org, actor, today, input, key).await?;
    Ok(respond(outcome))
}

/// Post or repeat a payment by its external id.
///
/// New: posted like `POST /v1/payments`. Existing: unchanged, or its date, method,
/// reference and amount (never below what is allocated) are updated; allocations stay.
#[utoipa::path(put, path = "/v1/payments/by-external-id/{external_id}", tag = "payments",
    params(("external_id" = String, Path, description = "The bank's or ERP's payment key")),
    request_body = PaymentInput,
    responses((status = 200, description = "Updated or unchanged", body = PaymentResponse),
              (status = 201, description = "Posted", body = PaymentResponse),
              (status = 409, description = "Conflicts with allocations or a reversal", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin", "manager", "integration"])))]
pub async fn upsert(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<PaymentInput>,
) -> Result<HttpResponse, AppError> {
    auth.require(LEDGER_WRITERS)?;
    let (org, actor, today, ext, input) = (
        auth.org_id,
        auth.subject.clone(),
        state.today(),
        path.into_inner(),
        body.into_inner(),
    );
    let outcome = db::run(&state.pool, move |c| {
        idempotency::run(
            c,
            org,
            None,
            |c| service::payments::upsert_one(c, org, &actor, &ext, input.clone(), today),
            |_, (outcome, posted)| {
                let status = if *outcome == UpsertOutcome::Created { 201 } else { 200 };
                Ok((status, to_json(&PaymentResponse::posted(posted))?))
            },
        )
    })
    .await?;
    Ok(respond(outcome))
}

/// Post up to 1 000 payments (a bank statement), one result per item.
#[utoipa::path(post, path = "/v1/payments/batch", tag = "payments", request_body = PaymentBatchRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for a retry with the same body")),
    responses((status = 200, description = "One result per item", body = BatchResponse)),
    security(("bearer" = ["admin", "manager", "integration"])))]
pub async fn batch(
    auth: Auth,
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<PaymentBatchRequest>,
) -> Result<HttpResponse, AppError> {
    auth.require(LEDGER_WRITERS)?;
    check_batch_size(body.items.len())?;
    let key = key_for(&req, &*body)?;
    let (org, actor, today, items) = (
        auth.org_id,
        auth.subject.clone(),
        state.today(),
        body.into_inner().items,
    );
    let outcome = db::run(&state.pool, move |c| {
        idempotency::run(
            c,
            org,
            key.as_ref(),
            |c| service::payments::post_batch(c, org, &actor, &items, today),
            |_, results| {
                Ok((
                    200,
                    to_json(&BatchResponse {
                        results: results.clone(),
                    })?,
                ))
            },
        )
    })
    .await?;
    Ok(respond(outcome))
}

/// Get a payment with its allocations.
#[utoipa::path(get, path = "/v1/payments/{id}", tag = "payments",
    params(("id" = String, Path, description = "Payment id, e.g. `pay_1`")),
    responses((status = 200, description = "The payment", body = PaymentResponse)),
    security(("bearer" = ["admin", "manager", "collector", "sales", "integration", "viewer"])))]
pub async fn get(auth: Auth, state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, AppError> {
    auth.require(READERS)?;
    let (org, id) = (auth.org_id, payment_id(&path)?);
    let body = db::run(&state.pool, move |c| {
        let row = db::repo::payments::find(c, org, id)?;
        PaymentResponse::load(c, &row)
    })
    .await?;
    Ok(HttpResponse::Ok().json(body))
}

/// List payments, in posting order.
#[utoipa::path(get, path = "/v1/payments", tag = "payments", params(PaymentListQuery),
    responses((status = 200, description = "A page of payments", body = PaymentPage)),
    security(("bearer" = ["admin", "manager", "collector", "sales", "integration", "viewer"])))]
pub async fn list(
    auth: Auth,
    state: web::Data<AppState>,
    query: web::Query<PaymentListQuery>,
) -> Result<HttpResponse, AppError> {
    auth.require(READERS)?;
    let q = query.into_inner();
    let page = PageRequest::parse(q.limit, q.cursor.as_deref())?;
    if let Some(s) = &q.status
        && PaymentStatus::parse(s).is_none()
    {
        return Err(AppError::invalid(
            "status",
            "must be unapplied, partially_applied, applied or reversed",
        ));
    }
    let filter = PaymentFilter {
        customer_id: q
            .customer_id
            .as_deref()
            .map(|id| Kind::Customer.decode(id).unwrap_or(-1)),
        status: q.status,
        received_from: parse_date("received_from", q.received_from.as_deref())?,
        received_to: parse_date("received_to", q.received_to.as_deref())?,
        unapplied: q.unapplied.unwrap_or(false),
        external_id: q.external_id,
        updated_since: parse_instant("updated_since", q.updated_since.as_deref())?,
    };
    let org = auth.org_id;
    let body = db::run(&state.pool, move |c| {
        let rows = db::repo::payments::list(c, org, &filter, page.after_id, page.fetch_limit())?;
        let (rows, next_cursor) = page.finish(rows, |r| r.id);
        Ok(PaymentPage {
            items: PaymentResponse::load_many(c, &rows)?,
            next_cursor,
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(body))
}

/// Apply a payment's unapplied cash: to the invoices given, or by the automatic rules.
#[utoipa::path(post, path = "/v1/payments/{id}/allocations", tag = "payments",
    params(("id" = String, Path, description = "Payment id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for a retry with the same body")),
    request_body = AllocateRequest,
    responses((status = 200, description = "The payment with its allocations", body = PaymentResponse),
              (status = 409, description = "Reversed or fully applied payment, or nothing to apply to", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin", "manager", "integration"])))]
pub async fn allocate(
    auth: Auth,
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<AllocateRequest>,
) -> Result<HttpResponse, AppError> {
    auth.require(LEDGER_WRITERS)?;
    let key = key_for(&req, &*body)?;
    let (org, actor, id, body, today) = (
        auth.org_id,
        auth.subject.clone(),
        payment_id(&path)?,
        body.into_inner(),
        state.today(),
    );
    let outcome = db::run(&state.pool, move |c| {
        idempotency::run(
            c,
            org,
            key.as_ref(),
            |c| service::payments::allocate(c, org, &actor, id, body.allocations.as_deref(), today),
            |c, row| Ok((200, to_json(&PaymentResponse::load(c, row)?)?)),
        )
    })
    .await?;
    Ok(respond(outcome))
}

/// Unapply one allocation; it stays in the payment's history as released.
#[utoipa::path(delete, path = "/v1/payments/{id}/allocations/{allocation_id}", tag = "payments",
    params(("id" = String, Path, description = "Payment id"), ("allocation_id" = String, Path, description = "Allocation id, e.g. `alc_1`")),
    responses((status = 200, description = "The payment with its allocations", body = PaymentResponse),
              (status = 409, description = "Already released", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin", "manager", "integration"])))]
pub async fn unallocate(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    auth.require(LEDGER_WRITERS)?;
    let (pid, aid) = path.into_inner();
    let id = payment_id(&pid)?;
    let allocation = Kind::Allocation
        .decode(&aid)
        .ok_or_else(|| AppError::not_found("allocation"))?;
    let org = auth.org_id;
    let outcome = db::run(&state.pool, move |c| {
        idempotency::run(
            c,
            org,
            None,
            |c| service::payments::unallocate(c, org, id, allocation),
            |c, row| Ok((200, to_json(&PaymentResponse::load(c, row)?)?)),
        )
    })
    .await?;
    Ok(respond(outcome))
}

/// Reverse a payment (bounced cheque, chargeback, returned direct debit).
///
/// All its allocations are released and the invoices it paid reopen; the reversal is
/// recorded on the payment and as a `payment.reversed` event for risk signals.
#[utoipa::path(post, path = "/v1/payments/{id}/reverse", tag = "payments",
    params(("id" = String, Path, description = "Payment id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for a retry with the same body")),
    request_body = ReverseRequest,
    responses((status = 200, description = "The reversed payment", body = PaymentResponse),
              (status = 409, description = "Already reversed", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin", "manager", "integration"])))]
pub async fn reverse(
    auth: Auth,
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<ReverseRequest>,
) -> Result<HttpResponse, AppError> {
    auth.require(LEDGER_WRITERS)?;
    let key = key_for(&req, &*body)?;
    let mut v = Violations::new();
    let reason = text::required(&mut v, "reason", Some(&body.reason), 500);
    let reason = v.into_result(reason)?.unwrap_or_default();
    let (org, id) = (auth.org_id, payment_id(&path)?);
    let outcome = db::run(&state.pool, move |c| {
        idempotency::run(
            c,
            org,
            key.as_ref(),
            |c| service::payments::reverse(c, org, id, &reason),
            |c, row| Ok((200, to_json(&PaymentResponse::load(c, row)?)?)),
        )
    })
    .await?;
    Ok(respond(outcome))
}

/// Apply a credit note to invoices of its customer: to the invoices given, or by the
/// automatic rules.
#[utoipa::path(post, path = "/v1/invoices/{id}/applications", tag = "invoices",
    params(("id" = String, Path, description = "Credit note id (an invoice of kind `credit_note`)"),
           ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for a retry with the same body")),
    request_body = AllocateRequest,
    responses((status = 200, description = "The credit note and its applications", body = CreditNoteApplicationResponse),
              (status = 409, description = "Not a credit note, fully applied, or nothing to apply to", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin", "manager", "integration"])))]
pub async fn apply_credit_note(
    auth: Auth,
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<AllocateRequest>,
) -> Result<HttpResponse, AppError> {
    auth.require(LEDGER_WRITERS)?;
    let key = key_for(&req, &*body)?;
    let id = Kind::Invoice
        .decode(&path)
        .ok_or_else(|| AppError::not_found("credit note"))?;
    let (org, actor, today, body) = (auth.org_id, auth.subject.clone(), state.today(), body.into_inner());
    let outcome = db::run(&state.pool, move |c| {
        idempotency::run(
            c,
            org,
            key.as_ref(),
            |c| service::payments::apply_credit_note(c, org, &actor, id, body.allocations.as_deref(), today),
            |c, note| {
                let applications = db::repo::payments::allocations_of_credit_notes(c, &[note.id])?;
                Ok((
                    200,
                    to_json(&CreditNoteApplicationResponse {
                        credit_note: InvoiceResponse::new(note, today),
                        applications: applications
                            .iter()
                            .map(|a| AllocationResponse::new(a, &note.currency))
                            .collect(),
                    })?,
                ))
            },
        )
    })
    .await?;
    Ok(respond(outcome))
}
