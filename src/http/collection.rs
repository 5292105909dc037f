//! Collection views: the collectable items the engine chases (`/v1/collectable-items`),
//! collector tasks (`/v1/tasks`) and the customer summary (`/v1/customers/{id}/summary`).

use actix_web::{HttpResponse, web};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Auth;
use crate::auth::roles::{READERS, Role};
use crate::db;
use crate::domain::collectable::Exclusion;
use crate::domain::ids::Kind;
use crate::domain::money::format_stored;
use crate::error::AppError;
use crate::http::{PageRequest, Routes, parse_date, utc};
use crate::service::promises::PromiseStats;
use crate::state::AppState;

pub fn routes(routes: &mut Routes) {
    routes.at("/collectable-items", |r| r.route(web::get().to(collectable)));
    routes.at("/tasks", |r| r.route(web::get().to(tasks)));
    routes.at("/customers/{id}/summary", |r| r.route(web::get().to(summary)));
}

/// An open invoice as the collection engine sees it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "invoice_id": "inv_1", "customer_id": "cus_1", "number": "2026/0042", "currency": "EUR", "open_amount": "1210.00",
    "disputed_amount": "0.00", "collectable_amount": "1210.00", "due_date": "2026-10-31", "days_past_due": 23,
    "delivered_on": "2026-10-02", "exclusion": null
}))]
pub struct CollectableItemResponse {
    pub invoice_id: String,
    pub customer_id: String,
    pub number: String,
    pub currency: String,
    pub open_amount: String,
    pub disputed_amount: String,
    /// Open minus disputed: what may be chased.
    pub collectable_amount: String,
    pub due_date: NaiveDate,
    /// Negative before the due date.
    pub days_past_due: i64,
    /// Null when not confirmed delivered (P16).
    pub delivered_on: Option<NaiveDate>,
    /// Why the item must not be chased now; null when it may be.
    pub exclusion: Option<Exclusion>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "as_of": "2026-11-23",
    "items": [
        {
            "invoice_id": "inv_1", "customer_id": "cus_1", "number": "2026/0042", "currency": "EUR",
            "open_amount": "1210.00", "disputed_amount": "0.00", "collectable_amount": "1210.00",
            "due_date": "2026-10-31", "days_past_due": 23, "delivered_on": "2026-10-02", "exclusion": null
        },
        {
            "invoice_id": "inv_3", "customer_id": "cus_1", "number": "2026/0031", "currency": "EUR",
            "open_amount": "2350.00", "disputed_amount": "0.00", "collectable_amount": "2350.00",
            "due_date": "2026-09-13", "days_past_due": 71, "delivered_on": "2026-08-16", "exclusion": "promised"
        }
    ],
    "next_cursor": null
}))]
pub struct CollectablePage {
    pub as_of: NaiveDate,
    pub items: Vec<CollectableItemResponse>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CollectableQuery {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    /// Business date (default today).
    pub as_of: Option<String>,
}

/// Open invoices with their collectable amount and, when they must not be chased, why
/// (customer paused, fully disputed, in a payment plan, promised).
#[utoipa::path(get, path = "/v1/collectable-items", tag = "collection", params(CollectableQuery),
    responses((status = 200, description = "A page of open invoices", body = CollectablePage)),
    security(("bearer" = ["admin", "manager", "collector"])))]
pub async fn collectable(
    auth: Auth,
    state: web::Data<AppState>,
    query: web::Query<CollectableQuery>,
) -> Result<HttpResponse, AppError> {
    auth.require(&[Role::Admin, Role::Manager, Role::Collector])?;
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let as_of = parse_date("as_of", query.as_of.as_deref())?.unwrap_or_else(|| state.today());
    let org = auth.org_id;
    let rows = db::run(&state.pool, move |c| {
        crate::service::collectable::collectable_items(c, org, as_of, page.after_id, page.fetch_limit())
    })
    .await?;
    let (rows, next_cursor) = page.finish(rows, |r| r.invoice.id);
    Ok(HttpResponse::Ok().json(CollectablePage {
        as_of,
        items: rows
            .iter()
            .map(|r| {
                let i = &r.invoice;
                CollectableItemResponse {
                    invoice_id: Kind::Invoice.encode(i.id),
                    customer_id: Kind::Customer.encode(i.customer_id),
                    number: i.number.clone(),
                    currency: i.currency.clone(),
                    open_amount: format_stored(i.open_minor, &i.currency),
                    disputed_amount: format_stored(i.disputed_minor, &i.currency),
                    collectable_amount: format_stored(r.collectable_minor, &i.currency),
                    due_date: i.due_date,
                    days_past_due: r.days_past_due,
                    delivered_on: i.delivered_on,
                    exclusion: r.exclusion,
                }
            })
            .collect(),
        next_cursor,
    }))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "task_1", "customer_id": "cus_1", "kind": "promise_follow_up", "priority": "high", "assignee": "marta",
    "title": "Broken promise: 1210.00 EUR promised for 2026-11-20 was not paid", "due_on": "2026-11-23",
    "status": "open", "source_id": "ptp_1", "created_at": "2026-11-23T10:00:00Z"
}))]
pub struct TaskResponse {
    pub id: String,
    pub customer_id: String,
    /// `promise_follow_up`, …
    pub kind: String,
    /// `high`, `normal` or `low`.
    pub priority: String,
    pub assignee: Option<String>,
    pub title: String,
    pub due_on: NaiveDate,
    pub status: String,
    /// Id of what caused the task (a promise, …).
    pub source_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "items": [
        {
            "id": "task_1", "customer_id": "cus_1", "kind": "promise_follow_up", "priority": "high",
            "assignee": "marta", "title": "Broken promise: 1210.00 EUR promised for 2026-11-20 was not paid",
            "due_on": "2026-11-23", "status": "open", "source_id": "ptp_1", "created_at": "2026-11-23T10:00:00Z"
        }
    ],
    "next_cursor": "YWZ0ZXI6MQ"
}))]
pub struct TaskPage {
    pub items: Vec<TaskResponse>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TaskQuery {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    /// A collector's subject; collectors see their own tasks by default.
    pub assignee: Option<String>,
    /// `open` (default), `done`, `cancelled`.
    pub status: Option<String>,
    pub customer_id: Option<String>,
}

/// Collector tasks (follow-ups of broken promises, …); collectors get their own.
#[utoipa::path(get, path = "/v1/tasks", tag = "collection", params(TaskQuery),
    responses((status = 200, description = "A page of tasks", body = TaskPage)),
    security(("bearer" = ["admin", "manager", "collector", "sales", "integration", "viewer"])))]
pub async fn tasks(
    auth: Auth,
    state: web::Data<AppState>,
    query: web::Query<TaskQuery>,
) -> Result<HttpResponse, AppError> {
    auth.require(READERS)?;
    let q = query.into_inner();
    let page = PageRequest::parse(q.limit, q.cursor.as_deref())?;
    let sees_all = auth.has(Role::Admin) || auth.has(Role::Manager);
    let assignee = match (q.assignee, sees_all) {
        (Some(a), true) => Some(a),
        (Some(a), false) if a == auth.subject => Some(a),
        (Some(_), false) => {
            return Err(AppError::Forbidden(
                "only managers may see other collectors' tasks".into(),
            ));
        }
        (None, true) => None,
        (None, false) => Some(auth.subject.clone()),
    };
    let status = q.status.unwrap_or_else(|| "open".into());
    let customer = q
        .customer_id
        .as_deref()
        .map(|id| Kind::Customer.decode(id).unwrap_or(-1));
    let org = auth.org_id;
    let rows = db::run(&state.pool, move |c| {
        crate::service::credit_queue::settle_org(c, org)?;
        db::repo::tasks::list(
            c,
            org,
            assignee.as_deref(),
            Some(&status),
            customer,
            page.after_id,
            page.fetch_limit(),
        )
    })
    .await?;
    let (rows, next_cursor) = page.finish(rows, |r| r.id);
    Ok(HttpResponse::Ok().json(TaskPage {
        items: rows
            .iter()
            .map(|t| TaskResponse {
                id: Kind::Task.encode(t.id),
                customer_id: Kind::Customer.encode(t.customer_id),
                kind: t.kind.clone(),
                priority: t.priority.clone(),
                assignee: t.assignee.clone(),
                title: t.title.clone(),
                due_on: t.due_on,
                status: t.status.clone(),
                source_id: t.source_id.clone(),
                created_at: utc(t.created_at),
            })
            .collect(),
        next_cursor,
    }))
}

/// A customer's collection summary.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "customer_id": "cus_1",
    "promises": {
        "made": 6, "open": 1, "kept": 3, "partially_kept": 1, "broken": 1, "cancelled": 0,
        "amounts": {"EUR": {"open": "2350.00", "kept": "4120.00", "partially_kept": "800.00", "broken": "1210.00"}},
        "kept_rate": 0.6
    },
    "broken_promises_recorded": 1, "reversed_payments": 0, "defaulted_plans": 0, "open_disputes": 1, "active_plans": 1
}))]
pub struct CustomerSummary {
    pub customer_id: String,
    pub promises: PromiseStats,
    pub broken_promises_recorded: i64,
    pub reversed_payments: i64,
    pub defaulted_plans: i64,
    pub open_disputes: i64,
    pub active_plans: i64,
}

/// Promise figures (made, kept, broken, kept rate) and the customer's other risk facts.
#[utoipa::path(get, path = "/v1/customers/{id}/summary", tag = "customers",
    params(("id" = String, Path, description = "Customer id")),
    responses((status = 200, description = "The summary", body = CustomerSummary)),
    security(("bearer" = ["admin", "manager", "collector", "sales", "integration", "viewer"])))]
pub async fn summary(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    auth.require(READERS)?;
    let id = Kind::Customer
        .decode(&path)
        .ok_or_else(|| AppError::not_found("customer"))?;
    let org = auth.org_id;
    let body = db::run(&state.pool, move |c| {
        db::repo::customers::find(c, org, id)?;
        let promises = crate::service::promises::stats(c, org, id)?;
        let open_disputes = db::repo::disputes::list(
            c,
            org,
            &db::repo::disputes::DisputeFilter {
                customer_id: Some(id),
                ..Default::default()
            },
            0,
            10_000,
        )?
        .iter()
        .filter(|d| matches!(d.status.as_str(), "open" | "under_review"))
        .count() as i64;
        let active_plans = db::repo::plans::active(c, org, Some(&[id]))?.len() as i64;
        Ok(CustomerSummary {
            customer_id: Kind::Customer.encode(id),
            promises,
            broken_promises_recorded: db::repo::tasks::count_facts(c, id, "promise_broken")?,
            reversed_payments: db::repo::tasks::count_facts(c, id, "payment_reversed")?,
            defaulted_plans: db::repo::tasks::count_facts(c, id, "plan_defaulted")?,
            open_disputes,
            active_plans,
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(body))
}
