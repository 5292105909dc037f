//! Disputes, their comments, and the disputed amount kept on each invoice.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use crate::db::schema::{dispute_comments, disputes};
use crate::db::{DbConnection, now};
use crate::dispatch;
use crate::error::AppError;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = disputes)]
pub struct DisputeRow {
    pub id: i64,
    pub org_id: i64,
    pub customer_id: i64,
    pub invoice_id: i64,
    pub amount_minor: i64,
    pub currency: String,
    pub reason: String,
    pub description: Option<String>,
    pub raised_via: Option<String>,
    pub raised_on: NaiveDate,
    pub owner_department: String,
    pub assignee: Option<String>,
    pub due_by: Option<NaiveDate>,
    pub status: String,
    pub resolution: Option<String>,
    pub resolved_on: Option<NaiveDate>,
    pub credit_note_id: Option<i64>,
    pub created_by: String,
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = dispute_comments)]
pub struct CommentRow {
    pub id: i64,
    pub dispute_id: i64,
    pub author: String,
    pub body: String,
    pub created_at: NaiveDateTime,
}

/// The fields a dispute is created with or edited to.
#[derive(Debug, Clone, Insertable, AsChangeset)]
#[diesel(table_name = disputes, treat_none_as_default_value = false, treat_none_as_null = true)]
pub struct DisputeValues {
    pub amount_minor: i64,
    pub reason: String,
    pub description: Option<String>,
    pub raised_via: Option<String>,
    pub owner_department: String,
    pub assignee: Option<String>,
    pub due_by: Option<NaiveDate>,
    pub status: String,
}

pub struct NewDispute<'a> {
    pub org_id: i64,
    pub customer_id: i64,
    pub invoice_id: i64,
    pub currency: &'a str,
    pub raised_on: NaiveDate,
    pub created_by: &'a str,
    pub values: DisputeValues,
}

pub fn insert(c: &mut DbConnection, d: &NewDispute<'_>) -> Result<i64, AppError> {
    let at = now();
    let id: i64 = dispatch!(c, |c| diesel::insert_into(disputes::table)
        .values((
            &d.values,
            disputes::org_id.eq(d.org_id),
            disputes::customer_id.eq(d.customer_id),
            disputes::invoice_id.eq(d.invoice_id),
            disputes::currency.eq(d.currency),
            disputes::raised_on.eq(d.raised_on),
            disputes::created_by.eq(d.created_by),
            disputes::version.eq(1_i64),
            disputes::created_at.eq(at),
            disputes::updated_at.eq(at),
        ))
        .returning(disputes::id)
        .get_result(c))?;
    Ok(id)
}

pub fn update(c: &mut DbConnection, id: i64, expected_version: i64, v: &DisputeValues) -> Result<bool, AppError> {
    let n = diesel::update(
        disputes::table
            .filter(disputes::id.eq(id))
            .filter(disputes::version.eq(expected_version)),
    )
    .set((
        v,
        disputes::version.eq(expected_version + 1),
        disputes::updated_at.eq(now()),
    ))
    .execute(c)?;
    Ok(n == 1)
}

pub fn resolve(
    c: &mut DbConnection,
    id: i64,
    status: &str,
    resolution: Option<&str>,
    resolved_on: NaiveDate,
    credit_note_id: Option<i64>,
) -> Result<(), AppError> {
    diesel::update(disputes::table.find(id))
        .set((
            disputes::status.eq(status),
            disputes::resolution.eq(resolution),
            disputes::resolved_on.eq(resolved_on),
            disputes::credit_note_id.eq(credit_note_id),
            disputes::version.eq(disputes::version + 1),
            disputes::updated_at.eq(now()),
        ))
        .execute(c)?;
    Ok(())
}

pub fn find(c: &mut DbConnection, org_id: i64, id: i64) -> Result<DisputeRow, AppError> {
    disputes::table
        .filter(disputes::org_id.eq(org_id))
        .filter(disputes::id.eq(id))
        .select(DisputeRow::as_select())
        .first(c)
        .optional()?
        .ok_or_else(|| AppError::not_found("dispute"))
}

/// Total of the active disputes on an invoice, other than `except`.
pub fn active_total(c: &mut DbConnection, invoice_id: i64, except: Option<i64>) -> Result<i64, AppError> {
    let rows: Vec<(i64, i64)> = disputes::table
        .filter(disputes::invoice_id.eq(invoice_id))
        .filter(disputes::status.eq_any(["open", "under_review"]))
        .select((disputes::id, disputes::amount_minor))
        .load(c)?;
    Ok(rows.iter().filter(|(id, _)| Some(*id) != except).map(|(_, a)| a).sum())
}

/// Re-derives `invoices.disputed_minor` from the active disputes, set-based.
pub fn refresh_disputed(c: &mut DbConnection, invoice_ids: &[i64]) -> Result<(), AppError> {
    use diesel::connection::SimpleConnection;
    for chunk in invoice_ids.chunks(1000) {
        let ids = chunk.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        // Ids are integers read from the database: safe to inline.
        c.batch_execute(&format!(
            "UPDATE invoices SET disputed_minor = COALESCE((SELECT SUM(d.amount_minor) FROM disputes d
                 WHERE d.invoice_id = invoices.id AND d.status IN ('open', 'under_review')), 0)
             WHERE id IN ({ids});"
        ))?;
    }
    Ok(())
}

pub fn add_comment(c: &mut DbConnection, dispute_id: i64, author: &str, body: &str) -> Result<(), AppError> {
    diesel::insert_into(dispute_comments::table)
        .values((
            dispute_comments::dispute_id.eq(dispute_id),
            dispute_comments::author.eq(author),
            dispute_comments::body.eq(body),
            dispute_comments::created_at.eq(now()),
        ))
        .execute(c)?;
    Ok(())
}

pub fn comments(c: &mut DbConnection, dispute_ids: &[i64]) -> Result<Vec<CommentRow>, AppError> {
    Ok(dispute_comments::table
        .filter(dispute_comments::dispute_id.eq_any(dispute_ids))
        .select(CommentRow::as_select())
        .order(dispute_comments::id.asc())
        .load(c)?)
}

#[derive(Debug, Default, Clone)]
pub struct DisputeFilter {
    pub customer_id: Option<i64>,
    pub invoice_id: Option<i64>,
    pub status: Option<String>,
    pub reason: Option<String>,
    pub owner_department: Option<String>,
    pub assignee: Option<String>,
    pub updated_since: Option<NaiveDateTime>,
}

pub fn list(
    c: &mut DbConnection,
    org_id: i64,
    f: &DisputeFilter,
    after_id: i64,
    limit: i64,
) -> Result<Vec<DisputeRow>, AppError> {
    let mut q = disputes::table
        .filter(disputes::org_id.eq(org_id))
        .filter(disputes::id.gt(after_id))
        .select(DisputeRow::as_select())
        .order(disputes::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(v) = f.customer_id {
        q = q.filter(disputes::customer_id.eq(v));
    }
    if let Some(v) = f.invoice_id {
        q = q.filter(disputes::invoice_id.eq(v));
    }
    if let Some(v) = &f.status {
        q = q.filter(disputes::status.eq(v.clone()));
    }
    if let Some(v) = &f.reason {
        q = q.filter(disputes::reason.eq(v.clone()));
    }
    if let Some(v) = &f.owner_department {
        q = q.filter(disputes::owner_department.eq(v.clone()));
    }
    if let Some(v) = &f.assignee {
        q = q.filter(disputes::assignee.eq(v.clone()));
    }
    if let Some(t) = f.updated_since {
        q = q.filter(disputes::updated_at.ge(t));
    }
    Ok(q.load(c)?)
}

/// Disputes raised in a period (for the root-cause report).
pub fn raised_between(
    c: &mut DbConnection,
    org_id: i64,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<DisputeRow>, AppError> {
    Ok(disputes::table
        .filter(disputes::org_id.eq(org_id))
        .filter(disputes::raised_on.ge(from))
        .filter(disputes::raised_on.le(to))
        .select(DisputeRow::as_select())
        .order(disputes::id.asc())
        .load(c)?)
}
