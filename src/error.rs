//! The one application error type and its single mapping to RFC 9457 problem+json.
//! Domain validation errors, storage errors and auth failures all convert into `AppError`;
//! nothing else in the code builds an HTTP error response.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"field": "amount", "message": "has more than 2 decimal places for its currency"}))]
pub struct FieldError {
    /// JSON path of the field, e.g. `contacts[0].email` or `items[3].amount`.
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// RFC 9457 problem details, as every error response of this API is shaped.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "type": "urn:recaudo:problem:validation",
    "title": "The request is not valid",
    "status": 422,
    "detail": "1 field is not valid",
    "errors": [{"field": "currency", "message": "is not a supported ISO 4217 currency"}]
}))]
pub struct Problem {
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Present on validation problems: every invalid field with its message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("method not allowed: {0}")]
    MethodNotAllowed(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("precondition failed: {0}")]
    PreconditionFailed(String),
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    #[error("payload too large: {0}")]
    PayloadTooLarge(String),
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// PostgreSQL aborted the transaction to resolve a deadlock or a serialization
    /// conflict: nothing of it was written and it can run again (`db::write_transaction`
    /// does, a few times, before answering 503).
    #[error("concurrent update: {0}")]
    Contention(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    pub fn internal(message: impl Into<String>) -> AppError {
        AppError::Internal(message.into())
    }

    pub fn not_found(what: &str) -> AppError {
        AppError::NotFound(format!("{what} not found"))
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> AppError {
        AppError::Validation(vec![FieldError::new(field, message)])
    }

    pub fn from_pool(err: diesel::r2d2::PoolError) -> AppError {
        AppError::Unavailable(format!("no database connection available: {err}"))
    }

    fn slug_and_title(&self) -> (&'static str, &'static str) {
        match self {
            AppError::BadRequest(_) => ("bad-request", "The request could not be read"),
            AppError::Unauthorized(_) => ("unauthorized", "Authentication is required"),
            AppError::Forbidden(_) => ("forbidden", "Your role does not allow this"),
            AppError::NotFound(_) => ("not-found", "Not found"),
            AppError::MethodNotAllowed(_) => ("method-not-allowed", "Method not allowed"),
            AppError::Conflict(_) => ("conflict", "The request conflicts with the current state"),
            AppError::PreconditionFailed(_) => ("precondition-failed", "The resource has changed"),
            AppError::UnsupportedMediaType(_) => ("unsupported-media-type", "Unsupported content type"),
            AppError::PayloadTooLarge(_) => ("payload-too-large", "The request body is too large"),
            AppError::Validation(_) => ("validation", "The request is not valid"),
            AppError::Unavailable(_) | AppError::Contention(_) => {
                ("unavailable", "The service is temporarily unavailable")
            }
            AppError::Internal(_) => ("internal", "Internal server error"),
        }
    }

    /// The problem document sent to the client; internal details never leave the server.
    pub fn problem(&self) -> Problem {
        let (slug, title) = self.slug_and_title();
        let (detail, errors) = match self {
            AppError::Validation(errors) => {
                let n = errors.len();
                let detail = if n == 1 {
                    format!("`{}` {}", errors[0].field, errors[0].message)
                } else {
                    format!("{n} fields are not valid")
                };
                (detail, Some(errors.clone()))
            }
            AppError::Internal(_) => (
                "An unexpected error occurred; it has been logged with this request's id.".to_string(),
                None,
            ),
            AppError::Unavailable(_) | AppError::Contention(_) => {
                ("The database is busy or unreachable; retry shortly.".to_string(), None)
            }
            AppError::BadRequest(m)
            | AppError::Unauthorized(m)
            | AppError::Forbidden(m)
            | AppError::NotFound(m)
            | AppError::MethodNotAllowed(m)
            | AppError::Conflict(m)
            | AppError::PreconditionFailed(m)
            | AppError::UnsupportedMediaType(m)
            | AppError::PayloadTooLarge(m) => (m.clone(), None),
        };
        Problem {
            problem_type: format!("urn:recaudo:problem:{slug}"),
            title: title.to_string(),
            status: self.status_code().as_u16(),
            detail,
            errors,
        }
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Unavailable(_) | AppError::Contention(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            AppError::Internal(message) => tracing::error!(error = %message, "internal error"),
            AppError::Unavailable(message) | AppError::Contention(message) => {
                tracing::warn!(error = %message, "unavailable")
            }
            _ => {}
        }
        let mut response = HttpResponse::build(self.status_code());
        response.content_type("application/problem+json");
        match self {
            AppError::Unauthorized(message) => {
                let challenge = format!(
                    "Bearer realm=\"recaudo\", error=\"invalid_token\", error_description=\"{}\"",
                    message.replace('"', "'")
                );
                if let Ok(value) = HeaderValue::from_str(&challenge) {
                    response.insert_header((header::WWW_AUTHENTICATE, value));
                } else {
                    response.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"recaudo\""));
                }
            }
            AppError::Unavailable(_) | AppError::Contention(_) => {
                response.insert_header((header::RETRY_AFTER, "1"));
            }
            _ => {}
        }
        response.json(self.problem())
    }
}

/// Whether PostgreSQL aborted the transaction to break a deadlock or for a serialization
/// failure (then nothing of it was written).
pub fn lost_a_race(err: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match err {
        Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => true,
        Error::DatabaseError(_, info) => info.message().contains("deadlock detected"),
        _ => false,
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(err: diesel::result::Error) -> AppError {
        use diesel::result::{DatabaseErrorKind, Error};
        match err {
            ref e if lost_a_race(e) => AppError::Contention(e.to_string()),
            Error::NotFound => AppError::NotFound("resource not found".into()),
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => AppError::Conflict(format!(
                "a resource with the same key already exists ({})",
                info.message()
            )),
            Error::DatabaseError(DatabaseErrorKind::CheckViolation, info) => AppError::Conflict(format!(
                "the change would break a balance invariant and was not applied ({})",
                info.message()
            )),
            // PostgreSQL refuses text with a NUL byte (SQLite stores it): the client sent it.
            Error::DatabaseError(_, info) if info.message().contains("invalid byte sequence") => {
                AppError::BadRequest("text values must not contain NUL (0x00) characters".into())
            }
            Error::DatabaseError(_, info) if info.message().contains("CHECK constraint failed") => {
                AppError::Conflict(format!(
                    "the change would break a balance invariant and was not applied ({})",
                    info.message()
                ))
            }
            Error::DatabaseError(_, info) if info.message().contains("database is locked") => {
                AppError::Unavailable("database is locked".into())
            }
            other => AppError::Internal(format!("database error: {other}")),
        }
    }
}

/// Collects field errors while a request is validated, so that one response lists all of them.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldError>);

impl Violations {
    pub fn new() -> Violations {
        Violations(Vec::new())
    }

    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }

    pub fn extend_prefixed(&mut self, prefix: &str, errors: Vec<FieldError>) {
        for e in errors {
            self.0.push(FieldError::new(format!("{prefix}{}", e.field), e.message));
        }
    }

    /// `Ok(())` when nothing was collected, else the violations themselves.
    pub fn finish(self) -> Result<(), Vec<FieldError>> {
        if self.0.is_empty() { Ok(()) } else { Err(self.0) }
    }

    pub fn into_errors(self) -> Vec<FieldError> {
        self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(value)` when nothing was collected, else a 422 with every violation.
    pub fn into_result<T>(self, value: T) -> Result<T, AppError> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(AppError::Validation(self.0))
        }
    }

    /// Keeps a parsed value when valid, records the error under `field` otherwise.
    pub fn check<T, E: std::fmt::Display>(&mut self, field: &str, result: Result<T, E>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.add(field, e.to_string());
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use diesel::result::{DatabaseErrorKind, Error};

    use super::*;

    fn database_error(kind: DatabaseErrorKind, message: &str) -> Error {
        Error::DatabaseError(kind, Box::new(message.to_string()))
    }

    #[test]
    fn only_deadlocks_and_serialization_failures_are_lost_races() {
        let deadlock = database_error(DatabaseErrorKind::Unknown, "deadlock detected");
        let serialization = database_error(
            DatabaseErrorKind::SerializationFailure,
            "could not serialize access due to concurrent update",
        );
        let check = database_error(DatabaseErrorKind::CheckViolation, "violates check constraint");
        assert!(lost_a_race(&deadlock) && lost_a_race(&serialization));
        assert!(!lost_a_race(&check) && !lost_a_race(&Error::NotFound));
        assert!(matches!(AppError::from(deadlock), AppError::Contention(_)));
        assert!(matches!(AppError::from(check), AppError::Conflict(_)));
        assert_eq!(
            AppError::Contention("x".into()).status_code(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}
