//! `/v1/invoices`: invoices, credit notes and debit notes: create, read, list with filters,
//! merge-patch, upsert by external id, batch upsert, cancel and write-off.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Auth;
use crate::auth::roles::{LEDGER_WRITERS, MANAGERS, READERS};
use crate::db::repo::invoices::{InvoiceFilter, InvoiceRow};
use crate::db::{self};
use crate::domain::ids::Kind;
use crate::domain::invoice::{InvoiceInput, InvoiceStatus, days_overdue};
use crate::domain::money::format_stored;
use crate::domain::text;
use crate::error::{AppError, Violations};
use crate::http::customers::{BatchResponse, check_batch_size};
use crate::http::{PageRequest, Routes, if_match, parse_date, parse_instant, utc, with_etag};
use crate::service::{self, UpsertOutcome};
use crate::state::AppState;

pub fn routes(routes: &mut Routes) {
    routes.at("/invoices", |r| {
        r.route(web::get().to(list)).route(web::post().to(create))
    });
    routes.at("/invoices/batch", |r| r.route(web::post().to(batch)));
    routes.at("/invoices/by-external-id/{external_id}", |r| {
        r.route(web::put().to(upsert))
    });
    routes.at("/invoices/{id}", |r| {
        r.route(web::get().to(get)).route(web::patch().to(patch))
    });
    routes.at("/invoices/{id}/cancel", |r| r.route(web::post().to(cancel)));
    routes.at("/invoices/{id}/write-off", |r| r.route(web::post().to(write_off)));
}

/// An invoice, credit note or debit note, with its derived balance.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "inv_1", "external_id": "F-2026-0042", "customer_id": "cus_1", "kind": "invoice",
    "number": "2026/0042", "currency": "EUR", "amount": "1210.00", "tax_amount": "210.00",
    "open_amount": "1210.00", "written_off_amount": "0.00", "disputed_amount": "0.00", "issue_date": "2026-10-01",
    "due_date": "2026-10-31", "purchase_order": "PO-889", "delivered_on": "2026-10-02",
    "status": "open", "status_reason": null, "paid_on": null, "days_overdue": 23, "version": 1,
    "created_at": "2026-11-23T10:00:00Z", "updated_at": "2026-11-23T10:00:00Z"
}))]
pub struct InvoiceResponse {
    pub id: String,
    pub external_id: Option<String>,
    pub customer_id: String,
    pub kind: String,
    pub number: String,
    pub currency: String,
    pub amount: String,
    pub tax_amount: String,
    /// Amount minus what payments and credit notes have paid and what was written off.
    pub open_amount: String,
    pub written_off_amount: String,
    /// Amount under open disputes: kept out of collection until resolved.
    pub disputed_amount: String,
    pub issue_date: NaiveDate,
    pub due_date: NaiveDate,
    pub purchase_order: Option<String>,
    pub delivered_on: Option<NaiveDate>,
    pub status: InvoiceStatus,
    /// Reason given when the invoice was cancelled or written off.
    pub status_reason: Option<String>,
    /// Date the open amount reached zero.
    pub paid_on: Option<NaiveDate>,
    /// Days past due as of today (or `as_of`), 0 when not yet due or settled.
    pub days_overdue: i64,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl InvoiceResponse {
    pub fn new(r: &InvoiceRow, as_of: NaiveDate) -> InvoiceResponse {
        InvoiceResponse {
            id: Kind::Invoice.encode(r.id),
            external_id: r.external_id.clone(),
            customer_id: Kind::Customer.encode(r.customer_id),
            kind: r.kind.clone(),
            number: r.number.clone(),
            currency: r.currency.clone(),
            amount: format_stored(r.amount_minor, &r.currency),
            tax_amount: format_stored(r.tax_minor, &r.currency),
            open_amount: format_stored(r.open_minor, &r.currency),
            written_off_amount: format_stored(r.written_off_minor, &r.currency),
            disputed_amount: format_stored(r.disputed_minor, &r.currency),
            issue_date: r.issue_date,
            due_date: r.due_date,
            purchase_order: r.purchase_order.clone(),
            delivered_on: r.delivered_on,
            status: r.status(),
            status_reason: r.status_reason.clone(),
            paid_on: r.paid_on,
            days_overdue: if r.kind == "credit_note" {
                0
            } else {
                days_overdue(r.due_date, as_of, r.open_minor)
            },
            version: r.version,
            created_at: utc(r.created_at),
            updated_at: utc(r.updated_at),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "items": [
        {
            "id": "inv_1", "external_id": "F-2026-0042", "customer_id": "cus_1", "kind": "invoice",
            "number": "2026/0042", "currency": "EUR", "amount": "1210.00", "tax_amount": "210.00",
            "issue_date": "2026-10-01", "due_date": "2026-10-31", "purchase_order": "PO-889",
            "delivered_on": "2026-10-02", "status": "open", "status_reason": null, "open_amount": "1210.00",
            "disputed_amount": "0.00", "written_off_amount": "0.00", "paid_on": null, "days_overdue": 23, "version": 1,
            "created_at": "2026-11-23T10:00:00Z", "updated_at": "2026-11-23T10:00:00Z"
        }
    ],
    "next_cursor": "YWZ0ZXI6MQ"
}))]
pub struct InvoicePage {
    pub items: Vec<InvoiceResponse>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InvoiceListQuery {
    /// Page size, 1–500 (default 50).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Only invoices changed at or after this instant (RFC 3339).
    pub updated_since: Option<String>,
    pub customer_id: Option<String>,
    /// One status or several separated by commas: `open,partially_paid`.
    pub status: Option<String>,
    /// `invoice`, `credit_note` or `debit_note`.
    pub kind: Option<String>,
    pub currency: Option<String>,
    pub external_id: Option<String>,
    /// `true`: only unpaid invoices past their due date as of `as_of`.
    pub overdue: Option<bool>,
    /// Due strictly before this date.
    pub due_before: Option<String>,
    /// Due strictly after this date.
    pub due_after: Option<String>,
    /// Business date for `overdue` and `days_overdue` (default today, UTC).
    pub as_of: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InvoiceGetQuery {
    /// Business date for `days_overdue` (default today, UTC).
    pub as_of: Option<String>,
}

/// Up to 1 000 invoices to upsert by `external_id`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "items": [
        {
            "external_id": "F-2026-0042", "customer_external_id": "C-1001", "number": "2026/0042", "amount": "1210.00",
            "tax_amount": "210.00", "issue_date": "2026-10-01", "delivered_on": "2026-10-02"
        },
        {
            "external_id": "F-2026-0057", "customer_external_id": "C-1001", "number": "2026/0057", "amount": "480.00",
            "issue_date": "2026-10-20", "due_date": "2026-11-30"
        }
    ]
}))]
pub struct InvoiceBatchRequest {
    #[schema(value_type = Vec<InvoiceInput>, max_items = 1000)]
    pub items: Vec<serde_json::Value>,
}

/// Why an invoice is cancelled or written off.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "Customer insolvent; claim filed with the administrator"}))]
pub struct CloseRequest {
    pub reason: String,
}

fn invoice_id(path: &str) -> Result<i64, AppError> {
    Kind::Invoice.decode(path).ok_or_else(|| AppError::not_found("invoice"))
}

/// Create an invoice, credit note or debit note.
#[utoipa::path(post, path = "/v1/invoices", tag = "invoices", request_body = InvoiceInput,
    responses((status = 201, description = "Created", body = InvoiceResponse),
              (status = 409, description = "The external id is taken", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin", "manager", "integration"])))]
pub async fn create(
    auth: Auth,
    state: web::Data<AppState>,
    body: web::Json<InvoiceInput>,
) -> Result<HttpResponse, AppError> {
    auth.require(LEDGER_WRITERS)?;
    let org = auth.org_id;
    let row = db::run(&state.pool, move |c| service::invoices::create(c, org, &body)).await?;
    Ok(with_etag(
        HttpResponse::Created(),
        row.version,
        InvoiceResponse::new(&row, state.today()),
    ))
}

/// Get an invoice.
#[utoipa::path(get, path = "/v1/invoices/{id}", tag = "invoices",
    params(("id" = String, Path, description = "Invoice id, e.g. `inv_1`"), InvoiceGetQuery),
    responses((status = 200, description = "The invoice", body = InvoiceResponse)),
    security(("bearer" = ["admin", "manager", "collector", "sales", "integration", "viewer"])))]
pub async fn get(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<InvoiceGetQuery>,
) -> Result<HttpResponse, AppError> {
    auth.require(READERS)?;
    let as_of = parse_date("as_of", query.as_of.as_deref())?.unwrap_or_else(|| state.today());
    let (org, id) = (auth.org_id, invoice_id(&path)?);
    let row = db::run(&state.pool, move |c| db::repo::invoices::find(c, org, id)).await?;
    Ok(with_etag(
        HttpResponse::Ok(),
        row.version,
        InvoiceResponse::new(&row, as_of),
    ))
}

/// List invoices, in creation order, with filters.
#[utoipa::path(get, path = "/v1/invoices", tag = "invoices", params(InvoiceListQuery),
    responses((status = 200, description = "A page of invoices", body = InvoicePage)),
    security(("bearer" = ["admin", "manager", "collector", "sales", "integration", "viewer"])))]
pub async fn list(
    auth: Auth,
    state: web::Data<AppState>,
    query: web::Query<InvoiceListQuery>,
) -> Result<HttpResponse, AppError> {
    auth.require(READERS)?;
    let q = query.into_inner();
    let page = PageRequest::parse(q.limit, q.cursor.as_deref())?;
    let as_of = parse_date("as_of", q.as_of.as_deref())?.unwrap_or_else(|| state.today());
    let mut v = Violations::new();
    let statuses: Vec<String> = q
        .status
        .as_deref()
        .map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if statuses.iter().any(|s| InvoiceStatus::parse(s).is_none()) {
        v.add(
            "status",
            "must be open, partially_paid, paid, cancelled or written_off (comma-separated)",
        );
    }
    // An id that is not a customer id matches nothing, like another tenant's id.
    let customer_id = q
        .customer_id
        .as_deref()
        .map(|id| Kind::Customer.decode(id).unwrap_or(-1));
    let currency = text::optional(&mut v, "currency", q.currency.as_deref(), 3);
    v.into_result(())?;
    let filter = InvoiceFilter {
        customer_id,
        statuses,
        kind: q.kind,
        currency,
        external_id: q.external_id,
        overdue_as_of: q.overdue.filter(|o| *o).map(|_| as_of),
        due_before: parse_date("due_before", q.due_before.as_deref())?,
        due_after: parse_date("due_after", q.due_after.as_deref())?,
        updated_since: parse_instant("updated_since", q.updated_since.as_deref())?,
    };
    let org = auth.org_id;
    let rows = db::run(&state.pool, move |c| {
        db::repo::invoices::list(c, org, &filter, page.after_id, page.fetch_limit())
    })
    .await?;
    let (rows, next_cursor) = page.finish(rows, |r| r.id);
    Ok(HttpResponse::Ok().json(InvoicePage {
        items: rows.iter().map(|r| InvoiceResponse::new(r, as_of)).collect(),
        next_cursor,
    }))
}

/// Change some fields of an invoice (JSON merge patch).
///
/// Changing the amount of an invoice with payments applied keeps what was applied; a new
/// amount below it is refused with 409, and so is a new customer, currency or kind
/// (invoice or debit note against credit note) once money is applied to or from it.
#[utoipa::path(patch, path = "/v1/invoices/{id}", tag = "invoices",
    params(("id" = String, Path, description = "Invoice id"),
           ("If-Match" = Option<String>, Header, description = "Expected version; a mismatch is 412")),
    request_body(content = InvoiceInput, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The updated invoice", body = InvoiceResponse),
              (status = 409, description = "Conflicts with applied payments or a closed invoice", body = crate::error::Problem, content_type = "application/problem+json"),
              (status = 412, description = "Version mismatch", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin", "manager", "integration"])))]
pub async fn patch(
    auth: Auth,
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, AppError> {
    auth.require(LEDGER_WRITERS)?;
    let (org, id, expected, today) = (auth.org_id, invoice_id(&path)?, if_match(&req)?, state.today());
    let row = db::run(&state.pool, move |c| {
        service::invoices::patch(c, org, id, expected, &body, today)
    })
    .await?;
    Ok(with_etag(
        HttpResponse::Ok(),
        row.version,
        InvoiceResponse::new(&row, today),
    ))
}

/// Create or replace an invoice by the ERP's key.
///
/// A replacement follows the rules of `PATCH /v1/invoices/{id}` for money already applied.
#[utoipa::path(put, path = "/v1/invoices/by-external-id/{external_id}", tag = "invoices",
    params(("external_id" = String, Path, description = "The ERP's document key")),
    request_body = InvoiceInput,
    responses((status = 200, description = "Updated or unchanged", body = InvoiceResponse),
              (status = 201, description = "Created", body = InvoiceResponse),
              (status = 409, description = "Conflicts with applied payments or a closed invoice", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin", "manager", "integration"])))]
pub async fn upsert(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<InvoiceInput>,
) -> Result<HttpResponse, AppError> {
    auth.require(LEDGER_WRITERS)?;
    let (org, external_id, input, today) = (auth.org_id, path.into_inner(), body.into_inner(), state.today());
    let (outcome, row) = db::run(&state.pool, move |c| {
        service::invoices::upsert_one(c, org, &external_id, input, today)
    })
    .await?;
    let builder = if outcome == UpsertOutcome::Created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(with_etag(builder, row.version, InvoiceResponse::new(&row, today)))
}

/// Upsert up to 1 000 invoices by `external_id`, one result per item.
///
/// Customers may be referenced by `customer_id` or `customer_external_id`. A bad item gets
/// its own problem and writes nothing; the others are written.
#[utoipa::path(post, path = "/v1/invoices/batch", tag = "invoices", request_body = InvoiceBatchRequest,
    responses((status = 200, description = "One result per item", body = BatchResponse)),
    security(("bearer" = ["admin", "manager", "integration"])))]
pub async fn batch(
    auth: Auth,
    state: web::Data<AppState>,
    body: web::Json<InvoiceBatchRequest>,
) -> Result<HttpResponse, AppError> {
    auth.require(LEDGER_WRITERS)?;
    let items = body.into_inner().items;
    check_batch_size(items.len())?;
    let (org, today) = (auth.org_id, state.today());
    let results = db::run(&state.pool, move |c| {
        service::invoices::upsert_batch(c, org, items, today)
    })
    .await?;
    Ok(HttpResponse::Ok().json(BatchResponse { results }))
}

async fn close(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<CloseRequest>,
    target: InvoiceStatus,
) -> Result<HttpResponse, AppError> {
    auth.require(MANAGERS)?;
    let mut v = Violations::new();
    let reason = text::required(&mut v, "reason", Some(&body.reason), 500);
    let reason = v.into_result(reason)?.unwrap_or_default();
    let (org, id, today) = (auth.org_id, invoice_id(&path)?, state.today());
    let row = db::run(&state.pool, move |c| {
        service::invoices::close(c, org, id, target, &reason)
    })
    .await?;
    Ok(with_etag(
        HttpResponse::Ok(),
        row.version,
        InvoiceResponse::new(&row, today),
    ))
}

/// Cancel an invoice (nothing may be applied to it).
#[utoipa::path(post, path = "/v1/invoices/{id}/cancel", tag = "invoices",
    params(("id" = String, Path, description = "Invoice id")), request_body = CloseRequest,
    responses((status = 200, description = "The cancelled invoice", body = InvoiceResponse),
              (status = 409, description = "Payments are applied, or the invoice is already closed", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin", "manager"])))]
pub async fn cancel(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<CloseRequest>,
) -> Result<HttpResponse, AppError> {
    close(auth, state, path, body, InvoiceStatus::Cancelled).await
}

/// Write off the open amount of an invoice.
#[utoipa::path(post, path = "/v1/invoices/{id}/write-off", tag = "invoices",
    params(("id" = String, Path, description = "Invoice id")), request_body = CloseRequest,
    responses((status = 200, description = "The written-off invoice", body = InvoiceResponse),
              (status = 409, description = "Nothing is open, or the invoice is already closed", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin", "manager"])))]
pub async fn write_off(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<CloseRequest>,
) -> Result<HttpResponse, AppError> {
    close(auth, state, path, body, InvoiceStatus::WrittenOff).await
}
