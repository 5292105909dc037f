//! `GET /v1/events`: the organisation's event log (invoice paid, payment received or
//! reversed, …) in order, for integrations that poll instead of receiving webhooks.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Auth;
use crate::auth::roles::LEDGER_WRITERS;
use crate::db;
use crate::domain::ids::Kind;
use crate::error::AppError;
use crate::http::{PageRequest, Routes, utc};
use crate::state::AppState;

pub fn routes(routes: &mut Routes) {
    routes.at("/events", |r| r.route(web::get().to(list)));
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": "evt_1", "kind": "invoice.paid", "subject_id": "inv_1", "customer_id": "cus_1",
    "payload": {"number": "2026/0042", "due_date": "2026-10-01"}, "created_at": "2026-11-23T10:00:00Z"}))]
pub struct EventResponse {
    pub id: String,
    /// `payment.received`, `payment.reversed`, `invoice.paid`, `allocation.released`, …
    pub kind: String,
    /// Id of the resource the event is about.
    pub subject_id: String,
    pub customer_id: Option<String>,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "items": [
        {
            "id": "evt_1", "kind": "invoice.paid", "subject_id": "inv_1", "customer_id": "cus_1",
            "payload": {"number": "2026/0042", "due_date": "2026-10-31"}, "created_at": "2026-11-23T10:00:00Z"
        }
    ],
    "next_cursor": "YWZ0ZXI6MQ"
}))]
pub struct EventPage {
    pub items: Vec<EventResponse>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventListQuery {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    /// Only events of this kind.
    pub kind: Option<String>,
}

/// List events in the order they happened.
#[utoipa::path(get, path = "/v1/events", tag = "events", params(EventListQuery),
    responses((status = 200, description = "A page of events", body = EventPage)),
    security(("bearer" = ["admin", "manager", "integration"])))]
pub async fn list(
    auth: Auth,
    state: web::Data<AppState>,
    query: web::Query<EventListQuery>,
) -> Result<HttpResponse, AppError> {
    auth.require(LEDGER_WRITERS)?;
    let q = query.into_inner();
    let page = PageRequest::parse(q.limit, q.cursor.as_deref())?;
    let org = auth.org_id;
    let rows = db::run(&state.pool, move |c| {
        crate::service::credit_queue::settle_org(c, org)?;
        db::repo::events::list(c, org, q.kind.as_deref(), page.after_id, page.fetch_limit())
    })
    .await?;
    let (rows, next_cursor) = page.finish(rows, |r| r.id);
    Ok(HttpResponse::Ok().json(EventPage {
        items: rows
            .iter()
            .map(|e| EventResponse {
                id: Kind::Event.encode(e.id),
                kind: e.kind.clone(),
                subject_id: e.subject_id.clone(),
                customer_id: e.customer_id.map(|c| Kind::Customer.encode(c)),
                payload: serde_json::from_str(&e.payload).unwrap_or(serde_json::Value::Null),
                created_at: utc(e.created_at),
            })
            .collect(),
        next_cursor,
    }))
}
