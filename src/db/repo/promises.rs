//! Promises to pay and the invoices they cover.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use crate::db::schema::{allocations, payments, promise_invoices, promises};
use crate::db::{DbConnection, now};
use crate::dispatch;
use crate::error::AppError;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = promises)]
pub struct PromiseRow {
    pub id: i64,
    pub org_id: i64,
    pub customer_id: i64,
    pub amount_minor: i64,
    pub currency: String,
    pub promised_date: NaiveDate,
    pub created_on: NaiveDate,
    pub window_end: NaiveDate,
    pub channel: String,
    pub contact_name: Option<String>,
    pub taken_by: String,
    pub notes: Option<String>,
    pub status: String,
    pub paid_minor: i64,
    pub evaluated_at: Option<NaiveDateTime>,
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Insertable, AsChangeset)]
#[diesel(table_name = promises, treat_none_as_default_value = false, treat_none_as_null = true)]
pub struct PromiseValues {
    pub org_id: i64,
    pub customer_id: i64,
    pub amount_minor: i64,
    pub currency: String,
    pub promised_date: NaiveDate,
    pub created_on: NaiveDate,
    pub window_end: NaiveDate,
    pub channel: String,
    pub contact_name: Option<String>,
    pub taken_by: String,
    pub notes: Option<String>,
}

pub fn insert(c: &mut DbConnection, v: &PromiseValues, invoice_ids: &[i64]) -> Result<i64, AppError> {
    let at = now();
    let id: i64 = dispatch!(c, |c| diesel::insert_into(promises::table)
        .values((
            v,
            promises::status.eq("open"),
            promises::paid_minor.eq(0_i64),
            promises::version.eq(1_i64),
            promises::created_at.eq(at),
            promises::updated_at.eq(at),
        ))
        .returning(promises::id)
        .get_result(c))?;
    let links: Vec<_> = invoice_ids
        .iter()
        .map(|i| (promise_invoices::promise_id.eq(id), promise_invoices::invoice_id.eq(*i)))
        .collect();
    if !links.is_empty() {
        dispatch!(c, |c| diesel::insert_into(promise_invoices::table)
            .values(&links)
            .execute(c))?;
    }
    Ok(id)
}

/// Replaces the editable fields of an open promise.
pub fn update(c: &mut DbConnection, org_id: i64, id: i64, v: &PromiseValues) -> Result<(), AppError> {
    diesel::update(
        promises::table
            .filter(promises::org_id.eq(org_id))
            .filter(promises::id.eq(id)),
    )
    .set((
        v,
        promises::version.eq(promises::version + 1),
        promises::updated_at.eq(now()),
    ))
    .execute(c)?;
    Ok(())
}

pub fn set_status(c: &mut DbConnection, id: i64, status: &str, paid: i64) -> Result<(), AppError> {
    let at = now();
    diesel::update(promises::table.find(id))
        .set((
            promises::status.eq(status),
            promises::paid_minor.eq(paid),
            promises::evaluated_at.eq(at),
            promises::version.eq(promises::version + 1),
            promises::updated_at.eq(at),
        ))
        .execute(c)?;
    Ok(())
}

pub fn find(c: &mut DbConnection, org_id: i64, id: i64) -> Result<PromiseRow, AppError> {
    promises::table
        .filter(promises::org_id.eq(org_id))
        .filter(promises::id.eq(id))
        .select(PromiseRow::as_select())
        .first(c)
        .optional()?
        .ok_or_else(|| AppError::not_found("promise"))
}

/// (promise id, invoice id) links of these promises.
pub fn links(c: &mut DbConnection, promise_ids: &[i64]) -> Result<Vec<(i64, i64)>, AppError> {
    let mut out = Vec::new();
    for chunk in promise_ids.chunks(1000) {
        out.extend(
            promise_invoices::table
                .filter(promise_invoices::promise_id.eq_any(chunk))
                .select((promise_invoices::promise_id, promise_invoices::invoice_id))
                .load::<(i64, i64)>(c)?,
        );
    }
    Ok(out)
}

/// Open promises of the organisation, optionally only of some customers.
pub fn open_promises(
    c: &mut DbConnection,
    org_id: i64,
    customers: Option<&[i64]>,
) -> Result<Vec<PromiseRow>, AppError> {
    let base = || {
        promises::table
            .filter(promises::org_id.eq(org_id))
            .filter(promises::status.eq("open"))
            .select(PromiseRow::as_select())
            .order(promises::id.asc())
    };
    match customers {
        None => Ok(base().load(c)?),
        Some(ids) => {
            let mut out = Vec::new();
            for chunk in ids.chunks(1000) {
                out.extend(base().filter(promises::customer_id.eq_any(chunk)).load(c)?);
            }
            Ok(out)
        }
    }
}

/// Live payment allocations to these invoices with the payment's received date:
/// (invoice id, amount, received on).
pub fn payments_to_invoices(c: &mut DbConnection, invoice_ids: &[i64]) -> Result<Vec<(i64, i64, NaiveDate)>, AppError> {
    let mut out = Vec::new();
    for chunk in invoice_ids.chunks(1000) {
        out.extend(
            allocations::table
                .inner_join(payments::table)
                .filter(allocations::invoice_id.eq_any(chunk))
                .filter(allocations::released_at.is_null())
                .filter(payments::status.ne("reversed"))
                .select((
                    allocations::invoice_id,
                    allocations::amount_minor,
                    payments::received_on,
                ))
                .load::<(i64, i64, NaiveDate)>(c)?,
        );
    }
    Ok(out)
}

/// Non-reversed payments of these customers received on or after `since`:
/// (customer id, currency, amount, received on).
pub fn payments_of_customers(
    c: &mut DbConnection,
    customer_ids: &[i64],
    since: NaiveDate,
) -> Result<Vec<(i64, String, i64, NaiveDate)>, AppError> {
    let mut out = Vec::new();
    for chunk in customer_ids.chunks(1000) {
        out.extend(
            payments::table
                .filter(payments::customer_id.eq_any(chunk))
                .filter(payments::status.ne("reversed"))
                .filter(payments::received_on.ge(since))
                .select((
                    payments::customer_id,
                    payments::currency,
                    payments::amount_minor,
                    payments::received_on,
                ))
                .load::<(i64, String, i64, NaiveDate)>(c)?,
        );
    }
    Ok(out)
}

#[derive(Debug, Default, Clone)]
pub struct PromiseFilter {
    pub customer_id: Option<i64>,
    pub status: Option<String>,
    pub taken_by: Option<String>,
    pub updated_since: Option<NaiveDateTime>,
}

pub fn list(
    c: &mut DbConnection,
    org_id: i64,
    f: &PromiseFilter,
    after_id: i64,
    limit: i64,
) -> Result<Vec<PromiseRow>, AppError> {
    let mut q = promises::table
        .filter(promises::org_id.eq(org_id))
        .filter(promises::id.gt(after_id))
        .select(PromiseRow::as_select())
        .order(promises::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(v) = f.customer_id {
        q = q.filter(promises::customer_id.eq(v));
    }
    if let Some(v) = &f.status {
        q = q.filter(promises::status.eq(v.clone()));
    }
    if let Some(v) = &f.taken_by {
        q = q.filter(promises::taken_by.eq(v.clone()));
    }
    if let Some(t) = f.updated_since {
        q = q.filter(promises::updated_at.ge(t));
    }
    Ok(q.load(c)?)
}

/// Every promise of a customer (for its summary).
pub fn of_customer(c: &mut DbConnection, org_id: i64, customer_id: i64) -> Result<Vec<PromiseRow>, AppError> {
    Ok(promises::table
        .filter(promises::org_id.eq(org_id))
        .filter(promises::customer_id.eq(customer_id))
        .select(PromiseRow::as_select())
        .load(c)?)
}

/// Invoice ids among `invoice_ids` covered by an open promise.
pub fn promised_invoices(c: &mut DbConnection, invoice_ids: &[i64]) -> Result<Vec<i64>, AppError> {
    let mut out = Vec::new();
    for chunk in invoice_ids.chunks(1000) {
        out.extend(
            promise_invoices::table
                .inner_join(promises::table)
                .filter(promise_invoices::invoice_id.eq_any(chunk))
                .filter(promises::status.eq("open"))
                .select(promise_invoices::invoice_id)
                .load::<i64>(c)?,
        );
    }
    Ok(out)
}
