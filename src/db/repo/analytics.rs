//! Reads behind the analytics reports (`service::analytics`): receivables rebuilt as of a
//! date from the ledger, sales and write-offs of a period, the actions performed in a
//! period with the invoices they covered, and the promises that fell due in a period.
//! Long reads are keyset pages, so a report's memory does not grow with the book.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::BigInt;

use crate::db::DbConnection;
use crate::db::schema::{action_invoices, actions, allocations, customers, invoices, promises};
use crate::error::AppError;

/// An invoice or debit note that may have been open on a date, with what reduces it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = invoices)]
pub struct ReceivableRow {
    pub id: i64,
    pub currency: String,
    pub due_date: NaiveDate,
    pub amount_minor: i64,
    pub written_off_minor: i64,
    pub written_off_on: Option<NaiveDate>,
}

/// A page (by id) of the invoices and debit notes that may have been open at the end of
/// `as_of`: issued by then, not cancelled, and not paid in full by then. Credit notes are
/// not receivables; what they settle is in the allocations.
pub fn receivables_page(
    c: &mut DbConnection,
    org_id: i64,
    as_of: NaiveDate,
    after_id: i64,
    limit: i64,
) -> Result<Vec<ReceivableRow>, AppError> {
    Ok(invoices::table
        .filter(invoices::org_id.eq(org_id))
        .filter(invoices::id.gt(after_id))
        .filter(invoices::kind.ne("credit_note"))
        .filter(invoices::status.ne("cancelled"))
        .filter(invoices::issue_date.le(as_of))
        .filter(invoices::paid_on.is_null().or(invoices::paid_on.gt(as_of)))
        .order(invoices::id.asc())
        .limit(limit)
        .select(ReceivableRow::as_select())
        .load(c)?)
}

/// Money applied to these invoices (payments and credit notes) with a value date up to
/// `as_of` and not released by the end of that day: `(invoice id, amount)` rows.
pub fn applied_as_of(c: &mut DbConnection, invoice_ids: &[i64], as_of: NaiveDate) -> Result<Vec<(i64, i64)>, AppError> {
    let end_of_day = next_midnight(as_of);
    let mut rows = Vec::new();
    for chunk in invoice_ids.chunks(1000) {
        rows.extend(
            allocations::table
                .filter(allocations::invoice_id.eq_any(chunk))
                .filter(allocations::applied_on.le(as_of))
                .filter(
                    allocations::released_at
                        .is_null()
                        .or(allocations::released_at.ge(end_of_day)),
                )
                .select((allocations::invoice_id, allocations::amount_minor))
                .load::<(i64, i64)>(c)?,
        );
    }
    Ok(rows)
}

/// Invoices and debit notes issued in `[from, to]` (not cancelled), summed per currency.
pub fn sales_between(
    c: &mut DbConnection,
    org_id: i64,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<(String, i64)>, AppError> {
    Ok(invoices::table
        .filter(invoices::org_id.eq(org_id))
        .filter(invoices::kind.ne("credit_note"))
        .filter(invoices::status.ne("cancelled"))
        .filter(invoices::issue_date.between(from, to))
        .group_by(invoices::currency)
        .select((invoices::currency, sql::<BigInt>("CAST(SUM(amount_minor) AS BIGINT)")))
        .load(c)?)
}

/// Amounts written off in `[from, to]`, summed per currency.
pub fn written_off_between(
    c: &mut DbConnection,
    org_id: i64,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<(String, i64)>, AppError> {
    Ok(invoices::table
        .filter(invoices::org_id.eq(org_id))
        .filter(invoices::written_off_on.between(from, to))
        .group_by(invoices::currency)
        .select((
            invoices::currency,
            sql::<BigInt>("CAST(SUM(written_off_minor) AS BIGINT)"),
        ))
        .load(c)?)
}

/// An action performed in the period (an e-mail sent, a call or letter done).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = actions)]
pub struct PerformedAction {
    pub id: i64,
    pub customer_id: i64,
    pub step_key: String,
    pub action: String,
    pub assignee: Option<String>,
    pub completed_at: Option<NaiveDateTime>,
}

/// A page (by id) of the actions performed (`sent` or `done`) from the start of `from` to
/// the end of `to`.
pub fn performed_page(
    c: &mut DbConnection,
    org_id: i64,
    from: NaiveDate,
    to: NaiveDate,
    after_id: i64,
    limit: i64,
) -> Result<Vec<PerformedAction>, AppError> {
    Ok(actions::table
        .filter(actions::org_id.eq(org_id))
        .filter(actions::completed_at.ge(from.and_time(chrono::NaiveTime::MIN)))
        .filter(actions::completed_at.lt(next_midnight(to)))
        .filter(actions::status.eq_any(["sent", "done"]))
        .filter(actions::id.gt(after_id))
        .order(actions::id.asc())
        .limit(limit)
        .select(PerformedAction::as_select())
        .load(c)?)
}

/// `(action id, invoice id, invoice currency)` of the invoices these actions covered.
pub fn invoices_of_actions(c: &mut DbConnection, action_ids: &[i64]) -> Result<Vec<(i64, i64, String)>, AppError> {
    let mut rows = Vec::new();
    for chunk in action_ids.chunks(1000) {
        rows.extend(
            action_invoices::table
                .inner_join(invoices::table.on(invoices::id.eq(action_invoices::invoice_id)))
                .filter(action_invoices::action_id.eq_any(chunk))
                .select((
                    action_invoices::action_id,
                    action_invoices::invoice_id,
                    invoices::currency,
                ))
                .load::<(i64, i64, String)>(c)?,
        );
    }
    Ok(rows)
}

/// Live applications to these invoices with a value date in `[from, to]`:
/// `(invoice id, applied on, amount)`.
pub fn applied_between(
    c: &mut DbConnection,
    invoice_ids: &[i64],
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<(i64, NaiveDate, i64)>, AppError> {
    let mut rows = Vec::new();
    for chunk in invoice_ids.chunks(1000) {
        rows.extend(
            allocations::table
                .filter(allocations::invoice_id.eq_any(chunk))
                .filter(allocations::released_at.is_null())
                .filter(allocations::applied_on.between(from, to))
                .select((
                    allocations::invoice_id,
                    allocations::applied_on,
                    allocations::amount_minor,
                ))
                .load::<(i64, NaiveDate, i64)>(c)?,
        );
    }
    Ok(rows)
}

/// `(customer id, collector)` of these customers.
pub fn collectors_of(c: &mut DbConnection, customer_ids: &[i64]) -> Result<Vec<(i64, Option<String>)>, AppError> {
    let mut rows = Vec::new();
    for chunk in customer_ids.chunks(1000) {
        rows.extend(
            customers::table
                .filter(customers::id.eq_any(chunk))
                .select((customers::id, customers::collector))
                .load::<(i64, Option<String>)>(c)?,
        );
    }
    Ok(rows)
}

/// Promises whose promised date falls in `[from, to]` (cancelled ones left out), counted
/// and summed per `(taken by, currency, status)`.
#[derive(Debug, Clone, Queryable)]
pub struct PromiseTally {
    pub taken_by: String,
    pub currency: String,
    pub status: String,
    pub count: i64,
    pub promised_minor: i64,
    pub paid_minor: i64,
}

pub fn promises_due_between(
    c: &mut DbConnection,
    org_id: i64,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<PromiseTally>, AppError> {
    Ok(promises::table
        .filter(promises::org_id.eq(org_id))
        .filter(promises::promised_date.between(from, to))
        .filter(promises::status.ne("cancelled"))
        .group_by((promises::taken_by, promises::currency, promises::status))
        .select((
            promises::taken_by,
            promises::currency,
            promises::status,
            diesel::dsl::count_star(),
            sql::<BigInt>("CAST(SUM(amount_minor) AS BIGINT)"),
            sql::<BigInt>("CAST(SUM(paid_minor) AS BIGINT)"),
        ))
        .load(c)?)
}

fn next_midnight(day: NaiveDate) -> NaiveDateTime {
    day.succ_opt().unwrap_or(day).and_time(chrono::NaiveTime::MIN)
}
