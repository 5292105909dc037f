//! The collection engine's HTTP surface: strategies and their versions (P5, P14),
//! templates (P5, P18, P19), collection runs (P3, P16, P17) and the actions they plan.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Auth;
use crate::auth::roles::{MANAGERS, READERS, Role};
use crate::db::repo::actions::{ActionFilter, ActionRow, RunRow};
use crate::db::repo::strategies::{StrategyRow, TemplateRow};
use crate::db::{self, DbConnection, write_transaction};
use crate::domain::ids::Kind;
use crate::domain::letter::{LetterContext, Rendered, TemplateSource, render};
use crate::domain::strategy::StrategyDocument;
use crate::error::AppError;
use crate::http::{PageRequest, Routes, parse_date, utc};
use crate::service::collection_run::RunSummary;
use crate::service::strategies::{CollectorCompliance, document};
use crate::service::{self};
use crate::state::AppState;

pub fn routes(routes: &mut Routes) {
    routes.at("/strategies", |r| {
        r.route(web::get().to(list_strategies))
            .route(web::post().to(create_strategy))
    });
    routes.at("/strategies/compliance", |r| r.route(web::get().to(compliance)));
    routes.at("/strategies/{id}", |r| r.route(web::get().to(get_strategy)));
    routes.at("/strategies/{id}/versions", |r| r.route(web::post().to(add_version)));
    routes.at("/strategies/{id}/versions/{n}/publish", |r| {
        r.route(web::post().to(publish))
    });
    routes.at("/strategies/{id}/versions/{n}/acknowledgements", |r| {
        r.route(web::post().to(acknowledge))
    });
    routes.at("/templates", |r| {
        r.route(web::get().to(list_templates))
            .route(web::post().to(create_template))
    });
    routes.at("/templates/{id}", |r| {
        r.route(web::get().to(get_template)).route(web::put().to(put_template))
    });
    routes.at("/templates/{id}/preview", |r| r.route(web::post().to(preview)));
    routes.at("/collection-runs", |r| {
        r.route(web::get().to(list_runs)).route(web::post().to(start_run))
    });
    routes.at("/collection-runs/{id}", |r| r.route(web::get().to(get_run)));
    routes.at("/actions", |r| r.route(web::get().to(list_actions)));
    routes.at("/actions/{id}", |r| r.route(web::get().to(get_action)));
    routes.at("/actions/{id}/approve", |r| r.route(web::post().to(approve)));
    routes.at("/actions/{id}/complete", |r| r.route(web::post().to(complete)));
    routes.at("/actions/{id}/cancel", |r| r.route(web::post().to(cancel)));
    routes.at("/email-bounces", |r| r.route(web::post().to(report_bounce)));
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "version": 1, "status": "published",
    "document": {
        "description": "Wholesale customers: a reminder before the due date, a call after a week, a firm letter after 15 days.",
        "rules": {"customers": [], "segments": ["wholesale"], "risk_classes": [], "min_overdue_amount": null},
        "steps": [
            {
                "key": "pre_due_reminder", "offset_days": -5, "action": "email", "tone": "friendly",
                "template": "pre_due_reminder", "min_amount": null, "assignee_role": null, "requires_approval": false
            },
            {
                "key": "first_call", "offset_days": 7, "action": "call", "tone": "friendly", "template": "call_script",
                "min_amount": "100.00", "assignee_role": "collector", "requires_approval": false
            },
            {
                "key": "firm_letter", "offset_days": 15, "action": "letter", "tone": "firm", "template": "firm_letter",
                "min_amount": "50.00", "assignee_role": "collector", "requires_approval": false
            }
        ]
    },
    "published_at": "2026-11-23T10:00:00Z", "created_by": "laura", "created_at": "2026-11-23T10:00:00Z",
    "acknowledged_by": ["marta"]
}))]
pub struct VersionResponse {
    pub version: i32,
    /// `draft`, `published` or `retired`; published versions never change.
    pub status: String,
    pub document: StrategyDocument,
    pub published_at: Option<DateTime<Utc>>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    /// Subjects who acknowledged this version (P14).
    pub acknowledged_by: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "stg_2", "name": "Wholesale", "is_default": false,
    "versions": [
        {
            "version": 1, "status": "published",
            "document": {
                "description": "Wholesale customers: a reminder before the due date, a call after a week, a firm letter after 15 days.",
                "rules": {"customers": [], "segments": ["wholesale"], "risk_classes": [], "min_overdue_amount": null},
                "steps": [
                    {
                        "key": "pre_due_reminder", "offset_days": -5, "action": "email", "tone": "friendly",
                        "template": "pre_due_reminder", "min_amount": null, "assignee_role": null,
                        "requires_approval": false
                    },
                    {
                        "key": "first_call", "offset_days": 7, "action": "call", "tone": "friendly",
                        "template": "call_script", "min_amount": "100.00", "assignee_role": "collector",
                        "requires_approval": false
                    },
                    {
                        "key": "firm_letter", "offset_days": 15, "action": "letter", "tone": "firm",
                        "template": "firm_letter", "min_amount": "50.00", "assignee_role": "collector",
                        "requires_approval": false
                    }
                ]
            },
            "published_at": "2026-11-23T10:00:00Z", "created_by": "laura", "created_at": "2026-11-23T10:00:00Z",
            "acknowledged_by": ["marta"]
        }
    ],
    "created_at": "2026-11-23T10:00:00Z", "updated_at": "2026-11-23T10:00:00Z"
}))]
pub struct StrategyResponse {
    pub id: String,
    pub name: String,
    pub is_default: bool,
    pub versions: Vec<VersionResponse>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl StrategyResponse {
    fn load_many(c: &mut DbConnection, rows: &[StrategyRow]) -> Result<Vec<StrategyResponse>, AppError> {
        let ids: Vec<i64> = rows.iter().map(|s| s.id).collect();
        let versions = db::repo::strategies::versions(c, &ids)?;
        let acks = db::repo::strategies::acknowledgements(c, &versions.iter().map(|v| v.id).collect::<Vec<_>>())?;
        Ok(rows
            .iter()
            .map(|s| StrategyResponse {
                id: Kind::Strategy.encode(s.id),
                name: s.name.clone(),
                is_default: s.is_default,
                versions: versions
                    .iter()
                    .filter(|v| v.strategy_id == s.id)
                    .map(|v| VersionResponse {
                        version: v.version,
                        status: v.status.clone(),
                        document: document(v),
                        published_at: v.published_at.map(utc),
                        created_by: v.created_by.clone(),
                        created_at: utc(v.created_at),
                        acknowledged_by: acks
                            .iter()
                            .filter(|(vid, _, _)| *vid == v.id)
                            .map(|(_, s, _)| s.clone())
                            .collect(),
                    })
                    .collect(),
                created_at: utc(s.created_at),
                updated_at: utc(s.updated_at),
            })
            .collect())
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "items": [
        {
            "id": "stg_2", "name": "Wholesale", "is_default": false,
            "versions": [
                {
                    "version": 1, "status": "published",
                    "document": {
                        "description": "Wholesale customers: a reminder before the due date, a call after a week, a firm letter after 15 days.",
                        "rules": {
                            "customers": [], "segments": ["wholesale"], "risk_classes": [], "min_overdue_amount": null
                        },
                        "steps": [
                            {
                                "key": "pre_due_reminder", "offset_days": -5, "action": "email", "tone": "friendly",
                                "template": "pre_due_reminder", "min_amount": null, "assignee_role": null,
                                "requires_approval": false
                            },
                            {
                                "key": "first_call", "offset_days": 7, "action": "call", "tone": "friendly",
                                "template": "call_script", "min_amount": "100.00", "assignee_role": "collector",
                                "requires_approval": false
                            },
                            {
                                "key": "firm_letter", "offset_days": 15, "action": "letter", "tone": "firm",
                                "template": "firm_letter", "min_amount": "50.00", "assignee_role": "collector",
                                "requires_approval": false
                            }
                        ]
                    },
                    "published_at": "2026-11-23T10:00:00Z", "created_by": "laura",
                    "created_at": "2026-11-23T10:00:00Z", "acknowledged_by": ["marta"]
                }
            ],
            "created_at": "2026-11-23T10:00:00Z", "updated_at": "2026-11-23T10:00:00Z"
        }
    ],
    "next_cursor": "YWZ0ZXI6MQ"
}))]
pub struct StrategyPage {
    pub items: Vec<StrategyResponse>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "Wholesale",
    "document": {
        "description": "Wholesale customers: a reminder before the due date, a call after a week, a firm letter after 15 days.",
        "rules": {"customers": [], "segments": ["wholesale"], "risk_classes": [], "min_overdue_amount": null},
        "steps": [
            {
                "key": "pre_due_reminder", "offset_days": -5, "action": "email", "tone": "friendly",
                "template": "pre_due_reminder", "min_amount": null, "assignee_role": null, "requires_approval": false
            },
            {
                "key": "first_call", "offset_days": 7, "action": "call", "tone": "friendly", "template": "call_script",
                "min_amount": "100.00", "assignee_role": "collector", "requires_approval": false
            },
            {
                "key": "firm_letter", "offset_days": 15, "action": "letter", "tone": "firm", "template": "firm_letter",
                "min_amount": "50.00", "assignee_role": "collector", "requires_approval": false
            }
        ]
    }
}))]
pub struct CreateStrategy {
    pub name: String,
    pub document: StrategyDocument,
}

fn strategy_id(p: &str) -> Result<i64, AppError> {
    Kind::Strategy.decode(p).ok_or_else(|| AppError::not_found("strategy"))
}

async fn load_strategy(state: &AppState, org: i64, id: i64) -> Result<StrategyResponse, AppError> {
    db::run(&state.pool, move |c| {
        let row = db::repo::strategies::find(c, org, id)?;
        StrategyResponse::load_many(c, &[row])?
            .pop()
            .ok_or_else(|| AppError::internal("strategy vanished"))
    })
    .await
}

/// Create a strategy with its first (draft) version.
#[utoipa::path(post, path = "/v1/strategies", tag = "strategies", request_body = CreateStrategy,
    responses((status = 201, description = "Created", body = StrategyResponse)),
    security(("bearer" = ["admin", "manager"])))]
pub async fn create_strategy(
    auth: Auth,
    state: web::Data<AppState>,
    body: web::Json<CreateStrategy>,
) -> Result<HttpResponse, AppError> {
    auth.require(MANAGERS)?;
    let mut v = crate::error::Violations::new();
    let name = crate::domain::text::required(&mut v, "name", Some(&body.name), 200);
    let name = v.into_result(name)?.unwrap_or_default();
    let (org, actor, doc) = (auth.org_id, auth.subject.clone(), body.into_inner().document);
    let id = db::run(&state.pool, move |c| {
        write_transaction(c, |c| service::strategies::create(c, org, &name, &doc, &actor))
    })
    .await?;
    Ok(HttpResponse::Created().json(load_strategy(&state, org, id).await?))
}

/// List strategies with their versions.
#[utoipa::path(get, path = "/v1/strategies", tag = "strategies", params(PageQuery),
    responses((status = 200, description = "A page of strategies", body = StrategyPage)),
    security(("bearer" = ["admin", "manager", "collector", "sales", "integration", "viewer"])))]
pub async fn list_strategies(
    auth: Auth,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, AppError> {
    auth.require(READERS)?;
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let org = auth.org_id;
    let body = db::run(&state.pool, move |c| {
        let rows = db::repo::strategies::list(c, org, page.after_id, page.fetch_limit())?;
        let (rows, next_cursor) = page.finish(rows, |r| r.id);
        Ok(StrategyPage {
            items: StrategyResponse::load_many(c, &rows)?,
            next_cursor,
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(body))
}

/// Get a strategy with its versions and acknowledgements.
#[utoipa::path(get, path = "/v1/strategies/{id}", tag = "strategies",
    params(("id" = String, Path, description = "Strategy id, e.g. `stg_1`")),
    responses((status = 200, description = "The strategy", body = StrategyResponse)),
    security(("bearer" = ["admin", "manager", "collector", "sales", "integration", "viewer"])))]
pub async fn get_strategy(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    auth.require(READERS)?;
    Ok(HttpResponse::Ok().json(load_strategy(&state, auth.org_id, strategy_id(&path)?).await?))
}

/// Add a new (draft) version; published versions are immutable.
#[utoipa::path(post, path = "/v1/strategies/{id}/versions", tag = "strategies",
    params(("id" = String, Path, description = "Strategy id")), request_body = StrategyDocument,
    responses((status = 201, description = "The strategy with the new version", body = StrategyResponse)),
    security(("bearer" = ["admin", "manager"])))]
pub async fn add_version(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<StrategyDocument>,
) -> Result<HttpResponse, AppError> {
    auth.require(MANAGERS)?;
    let (org, actor, id, doc) = (
        auth.org_id,
        auth.subject.clone(),
        strategy_id(&path)?,
        body.into_inner(),
    );
    db::run(&state.pool, move |c| {
        write_transaction(c, |c| service::strategies::add_version(c, org, id, &doc, &actor))
    })
    .await?;
    Ok(HttpResponse::Created().json(load_strategy(&state, org, id).await?))
}

/// Publish a version; the previously published one is retired.
#[utoipa::path(post, path = "/v1/strategies/{id}/versions/{n}/publish", tag = "strategies",
    params(("id" = String, Path, description = "Strategy id"), ("n" = i32, Path, description = "Version number")),
    responses((status = 200, description = "The strategy", body = StrategyResponse),
              (status = 409, description = "The version is retired", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin", "manager"])))]
pub async fn publish(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    auth.require(MANAGERS)?;
    let (sid, n) = path.into_inner();
    let (org, id) = (auth.org_id, strategy_id(&sid)?);
    let number: i32 = n.parse().map_err(|_| AppError::not_found("strategy version"))?;
    db::run(&state.pool, move |c| {
        write_transaction(c, |c| service::strategies::publish(c, org, id, number))
    })
    .await?;
    Ok(HttpResponse::Ok().json(load_strategy(&state, org, id).await?))
}

/// Acknowledge the published version (the caller signs it, P14).
#[utoipa::path(post, path = "/v1/strategies/{id}/versions/{n}/acknowledgements", tag = "strategies",
    params(("id" = String, Path, description = "Strategy id"), ("n" = i32, Path, description = "Version number")),
    responses((status = 201, description = "The strategy", body = StrategyResponse),
              (status = 409, description = "Not the published version", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin", "manager", "collector", "sales"])))]
pub async fn acknowledge(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    auth.require(&[Role::Admin, Role::Manager, Role::Collector, Role::Sales])?;
    let (sid, n) = path.into_inner();
    let (org, id, subject) = (auth.org_id, strategy_id(&sid)?, auth.subject.clone());
    let number: i32 = n.parse().map_err(|_| AppError::not_found("strategy version"))?;
    db::run(&state.pool, move |c| {
        write_transaction(c, |c| service::strategies::acknowledge(c, org, id, number, &subject))
    })
    .await?;
    Ok(HttpResponse::Created().json(load_strategy(&state, org, id).await?))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "as_of": "2026-11-23",
    "collectors": [{"collector": "marta", "unacknowledged": ["stg_2 v2"], "overdue_tasks": 2, "overdue_actions": 1}]
}))]
pub struct ComplianceResponse {
    pub as_of: NaiveDate,
    pub collectors: Vec<CollectorCompliance>,
}

/// Collectors who have not acknowledged the published versions, and their overdue work.
#[utoipa::path(get, path = "/v1/strategies/compliance", tag = "strategies",
    responses((status = 200, description = "Compliance per collector", body = ComplianceResponse)),
    security(("bearer" = ["admin", "manager"])))]
pub async fn compliance(auth: Auth, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    auth.require(MANAGERS)?;
    let (org, today) = (auth.org_id, state.today());
    let collectors = db::run(&state.pool, move |c| service::strategies::compliance(c, org, today)).await?;
    Ok(HttpResponse::Ok().json(ComplianceResponse {
        as_of: today,
        collectors,
    }))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "tpl_1", "key": "first_reminder", "language": "ca",
    "subject": "Recordatori: factura {{ invoices[0].number }} vençuda",
    "body_text": "Benvolguts {{ customer_name }}:\n\nLa factura {{ invoices[0].number }} de {{ invoices[0].open_amount }} va vèncer el {{ due_date }}.",
    "body_html": "<p>Benvolguts {{ customer_name }}:</p><p>La factura {{ invoices[0].number }} va vèncer el {{ due_date }}.</p>",
    "version": 1, "updated_at": "2026-11-23T10:00:00Z"
}))]
pub struct TemplateResponse {
    pub id: String,
    /// The step (or template) key, e.g. `first_reminder`.
    pub key: String,
    pub language: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
    pub version: i64,
    pub updated_at: DateTime<Utc>,
}

impl From<&TemplateRow> for TemplateResponse {
    fn from(t: &TemplateRow) -> Self {
        TemplateResponse {
            id: Kind::Template.encode(t.id),
            key: t.key.clone(),
            language: t.language.clone(),
            subject: t.subject.clone(),
            body_text: t.body_text.clone(),
            body_html: t.body_html.clone(),
            version: t.version,
            updated_at: utc(t.updated_at),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "items": [
        {
            "id": "tpl_1", "key": "first_reminder", "language": "ca",
            "subject": "Recordatori: factura {{ invoices[0].number }} vençuda",
            "body_text": "Benvolguts {{ customer_name }}:\n\nLa factura {{ invoices[0].number }} de {{ invoices[0].open_amount }} va vèncer el {{ due_date }}.",
            "body_html": "<p>Benvolguts {{ customer_name }}:</p><p>La factura {{ invoices[0].number }} va vèncer el {{ due_date }}.</p>",
            "version": 1, "updated_at": "2026-11-23T10:00:00Z"
        }
    ],
    "next_cursor": "YWZ0ZXI6MQ"
}))]
pub struct TemplatePage {
    pub items: Vec<TemplateResponse>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TemplateQuery {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    pub key: Option<String>,
    pub language: Option<String>,
}

/// A template: minijinja syntax, strict (an unknown variable is refused with 422).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"key": "first_reminder", "language": "es", "subject": "Factura {{ invoices[0].number }}",
    "body_text": "Estimado cliente: …", "body_html": "<p>Estimado cliente: …</p>"}))]
pub struct TemplateInput {
    pub key: String,
    pub language: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "subject": "Recordatori: factura {{ invoices[0].number }} vençuda",
    "body_text": "Benvolguts {{ customer_name }}:\n\nLa factura {{ invoices[0].number }} de {{ invoices[0].open_amount }} va vèncer el {{ due_date }}. Us agrairem que la pagueu abans del {{ reply_by }}.\n\n{{ collector_name }}",
    "body_html": "<p>Benvolguts {{ customer_name }}:</p><p>La factura {{ invoices[0].number }} de {{ invoices[0].open_amount }} va vèncer el {{ due_date }}.</p>"
}))]
pub struct TemplateUpdate {
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
}

/// Render for a customer's open invoices as of a date, or sample data without a customer.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"customer_id": "cus_1", "as_of": "2026-11-23"}))]
pub struct PreviewRequest {
    #[serde(default)]
    pub customer_id: Option<String>,
    #[serde(default)]
    pub as_of: Option<NaiveDate>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "rendered": {
        "subject": "Recordatori: factura 2026/0042 vençuda",
        "body_text": "Benvolguts Ferreteria Puig SL:\n\nLa factura 2026/0042 de 1.210,00 € va vèncer el 31/10/2026.",
        "body_html": "<p>Benvolguts Ferreteria Puig SL:</p><p>La factura 2026/0042 va vèncer el 31/10/2026.</p>"
    },
    "context": {
        "customer_name": "Ferreteria Puig SL", "contact_name": "Marta Puig", "organisation_name": "Recaudo Demo SA",
        "collector_name": "Laura Martí", "collector_email": "laura@example.com", "collector_phone": "+34 933 000 222",
        "invoices": [
            {
                "number": "2026/0042", "issue_date": "01/10/2026", "due_date": "31/10/2026", "amount": "1.210,00 €",
                "open_amount": "1.210,00 €", "days_overdue": 23
            }
        ],
        "total_overdue": "1.210,00 €", "total_open": "1.690,00 €", "days_overdue": 23, "due_date": "31/10/2026",
        "last_reminder_date": "01/11/2026",
        "consequence": "haurem d'aturar les noves comandes fins que el compte estigui al corrent",
        "reply_by": "30/11/2026"
    }
}))]
pub struct PreviewResponse {
    pub rendered: Rendered,
    /// The variables the template was rendered with.
    pub context: LetterContext,
}

fn template_id(p: &str) -> Result<i64, AppError> {
    Kind::Template.decode(p).ok_or_else(|| AppError::not_found("template"))
}

/// Create (or replace) the template of a key and language.
#[utoipa::path(post, path = "/v1/templates", tag = "templates", request_body = TemplateInput,
    responses((status = 201, description = "Saved", body = TemplateResponse)),
    security(("bearer" = ["admin", "manager"])))]
pub async fn create_template(
    auth: Auth,
    state: web::Data<AppState>,
    body: web::Json<TemplateInput>,
) -> Result<HttpResponse, AppError> {
    auth.require(MANAGERS)?;
    let (org, t) = (auth.org_id, body.into_inner());
    let row = db::run(&state.pool, move |c| {
        let source = TemplateSource {
            subject: t.subject,
            body_text: t.body_text,
            body_html: t.body_html,
        };
        write_transaction(c, |c| {
            service::strategies::save_template(c, org, &t.key, &t.language, &source)
        })
    })
    .await?;
    Ok(HttpResponse::Created().json(TemplateResponse::from(&row)))
}

/// List templates (the defaults in five languages are there from the start).
#[utoipa::path(get, path = "/v1/templates", tag = "templates", params(TemplateQuery),
    responses((status = 200, description = "A page of templates", body = TemplatePage)),
    security(("bearer" = ["admin", "manager", "collector", "sales", "integration", "viewer"])))]
pub async fn list_templates(
    auth: Auth,
    state: web::Data<AppState>,
    query: web::Query<TemplateQuery>,
) -> Result<HttpResponse, AppError> {
    auth.require(READERS)?;
    let q = query.into_inner();
    let page = PageRequest::parse(q.limit, q.cursor.as_deref())?;
    let org = auth.org_id;
    let rows = db::run(&state.pool, move |c| {
        db::repo::strategies::list_templates(
            c,
            org,
            q.key.as_deref(),
            q.language.as_deref(),
            page.after_id,
            page.fetch_limit(),
        )
    })
    .await?;
    let (rows, next_cursor) = page.finish(rows, |r| r.id);
    Ok(HttpResponse::Ok().json(TemplatePage {
        items: rows.iter().map(TemplateResponse::from).collect(),
        next_cursor,
    }))
}

/// Get a template.
#[utoipa::path(get, path = "/v1/templates/{id}", tag = "templates",
    params(("id" = String, Path, description = "Template id, e.g. `tpl_1`")),
    responses((status = 200, description = "The template", body = TemplateResponse)),
    security(("bearer" = ["admin", "manager", "collector", "sales", "integration", "viewer"])))]
pub async fn get_template(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    auth.require(READERS)?;
    let (org, id) = (auth.org_id, template_id(&path)?);
    let row = db::run(&state.pool, move |c| db::repo::strategies::template_by_id(c, org, id)).await?;
    Ok(HttpResponse::Ok().json(TemplateResponse::from(&row)))
}

/// Replace a template's texts.
#[utoipa::path(put, path = "/v1/templates/{id}", tag = "templates",
    params(("id" = String, Path, description = "Template id")), request_body = TemplateUpdate,
    responses((status = 200, description = "Saved", body = TemplateResponse)),
    security(("bearer" = ["admin", "manager"])))]
pub async fn put_template(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<TemplateUpdate>,
) -> Result<HttpResponse, AppError> {
    auth.require(MANAGERS)?;
    let (org, id, t) = (auth.org_id, template_id(&path)?, body.into_inner());
    let row = db::run(&state.pool, move |c| {
        write_transaction(c, |c| {
            let current = db::repo::strategies::template_by_id(c, org, id)?;
            let source = TemplateSource {
                subject: t.subject.clone(),
                body_text: t.body_text.clone(),
                body_html: t.body_html.clone(),
            };
            service::strategies::save_template(c, org, &current.key, &current.language, &source)
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(TemplateResponse::from(&row)))
}

/// Render a template for a customer as of a date (their open invoices), or with sample data.
#[utoipa::path(post, path = "/v1/templates/{id}/preview", tag = "templates",
    params(("id" = String, Path, description = "Template id")), request_body = PreviewRequest,
    responses((status = 200, description = "The rendered message", body = PreviewResponse)),
    security(("bearer" = ["admin", "manager", "collector", "sales", "integration", "viewer"])))]
pub async fn preview(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<PreviewRequest>,
) -> Result<HttpResponse, AppError> {
    auth.require(READERS)?;
    let (org, id, req) = (auth.org_id, template_id(&path)?, body.into_inner());
    let as_of = req.as_of.unwrap_or_else(|| state.today());
    let out = db::run(&state.pool, move |c| {
        let t = db::repo::strategies::template_by_id(c, org, id)?;
        let context = match req.customer_id.as_deref() {
            None => LetterContext::sample(&t.language),
            Some(cid) => {
                let key = Kind::Customer
                    .decode(cid)
                    .ok_or_else(|| AppError::invalid("customer_id", "no such customer"))?;
                let customer = db::repo::customers::find(c, org, key)
                    .map_err(|_| AppError::invalid("customer_id", "no such customer"))?;
                let items = service::collectable::collectable_for_customers(c, org, as_of, &[key])?;
                let refs: Vec<&service::collectable::CollectableItem> = items.iter().collect();
                let organisation = db::repo::organizations::find(c, org)?.name;
                let contact = service::collection_run::primary_contact(&customer);
                let mut ctx = service::collection_run::letter_context(
                    &organisation,
                    &customer,
                    contact.as_ref(),
                    &refs,
                    as_of,
                    None,
                );
                let subjects: Vec<String> = customer.collector.iter().cloned().collect();
                service::users::Directory::load_subjects(c, org, &subjects)?.sign(&mut ctx, &customer);
                if t.language != customer.language {
                    // Preview the template's own language even for a customer who reads another.
                    ctx.consequence = crate::domain::strategy::consequence(None, &t.language);
                }
                ctx
            }
        };
        let source = TemplateSource {
            subject: t.subject,
            body_text: t.body_text,
            body_html: t.body_html,
        };
        let rendered = render(&source, &context).map_err(AppError::Validation)?;
        Ok(PreviewResponse { rendered, context })
    })
    .await?;
    Ok(HttpResponse::Ok().json(out))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"as_of": "2026-11-23", "dry_run": false}))]
pub struct RunRequest {
    /// Business date of the run (default today).
    #[serde(default)]
    pub as_of: Option<NaiveDate>,
    /// Compute and summarise without creating actions or moving invoices along the ladder.
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "run_1", "as_of": "2026-11-23", "dry_run": false, "status": "completed",
    "started_at": "2026-11-23T05:00:04Z", "finished_at": "2026-11-23T05:00:06Z",
    "summary": {
        "customers_examined": 1840, "invoices_examined": 6215, "actions_created": 312,
        "actions_by_step": {"pre_due_reminder": 140, "first_reminder": 96, "first_call": 41, "firm_letter": 35},
        "actions_by_channel": {"email": 236, "call": 41, "letter": 35},
        "skipped": {
            "not_yet_due": 4980, "already_done": 610, "promised": 58, "disputed": 22, "in_payment_plan": 17,
            "customer_paused": 9, "below_minimum": 11
        },
        "invoices_resent": 6, "duration_ms": 2140
    },
    "created_by": "scheduler"
}))]
pub struct RunResponse {
    pub id: String,
    pub as_of: NaiveDate,
    pub dry_run: bool,
    /// `running`, `completed` or `failed`.
    pub status: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub summary: RunSummary,
    pub created_by: String,
}

impl From<&RunRow> for RunResponse {
    fn from(r: &RunRow) -> Self {
        RunResponse {
            id: Kind::Run.encode(r.id),
            as_of: r.as_of,
            dry_run: r.dry_run,
            status: r.status.clone(),
            started_at: utc(r.started_at),
            finished_at: r.finished_at.map(utc),
            summary: serde_json::from_str(&r.summary).unwrap_or_default(),
            created_by: r.created_by.clone(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "items": [
        {
            "id": "run_1", "as_of": "2026-11-23", "dry_run": false, "status": "completed",
            "started_at": "2026-11-23T05:00:04Z", "finished_at": "2026-11-23T05:00:06Z",
            "summary": {
                "customers_examined": 1840, "invoices_examined": 6215, "actions_created": 312,
                "actions_by_step": {
                    "pre_due_reminder": 140, "first_reminder": 96, "first_call": 41, "firm_letter": 35
                },
                "actions_by_channel": {"email": 236, "call": 41, "letter": 35},
                "skipped": {
                    "not_yet_due": 4980, "already_done": 610, "promised": 58, "disputed": 22, "in_payment_plan": 17,
                    "customer_paused": 9, "below_minimum": 11
                },
                "invoices_resent": 6, "duration_ms": 2140
            },
            "created_by": "scheduler"
        }
    ],
    "next_cursor": "YWZ0ZXI6MQ"
}))]
pub struct RunPage {
    pub items: Vec<RunResponse>,
    pub next_cursor: Option<String>,
}

/// Run the collection engine for a date (the daily run, on demand). Re-running a completed
/// date returns that run; a date before the last completed run is refused.
#[utoipa::path(post, path = "/v1/collection-runs", tag = "collection-runs", request_body = RunRequest,
    responses((status = 201, description = "The run", body = RunResponse),
              (status = 409, description = "Earlier than the last completed run, or another run in progress", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin", "manager"])))]
pub async fn start_run(
    auth: Auth,
    state: web::Data<AppState>,
    body: web::Json<RunRequest>,
) -> Result<HttpResponse, AppError> {
    auth.require(MANAGERS)?;
    let (org, actor) = (auth.org_id, auth.subject.clone());
    let (as_of, dry_run) = (body.as_of.unwrap_or_else(|| state.today()), body.dry_run);
    let row = db::run(&state.pool, move |c| {
        service::collection_run::run(c, org, as_of, dry_run, &actor)
    })
    .await?;
    Ok(HttpResponse::Created().json(RunResponse::from(&row)))
}

/// List collection runs.
#[utoipa::path(get, path = "/v1/collection-runs", tag = "collection-runs", params(PageQuery),
    responses((status = 200, description = "A page of runs", body = RunPage)),
    security(("bearer" = ["admin", "manager", "collector", "sales", "integration", "viewer"])))]
pub async fn list_runs(
    auth: Auth,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, AppError> {
    auth.require(READERS)?;
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let org = auth.org_id;
    let rows = db::run(&state.pool, move |c| {
        db::repo::actions::list_runs(c, org, page.after_id, page.fetch_limit())
    })
    .await?;
    let (rows, next_cursor) = page.finish(rows, |r| r.id);
    Ok(HttpResponse::Ok().json(RunPage {
        items: rows.iter().map(RunResponse::from).collect(),
        next_cursor,
    }))
}

/// Get a run with its summary (actions per step and channel, skips per reason, duration).
#[utoipa::path(get, path = "/v1/collection-runs/{id}", tag = "collection-runs",
    params(("id" = String, Path, description = "Run id, e.g. `run_1`")),
    responses((status = 200, description = "The run", body = RunResponse)),
    security(("bearer" = ["admin", "manager", "collector", "sales", "integration", "viewer"])))]
pub async fn get_run(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    auth.require(READERS)?;
    let id = Kind::Run
        .decode(&path)
        .ok_or_else(|| AppError::not_found("collection run"))?;
    let org = auth.org_id;
    let row = db::run(&state.pool, move |c| db::repo::actions::find_run(c, org, id)).await?;
    Ok(HttpResponse::Ok().json(RunResponse::from(&row)))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "act_1", "run_id": "run_1", "customer_id": "cus_1", "invoice_ids": ["inv_1"], "step_level": 2,
    "step_key": "first_reminder", "action": "email", "tone": "friendly", "status": "queued", "assignee": null,
    "requires_approval": false, "scheduled_on": "2026-11-23", "language": "ca",
    "recipient": "ap@ferreteriapuig.example", "subject": "Recordatori: factura 2026/0042 vençuda",
    "body_text": "Benvolguts Ferreteria Puig SL:\n\nLa factura 2026/0042 de 1.210,00 € va vèncer el 31/10/2026.",
    "body_html": "<p>Benvolguts Ferreteria Puig SL:</p><p>La factura 2026/0042 va vèncer el 31/10/2026.</p>",
    "approved_by": null, "outcome": null, "completed_at": null, "created_at": "2026-11-23T05:00:05Z"
}))]
pub struct ActionResponse {
    pub id: String,
    pub run_id: Option<String>,
    pub customer_id: String,
    pub invoice_ids: Vec<String>,
    pub step_level: i32,
    pub step_key: String,
    /// `email`, `letter`, `call`, `sales_escalation`, `credit_hold`, `law_firm_letter`, …
    pub action: String,
    pub tone: String,
    /// `planned`, `awaiting_approval`, `queued`, `sending` (an e-mail being delivered),
    /// `sent`, `done`, `failed`, `cancelled`, `skipped`.
    pub status: String,
    pub assignee: Option<String>,
    pub requires_approval: bool,
    pub scheduled_on: NaiveDate,
    pub language: String,
    pub recipient: Option<String>,
    pub subject: Option<String>,
    pub body_text: Option<String>,
    pub body_html: Option<String>,
    pub approved_by: Option<String>,
    pub outcome: Option<String>,
    pub completed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// E-mail delivery (e-mail actions only; `null` for other actions).
    pub delivery: Option<EmailDelivery>,
}

/// The delivery of an e-mail action by SMTP. Without SMTP configured the message stays
/// `queued` with no attempts.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"attempts": 2, "next_attempt_at": null, "last_error": null,
    "sent_at": "2026-11-23T05:02:11.204518Z", "message_id": "<act_42.1795426200000000@acme.example>",
    "in_flight_until": null}))]
pub struct EmailDelivery {
    /// Attempts made so far (each SMTP conversation counts, successful or not).
    pub attempts: i32,
    /// When a queued message that failed transiently is tried again (exponential backoff).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The last failure: the SMTP reply (`451 4.7.1 try again later`), a connection error,
    /// or for a `failed` message the reason it failed (`550 5.1.1 user unknown`,
    /// `bounced: …`, `gave up after 10 attempts: …`).
    pub last_error: Option<String>,
    /// When the SMTP server accepted the message.
    pub sent_at: Option<DateTime<Utc>>,
    /// The Message-ID it was sent with; bounce reports may name the message by it.
    pub message_id: Option<String>,
    /// While `sending`: until when the worker that claimed it holds it.
    pub in_flight_until: Option<DateTime<Utc>>,
}

impl EmailDelivery {
    fn of(a: &ActionRow) -> Option<EmailDelivery> {
        (a.action == "email").then(|| EmailDelivery {
            attempts: a.attempts,
            next_attempt_at: a.next_attempt_at.map(utc),
            last_error: a.last_error.clone(),
            sent_at: a.sent_at.map(utc),
            message_id: a.message_id.clone(),
            in_flight_until: a.lease_until.filter(|_| a.status == "sending").map(utc),
        })
    }
}

impl ActionResponse {
    fn load_many(c: &mut DbConnection, rows: &[ActionRow]) -> Result<Vec<ActionResponse>, AppError> {
        let links = db::repo::actions::invoices_of_actions(c, &rows.iter().map(|a| a.id).collect::<Vec<_>>())?;
        Ok(rows
            .iter()
            .map(|a| ActionResponse {
                id: Kind::Action.encode(a.id),
                run_id: a.run_id.map(|r| Kind::Run.encode(r)),
                customer_id: Kind::Customer.encode(a.customer_id),
                invoice_ids: links
                    .iter()
                    .filter(|(aid, _, _)| *aid == a.id)
                    .map(|(_, i, _)| Kind::Invoice.encode(*i))
                    .collect(),
                step_level: a.step_level,
                step_key: a.step_key.clone(),
                action: a.action.clone(),
                tone: a.tone.clone(),
                status: a.status.clone(),
                assignee: a.assignee.clone(),
                requires_approval: a.requires_approval,
                scheduled_on: a.scheduled_on,
                language: a.language.clone(),
                recipient: a.recipient.clone(),
                subject: a.subject.clone(),
                body_text: a.body_text.clone(),
                body_html: a.body_html.clone(),
                approved_by: a.approved_by.clone(),
                outcome: a.outcome.clone(),
                completed_at: a.completed_at.map(utc),
                created_at: utc(a.created_at),
                delivery: EmailDelivery::of(a),
            })
            .collect())
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "items": [
        {
            "id": "act_1", "run_id": "run_1", "customer_id": "cus_1", "invoice_ids": ["inv_1"], "step_level": 2,
            "step_key": "first_reminder", "action": "email", "tone": "friendly", "status": "queued", "assignee": null,
            "requires_approval": false, "scheduled_on": "2026-11-23", "language": "ca",
            "recipient": "ap@ferreteriapuig.example", "subject": "Recordatori: factura 2026/0042 vençuda",
            "body_text": "Benvolguts Ferreteria Puig SL:\n\nLa factura 2026/0042 de 1.210,00 € va vèncer el 31/10/2026.",
            "body_html": "<p>Benvolguts Ferreteria Puig SL:</p><p>La factura 2026/0042 va vèncer el 31/10/2026.</p>",
            "approved_by": null, "outcome": null, "completed_at": null, "created_at": "2026-11-23T05:00:05Z"
        }
    ],
    "next_cursor": "YWZ0ZXI6MQ"
}))]
pub struct ActionPage {
    pub items: Vec<ActionResponse>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActionQuery {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    pub customer_id: Option<String>,
    pub invoice_id: Option<String>,
    pub status: Option<String>,
    /// The action kind: `email`, `letter`, `call`, …
    pub channel: Option<String>,
    pub step: Option<String>,
    pub run_id: Option<String>,
    /// Collectors and sales see their own unless they are managers.
    pub assignee: Option<String>,
}

/// List actions planned by collection runs.
#[utoipa::path(get, path = "/v1/actions", tag = "actions", params(ActionQuery),
    responses((status = 200, description = "A page of actions", body = ActionPage)),
    security(("bearer" = ["admin", "manager", "collector", "sales", "integration", "viewer"])))]
pub async fn list_actions(
    auth: Auth,
    state: web::Data<AppState>,
    query: web::Query<ActionQuery>,
) -> Result<HttpResponse, AppError> {
    auth.require(READERS)?;
    let q = query.into_inner();
    let page = PageRequest::parse(q.limit, q.cursor.as_deref())?;
    let own_only =
        !(auth.has(Role::Admin) || auth.has(Role::Manager) || auth.has(Role::Viewer) || auth.has(Role::Integration));
    let assignee = match (q.assignee, own_only) {
        (Some(a), true) if a != auth.subject => {
            return Err(AppError::Forbidden(
                "only managers may see other people's actions".into(),
            ));
        }
        (None, true) => Some(auth.subject.clone()),
        (a, _) => a,
    };
    let filter = ActionFilter {
        customer_id: q
            .customer_id
            .as_deref()
            .map(|id| Kind::Customer.decode(id).unwrap_or(-1)),
        invoice_id: q.invoice_id.as_deref().map(|id| Kind::Invoice.decode(id).unwrap_or(-1)),
        status: q.status,
        channel: q.channel,
        step_key: q.step,
        run_id: q.run_id.as_deref().map(|id| Kind::Run.decode(id).unwrap_or(-1)),
        assignee,
    };
    let org = auth.org_id;
    let body = db::run(&state.pool, move |c| {
        let rows = db::repo::actions::list_actions(c, org, &filter, page.after_id, page.fetch_limit())?;
        let (rows, next_cursor) = page.finish(rows, |r| r.id);
        Ok(ActionPage {
            items: ActionResponse::load_many(c, &rows)?,
            next_cursor,
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(body))
}

fn action_id(p: &str) -> Result<i64, AppError> {
    Kind::Action.decode(p).ok_or_else(|| AppError::not_found("action"))
}

/// Get an action with its rendered message.
#[utoipa::path(get, path = "/v1/actions/{id}", tag = "actions",
    params(("id" = String, Path, description = "Action id, e.g. `act_1`")),
    responses((status = 200, description = "The action", body = ActionResponse)),
    security(("bearer" = ["admin", "manager", "collector", "sales", "integration", "viewer"])))]
pub async fn get_action(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    auth.require(READERS)?;
    let (org, id) = (auth.org_id, action_id(&path)?);
    let body = db::run(&state.pool, move |c| {
        let row = db::repo::actions::find_action(c, org, id)?;
        ActionResponse::load_many(c, &[row])?
            .pop()
            .ok_or_else(|| AppError::internal("action vanished"))
    })
    .await?;
    Ok(HttpResponse::Ok().json(body))
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"outcome": "Spoke to Marta Puig; payment of 2026/0031 promised for 27 November"}))]
pub struct ActionUpdate {
    /// What happened (free text, or a call outcome).
    #[serde(default)]
    pub outcome: Option<String>,
}

async fn transition(
    auth: &Auth,
    state: &AppState,
    id: &str,
    allowed_from: &'static [&'static str],
    to: &'static str,
    outcome: Option<String>,
) -> Result<HttpResponse, AppError> {
    let (org, id, subject) = (auth.org_id, action_id(id)?, auth.subject.clone());
    let approving = to == "queued";
    let today = state.today();
    let body = db::run(&state.pool, move |c| {
        write_transaction(c, |c| {
            // Locked: a delivery worker claiming the message waits for this decision, and a
            // message it already claimed (`sending`) is refused below.
            let row = db::repo::actions::lock_action(c, org, id)?;
            if !allowed_from.contains(&row.status.as_str()) {
                return Err(AppError::Conflict(format!(
                    "the action is {} and cannot become {to}",
                    row.status
                )));
            }
            // An approved message is queued for delivery; an approved task becomes planned.
            let target = if approving
                && !matches!(
                    row.action.as_str(),
                    "email" | "letter" | "sms" | "law_firm_letter" | "repossession_offer"
                ) {
                "planned"
            } else {
                to
            };
            db::repo::actions::set_action_status(
                c,
                id,
                target,
                approving.then_some(subject.as_str()),
                outcome.as_deref(),
            )?;
            let row = db::repo::actions::find_action(c, org, id)?;
            if approving {
                // An approved agency, legal or repossession step opens its escalation now.
                let head = db::repo::actions::ActionHead::from(&row);
                service::escalations::open_from_actions(c, org, &[head], today, &subject)?;
            }
            ActionResponse::load_many(c, &[row])?
                .pop()
                .ok_or_else(|| AppError::internal("action vanished"))
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(body))
}

/// Approve an action that needs a manager (legal, agency). An approved agency placement,
/// law-firm letter, small-claims filing or repossession offer opens its escalation
/// (`/v1/escalations`), and its invoices leave normal dunning.
#[utoipa::path(post, path = "/v1/actions/{id}/approve", tag = "actions",
    params(("id" = String, Path, description = "Action id")),
    responses((status = 200, description = "The approved action", body = ActionResponse),
              (status = 409, description = "Not awaiting approval", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin", "manager"])))]
pub async fn approve(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    auth.require(MANAGERS)?;
    transition(&auth, &state, &path, &["awaiting_approval"], "queued", None).await
}

/// Mark an action done (a call made, a letter posted), with its outcome.
#[utoipa::path(post, path = "/v1/actions/{id}/complete", tag = "actions",
    params(("id" = String, Path, description = "Action id")), request_body = ActionUpdate,
    responses((status = 200, description = "The action", body = ActionResponse),
              (status = 409, description = "Already closed", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin", "manager", "collector", "sales"])))]
pub async fn complete(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<ActionUpdate>,
) -> Result<HttpResponse, AppError> {
    auth.require(&[Role::Admin, Role::Manager, Role::Collector, Role::Sales])?;
    transition(
        &auth,
        &state,
        &path,
        &["planned", "queued", "sent"],
        "done",
        body.into_inner().outcome,
    )
    .await
}

/// Cancel an action that has not happened yet.
#[utoipa::path(post, path = "/v1/actions/{id}/cancel", tag = "actions",
    params(("id" = String, Path, description = "Action id")), request_body = ActionUpdate,
    responses((status = 200, description = "The action", body = ActionResponse),
              (status = 409, description = "Already closed", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin", "manager", "collector"])))]
pub async fn cancel(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<ActionUpdate>,
) -> Result<HttpResponse, AppError> {
    auth.require(&[Role::Admin, Role::Manager, Role::Collector])?;
    transition(
        &auth,
        &state,
        &path,
        &["planned", "queued", "awaiting_approval"],
        "cancelled",
        body.into_inner().outcome,
    )
    .await
}

/// Record a bounce for a sent e-mail, reported by the e-mail provider or an operator after
/// delivery; the message is named by its action id or its Message-ID. The message becomes
/// `failed` with the reason, an `email.bounced` event is recorded and the customer's
/// collector gets a task to check the contact. Repeating a report changes nothing.
#[utoipa::path(post, path = "/v1/email-bounces", tag = "actions", request_body = service::delivery::BounceReport,
    responses((status = 200, description = "The e-mail action, now failed", body = ActionResponse),
              (status = 404, description = "No message with this action id or Message-ID", body = crate::error::Problem, content_type = "application/problem+json"),
              (status = 409, description = "The message was not sent (queued, cancelled, …) or is not an e-mail", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = ["admin", "manager", "integration"])))]
pub async fn report_bounce(
    auth: Auth,
    state: web::Data<AppState>,
    body: web::Json<service::delivery::BounceReport>,
) -> Result<HttpResponse, AppError> {
    auth.require(&[Role::Admin, Role::Manager, Role::Integration])?;
    let (org, report) = (auth.org_id, body.into_inner());
    let (body, bounced) = db::run(&state.pool, move |c| {
        let (row, bounced) = service::delivery::report_bounce(c, org, &report)?;
        Ok((
            ActionResponse::load_many(c, &[row])?
                .pop()
                .ok_or_else(|| AppError::internal("action vanished"))?,
            bounced,
        ))
    })
    .await?;
    if bounced {
        state.metrics.email_delivery("bounced");
    }
    Ok(HttpResponse::Ok().json(body))
}

/// `as_of` query parsing shared with other views.
pub fn as_of_query(state: &AppState, value: Option<&str>) -> Result<NaiveDate, AppError> {
    Ok(parse_date("as_of", value)?.unwrap_or_else(|| state.today()))
}
