//! The analytics reports: `/v1/reports/receivables` (aging, DSO, CEI),
//! `/v1/reports/collection-effectiveness` (P10) and `/v1/reports/promises` (P3). The
//! dispute root-cause report lives with the disputes.

use actix_web::{HttpResponse, web};
use chrono::NaiveDate;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Auth;
use crate::auth::roles::READERS;
use crate::db;
use crate::error::AppError;
use crate::http::{Routes, parse_date};
use crate::service::analytics::{self, EffectivenessReport, MAX_PERIOD_DAYS, PromiseReport, ReceivablesReport};
use crate::state::AppState;

pub fn routes(routes: &mut Routes) {
    routes.at("/reports/receivables", |r| r.route(web::get().to(receivables)));
    routes.at("/reports/collection-effectiveness", |r| {
        r.route(web::get().to(effectiveness))
    });
    routes.at("/reports/promises", |r| r.route(web::get().to(promises)));
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PromisePeriodQuery {
    /// First promised date of the period (YYYY-MM-DD); default 89 days before `to`.
    pub from: Option<String>,
    /// Last promised date of the period (YYYY-MM-DD), today or later for promises still
    /// open; default today.
    pub to: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PeriodQuery {
    /// First day of the period (YYYY-MM-DD); default 89 days before `to`.
    pub from: Option<String>,
    /// Last day of the period (YYYY-MM-DD), not after today; default today.
    pub to: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EffectivenessQuery {
    /// First day of the period in which actions were performed; default 89 days before `to`.
    pub from: Option<String>,
    /// Last day of that period, not after today; default today.
    pub to: Option<String>,
    /// Days after an action in which money applied to its invoices is credited to it,
    /// 0–90; default 14.
    #[param(minimum = 0, maximum = 90)]
    pub within_days: Option<u32>,
}

/// Whether a report's period may end after today.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ends {
    ByToday,
    AnyDay,
}

/// The period of a report: `[from, to]`, at most `MAX_PERIOD_DAYS` long.
fn period(
    from: Option<&str>,
    to: Option<&str>,
    today: NaiveDate,
    ends: Ends,
) -> Result<(NaiveDate, NaiveDate), AppError> {
    let to = parse_date("to", to)?.unwrap_or(today);
    if ends == Ends::ByToday && to > today {
        return Err(AppError::invalid("to", "must not be after today"));
    }
    let from = parse_date("from", from)?.unwrap_or(to - chrono::Days::new(89));
    if from > to {
        return Err(AppError::invalid("from", "must not be after `to`"));
    }
    if (to - from).num_days() + 1 > MAX_PERIOD_DAYS {
        return Err(AppError::invalid(
            "from",
            format!("the period is at most {MAX_PERIOD_DAYS} days"),
        ));
    }
    Ok((from, to))
}

/// Receivables over a period, per currency: opening and closing balances (rebuilt from the
/// ledger's value dates), sales, collections, write-offs, the closing aging, DSO, best
/// possible DSO, average days delinquent and the collection effectiveness index. Reads every
/// invoice that may have been open at either end of the period, a page at a time.
#[utoipa::path(get, path = "/v1/reports/receivables", tag = "reports", params(PeriodQuery),
    responses((status = 200, description = "The report", body = ReceivablesReport)),
    security(("bearer" = ["admin", "manager", "collector", "sales", "integration", "viewer"])))]
pub async fn receivables(
    auth: Auth,
    state: web::Data<AppState>,
    query: web::Query<PeriodQuery>,
) -> Result<HttpResponse, AppError> {
    auth.require(READERS)?;
    let (from, to) = period(query.from.as_deref(), query.to.as_deref(), state.today(), Ends::ByToday)?;
    let org = auth.org_id;
    let report = db::run(&state.pool, move |c| analytics::receivables(c, org, from, to)).await?;
    Ok(HttpResponse::Ok().json(report))
}

/// Collection effectiveness (P10): the actions performed in a period (e-mails sent, calls
/// and letters done) and the money applied to their invoices from the action's day to
/// `within_days` after it, per collector, strategy step and channel. A payment that
/// follows two actions on one invoice is credited to both.
#[utoipa::path(get, path = "/v1/reports/collection-effectiveness", tag = "reports", params(EffectivenessQuery),
    responses((status = 200, description = "The report", body = EffectivenessReport)),
    security(("bearer" = ["admin", "manager", "collector", "sales", "integration", "viewer"])))]
pub async fn effectiveness(
    auth: Auth,
    state: web::Data<AppState>,
    query: web::Query<EffectivenessQuery>,
) -> Result<HttpResponse, AppError> {
    auth.require(READERS)?;
    let (from, to) = period(query.from.as_deref(), query.to.as_deref(), state.today(), Ends::ByToday)?;
    let within_days = query.within_days.unwrap_or(14);
    if within_days > 90 {
        return Err(AppError::invalid("within_days", "must be 0–90"));
    }
    let org = auth.org_id;
    let report = db::run(&state.pool, move |c| {
        analytics::effectiveness(c, org, from, to, within_days)
    })
    .await?;
    Ok(HttpResponse::Ok().json(report))
}

/// Promises to pay that fell due in a period (P3), cancelled ones left out: how many were
/// kept, partly kept, broken or are still open, the kept rate and the amounts promised and
/// paid, in total and per collector who took them.
#[utoipa::path(get, path = "/v1/reports/promises", tag = "reports", params(PromisePeriodQuery),
    responses((status = 200, description = "The report", body = PromiseReport)),
    security(("bearer" = ["admin", "manager", "collector", "sales", "integration", "viewer"])))]
pub async fn promises(
    auth: Auth,
    state: web::Data<AppState>,
    query: web::Query<PromisePeriodQuery>,
) -> Result<HttpResponse, AppError> {
    auth.require(READERS)?;
    let (from, to) = period(query.from.as_deref(), query.to.as_deref(), state.today(), Ends::AnyDay)?;
    let org = auth.org_id;
    let report = db::run(&state.pool, move |c| analytics::promises(c, org, from, to)).await?;
    Ok(HttpResponse::Ok().json(report))
}
