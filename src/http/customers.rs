//! `/v1/customers`: create, read, list, merge-patch, upsert by external id, batch upsert,
//! and the customer statement.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Auth;
use crate::auth::roles::{LEDGER_WRITERS, READERS};
use crate::db::repo::customers::{CustomerFilter, CustomerRow};
use crate::db::{self};
use crate::domain::customer::{Contact, CustomerInput};
use crate::domain::ids::Kind;
use crate::domain::invoice::days_overdue;
use crate::domain::money::format_stored;
use crate::error::AppError;
use crate::http::{PageRequest, Routes, if_match, parse_date, parse_instant, utc, with_etag};
use crate::service::{self, BatchItemResult, MAX_BATCH, UpsertOutcome};
use crate::state::AppState;

pub fn routes(routes: &mut Routes) {
    routes.at("/customers", |r| {
        r.route(web::get().to(list)).route(web::post().to(create))
    });
    routes.at("/customers/batch", |r| r.route(web::post().to(batch)));
    routes.at("/customers/by-external-id/{external_id}", |r| {
        r.route(web::put().to(upsert))
    });
    routes.at("/customers/{id}", |r| {
        r.route(web::get().to(get)).route(web::patch().to(patch))
    });
    routes.at("/customers/{id}/statement", |r| r.route(web::get().to(statement)));
}

/// A customer (the debtor).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "cus_1", "external_id": "C-1001", "name": "Ferreteria Puig", "legal_name": "Ferreteria Puig SL",
    "tax_id": "B12345678", "country": "ES", "language": "ca", "currency": "EUR", "payment_terms_days": 30,
    "segment": "wholesale", "collector": "marta", "sales_rep": "joan", "credit_limit": "25000.00",
    "dunning_paused_until": null, "dunning_pause_reason": null,
    "contacts": [{"name": "Marta Puig", "email": "ap@ferreteriapuig.example", "phone": "+34 933 000 111",
                  "role": "accounts_payable", "is_primary_for_collections": true, "preferred_channel": "phone"}],
    "credit_status": "ok", "risk_class": "B", "risk_score": 15,
    "flags": {"broken_promise": false, "credit_hold": false, "over_limit": false, "at_risk": false, "in_dispute": false,
              "with_agency": false, "legal": false},
    "version": 1, "created_at": "2026-11-23T10:00:00Z", "updated_at": "2026-11-23T10:00:00Z"
}))]
pub struct CustomerResponse {
    pub id: String,
    pub external_id: Option<String>,
    pub name: String,
    pub legal_name: Option<String>,
    pub tax_id: Option<String>,
    pub country: Option<String>,
    pub language: String,
    pub currency: String,
    pub payment_terms_days: i32,
    pub segment: Option<String>,
    pub collector: Option<String>,
    pub sales_rep: Option<String>,
    pub credit_limit: Option<String>,
    pub dunning_paused_until: Option<NaiveDate>,
    pub dunning_pause_reason: Option<String>,
    pub contacts: Vec<Contact>,
    /// `ok`, `on_hold` or `manual_release` (credit control).
    pub credit_status: String,
    /// `A` (low risk) to `E`, from payment history or the last credit decision.
    pub risk_class: Option<String>,
    /// 0 (no warning sign) to 100.
    pub risk_score: i32,
    /// Automatic flags (P3).
    pub flags: crate::service::credit::CustomerFlags,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&CustomerRow> for CustomerResponse {
    fn from(r: &CustomerRow) -> Self {
        CustomerResponse {
            id: Kind::Customer.encode(r.id),
            external_id: r.external_id.clone(),
            name: r.name.clone(),
            legal_name: r.legal_name.clone(),
            tax_id: r.tax_id.clone(),
            country: r.country.clone(),
            language: r.language.clone(),
            currency: r.currency.clone(),
            payment_terms_days: r.payment_terms_days,
            segment: r.segment.clone(),
            collector: r.collector.clone(),
            sales_rep: r.sales_rep.clone(),
            credit_limit: r.credit_limit_minor.map(|m| format_stored(m, &r.currency)),
            dunning_paused_until: r.dunning_paused_until,
            dunning_pause_reason: r.dunning_pause_reason.clone(),
            contacts: r.contacts(),
            credit_status: r.credit_status.clone(),
            risk_class: r.risk_class.clone(),
            risk_score: r.risk_score,
            flags: crate::service::credit::CustomerFlags::of(r),
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
            "id": "cus_1", "external_id": "C-1001", "name": "Ferreteria Puig", "legal_name": "Ferreteria Puig SL",
            "tax_id": "B12345678", "country": "ES", "language": "ca", "currency": "EUR", "payment_terms_days": 30,
            "segment": "wholesale", "collector": "marta", "sales_rep": "joan", "credit_limit": "25000.00",
            "dunning_paused_until": null, "dunning_pause_reason": null,
            "contacts": [
                {
                    "name": "Marta Puig", "email": "ap@ferreteriapuig.example", "phone": "+34 933 000 111",
                    "role": "accounts_payable", "is_primary_for_collections": true, "preferred_channel": "phone"
                }
            ],
            "credit_status": "ok", "risk_class": "B", "risk_score": 15,
            "flags": {
                "broken_promise": false, "credit_hold": false, "over_limit": false, "at_risk": false,
                "in_dispute": false, "with_agency": false, "legal": false
            },
            "version": 1, "created_at": "2026-11-23T10:00:00Z", "updated_at": "2026-11-23T10:00:00Z"
        }
    ],
    "next_cursor": "YWZ0ZXI6MQ"
}))]
pub struct CustomerPage {
    pub items: Vec<CustomerResponse>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CustomerListQuery {
    /// Page size, 1–500 (default 50).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Only customers changed at or after this instant (RFC 3339).
    pub updated_since: Option<String>,
    pub external_id: Option<String>,
    pub segment: Option<String>,
    pub collector: Option<String>,
    pub sales_rep: Option<String>,
    pub country: Option<String>,
    /// Risk classes, comma-separated, e.g. `D,E`.
    pub risk_class: Option<String>,
    /// `id` (default, creation order) or `risk` (riskiest first: risk score descending).
    pub sort: Option<String>,
}

/// Up to 1 000 customers to upsert by `external_id`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "items": [
        {
            "external_id": "C-1001", "name": "Ferreteria Puig", "country": "ES", "language": "ca", "currency": "EUR",
            "payment_terms_days": 30, "credit_limit": "25000.00"
        },
        {"external_id": "C-1002", "name": "Pintures Roca", "country": "ES", "language": "es", "currency": "EUR"}
    ]
}))]
pub struct CustomerBatchRequest {
    #[schema(value_type = Vec<CustomerInput>, max_items = 1000)]
    pub items: Vec<serde_json::Value>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "results": [
        {"index": 0, "status": "created", "id": "inv_1", "external_id": "F-2026-0042"},
        {"index": 1, "status": "updated", "id": "inv_2", "external_id": "F-2026-0057"},
        {
            "index": 2, "status": "error", "external_id": "F-2026-0070",
            "problem": {
                "type": "urn:recaudo:problem:validation", "title": "The request is not valid", "status": 422,
                "detail": "1 field is not valid",
                "errors": [{"field": "customer_external_id", "message": "no customer with this external id"}]
            }
        }
    ]
}))]
pub struct BatchResponse {
    /// One result per item, in request order.
    pub results: Vec<BatchItemResult>,
}

fn customer_id(path: &str) -> Result<i64, AppError> {
    Kind::Customer
        .decode(path)
        .ok_or_else(|| AppError::not_found("customer"))
}

/// Create a customer.
#[utoipa::path(post, path = "/v1/customers", tag = "customers", request_body = CustomerInput,
    responses((status = 201, description = "Created", body = CustomerResponse),
              (status = 409, description = "The external id is taken", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin", "manager", "integration"])))]
pub async fn create(
    auth: Auth,
    state: web::Data<AppState>,
    body: web::Json<CustomerInput>,
) -> Result<HttpResponse, AppError> {
    auth.require(LEDGER_WRITERS)?;
    let org = auth.org_id;
    let row = db::run(&state.pool, move |c| service::customers::create(c, org, &body)).await?;
    Ok(with_etag(
        HttpResponse::Created(),
        row.version,
        CustomerResponse::from(&row),
    ))
}

/// Get a customer.
#[utoipa::path(get, path = "/v1/customers/{id}", tag = "customers",
    params(("id" = String, Path, description = "Customer id, e.g. `cus_1`")),
    responses((status = 200, description = "The customer", body = CustomerResponse)),
    security(("bearer" = ["admin", "manager", "collector", "sales", "integration", "viewer"])))]
pub async fn get(auth: Auth, state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, AppError> {
    auth.require(READERS)?;
    let (org, id) = (auth.org_id, customer_id(&path)?);
    let row = db::run(&state.pool, move |c| {
        crate::service::credit_queue::settle_customer(c, org, id)?;
        db::repo::customers::find(c, org, id)
    })
    .await?;
    Ok(with_etag(HttpResponse::Ok(), row.version, CustomerResponse::from(&row)))
}

/// List customers, in creation order or riskiest first (`sort=risk`); filter by risk
/// class with `risk_class=D,E`.
#[utoipa::path(get, path = "/v1/customers", tag = "customers", params(CustomerListQuery),
    responses((status = 200, description = "A page of customers", body = CustomerPage)),
    security(("bearer" = ["admin", "manager", "collector", "sales", "integration", "viewer"])))]
pub async fn list(
    auth: Auth,
    state: web::Data<AppState>,
    query: web::Query<CustomerListQuery>,
) -> Result<HttpResponse, AppError> {
    auth.require(READERS)?;
    let q = query.into_inner();
    let by_risk = match q.sort.as_deref() {
        None | Some("id") => false,
        Some("risk") => true,
        Some(_) => return Err(AppError::invalid("sort", "must be id or risk")),
    };
    let (page, after_risk) = if by_risk {
        risk_page(q.limit, q.cursor.as_deref())?
    } else {
        (PageRequest::parse(q.limit, q.cursor.as_deref())?, None)
    };
    let risk_classes = match q.risk_class.as_deref() {
        None => None,
        Some(text) => {
            let classes: Vec<String> = text.split(',').map(|c| c.trim().to_uppercase()).collect();
            if classes.iter().any(|c| !["A", "B", "C", "D", "E"].contains(&c.as_str())) {
                return Err(AppError::invalid(
                    "risk_class",
                    "must be classes A to E, comma-separated",
                ));
            }
            Some(classes)
        }
    };
    let filter = CustomerFilter {
        updated_since: parse_instant("updated_since", q.updated_since.as_deref())?,
        external_id: q.external_id,
        segment: q.segment,
        collector: q.collector,
        sales_rep: q.sales_rep,
        country: q.country,
        risk_classes,
        by_risk,
    };
    let org = auth.org_id;
    let rows = db::run(&state.pool, move |c| {
        crate::service::credit_queue::settle_org(c, org)?;
        db::repo::customers::list_sorted(c, org, &filter, page.after_id, after_risk, page.fetch_limit())
    })
    .await?;
    let (rows, next_cursor) = if by_risk {
        finish_risk_page(page, rows)
    } else {
        page.finish(rows, |r| r.id)
    };
    Ok(HttpResponse::Ok().json(CustomerPage {
        items: rows.iter().map(CustomerResponse::from).collect(),
        next_cursor,
    }))
}

/// Cursor of a page sorted by risk: the (risk score, id) of the last row, as
/// `risk:<score>:<id>` in URL-safe base64.
fn risk_page(limit: Option<i64>, cursor: Option<&str>) -> Result<(PageRequest, Option<(i32, i64)>), AppError> {
    use base64::Engine as _;
    let page = PageRequest::parse(limit, None)?;
    let Some(cursor) = cursor.filter(|c| !c.is_empty()) else {
        return Ok((page, None));
    };
    let bad = || AppError::invalid("cursor", "is not a cursor this API issued");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (score, id) = text
        .strip_prefix("risk:")
        .and_then(|rest| rest.split_once(':'))
        .ok_or_else(bad)?;
    Ok((
        page,
        Some((score.parse().map_err(|_| bad())?, id.parse().map_err(|_| bad())?)),
    ))
}

fn finish_risk_page(page: PageRequest, mut rows: Vec<CustomerRow>) -> (Vec<CustomerRow>, Option<String>) {
    use base64::Engine as _;
    let more = rows.len() as i64 > page.limit;
    rows.truncate(page.limit as usize);
    let next = if more {
        rows.last()
            .map(|r| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("risk:{}:{}", r.risk_score, r.id)))
    } else {
        None
    };
    (rows, next)
}

/// Change some fields of a customer (JSON merge patch; `null` clears a field).
#[utoipa::path(patch, path = "/v1/customers/{id}", tag = "customers",
    params(("id" = String, Path, description = "Customer id"),
           ("If-Match" = Option<String>, Header, description = "Expected version; a mismatch is 412")),
    request_body(content = CustomerInput, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The updated customer", body = CustomerResponse),
              (status = 409, description = "The external id is taken", body = crate::error::Problem, content_type = "application/problem+json"),
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
    let (org, id, expected) = (auth.org_id, customer_id(&path)?, if_match(&req)?);
    let row = db::run(&state.pool, move |c| {
        service::customers::patch(c, org, id, expected, &body)
    })
    .await?;
    Ok(with_etag(HttpResponse::Ok(), row.version, CustomerResponse::from(&row)))
}

/// Create or replace a customer by the ERP's key.
#[utoipa::path(put, path = "/v1/customers/by-external-id/{external_id}", tag = "customers",
    params(("external_id" = String, Path, description = "The ERP's customer key")),
    request_body = CustomerInput,
    responses((status = 200, description = "Updated or unchanged", body = CustomerResponse),
              (status = 201, description = "Created", body = CustomerResponse)),
    security(("bearer" = ["admin", "manager", "integration"])))]
pub async fn upsert(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<CustomerInput>,
) -> Result<HttpResponse, AppError> {
    auth.require(LEDGER_WRITERS)?;
    let (org, external_id, input) = (auth.org_id, path.into_inner(), body.into_inner());
    let (outcome, row) = db::run(&state.pool, move |c| {
        service::customers::upsert_one(c, org, &external_id, input)
    })
    .await?;
    let builder = if outcome == UpsertOutcome::Created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(with_etag(builder, row.version, CustomerResponse::from(&row)))
}

/// Upsert up to 1 000 customers by `external_id`, one result per item.
///
/// A bad item gets its own problem and writes nothing; the others are written.
#[utoipa::path(post, path = "/v1/customers/batch", tag = "customers", request_body = CustomerBatchRequest,
    responses((status = 200, description = "One result per item", body = BatchResponse)),
    security(("bearer" = ["admin", "manager", "integration"])))]
pub async fn batch(
    auth: Auth,
    state: web::Data<AppState>,
    body: web::Json<CustomerBatchRequest>,
) -> Result<HttpResponse, AppError> {
    auth.require(LEDGER_WRITERS)?;
    let items = body.into_inner().items;
    check_batch_size(items.len())?;
    let org = auth.org_id;
    let results = db::run(&state.pool, move |c| service::customers::upsert_batch(c, org, items)).await?;
    Ok(HttpResponse::Ok().json(BatchResponse { results }))
}

pub fn check_batch_size(n: usize) -> Result<(), AppError> {
    if n == 0 || n > MAX_BATCH {
        return Err(AppError::invalid(
            "items",
            format!("must hold between 1 and {MAX_BATCH} items"),
        ));
    }
    Ok(())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AsOfQuery {
    /// Business date to age against (default today, UTC).
    pub as_of: Option<String>,
}

/// One open item of a statement.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "invoice_id": "inv_1", "number": "2026/0042", "kind": "invoice", "issue_date": "2026-10-01",
    "due_date": "2026-10-31", "currency": "EUR", "amount": "1210.00", "open_amount": "1210.00", "days_overdue": 23
}))]
pub struct StatementItem {
    pub invoice_id: String,
    pub number: String,
    pub kind: String,
    pub issue_date: NaiveDate,
    pub due_date: NaiveDate,
    pub currency: String,
    pub amount: String,
    pub open_amount: String,
    pub days_overdue: i64,
}

/// Aging totals of one currency.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "currency": "EUR", "balance": "1690.00", "overdue": "1210.00", "current": "480.00", "days_1_30": "1210.00",
    "days_31_60": "0.00", "days_61_90": "0.00", "days_91_120": "0.00", "over_120": "0.00", "unapplied_cash": "300.00",
    "net_balance": "1390.00"
}))]
pub struct StatementTotals {
    pub currency: String,
    /// Open invoices and debit notes minus open credit notes.
    pub balance: String,
    pub overdue: String,
    pub current: String,
    pub days_1_30: String,
    pub days_31_60: String,
    pub days_61_90: String,
    pub days_91_120: String,
    pub over_120: String,
    /// Cash received and not yet applied to invoices.
    pub unapplied_cash: String,
    /// `balance` minus `unapplied_cash`: what the customer owes net.
    pub net_balance: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "customer_id": "cus_1", "customer_name": "Ferreteria Puig", "as_of": "2026-11-23",
    "open_items": [
        {
            "invoice_id": "inv_1", "number": "2026/0042", "kind": "invoice", "issue_date": "2026-10-01",
            "due_date": "2026-10-31", "currency": "EUR", "amount": "1210.00", "open_amount": "1210.00",
            "days_overdue": 23
        },
        {
            "invoice_id": "inv_2", "number": "2026/0057", "kind": "invoice", "issue_date": "2026-10-20",
            "due_date": "2026-11-30", "currency": "EUR", "amount": "480.00", "open_amount": "480.00",
            "days_overdue": 0
        }
    ],
    "totals": [
        {
            "currency": "EUR", "balance": "1690.00", "overdue": "1210.00", "current": "480.00", "days_1_30": "1210.00",
            "days_31_60": "0.00", "days_61_90": "0.00", "days_91_120": "0.00", "over_120": "0.00",
            "unapplied_cash": "300.00", "net_balance": "1390.00"
        }
    ],
    "unapplied_payments": [
        {
            "id": "pay_2", "external_id": "BANK-2026-11-20-0003", "customer_id": "cus_1", "amount": "300.00",
            "currency": "EUR", "received_on": "2026-11-20", "method": "bank_transfer", "reference": "A CUENTA",
            "allocated_amount": "0.00", "unapplied_amount": "300.00", "status": "unapplied", "reversed_at": null,
            "reversal_reason": null, "allocations": [], "version": 1, "created_at": "2026-11-23T10:00:00Z",
            "updated_at": "2026-11-23T10:00:00Z"
        }
    ],
    "recent_payments": [
        {
            "id": "pay_2", "external_id": "BANK-2026-11-20-0003", "customer_id": "cus_1", "amount": "300.00",
            "currency": "EUR", "received_on": "2026-11-20", "method": "bank_transfer", "reference": "A CUENTA",
            "allocated_amount": "0.00", "unapplied_amount": "300.00", "status": "unapplied", "reversed_at": null,
            "reversal_reason": null, "allocations": [], "version": 1, "created_at": "2026-11-23T10:00:00Z",
            "updated_at": "2026-11-23T10:00:00Z"
        }
    ]
}))]
pub struct StatementResponse {
    pub customer_id: String,
    pub customer_name: String,
    pub as_of: NaiveDate,
    pub open_items: Vec<StatementItem>,
    /// One entry per currency; currencies are never added together.
    pub totals: Vec<StatementTotals>,
    /// Payments with unapplied cash, oldest first.
    pub unapplied_payments: Vec<crate::http::payments::PaymentResponse>,
    /// The latest 20 payments with their allocations.
    pub recent_payments: Vec<crate::http::payments::PaymentResponse>,
}

/// The customer's statement: open items with days overdue and aging per currency.
#[utoipa::path(get, path = "/v1/customers/{id}/statement", tag = "customers",
    params(("id" = String, Path, description = "Customer id"), AsOfQuery),
    responses((status = 200, description = "The statement", body = StatementResponse)),
    security(("bearer" = ["admin", "manager", "collector", "sales", "integration", "viewer"])))]
pub async fn statement(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<AsOfQuery>,
) -> Result<HttpResponse, AppError> {
    auth.require(READERS)?;
    let as_of = parse_date("as_of", query.as_of.as_deref())?.unwrap_or_else(|| state.today());
    let (org, id) = (auth.org_id, customer_id(&path)?);
    let s = db::run(&state.pool, move |c| service::statements::statement(c, org, id, as_of)).await?;
    let open_items = s
        .items
        .iter()
        .map(|i| StatementItem {
            invoice_id: Kind::Invoice.encode(i.id),
            number: i.number.clone(),
            kind: i.kind.clone(),
            issue_date: i.issue_date,
            due_date: i.due_date,
            currency: i.currency.clone(),
            amount: format_stored(i.amount_minor, &i.currency),
            open_amount: format_stored(i.open_minor, &i.currency),
            days_overdue: if i.kind == "credit_note" {
                0
            } else {
                days_overdue(i.due_date, as_of, i.open_minor)
            },
        })
        .collect();
    let mut unapplied_by_currency: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
    for p in &s.unapplied_payments {
        *unapplied_by_currency.entry(p.currency.as_str()).or_default() += p.amount_minor - p.allocated_minor;
    }
    let mut aging = s.totals.clone();
    for code in unapplied_by_currency.keys() {
        if !aging.iter().any(|(c, _)| c == code) {
            aging.push((code.to_string(), Default::default()));
        }
    }
    aging.sort_by(|a, b| a.0.cmp(&b.0));
    let totals = aging
        .iter()
        .map(|(code, t)| {
            let f = |m: i64| format_stored(m, code);
            let unapplied = unapplied_by_currency.get(code.as_str()).copied().unwrap_or(0);
            StatementTotals {
                currency: code.clone(),
                balance: f(t.balance),
                overdue: f(t.overdue),
                current: f(t.current),
                days_1_30: f(t.days_1_30),
                days_31_60: f(t.days_31_60),
                days_61_90: f(t.days_61_90),
                days_91_120: f(t.days_91_120),
                over_120: f(t.over_120),
                unapplied_cash: f(unapplied),
                net_balance: f(t.balance - unapplied),
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(StatementResponse {
        customer_id: Kind::Customer.encode(s.customer.id),
        customer_name: s.customer.name.clone(),
        as_of,
        open_items,
        totals,
        unapplied_payments: s
            .unapplied_payments
            .iter()
            .map(|p| crate::http::payments::PaymentResponse::new(p, &s.allocations))
            .collect(),
        recent_payments: s
            .recent_payments
            .iter()
            .map(|p| crate::http::payments::PaymentResponse::new(p, &s.allocations))
            .collect(),
    }))
}
