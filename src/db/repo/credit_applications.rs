//! Credit applications: rows, insert, versioned update, status changes and lists.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use crate::db::schema::credit_applications;
use crate::db::{DbConnection, now};
use crate::dispatch;
use crate::error::AppError;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = credit_applications)]
pub struct ApplicationRow {
    pub id: i64,
    pub org_id: i64,
    pub customer_id: Option<i64>,
    pub status: String,
    pub legal_name: Option<String>,
    pub tax_id: Option<String>,
    pub country: Option<String>,
    pub address: Option<String>,
    pub years_in_business: Option<i32>,
    pub company_size: Option<String>,
    pub currency: String,
    pub requested_limit_minor: Option<i64>,
    pub requested_terms_days: Option<i32>,
    pub trade_references: String,
    pub bank_references: String,
    pub financials: Option<String>,
    pub attachments: String,
    pub notes: Option<String>,
    pub score: Option<i32>,
    pub risk_class: Option<String>,
    pub recommended_limit_minor: Option<i64>,
    pub recommended_terms_days: Option<i32>,
    pub scorecard: Option<String>,
    pub submitted_at: Option<NaiveDateTime>,
    pub decision: Option<String>,
    pub next_review_on: Option<NaiveDate>,
    pub created_by: String,
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// The applicant's data (what create and patch write).
#[derive(Debug, Clone, PartialEq, Eq, Insertable, AsChangeset)]
#[diesel(table_name = credit_applications, treat_none_as_null = true, treat_none_as_default_value = false)]
pub struct ApplicationValues {
    pub customer_id: Option<i64>,
    pub legal_name: Option<String>,
    pub tax_id: Option<String>,
    pub country: Option<String>,
    pub address: Option<String>,
    pub years_in_business: Option<i32>,
    pub company_size: Option<String>,
    pub currency: String,
    pub requested_limit_minor: Option<i64>,
    pub requested_terms_days: Option<i32>,
    pub trade_references: String,
    pub bank_references: String,
    pub financials: Option<String>,
    pub attachments: String,
    pub notes: Option<String>,
}

/// The score written at submission.
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = credit_applications, treat_none_as_null = true)]
pub struct ScoreValues {
    pub score: Option<i32>,
    pub risk_class: Option<String>,
    pub recommended_limit_minor: Option<i64>,
    pub recommended_terms_days: Option<i32>,
    pub scorecard: Option<String>,
}

pub fn insert(c: &mut DbConnection, org_id: i64, actor: &str, v: &ApplicationValues) -> Result<i64, AppError> {
    let at = now();
    let id: i64 = dispatch!(c, |c| diesel::insert_into(credit_applications::table)
        .values((
            v,
            credit_applications::org_id.eq(org_id),
            credit_applications::status.eq("draft"),
            credit_applications::created_by.eq(actor),
            credit_applications::version.eq(1_i64),
            credit_applications::created_at.eq(at),
            credit_applications::updated_at.eq(at),
        ))
        .returning(credit_applications::id)
        .get_result(c))?;
    Ok(id)
}

pub fn find(c: &mut DbConnection, org_id: i64, id: i64) -> Result<ApplicationRow, AppError> {
    credit_applications::table
        .filter(credit_applications::org_id.eq(org_id))
        .filter(credit_applications::id.eq(id))
        .select(ApplicationRow::as_select())
        .first(c)
        .optional()?
        .ok_or_else(|| AppError::not_found("credit application"))
}

/// Replaces the applicant's data if the version is still `expected`.
pub fn update(
    c: &mut DbConnection,
    org_id: i64,
    id: i64,
    expected: i64,
    v: &ApplicationValues,
) -> Result<bool, AppError> {
    let n = diesel::update(
        credit_applications::table
            .filter(credit_applications::org_id.eq(org_id))
            .filter(credit_applications::id.eq(id))
            .filter(credit_applications::version.eq(expected)),
    )
    .set((
        v,
        credit_applications::version.eq(expected + 1),
        credit_applications::updated_at.eq(now()),
    ))
    .execute(c)?;
    Ok(n == 1)
}

/// Moves an application from `from` to `status` (and writes the score, when given);
/// `false` when it was not in `from` any more.
pub fn transition(
    c: &mut DbConnection,
    org_id: i64,
    id: i64,
    expected: i64,
    status: &str,
    score: Option<&ScoreValues>,
    submitted_at: Option<NaiveDateTime>,
) -> Result<bool, AppError> {
    let target = credit_applications::table
        .filter(credit_applications::org_id.eq(org_id))
        .filter(credit_applications::id.eq(id))
        .filter(credit_applications::version.eq(expected));
    let common = (
        credit_applications::status.eq(status),
        credit_applications::version.eq(expected + 1),
        credit_applications::updated_at.eq(now()),
    );
    let n = match (score, submitted_at) {
        (Some(s), Some(at)) => diesel::update(target)
            .set((s, credit_applications::submitted_at.eq(at), common))
            .execute(c)?,
        (Some(s), None) => diesel::update(target).set((s, common)).execute(c)?,
        (None, _) => diesel::update(target).set(common).execute(c)?,
    };
    Ok(n == 1)
}

/// Records a decision.
pub fn decide(
    c: &mut DbConnection,
    id: i64,
    expected: i64,
    status: &str,
    customer_id: Option<i64>,
    decision: &str,
    next_review_on: Option<NaiveDate>,
) -> Result<bool, AppError> {
    let n = diesel::update(
        credit_applications::table
            .filter(credit_applications::id.eq(id))
            .filter(credit_applications::version.eq(expected)),
    )
    .set((
        credit_applications::status.eq(status),
        credit_applications::customer_id.eq(customer_id),
        credit_applications::decision.eq(decision),
        credit_applications::next_review_on.eq(next_review_on),
        credit_applications::version.eq(expected + 1),
        credit_applications::updated_at.eq(now()),
    ))
    .execute(c)?;
    Ok(n == 1)
}

#[derive(Debug, Default, Clone)]
pub struct ApplicationFilter {
    pub status: Option<String>,
    pub customer_id: Option<i64>,
    pub updated_since: Option<NaiveDateTime>,
    /// Applications whose next review is due on or before this date.
    pub review_due_by: Option<NaiveDate>,
}

pub fn list(
    c: &mut DbConnection,
    org_id: i64,
    f: &ApplicationFilter,
    after_id: i64,
    limit: i64,
) -> Result<Vec<ApplicationRow>, AppError> {
    let mut q = credit_applications::table
        .filter(credit_applications::org_id.eq(org_id))
        .filter(credit_applications::id.gt(after_id))
        .select(ApplicationRow::as_select())
        .order(credit_applications::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(s) = &f.status {
        q = q.filter(credit_applications::status.eq(s.clone()));
    }
    if let Some(id) = f.customer_id {
        q = q.filter(credit_applications::customer_id.eq(id));
    }
    if let Some(t) = f.updated_since {
        q = q.filter(credit_applications::updated_at.ge(t));
    }
    if let Some(d) = f.review_due_by {
        q = q.filter(credit_applications::next_review_on.le(d));
    }
    Ok(q.load(c)?)
}
