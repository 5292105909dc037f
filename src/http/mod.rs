//! The HTTP surface: route table, extractor configuration (every malformed request becomes
//! a problem+json), pagination, and one module per resource.

pub mod api_clients;
pub mod collection;
pub mod credit;
pub mod customers;
pub mod disputes;
pub mod engine;
pub mod escalations;
pub mod events;
pub mod health;
pub mod invoices;
pub mod openapi;
pub mod payments;
pub mod promises;
pub mod reports;
pub mod settings;
pub mod token;
pub mod users;
pub mod worklist;

use actix_web::error::{JsonPayloadError, QueryPayloadError, UrlencodedError};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine as _;
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde::Deserialize;

use crate::error::AppError;

/// Largest accepted JSON body: a batch of 1 000 invoices fits with room to spare.
pub const MAX_JSON_BYTES: usize = 8 * 1024 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(json_config())
        .app_data(web::QueryConfig::default().error_handler(|err, _| query_error(err).into()))
        .app_data(web::PathConfig::default().error_handler(|err, _| AppError::NotFound(err.to_string()).into()))
        .app_data(
            web::FormConfig::default()
                .limit(64 * 1024)
                .error_handler(|err, _| form_error(err).into()),
        )
        .configure(health::configure)
        .configure(openapi::configure)
        .service(api_scope());
}

/// The `/v1` API: every module adds its resources to one table, served as one scope per
/// first path segment.
fn api_scope() -> actix_web::Scope {
    let mut routes = Routes::default();
    for add in [
        token::routes,
        api_clients::routes,
        customers::routes,
        invoices::routes,
        payments::routes,
        settings::routes,
        events::routes,
        promises::routes,
        disputes::routes,
        reports::routes,
        collection::routes,
        engine::routes,
        worklist::routes,
        credit::routes,
        escalations::routes,
        users::routes,
    ] {
        add(&mut routes);
    }
    routes.into_scope("/v1")
}

/// The route table of the API, grouped by first path segment.
///
/// actix-web tries a scope's resources in registration order, running the regular expression
/// of every `{param}` pattern until one matches; with all of the API under `/v1` a request for
/// a late resource (`/v1/credit-checks`) paid for some fifty expressions. Grouped, a request
/// compares a handful of static prefixes and then only its segment's patterns. The patterns
/// stay written in full (`/customers/{id}/credit`) in each module, so a grep finds them, and
/// `match_pattern` (the metrics label) still reports the full pattern.
#[derive(Default)]
pub struct Routes {
    groups: Vec<(String, Vec<actix_web::Resource>)>,
}

impl Routes {
    /// Registers `path` (`/segment` or `/segment/rest`) with the routes `build` adds; unknown
    /// methods answer 405 like every resource made by [`resource`].
    pub fn at(&mut self, path: &str, build: impl FnOnce(actix_web::Resource) -> actix_web::Resource) {
        let (segment, rest) = split_first_segment(path);
        let resource = build(resource(rest));
        match self.groups.iter_mut().find(|(s, _)| s == segment) {
            Some((_, resources)) => resources.push(resource),
            None => self.groups.push((segment.to_owned(), vec![resource])),
        }
    }

    fn into_scope(self, prefix: &str) -> actix_web::Scope {
        self.groups
            .into_iter()
            .fold(web::scope(prefix), |outer, (segment, resources)| {
                outer.service(
                    resources
                        .into_iter()
                        .fold(web::scope(&segment), |scope, r| scope.service(r)),
                )
            })
    }
}

/// `/customers/{id}/credit` → (`/customers`, `/{id}/credit`); `/customers` → (`/customers`, ``).
fn split_first_segment(path: &str) -> (&str, &str) {
    match path[1..].find('/') {
        Some(at) => path.split_at(at + 1),
        None => (path, ""),
    }
}

pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(MAX_JSON_BYTES)
        .error_handler(|err, _| json_error(err).into())
}

fn json_error(err: JsonPayloadError) -> AppError {
    match err {
        JsonPayloadError::ContentType => {
            AppError::UnsupportedMediaType("send the body with `Content-Type: application/json`".into())
        }
        JsonPayloadError::OverflowKnownLength { length, limit } => {
            AppError::PayloadTooLarge(format!("the body has {length} bytes; the limit is {limit}"))
        }
        JsonPayloadError::Overflow { limit } => AppError::PayloadTooLarge(format!("the body exceeds {limit} bytes")),
        JsonPayloadError::Deserialize(e) => AppError::BadRequest(format!("the JSON body is not valid: {e}")),
        other => AppError::BadRequest(format!("the body could not be read: {other}")),
    }
}

fn query_error(err: QueryPayloadError) -> AppError {
    AppError::BadRequest(format!("the query string is not valid: {err}"))
}

fn form_error(err: UrlencodedError) -> AppError {
    match err {
        UrlencodedError::ContentType => AppError::UnsupportedMediaType("send a form or JSON".into()),
        other => AppError::BadRequest(format!("the form body is not valid: {other}")),
    }
}

/// Unknown routes are a problem+json 404 like unknown ids.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, AppError> {
    Err(AppError::NotFound(format!(
        "no route for {} {}",
        req.method(),
        req.path()
    )))
}

/// A resource whose unsupported methods answer with a problem+json 405.
pub fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(|req: HttpRequest| async move {
        Err::<HttpResponse, AppError>(AppError::MethodNotAllowed(format!(
            "{} is not supported on {}",
            req.method(),
            req.path()
        )))
    }))
}

/// Stored instants are naive UTC; the API shows them as RFC 3339 with `Z`.
pub fn utc(at: NaiveDateTime) -> DateTime<Utc> {
    Utc.from_utc_datetime(&at)
}

/// Common list parameters.
#[derive(Debug, Clone, Deserialize)]
pub struct PageParams {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 500;

/// A validated page request: how many rows and after which key.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    pub limit: i64,
    pub after_id: i64,
}

impl PageRequest {
    pub fn parse(limit: Option<i64>, cursor: Option<&str>) -> Result<PageRequest, AppError> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(AppError::invalid("limit", format!("must be between 1 and {MAX_LIMIT}")));
        }
        let after_id = match cursor {
            None | Some("") => 0,
            Some(c) => {
                decode_cursor(c).ok_or_else(|| AppError::invalid("cursor", "is not a cursor this API issued"))?
            }
        };
        Ok(PageRequest { limit, after_id })
    }

    /// Rows are fetched with `limit + 1` to know whether another page exists.
    pub fn fetch_limit(&self) -> i64 {
        self.limit + 1
    }

    /// Trims the extra row and returns the cursor of the next page, if any.
    pub fn finish<T>(&self, mut rows: Vec<T>, key: impl Fn(&T) -> i64) -> (Vec<T>, Option<String>) {
        let more = rows.len() as i64 > self.limit;
        rows.truncate(self.limit as usize);
        let next = if more {
            rows.last().map(|r| encode_cursor(key(r)))
        } else {
            None
        };
        (rows, next)
    }
}

fn encode_cursor(after_id: i64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("after:{after_id}"))
}

fn decode_cursor(cursor: &str) -> Option<i64> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    text.strip_prefix("after:")?.parse::<i64>().ok().filter(|id| *id >= 0)
}

/// Parses an `updated_since` query value (RFC 3339).
pub fn parse_instant(field: &str, value: Option<&str>) -> Result<Option<NaiveDateTime>, AppError> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc).naive_utc())
                .map_err(|_| AppError::invalid(field, "must be an RFC 3339 instant, e.g. 2026-11-01T00:00:00Z"))
        })
        .transpose()
}

/// Parses a `YYYY-MM-DD` query value.
pub fn parse_date(field: &str, value: Option<&str>) -> Result<Option<chrono::NaiveDate>, AppError> {
    value
        .map(|v| {
            chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
                .map_err(|_| AppError::invalid(field, "must be a date YYYY-MM-DD"))
        })
        .transpose()
}

/// The `If-Match` header as a version, if present.
pub fn if_match(req: &HttpRequest) -> Result<Option<i64>, AppError> {
    let header = req
        .headers()
        .get(actix_web::http::header::IF_MATCH)
        .map(|v| {
            v.to_str()
                .map_err(|_| AppError::PreconditionFailed("If-Match is not readable".into()))
        })
        .transpose()?;
    crate::service::parse_if_match(header)
}

/// A response with the resource's version as its ETag.
pub fn with_etag(
    mut builder: actix_web::HttpResponseBuilder,
    version: i64,
    body: impl serde::Serialize,
) -> HttpResponse {
    builder
        .insert_header((actix_web::http::header::ETAG, format!("\"{version}\"")))
        .json(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_splits_after_its_first_segment() {
        assert_eq!(split_first_segment("/customers"), ("/customers", ""));
        assert_eq!(split_first_segment("/customers/{id}"), ("/customers", "/{id}"));
        assert_eq!(
            split_first_segment("/strategies/{id}/versions/{n}/publish"),
            ("/strategies", "/{id}/versions/{n}/publish")
        );
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let page = PageRequest::parse(Some(2), None).expect("valid");
        let (rows, next) = page.finish(vec![10_i64, 11, 12], |r| *r);
        assert_eq!(rows, vec![10, 11]);
        let next = next.expect("more rows");
        assert_eq!(PageRequest::parse(None, Some(&next)).expect("valid").after_id, 11);
        assert!(PageRequest::parse(None, Some("garbage!")).is_err());
        assert!(PageRequest::parse(Some(0), None).is_err());
        assert!(PageRequest::parse(Some(501), None).is_err());
        let (_, none) = page.finish(vec![1_i64], |r| *r);
        assert!(none.is_none());
    }
}
