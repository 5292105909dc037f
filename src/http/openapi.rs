//! The OpenAPI document: every path and schema from the code, plus the conventions added
//! to each operation in one place (problem responses, required roles, bearer security).
//! Served at `/openapi.json`, browsable at `/docs` (vendored Swagger UI, works offline).

use std::sync::OnceLock;

use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, web};
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::http::{
    api_clients, collection, credit, customers, disputes, engine, escalations, events, health, invoices, payments,
    promises, reports, settings, token, users, worklist,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Recaudo",
        description = "Accounts-receivable collection service. Every endpoint under /v1 takes a bearer JWT; \
each operation lists the roles it accepts. Errors are RFC 9457 problem+json. Money is a decimal string \
in the currency's minor-unit precision.",
        license(name = "Apache-2.0")
    ),
    paths(
        token::token,
        api_clients::create, api_clients::list, api_clients::get, api_clients::revoke,
        customers::create, customers::list, customers::get, customers::patch, customers::upsert,
        customers::batch, customers::statement,
        invoices::create, invoices::list, invoices::get, invoices::patch, invoices::upsert,
        invoices::batch, invoices::cancel, invoices::write_off,
        payments::create, payments::list, payments::get, payments::upsert, payments::batch,
        payments::allocate, payments::unallocate, payments::reverse, payments::apply_credit_note,
        settings::get, settings::patch, events::list,
        promises::create, promises::list, promises::get, promises::patch, promises::cancel, promises::evaluate,
        promises::create_plan, promises::list_plans, promises::get_plan, promises::cancel_plan,
        disputes::create, disputes::list, disputes::get, disputes::patch, disputes::comment, disputes::resolve,
        disputes::report, reports::receivables, reports::effectiveness, reports::promises,
        collection::collectable, collection::tasks, collection::summary,
        engine::create_strategy, engine::list_strategies, engine::get_strategy, engine::add_version, engine::publish,
        engine::acknowledge, engine::compliance, engine::create_template, engine::list_templates, engine::get_template,
        engine::put_template, engine::preview, engine::start_run, engine::list_runs, engine::get_run,
        engine::list_actions, engine::get_action, engine::approve, engine::complete, engine::cancel,
        engine::report_bounce,
        worklist::worklist, worklist::log_activity,
        health::live, health::ready, health::metrics,
        credit::create, credit::list, credit::get, credit::patch, credit::submit, credit::decide,
        credit::check, credit::credit, credit::release, credit::open_orders, credit::risk, credit::recompute,
        escalations::list, escalations::get, escalations::create, escalations::transition,
        users::create, users::list, users::get, users::patch,
    ),
    components(schemas(crate::error::Problem, crate::error::FieldError)),
    modifiers(&Conventions),
    tags(
        (name = "auth", description = "Tokens for API clients"),
        (name = "api-clients", description = "API clients (admin)"),
        (name = "customers", description = "Customers (debtors) and their statements"),
        (name = "invoices", description = "Invoices, credit notes and debit notes"),
        (name = "payments", description = "Payments and cash application"),
        (name = "settings", description = "Organisation settings"),
        (name = "events", description = "The event log"),
        (name = "promises", description = "Promises to pay and their evaluation"),
        (name = "payment-plans", description = "Payment plans (instalments)"),
        (name = "disputes", description = "Disputes and their resolution"),
        (name = "reports", description = "Reports for management"),
        (name = "collection", description = "What the collection engine chases, and collector tasks"),
        (name = "strategies", description = "Collection strategies: versioned ladders of steps"),
        (name = "templates", description = "Letter and e-mail templates"),
        (name = "collection-runs", description = "The daily collection run"),
        (name = "actions", description = "Actions planned by collection runs"),
        (name = "operations", description = "Health and metrics"),
        (name = "credit", description = "Credit applications, credit control and risk signals"),
        (name = "escalations", description = "Credit holds, agency placements, legal cases and repossession offers"),
        (name = "users", description = "The user directory: collectors and colleagues (admin)"),
    )
)]
pub struct ApiDoc;

/// The document as served and committed.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// Pretty JSON of the document, exactly as committed in `openapi/openapi.json`.
pub fn document_json() -> String {
    let mut text = document().to_pretty_json().unwrap_or_default();
    text.push('\n');
    text
}

/// The served document, built and serialized once per process. (Handing the document to
/// Swagger UI's service built it in every actix worker and kept it for the process's life:
/// about 7 MB of heap per worker.)
static SERVED: OnceLock<String> = OnceLock::new();

async fn served_document() -> HttpResponse {
    let json = SERVED.get_or_init(|| serde_json::to_string(&document()).unwrap_or_default());
    HttpResponse::Ok().content_type(ContentType::json()).body(json.as_str())
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/openapi.json", web::get().to(served_document))
        .service(SwaggerUi::new("/docs/{_:.*}").config(Config::from("/openapi.json")));
}

struct Conventions;

fn problem(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/problem+json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build(),
    )
}

fn add_problem(op: &mut Operation, status: &str, description: &str) {
    op.responses
        .responses
        .entry(status.to_string())
        .or_insert_with(|| problem(description));
}

/// The roles of an operation, read from its bearer security requirement.
fn roles_of(op: &Operation) -> Option<Vec<String>> {
    let security = serde_json::to_value(op.security.as_ref()?).ok()?;
    let roles = security.as_array()?.first()?.get("bearer")?.as_array()?;
    Some(roles.iter().filter_map(|r| r.as_str().map(str::to_string)).collect())
}

impl Modify for Conventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A JWT from POST /v1/auth/token, `recaudo token`, or the configured identity provider. \
The scopes listed on each operation are the roles that may call it.",
                    ))
                    .build(),
            ),
        );
        for item in openapi.paths.paths.values_mut() {
            let ops = [
                item.get.as_mut(),
                item.put.as_mut(),
                item.post.as_mut(),
                item.patch.as_mut(),
                item.delete.as_mut(),
            ];
            for op in ops.into_iter().flatten() {
                if let Some(roles) = roles_of(op) {
                    let line = format!("**Roles:** {}.", roles.join(", "));
                    op.description = Some(match op.description.take() {
                        Some(d) if !d.is_empty() => format!("{d}\n\n{line}"),
                        _ => line,
                    });
                    add_problem(op, "401", "Missing, expired or invalid token");
                    add_problem(op, "403", "The token's role may not call this operation");
                }
                let has_path_id = op.parameters.as_ref().is_some_and(|ps| {
                    ps.iter()
                        .any(|p| matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Path))
                });
                let has_query = op.parameters.as_ref().is_some_and(|ps| {
                    ps.iter()
                        .any(|p| matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Query))
                });
                if has_path_id {
                    add_problem(op, "404", "No such resource in the caller's organisation");
                }
                if op.request_body.is_some() {
                    add_problem(
                        op,
                        "409",
                        "Conflicts with the current state, or with a concurrent request; retry",
                    );
                    add_problem(op, "400", "Malformed JSON or a field of the wrong type");
                    add_problem(op, "413", "The body is too large");
                    add_problem(op, "415", "The body is not JSON");
                    add_problem(op, "422", "A field is not valid; `errors` lists each one");
                }
                if has_query {
                    add_problem(op, "400", "A query parameter of the wrong type");
                    add_problem(op, "422", "A query parameter is not valid");
                }
                add_problem(op, "500", "Unexpected error, logged with the request id");
                add_problem(op, "503", "The database is busy or unreachable; retry");
            }
        }
    }
}
