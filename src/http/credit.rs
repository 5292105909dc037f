//! Credit applications (`/v1/credit-applications`), credit control (`/v1/credit-checks`,
//! `/v1/customers/{id}/credit`, `…/credit/release`, `…/open-orders`), risk signals
//! (`/v1/customers/{id}/risk`) and the on-demand recomputation (`/v1/credit-evaluations`).

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Auth;
use crate::auth::roles::{CREDIT_APPLICANTS, CREDIT_CHECKERS, LEDGER_WRITERS, MANAGERS, READERS};
use crate::db::repo::credit_applications::{ApplicationFilter, ApplicationRow};
use crate::db::{self, write_transaction};
use crate::domain::ids::Kind;
use crate::domain::money::format_stored;
use crate::domain::scorecard::Factor;
use crate::error::AppError;
use crate::http::{PageRequest, Routes, if_match, parse_date, parse_instant, utc, with_etag};
use crate::service::credit::{
    CreditCheckRequest, CreditCheckResult, CreditView, OpenOrdersRequest, RecomputeRequest, RefreshSummary,
    ReleaseRequest, RiskView,
};
use crate::service::credit_applications::{
    self as apps, ApplicationInput, BankReference, DecisionRequest, Financials, STATUSES, TradeReference,
};
use crate::service::{self};
use crate::state::AppState;

pub fn routes(routes: &mut Routes) {
    routes.at("/credit-applications", |r| {
        r.route(web::get().to(list)).route(web::post().to(create))
    });
    routes.at("/credit-applications/{id}", |r| {
        r.route(web::get().to(get)).route(web::patch().to(patch))
    });
    routes.at("/credit-applications/{id}/submit", |r| r.route(web::post().to(submit)));
    routes.at("/credit-applications/{id}/decision", |r| {
        r.route(web::post().to(decide))
    });
    routes.at("/credit-checks", |r| r.route(web::post().to(check)));
    routes.at("/credit-evaluations", |r| r.route(web::post().to(recompute)));
    routes.at("/customers/{id}/credit", |r| r.route(web::get().to(credit)));
    routes.at("/customers/{id}/credit/release", |r| r.route(web::post().to(release)));
    routes.at("/customers/{id}/open-orders", |r| r.route(web::put().to(open_orders)));
    routes.at("/customers/{id}/risk", |r| r.route(web::get().to(risk)));
}

/// The scorecard shown to the reviewer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "score": 74, "risk_class": "B", "recommended_limit": "30000.00", "recommended_terms_days": 45,
    "factors": [
        {
            "factor": "years_in_business", "weight": 20, "available": true, "rating": 80, "contribution": 16.0,
            "explanation": "12 years in business"
        },
        {
            "factor": "trade_references", "weight": 25, "available": true, "rating": 80, "contribution": 20.0,
            "explanation": "2 answered (average days to pay: 32, 41), 0 unreachable"
        },
        {
            "factor": "bank_references", "weight": 15, "available": true, "rating": 75, "contribution": 11.25,
            "explanation": "bank ratings: good"
        },
        {
            "factor": "financials", "weight": 20, "available": true, "rating": 70, "contribution": 14.0,
            "explanation": "net margin 4.0 %; equity covers the requested limit 15.0 times"
        },
        {
            "factor": "payment_history", "weight": 20, "available": true, "rating": 64, "contribution": 12.75,
            "explanation": "41 invoices paid with us, 12 % late, 3.5 days late on average (amount-weighted)"
        }
    ]
}))]
pub struct ScorecardResponse {
    /// 0–100, higher is better.
    pub score: u32,
    /// `A` (best) to `E`.
    pub risk_class: String,
    pub recommended_limit: String,
    pub recommended_terms_days: i32,
    /// Each factor's weight, rating and contribution to the score.
    pub factors: Vec<Factor>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "decision": "approved", "approved_limit": "30000.00", "payment_terms_days": 45, "risk_class": "B",
    "reviewer": "laura", "reason": "Good references, solid equity; limit below the request until a year of history",
    "decided_on": "2026-11-23", "next_review_on": "2027-11-23"
}))]
pub struct DecisionResponse {
    pub decision: String,
    pub approved_limit: Option<String>,
    pub payment_terms_days: Option<i32>,
    pub risk_class: Option<String>,
    pub reviewer: String,
    pub reason: Option<String>,
    pub decided_on: NaiveDate,
    pub next_review_on: Option<NaiveDate>,
}

/// A credit application.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "cap_1", "status": "approved", "customer_id": "cus_1", "legal_name": "Ferreteria Puig SL",
    "tax_id": "B12345678", "country": "ES", "address": "Carrer Major 1, 08001 Barcelona", "years_in_business": 12,
    "company_size": "small", "requested_limit": "40000.00", "currency": "EUR", "requested_terms_days": 60,
    "trade_references": [
        {
            "company": "Suministros Vila SA", "contact": "Pere Vila", "email": "credit@vila.example",
            "relationship_years": 6, "credit_limit_granted": "15000.00", "average_days_to_pay": 32,
            "status": "received"
        },
        {
            "company": "Pintures Roca SL", "contact": null, "email": "admin@roca.example", "relationship_years": null,
            "credit_limit_granted": null, "average_days_to_pay": 41, "status": "received"
        }
    ],
    "bank_references": [
        {
            "bank": "Banc Sabadell", "account_age_years": 9, "average_balance_band": "100k-500k", "rating": "good",
            "status": "received"
        }
    ],
    "financials": {"annual_revenue": "2400000.00", "equity": "600000.00", "net_income": "96000.00", "currency": "EUR"},
    "attachments": ["https://files.example/ferreteria-puig/accounts-2025.pdf"], "notes": null,
    "scorecard": {
        "score": 74, "risk_class": "B", "recommended_limit": "30000.00", "recommended_terms_days": 45,
        "factors": [
            {
                "factor": "years_in_business", "weight": 20, "available": true, "rating": 80, "contribution": 16.0,
                "explanation": "12 years in business"
            },
            {
                "factor": "trade_references", "weight": 25, "available": true, "rating": 80, "contribution": 20.0,
                "explanation": "2 answered (average days to pay: 32, 41), 0 unreachable"
            },
            {
                "factor": "bank_references", "weight": 15, "available": true, "rating": 75, "contribution": 11.25,
                "explanation": "bank ratings: good"
            },
            {
                "factor": "financials", "weight": 20, "available": true, "rating": 70, "contribution": 14.0,
                "explanation": "net margin 4.0 %; equity covers the requested limit 15.0 times"
            },
            {
                "factor": "payment_history", "weight": 20, "available": true, "rating": 64, "contribution": 12.75,
                "explanation": "41 invoices paid with us, 12 % late, 3.5 days late on average (amount-weighted)"
            }
        ]
    },
    "submitted_at": "2026-11-20T16:42:00Z",
    "decision": {
        "decision": "approved", "approved_limit": "30000.00", "payment_terms_days": 45, "risk_class": "B",
        "reviewer": "laura",
        "reason": "Good references, solid equity; limit below the request until a year of history",
        "decided_on": "2026-11-23", "next_review_on": "2027-11-23"
    },
    "created_by": "joan", "version": 4, "created_at": "2026-11-18T11:05:00Z", "updated_at": "2026-11-23T10:00:00Z"
}))]
pub struct ApplicationResponse {
    pub id: String,
    /// `draft`, `submitted`, `under_review`, `approved`, `rejected`,
    /// `more_information_requested`.
    pub status: String,
    /// The customer (for a prospect, set once approved).
    pub customer_id: Option<String>,
    pub legal_name: Option<String>,
    pub tax_id: Option<String>,
    pub country: Option<String>,
    pub address: Option<String>,
    pub years_in_business: Option<i32>,
    pub company_size: Option<String>,
    pub requested_limit: Option<String>,
    pub currency: String,
    pub requested_terms_days: Option<i32>,
    pub trade_references: Vec<TradeReference>,
    pub bank_references: Vec<BankReference>,
    pub financials: Option<Financials>,
    pub attachments: Vec<String>,
    pub notes: Option<String>,
    /// Computed at submission.
    pub scorecard: Option<ScorecardResponse>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub decision: Option<DecisionResponse>,
    pub created_by: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&ApplicationRow> for ApplicationResponse {
    fn from(r: &ApplicationRow) -> Self {
        let f = |m: i64| format_stored(m, &r.currency);
        ApplicationResponse {
            id: Kind::CreditApplication.encode(r.id),
            status: r.status.clone(),
            customer_id: r.customer_id.map(|c| Kind::Customer.encode(c)),
            legal_name: r.legal_name.clone(),
            tax_id: r.tax_id.clone(),
            country: r.country.clone(),
            address: r.address.clone(),
            years_in_business: r.years_in_business,
            company_size: r.company_size.clone(),
            requested_limit: r.requested_limit_minor.map(f),
            currency: r.currency.clone(),
            requested_terms_days: r.requested_terms_days,
            trade_references: apps::trade_references(r),
            bank_references: apps::bank_references(r),
            financials: apps::financials(r),
            attachments: apps::attachments(r),
            notes: r.notes.clone(),
            scorecard: apps::scorecard(r).map(|s| ScorecardResponse {
                score: s.score,
                risk_class: s.risk_class,
                recommended_limit: f(s.recommended_limit_minor),
                recommended_terms_days: s.recommended_terms_days,
                factors: s.factors,
            }),
            submitted_at: r.submitted_at.map(utc),
            decision: apps::decision(r).map(|d| DecisionResponse {
                decision: d.decision,
                approved_limit: d.approved_limit_minor.map(f),
                payment_terms_days: d.payment_terms_days,
                risk_class: d.risk_class,
                reviewer: d.reviewer,
                reason: d.reason,
                decided_on: d.decided_on,
                next_review_on: r.next_review_on,
            }),
            created_by: r.created_by.clone(),
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
            "id": "cap_1", "status": "approved", "customer_id": "cus_1", "legal_name": "Ferreteria Puig SL",
            "tax_id": "B12345678", "country": "ES", "address": "Carrer Major 1, 08001 Barcelona",
            "years_in_business": 12, "company_size": "small", "requested_limit": "40000.00", "currency": "EUR",
            "requested_terms_days": 60,
            "trade_references": [
                {
                    "company": "Suministros Vila SA", "contact": "Pere Vila", "email": "credit@vila.example",
                    "relationship_years": 6, "credit_limit_granted": "15000.00", "average_days_to_pay": 32,
                    "status": "received"
                },
                {
                    "company": "Pintures Roca SL", "contact": null, "email": "admin@roca.example",
                    "relationship_years": null, "credit_limit_granted": null, "average_days_to_pay": 41,
                    "status": "received"
                }
            ],
            "bank_references": [
                {
                    "bank": "Banc Sabadell", "account_age_years": 9, "average_balance_band": "100k-500k",
                    "rating": "good", "status": "received"
                }
            ],
            "financials": {
                "annual_revenue": "2400000.00", "equity": "600000.00", "net_income": "96000.00", "currency": "EUR"
            },
            "attachments": ["https://files.example/ferreteria-puig/accounts-2025.pdf"], "notes": null,
            "scorecard": {
                "score": 74, "risk_class": "B", "recommended_limit": "30000.00", "recommended_terms_days": 45,
                "factors": [
                    {
                        "factor": "years_in_business", "weight": 20, "available": true, "rating": 80,
                        "contribution": 16.0, "explanation": "12 years in business"
                    },
                    {
                        "factor": "trade_references", "weight": 25, "available": true, "rating": 80,
                        "contribution": 20.0, "explanation": "2 answered (average days to pay: 32, 41), 0 unreachable"
                    },
                    {
                        "factor": "bank_references", "weight": 15, "available": true, "rating": 75,
                        "contribution": 11.25, "explanation": "bank ratings: good"
                    },
                    {
                        "factor": "financials", "weight": 20, "available": true, "rating": 70, "contribution": 14.0,
                        "explanation": "net margin 4.0 %; equity covers the requested limit 15.0 times"
                    },
                    {
                        "factor": "payment_history", "weight": 20, "available": true, "rating": 64,
                        "contribution": 12.75,
                        "explanation": "41 invoices paid with us, 12 % late, 3.5 days late on average (amount-weighted)"
                    }
                ]
            },
            "submitted_at": "2026-11-20T16:42:00Z",
            "decision": {
                "decision": "approved", "approved_limit": "30000.00", "payment_terms_days": 45, "risk_class": "B",
                "reviewer": "laura",
                "reason": "Good references, solid equity; limit below the request until a year of history",
                "decided_on": "2026-11-23", "next_review_on": "2027-11-23"
            },
            "created_by": "joan", "version": 4, "created_at": "2026-11-18T11:05:00Z",
            "updated_at": "2026-11-23T10:00:00Z"
        }
    ],
    "next_cursor": "YWZ0ZXI6MQ"
}))]
pub struct ApplicationPage {
    pub items: Vec<ApplicationResponse>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApplicationListQuery {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    pub updated_since: Option<String>,
    /// One of the application statuses.
    pub status: Option<String>,
    pub customer_id: Option<String>,
    /// Approved applications whose next review is due on or before this date.
    pub review_due_by: Option<String>,
}

fn application_id(path: &str) -> Result<i64, AppError> {
    Kind::CreditApplication
        .decode(path)
        .ok_or_else(|| AppError::not_found("credit application"))
}

fn customer_id(path: &str) -> Result<i64, AppError> {
    Kind::Customer
        .decode(path)
        .ok_or_else(|| AppError::not_found("customer"))
}

/// Start a credit application (a draft) for an existing customer or a prospect.
#[utoipa::path(post, path = "/v1/credit-applications", tag = "credit", request_body = ApplicationInput,
    responses((status = 201, description = "The draft", body = ApplicationResponse)),
    security(("bearer" = ["admin", "manager", "sales", "integration"])))]
pub async fn create(
    auth: Auth,
    state: web::Data<AppState>,
    body: web::Json<ApplicationInput>,
) -> Result<HttpResponse, AppError> {
    auth.require(CREDIT_APPLICANTS)?;
    let (org, actor, input) = (auth.org_id, auth.subject.clone(), body.into_inner());
    let row = db::run(&state.pool, move |c| {
        write_transaction(c, |c| service::credit_applications::create(c, org, &actor, &input))
    })
    .await?;
    Ok(with_etag(
        HttpResponse::Created(),
        row.version,
        ApplicationResponse::from(&row),
    ))
}

/// Get a credit application with its scorecard and decision.
#[utoipa::path(get, path = "/v1/credit-applications/{id}", tag = "credit",
    params(("id" = String, Path, description = "Application id, e.g. `cap_1`")),
    responses((status = 200, description = "The application", body = ApplicationResponse)),
    security(("bearer" = ["admin", "manager", "collector", "sales", "integration", "viewer"])))]
pub async fn get(auth: Auth, state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, AppError> {
    auth.require(READERS)?;
    let (org, id) = (auth.org_id, application_id(&path)?);
    let row = db::run(&state.pool, move |c| db::repo::credit_applications::find(c, org, id)).await?;
    Ok(with_etag(
        HttpResponse::Ok(),
        row.version,
        ApplicationResponse::from(&row),
    ))
}

/// List credit applications.
#[utoipa::path(get, path = "/v1/credit-applications", tag = "credit", params(ApplicationListQuery),
    responses((status = 200, description = "A page of applications", body = ApplicationPage)),
    security(("bearer" = ["admin", "manager", "collector", "sales", "integration", "viewer"])))]
pub async fn list(
    auth: Auth,
    state: web::Data<AppState>,
    query: web::Query<ApplicationListQuery>,
) -> Result<HttpResponse, AppError> {
    auth.require(READERS)?;
    let q = query.into_inner();
    let page = PageRequest::parse(q.limit, q.cursor.as_deref())?;
    if q.status.as_deref().is_some_and(|s| !STATUSES.contains(&s)) {
        return Err(AppError::invalid(
            "status",
            format!("must be one of {}", STATUSES.join(", ")),
        ));
    }
    let filter = ApplicationFilter {
        status: q.status,
        customer_id: q
            .customer_id
            .as_deref()
            .map(|id| Kind::Customer.decode(id).unwrap_or(-1)),
        updated_since: parse_instant("updated_since", q.updated_since.as_deref())?,
        review_due_by: parse_date("review_due_by", q.review_due_by.as_deref())?,
    };
    let org = auth.org_id;
    let rows = db::run(&state.pool, move |c| {
        db::repo::credit_applications::list(c, org, &filter, page.after_id, page.fetch_limit())
    })
    .await?;
    let (rows, next_cursor) = page.finish(rows, |r| r.id);
    Ok(HttpResponse::Ok().json(ApplicationPage {
        items: rows.iter().map(ApplicationResponse::from).collect(),
        next_cursor,
    }))
}

/// Edit a draft (or an application sent back for more information): JSON merge patch.
#[utoipa::path(patch, path = "/v1/credit-applications/{id}", tag = "credit",
    params(("id" = String, Path, description = "Application id"),
           ("If-Match" = Option<String>, Header, description = "Expected version; a mismatch is 412")),
    request_body(content = ApplicationInput, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The application", body = ApplicationResponse),
              (status = 409, description = "No longer editable", body = crate::error::Problem, content_type = "application/problem+json"),
              (status = 412, description = "Version mismatch", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin", "manager", "sales", "integration"])))]
pub async fn patch(
    auth: Auth,
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, AppError> {
    auth.require(CREDIT_APPLICANTS)?;
    let (org, id, expected) = (auth.org_id, application_id(&path)?, if_match(&req)?);
    let row = db::run(&state.pool, move |c| {
        write_transaction(c, |c| service::credit_applications::patch(c, org, id, expected, &body))
    })
    .await?;
    Ok(with_etag(
        HttpResponse::Ok(),
        row.version,
        ApplicationResponse::from(&row),
    ))
}

/// Submit an application: checks completeness (a 422 lists what is missing: by default
/// two trade references and one bank reference) and scores it.
#[utoipa::path(post, path = "/v1/credit-applications/{id}/submit", tag = "credit",
    params(("id" = String, Path, description = "Application id")),
    responses((status = 200, description = "Submitted and scored", body = ApplicationResponse),
              (status = 409, description = "Not a draft", body = crate::error::Problem, content_type = "application/problem+json"),
              (status = 422, description = "Incomplete: `errors` lists what is missing", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin", "manager", "sales", "integration"])))]
pub async fn submit(auth: Auth, state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, AppError> {
    auth.require(CREDIT_APPLICANTS)?;
    let (org, id, today) = (auth.org_id, application_id(&path)?, state.today());
    let row = db::run(&state.pool, move |c| {
        write_transaction(c, |c| service::credit_applications::submit(c, org, id, today))
    })
    .await?;
    Ok(with_etag(
        HttpResponse::Ok(),
        row.version,
        ApplicationResponse::from(&row),
    ))
}

/// Decide an application: take it for review, approve (sets the customer's credit limit,
/// payment terms and risk class, creating the customer for a prospect), reject, or ask for
/// more information.
#[utoipa::path(post, path = "/v1/credit-applications/{id}/decision", tag = "credit",
    params(("id" = String, Path, description = "Application id")), request_body = DecisionRequest,
    responses((status = 200, description = "The decided application", body = ApplicationResponse),
              (status = 409, description = "Not submitted, or already decided", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin", "manager"])))]
pub async fn decide(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<DecisionRequest>,
) -> Result<HttpResponse, AppError> {
    auth.require(MANAGERS)?;
    let (org, actor, id, today, input) = (
        auth.org_id,
        auth.subject.clone(),
        application_id(&path)?,
        state.today(),
        body.into_inner(),
    );
    let row = db::run(&state.pool, move |c| {
        write_transaction(c, |c| {
            service::credit_applications::decide(c, org, &actor, id, &input, today)
        })
    })
    .await?;
    Ok(with_etag(
        HttpResponse::Ok(),
        row.version,
        ApplicationResponse::from(&row),
    ))
}

/// Credit check before releasing an order: `approved` or `hold`, with the reasons and the
/// available credit. Reads the customer's credit snapshot only (a few single-row reads).
#[utoipa::path(post, path = "/v1/credit-checks", tag = "credit", request_body = CreditCheckRequest,
    responses((status = 200, description = "The answer", body = CreditCheckResult)),
    security(("bearer" = ["admin", "manager", "sales", "integration"])))]
pub async fn check(
    auth: Auth,
    state: web::Data<AppState>,
    body: web::Json<CreditCheckRequest>,
) -> Result<HttpResponse, AppError> {
    auth.require(CREDIT_CHECKERS)?;
    let (org, today, input) = (auth.org_id, state.today(), body.into_inner());
    let result = db::run(&state.pool, move |c| service::credit::check(c, org, &input, today)).await?;
    Ok(HttpResponse::Ok().json(result))
}

/// A customer's credit position: limit, exposure (open receivables − unapplied cash + open
/// orders), available credit, status and the hold rules that apply, and the history of
/// credit decisions.
#[utoipa::path(get, path = "/v1/customers/{id}/credit", tag = "credit",
    params(("id" = String, Path, description = "Customer id")),
    responses((status = 200, description = "The credit position", body = CreditView)),
    security(("bearer" = ["admin", "manager", "collector", "sales", "integration", "viewer"])))]
pub async fn credit(auth: Auth, state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, AppError> {
    auth.require(READERS)?;
    let (org, id, today) = (auth.org_id, customer_id(&path)?, state.today());
    let view = db::run(&state.pool, move |c| service::credit::view(c, org, id, today)).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Release a customer's credit hold by hand, with a reason, until a date (default
/// `credit.manual_release_days`). Orders are approved until then.
#[utoipa::path(post, path = "/v1/customers/{id}/credit/release", tag = "credit",
    params(("id" = String, Path, description = "Customer id")), request_body = ReleaseRequest,
    responses((status = 200, description = "The credit position", body = CreditView),
              (status = 409, description = "The customer is not on hold", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin", "manager"])))]
pub async fn release(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<ReleaseRequest>,
) -> Result<HttpResponse, AppError> {
    auth.require(MANAGERS)?;
    let (org, actor, id, today, input) = (
        auth.org_id,
        auth.subject.clone(),
        customer_id(&path)?,
        state.today(),
        body.into_inner(),
    );
    let view = db::run(&state.pool, move |c| {
        write_transaction(c, |c| service::credit::release(c, org, &actor, id, &input, today))
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Report the customer's open (not yet invoiced) orders in a currency; they count in its
/// exposure.
#[utoipa::path(put, path = "/v1/customers/{id}/open-orders", tag = "credit",
    params(("id" = String, Path, description = "Customer id")), request_body = OpenOrdersRequest,
    responses((status = 200, description = "The credit position", body = CreditView)),
    security(("bearer" = ["admin", "manager", "integration"])))]
pub async fn open_orders(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<OpenOrdersRequest>,
) -> Result<HttpResponse, AppError> {
    auth.require(LEDGER_WRITERS)?;
    let (org, id, today, input) = (auth.org_id, customer_id(&path)?, state.today(), body.into_inner());
    let view = db::run(&state.pool, move |c| {
        write_transaction(c, |c| service::credit::set_open_orders(c, org, id, &input, today))
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// A customer's risk: score, class, flags, and every signal with its value and explanation.
#[utoipa::path(get, path = "/v1/customers/{id}/risk", tag = "credit",
    params(("id" = String, Path, description = "Customer id")),
    responses((status = 200, description = "The risk assessment", body = RiskView)),
    security(("bearer" = ["admin", "manager", "collector", "sales", "integration", "viewer"])))]
pub async fn risk(auth: Auth, state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, AppError> {
    auth.require(READERS)?;
    let (org, id, today) = (auth.org_id, customer_id(&path)?, state.today());
    let view = db::run(&state.pool, move |c| service::credit::risk_view(c, org, id, today)).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Recompute every customer's credit snapshot, hold status and risk signals now (what the
/// daily job does), as of a date (default today).
#[utoipa::path(post, path = "/v1/credit-evaluations", tag = "credit", request_body = RecomputeRequest,
    responses((status = 200, description = "What changed", body = RefreshSummary)),
    security(("bearer" = ["admin", "manager"])))]
pub async fn recompute(
    auth: Auth,
    state: web::Data<AppState>,
    body: web::Json<RecomputeRequest>,
) -> Result<HttpResponse, AppError> {
    auth.require(MANAGERS)?;
    let (org, today) = (auth.org_id, state.today());
    let as_of = body.as_of.unwrap_or(today);
    if (as_of - today).num_days().abs() > 3660 {
        return Err(AppError::invalid("as_of", "must be within ten years of today"));
    }
    let summary = db::run(&state.pool, move |c| {
        write_transaction(c, |c| service::credit::refresh_all(c, org, as_of))
    })
    .await?;
    Ok(HttpResponse::Ok().json(summary))
}
