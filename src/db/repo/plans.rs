//! Payment plans, their covered invoices and their instalments.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use crate::db::schema::{action_instalments, actions, invoices, payment_plans, plan_instalments, plan_invoices};
use crate::db::{DbConnection, now};
use crate::dispatch;
use crate::error::AppError;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = payment_plans)]
pub struct PlanRow {
    pub id: i64,
    pub org_id: i64,
    pub customer_id: i64,
    pub currency: String,
    pub total_minor: i64,
    pub frequency: Option<String>,
    pub grace_days: i32,
    pub created_on: NaiveDate,
    pub status: String,
    pub paid_minor: i64,
    pub defaulted_on: Option<NaiveDate>,
    pub cancel_reason: Option<String>,
    pub created_by: String,
    pub evaluated_at: Option<NaiveDateTime>,
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = plan_instalments)]
pub struct InstalmentRow {
    pub id: i64,
    pub plan_id: i64,
    pub seq: i32,
    pub due_date: NaiveDate,
    pub amount_minor: i64,
    pub paid_minor: i64,
    pub status: String,
    /// The day the collection run reminded the instalment as overdue (once).
    pub reminded_on: Option<NaiveDate>,
}

pub struct NewPlan<'a> {
    pub org_id: i64,
    pub customer_id: i64,
    pub currency: &'a str,
    pub frequency: Option<&'a str>,
    pub grace_days: i32,
    pub created_on: NaiveDate,
    pub created_by: &'a str,
    pub invoice_ids: &'a [i64],
    pub instalments: &'a [(NaiveDate, i64)],
}

pub fn insert(c: &mut DbConnection, p: &NewPlan<'_>) -> Result<i64, AppError> {
    let at = now();
    let total: i64 = p.instalments.iter().map(|(_, a)| a).sum();
    let id: i64 = dispatch!(c, |c| diesel::insert_into(payment_plans::table)
        .values((
            payment_plans::org_id.eq(p.org_id),
            payment_plans::customer_id.eq(p.customer_id),
            payment_plans::currency.eq(p.currency),
            payment_plans::total_minor.eq(total),
            payment_plans::frequency.eq(p.frequency),
            payment_plans::grace_days.eq(p.grace_days),
            payment_plans::created_on.eq(p.created_on),
            payment_plans::status.eq("active"),
            payment_plans::paid_minor.eq(0_i64),
            payment_plans::created_by.eq(p.created_by),
            payment_plans::version.eq(1_i64),
            payment_plans::created_at.eq(at),
            payment_plans::updated_at.eq(at),
        ))
        .returning(payment_plans::id)
        .get_result(c))?;
    let links: Vec<_> = p
        .invoice_ids
        .iter()
        .map(|i| (plan_invoices::plan_id.eq(id), plan_invoices::invoice_id.eq(*i)))
        .collect();
    dispatch!(c, |c| diesel::insert_into(plan_invoices::table)
        .values(&links)
        .execute(c))?;
    let rows: Vec<_> = p
        .instalments
        .iter()
        .enumerate()
        .map(|(n, (due, amount))| {
            (
                plan_instalments::plan_id.eq(id),
                plan_instalments::seq.eq(i32::try_from(n + 1).unwrap_or(i32::MAX)),
                plan_instalments::due_date.eq(*due),
                plan_instalments::amount_minor.eq(*amount),
                plan_instalments::paid_minor.eq(0_i64),
                plan_instalments::status.eq("pending"),
            )
        })
        .collect();
    dispatch!(c, |c| diesel::insert_into(plan_instalments::table)
        .values(&rows)
        .execute(c))?;
    Ok(id)
}

pub fn find(c: &mut DbConnection, org_id: i64, id: i64) -> Result<PlanRow, AppError> {
    payment_plans::table
        .filter(payment_plans::org_id.eq(org_id))
        .filter(payment_plans::id.eq(id))
        .select(PlanRow::as_select())
        .first(c)
        .optional()?
        .ok_or_else(|| AppError::not_found("payment plan"))
}

pub fn instalments(c: &mut DbConnection, plan_ids: &[i64]) -> Result<Vec<InstalmentRow>, AppError> {
    let mut out = Vec::new();
    for chunk in plan_ids.chunks(1000) {
        out.extend(
            plan_instalments::table
                .filter(plan_instalments::plan_id.eq_any(chunk))
                .select(InstalmentRow::as_select())
                .order((plan_instalments::plan_id.asc(), plan_instalments::seq.asc()))
                .load(c)?,
        );
    }
    Ok(out)
}

pub fn links(c: &mut DbConnection, plan_ids: &[i64]) -> Result<Vec<(i64, i64)>, AppError> {
    let mut out = Vec::new();
    for chunk in plan_ids.chunks(1000) {
        out.extend(
            plan_invoices::table
                .filter(plan_invoices::plan_id.eq_any(chunk))
                .select((plan_invoices::plan_id, plan_invoices::invoice_id))
                .load::<(i64, i64)>(c)?,
        );
    }
    Ok(out)
}

/// Active plans, of the whole organisation or of some customers.
pub fn active(c: &mut DbConnection, org_id: i64, customers: Option<&[i64]>) -> Result<Vec<PlanRow>, AppError> {
    let base = || {
        payment_plans::table
            .filter(payment_plans::org_id.eq(org_id))
            .filter(payment_plans::status.eq("active"))
            .select(PlanRow::as_select())
            .order(payment_plans::id.asc())
    };
    match customers {
        None => Ok(base().load(c)?),
        Some(ids) => {
            let mut out = Vec::new();
            for chunk in ids.chunks(1000) {
                out.extend(base().filter(payment_plans::customer_id.eq_any(chunk)).load(c)?);
            }
            Ok(out)
        }
    }
}

/// Invoice ids among `invoice_ids` that are in an active plan.
pub fn invoices_in_active_plans(c: &mut DbConnection, invoice_ids: &[i64]) -> Result<Vec<i64>, AppError> {
    let mut out = Vec::new();
    for chunk in invoice_ids.chunks(1000) {
        out.extend(
            plan_invoices::table
                .inner_join(payment_plans::table)
                .filter(plan_invoices::invoice_id.eq_any(chunk))
                .filter(payment_plans::status.eq("active"))
                .select(plan_invoices::invoice_id)
                .load::<i64>(c)?,
        );
    }
    Ok(out)
}

pub fn set_instalment(c: &mut DbConnection, id: i64, paid: i64, status: &str) -> Result<(), AppError> {
    diesel::update(plan_instalments::table.find(id))
        .set((
            plan_instalments::paid_minor.eq(paid),
            plan_instalments::status.eq(status),
        ))
        .execute(c)?;
    Ok(())
}

pub fn set_status(
    c: &mut DbConnection,
    id: i64,
    status: &str,
    paid: i64,
    defaulted_on: Option<NaiveDate>,
    cancel_reason: Option<&str>,
) -> Result<(), AppError> {
    let at = now();
    diesel::update(payment_plans::table.find(id))
        .set((
            payment_plans::status.eq(status),
            payment_plans::paid_minor.eq(paid),
            payment_plans::defaulted_on.eq(defaulted_on),
            payment_plans::cancel_reason.eq(cancel_reason),
            payment_plans::evaluated_at.eq(at),
            payment_plans::version.eq(payment_plans::version + 1),
            payment_plans::updated_at.eq(at),
        ))
        .execute(c)?;
    Ok(())
}

#[derive(Debug, Default, Clone)]
pub struct PlanFilter {
    pub customer_id: Option<i64>,
    pub status: Option<String>,
    pub updated_since: Option<NaiveDateTime>,
}

pub fn list(
    c: &mut DbConnection,
    org_id: i64,
    f: &PlanFilter,
    after_id: i64,
    limit: i64,
) -> Result<Vec<PlanRow>, AppError> {
    let mut q = payment_plans::table
        .filter(payment_plans::org_id.eq(org_id))
        .filter(payment_plans::id.gt(after_id))
        .select(PlanRow::as_select())
        .order(payment_plans::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(v) = f.customer_id {
        q = q.filter(payment_plans::customer_id.eq(v));
    }
    if let Some(v) = &f.status {
        q = q.filter(payment_plans::status.eq(v.clone()));
    }
    if let Some(t) = f.updated_since {
        q = q.filter(payment_plans::updated_at.ge(t));
    }
    Ok(q.load(c)?)
}

/// Records that instalments were reminded on a date (one statement per 1 000).
pub fn mark_reminded(c: &mut DbConnection, instalment_ids: &[i64], on: NaiveDate) -> Result<(), AppError> {
    for chunk in instalment_ids.chunks(1000) {
        diesel::update(plan_instalments::table.filter(plan_instalments::id.eq_any(chunk)))
            .set(plan_instalments::reminded_on.eq(on))
            .execute(c)?;
    }
    Ok(())
}

/// Links reminder actions to the instalments they chase.
pub fn link_actions(c: &mut DbConnection, rows: &[(i64, i64)]) -> Result<(), AppError> {
    for chunk in rows.chunks(1000) {
        let values: Vec<_> = chunk
            .iter()
            .map(|(a, i)| {
                (
                    action_instalments::action_id.eq(*a),
                    action_instalments::instalment_id.eq(*i),
                )
            })
            .collect();
        dispatch!(c, |c| diesel::insert_into(action_instalments::table)
            .values(&values)
            .execute(c))?;
    }
    Ok(())
}

/// Reminders not yet delivered or done that chase any of these instalments, with every
/// instalment each of them chases: `(action, instalment)`.
pub fn pending_reminders(c: &mut DbConnection, instalment_ids: &[i64]) -> Result<Vec<(i64, i64)>, AppError> {
    let mut action_ids = Vec::new();
    for chunk in instalment_ids.chunks(1000) {
        action_ids.extend(
            action_instalments::table
                .inner_join(actions::table)
                .filter(action_instalments::instalment_id.eq_any(chunk))
                .filter(actions::status.eq_any(["planned", "queued", "awaiting_approval"]))
                .select(action_instalments::action_id)
                .distinct()
                .load::<i64>(c)?,
        );
    }
    action_ids.sort_unstable();
    action_ids.dedup();
    let mut out = Vec::new();
    for chunk in action_ids.chunks(1000) {
        out.extend(
            action_instalments::table
                .filter(action_instalments::action_id.eq_any(chunk))
                .select((action_instalments::action_id, action_instalments::instalment_id))
                .load::<(i64, i64)>(c)?,
        );
    }
    Ok(out)
}

/// Invoice numbers by id.
pub fn invoice_numbers(c: &mut DbConnection, invoice_ids: &[i64]) -> Result<Vec<(i64, String)>, AppError> {
    let mut out = Vec::new();
    for chunk in invoice_ids.chunks(1000) {
        out.extend(
            invoices::table
                .filter(invoices::id.eq_any(chunk))
                .select((invoices::id, invoices::number))
                .order(invoices::id.asc())
                .load::<(i64, String)>(c)?,
        );
    }
    Ok(out)
}
