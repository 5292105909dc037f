//! Invoices and credit/debit notes: rows, set-based upsert by external id, lookups,
//! keyset-paginated lists and the open items of a customer.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel::upsert::excluded;

use crate::db::schema::invoices;
use crate::db::{DbConnection, now};
use crate::domain::invoice::InvoiceData;
use crate::error::AppError;
use crate::{dispatch, in_prepared_chunks, locked};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = invoices)]
pub struct InvoiceRow {
    pub id: i64,
    pub org_id: i64,
    pub customer_id: i64,
    pub external_id: Option<String>,
    pub kind: String,
    pub number: String,
    pub currency: String,
    pub amount_minor: i64,
    pub tax_minor: i64,
    pub open_minor: i64,
    pub issue_date: NaiveDate,
    pub due_date: NaiveDate,
    pub purchase_order: Option<String>,
    pub delivered_on: Option<NaiveDate>,
    pub status: String,
    pub status_reason: Option<String>,
    pub paid_on: Option<NaiveDate>,
    pub written_off_minor: i64,
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// Amount under open disputes, kept out of collection.
    pub disputed_minor: i64,
}

/// An open invoice as the collection engine reads it: what its decisions and letters need
/// and nothing more. On PostgreSQL every column is in the partial index
/// `invoices_customer_open` (migration 000015), so the collection run reads a chunk of
/// customers' open invoices from one stretch of that index without visiting the heap.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = invoices)]
pub struct OpenInvoiceRow {
    pub id: i64,
    pub customer_id: i64,
    pub number: String,
    pub currency: String,
    pub amount_minor: i64,
    pub open_minor: i64,
    /// Amount under open disputes, kept out of collection.
    pub disputed_minor: i64,
    pub issue_date: NaiveDate,
    pub due_date: NaiveDate,
    pub delivered_on: Option<NaiveDate>,
}

/// What is written for one invoice: its data plus the derived balance and status.
#[derive(Debug, Clone)]
pub struct InvoiceWrite<'a> {
    pub data: &'a InvoiceData,
    pub open_minor: i64,
    pub status: &'a str,
    pub paid_on: Option<NaiveDate>,
    /// The version of the stored row the write was decided on (locked by the caller);
    /// `None` for an invoice that did not exist.
    pub based_on_version: Option<i64>,
}

#[derive(Insertable)]
#[diesel(table_name = invoices, treat_none_as_default_value = false)]
struct InvoiceValues<'a> {
    org_id: i64,
    customer_id: i64,
    external_id: Option<&'a str>,
    kind: &'a str,
    number: &'a str,
    currency: &'a str,
    amount_minor: i64,
    tax_minor: i64,
    open_minor: i64,
    issue_date: NaiveDate,
    due_date: NaiveDate,
    purchase_order: Option<&'a str>,
    delivered_on: Option<NaiveDate>,
    status: &'a str,
    paid_on: Option<NaiveDate>,
    version: i64,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

fn values<'a>(org_id: i64, w: &InvoiceWrite<'a>, at: NaiveDateTime) -> InvoiceValues<'a> {
    let d = w.data;
    InvoiceValues {
        org_id,
        customer_id: d.customer_id,
        external_id: d.external_id.as_deref(),
        kind: &d.kind,
        number: &d.number,
        currency: d.currency.code(),
        amount_minor: d.amount_minor,
        tax_minor: d.tax_minor,
        open_minor: w.open_minor,
        issue_date: d.issue_date,
        due_date: d.due_date,
        purchase_order: d.purchase_order.as_deref(),
        delivered_on: d.delivered_on,
        status: w.status,
        paid_on: w.paid_on,
        version: w.based_on_version.map_or(1, |v| v + 1),
        created_at: at,
        updated_at: at,
    }
}

pub fn insert(conn: &mut DbConnection, org_id: i64, write: &InvoiceWrite<'_>) -> Result<InvoiceRow, AppError> {
    let row = values(org_id, write, now());
    let id: i64 = dispatch!(conn, |c| diesel::insert_into(invoices::table)
        .values(&row)
        .returning(invoices::id)
        .get_result(c))?;
    find(conn, org_id, id)
}

/// Inserts new invoices and updates existing ones (matched on external id) set-based, in
/// statements of [`crate::db::PREPARED_CHUNK_ROWS`] rows. Every item must carry an external id. Returns the
/// id and external id of every row written, inserted or updated.
///
/// An existing row is updated only when the write was decided on a version older than the
/// one it carries: a row the caller locked and read (`based_on_version`) always is, but an
/// item decided as new that meets a row a concurrent request created meanwhile is not
/// written (its balance may already have moved) and is missing from the result.
pub fn upsert_many(
    conn: &mut DbConnection,
    org_id: i64,
    items: &[InvoiceWrite<'_>],
) -> Result<Vec<(i64, Option<String>)>, AppError> {
    use diesel::query_dsl::methods::FilterDsl;
    let at = now();
    let rows: Vec<InvoiceValues<'_>> = items.iter().map(|w| values(org_id, w, at)).collect();
    let mut written = Vec::with_capacity(rows.len());
    // Every column but the keys and `created_at` from the row sent.
    macro_rules! upsert {
        ($chunk:expr) => {
            diesel::insert_into(invoices::table)
                .values($chunk)
                .on_conflict((invoices::org_id, invoices::external_id))
                .do_update()
                .set((
                    invoices::customer_id.eq(excluded(invoices::customer_id)),
                    invoices::kind.eq(excluded(invoices::kind)),
                    invoices::number.eq(excluded(invoices::number)),
                    invoices::currency.eq(excluded(invoices::currency)),
                    invoices::amount_minor.eq(excluded(invoices::amount_minor)),
                    invoices::tax_minor.eq(excluded(invoices::tax_minor)),
                    invoices::open_minor.eq(excluded(invoices::open_minor)),
                    invoices::issue_date.eq(excluded(invoices::issue_date)),
                    invoices::due_date.eq(excluded(invoices::due_date)),
                    invoices::purchase_order.eq(excluded(invoices::purchase_order)),
                    invoices::delivered_on.eq(excluded(invoices::delivered_on)),
                    invoices::status.eq(excluded(invoices::status)),
                    invoices::paid_on.eq(excluded(invoices::paid_on)),
                    invoices::version.eq(excluded(invoices::version)),
                    invoices::updated_at.eq(excluded(invoices::updated_at)),
                ))
        };
    }
    in_prepared_chunks!(rows, |chunk| {
        written.extend(match &mut *conn {
            DbConnection::Pg(c) => FilterDsl::filter(upsert!(chunk), invoices::version.lt(excluded(invoices::version)))
                .returning((invoices::id, invoices::external_id))
                .get_results::<(i64, Option<String>)>(c)?,
            // One write transaction at a time (and diesel has no `WHERE` for a SQLite
            // multi-row upsert): the row read before is the row updated.
            DbConnection::Sqlite(c) => upsert!(chunk)
                .returning((invoices::id, invoices::external_id))
                .get_results::<(i64, Option<String>)>(c)?,
        })
    });
    Ok(written)
}

/// Replaces an invoice's fields if its version is still `expected_version`.
pub fn update(
    conn: &mut DbConnection,
    org_id: i64,
    id: i64,
    expected_version: i64,
    write: &InvoiceWrite<'_>,
) -> Result<bool, AppError> {
    let v = values(org_id, write, now());
    let changed = diesel::update(
        invoices::table
            .filter(invoices::org_id.eq(org_id))
            .filter(invoices::id.eq(id))
            .filter(invoices::version.eq(expected_version)),
    )
    .set((
        invoices::customer_id.eq(v.customer_id),
        invoices::external_id.eq(v.external_id),
        invoices::kind.eq(v.kind),
        invoices::number.eq(v.number),
        invoices::currency.eq(v.currency),
        invoices::amount_minor.eq(v.amount_minor),
        invoices::tax_minor.eq(v.tax_minor),
        invoices::open_minor.eq(v.open_minor),
        invoices::issue_date.eq(v.issue_date),
        invoices::due_date.eq(v.due_date),
        invoices::purchase_order.eq(v.purchase_order),
        invoices::delivered_on.eq(v.delivered_on),
        invoices::status.eq(v.status),
        invoices::paid_on.eq(v.paid_on),
        invoices::version.eq(expected_version + 1),
        invoices::updated_at.eq(v.updated_at),
    ))
    .execute(conn)?;
    Ok(changed == 1)
}

/// Closes an invoice by decision (cancel, write-off): the open amount goes to zero (and,
/// for a write-off, into `written_off_minor`), with the status and its reason.
pub fn close(
    conn: &mut DbConnection,
    org_id: i64,
    id: i64,
    expected_version: i64,
    status: &str,
    reason: &str,
    written_off_minor: i64,
) -> Result<bool, AppError> {
    let at = now();
    let changed = diesel::update(
        invoices::table
            .filter(invoices::org_id.eq(org_id))
            .filter(invoices::id.eq(id))
            .filter(invoices::version.eq(expected_version)),
    )
    .set((
        invoices::written_off_minor.eq(written_off_minor),
        invoices::written_off_on.eq((written_off_minor > 0).then_some(at.date())),
        invoices::open_minor.eq(0),
        invoices::status.eq(status),
        invoices::status_reason.eq(reason),
        invoices::version.eq(expected_version + 1),
        invoices::updated_at.eq(at),
    ))
    .execute(conn)?;
    Ok(changed == 1)
}

/// One invoice by id (the `GET /v1/invoices/{id}` hot path: run on the engine's own
/// connection, whose statement cache skips rebuilding the SQL text; see `dispatch!`).
pub fn find(conn: &mut DbConnection, org_id: i64, id: i64) -> Result<InvoiceRow, AppError> {
    let found: Option<InvoiceRow> = dispatch!(conn, |c| invoices::table
        .filter(invoices::org_id.eq(org_id))
        .filter(invoices::id.eq(id))
        .select(InvoiceRow::as_select())
        .first(c)
        .optional())?;
    found.ok_or_else(|| AppError::not_found("invoice"))
}

/// The invoices with these external ids, locked on PostgreSQL in id order (as payments lock
/// them): an upsert decides their new balance from what it reads here.
pub fn lock_by_external_ids(conn: &mut DbConnection, org_id: i64, ids: &[&str]) -> Result<Vec<InvoiceRow>, AppError> {
    by_external_ids(conn, org_id, ids, true)
}

/// Invoices by external id, unlocked: lookups and uniqueness checks.
pub fn find_by_external_ids(conn: &mut DbConnection, org_id: i64, ids: &[&str]) -> Result<Vec<InvoiceRow>, AppError> {
    by_external_ids(conn, org_id, ids, false)
}

fn by_external_ids(
    conn: &mut DbConnection,
    org_id: i64,
    ids: &[&str],
    lock: bool,
) -> Result<Vec<InvoiceRow>, AppError> {
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(1000) {
        // A macro, not a value: the selection's type names the backend it is loaded on.
        macro_rules! query {
            () => {
                invoices::table
                    .filter(invoices::org_id.eq(org_id))
                    .filter(invoices::external_id.eq_any(chunk))
                    .select(InvoiceRow::as_select())
            };
        }
        let rows: Vec<InvoiceRow> = if lock {
            locked!(conn, query!(), in_order_of invoices::id.asc(), |q, c| q.load(c))?
        } else {
            query!().load(conn)?
        };
        found.extend(rows);
    }
    Ok(found)
}

/// Invoices by id, locked on PostgreSQL in id order (a fixed order avoids deadlocks).
pub fn lock_many(conn: &mut DbConnection, org_id: i64, ids: &[i64]) -> Result<Vec<InvoiceRow>, AppError> {
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(1000) {
        let rows: Vec<InvoiceRow> = locked!(
            conn,
            invoices::table
                .filter(invoices::org_id.eq(org_id))
                .filter(invoices::id.eq_any(chunk))
                .select(InvoiceRow::as_select()),
            in_order_of invoices::id.asc(),
            |q, c| q.load(c)
        )?;
        found.extend(rows);
    }
    Ok(found)
}

/// The open invoices and debit notes of these customers (any currency), locked on
/// PostgreSQL in id order: the candidates of automatic allocation.
pub fn lock_open_of_customers(
    conn: &mut DbConnection,
    org_id: i64,
    customer_ids: &[i64],
) -> Result<Vec<InvoiceRow>, AppError> {
    let mut found = Vec::new();
    for chunk in customer_ids.chunks(1000) {
        let rows: Vec<InvoiceRow> = locked!(
            conn,
            invoices::table
                .filter(invoices::org_id.eq(org_id))
                .filter(invoices::customer_id.eq_any(chunk))
                .filter(invoices::open_minor.gt(0))
                .filter(invoices::kind.ne("credit_note"))
                .select(InvoiceRow::as_select()),
            in_order_of invoices::id.asc(),
            |q, c| q.load(c)
        )?;
        found.extend(rows);
    }
    Ok(found)
}

/// The open invoices and debit notes of these customers together with the invoices named
/// by id (of any kind or state), locked on PostgreSQL in one statement in id order: a
/// posting that names a credit note or an invoice besides a customer's open ones takes
/// its locks in the same order as every other locking read of invoices, so it cannot
/// deadlock with them (locking the named rows in a statement of their own did, against an
/// ERP re-sending them in a batch).
pub fn lock_open_of_customers_and(
    conn: &mut DbConnection,
    org_id: i64,
    customer_ids: &[i64],
    named: &[i64],
) -> Result<Vec<InvoiceRow>, AppError> {
    let rows: Vec<InvoiceRow> = locked!(
        conn,
        invoices::table
            .filter(invoices::org_id.eq(org_id))
            .filter(
                invoices::customer_id
                    .eq_any(customer_ids)
                    .and(invoices::open_minor.gt(0))
                    .and(invoices::kind.ne("credit_note"))
                    .or(invoices::id.eq_any(named)),
            )
            .select(InvoiceRow::as_select()),
        in_order_of invoices::id.asc(),
        |q, c| q.load(c)
    )?;
    Ok(rows)
}

#[derive(Debug, Default, Clone)]
pub struct InvoiceFilter {
    pub customer_id: Option<i64>,
    pub statuses: Vec<String>,
    pub kind: Option<String>,
    pub currency: Option<String>,
    pub external_id: Option<String>,
    /// Open or partially paid with a due date before this date.
    pub overdue_as_of: Option<NaiveDate>,
    pub due_before: Option<NaiveDate>,
    pub due_after: Option<NaiveDate>,
    pub updated_since: Option<NaiveDateTime>,
}

/// One page in id order, after `after_id`.
pub fn list(
    conn: &mut DbConnection,
    org_id: i64,
    filter: &InvoiceFilter,
    after_id: i64,
    limit: i64,
) -> Result<Vec<InvoiceRow>, AppError> {
    let mut query = invoices::table
        .filter(invoices::org_id.eq(org_id))
        .filter(invoices::id.gt(after_id))
        .select(InvoiceRow::as_select())
        .order(invoices::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(c) = filter.customer_id {
        query = query.filter(invoices::customer_id.eq(c));
    }
    if !filter.statuses.is_empty() {
        query = query.filter(invoices::status.eq_any(filter.statuses.clone()));
    }
    if let Some(k) = &filter.kind {
        query = query.filter(invoices::kind.eq(k.clone()));
    }
    if let Some(c) = &filter.currency {
        query = query.filter(invoices::currency.eq(c.clone()));
    }
    if let Some(e) = &filter.external_id {
        query = query.filter(invoices::external_id.eq(e.clone()));
    }
    if let Some(as_of) = filter.overdue_as_of {
        query = query
            .filter(invoices::open_minor.gt(0))
            .filter(invoices::kind.ne("credit_note"))
            .filter(invoices::due_date.lt(as_of));
    }
    if let Some(d) = filter.due_before {
        query = query.filter(invoices::due_date.lt(d));
    }
    if let Some(d) = filter.due_after {
        query = query.filter(invoices::due_date.gt(d));
    }
    if let Some(t) = filter.updated_since {
        query = query.filter(invoices::updated_at.ge(t));
    }
    Ok(query.load(conn)?)
}

/// Every document of a customer with an open balance, oldest due date first.
pub fn open_items_of_customer(
    conn: &mut DbConnection,
    org_id: i64,
    customer_id: i64,
) -> Result<Vec<InvoiceRow>, AppError> {
    Ok(invoices::table
        .filter(invoices::org_id.eq(org_id))
        .filter(invoices::customer_id.eq(customer_id))
        .filter(invoices::open_minor.gt(0))
        .select(InvoiceRow::as_select())
        .order((invoices::due_date.asc(), invoices::id.asc()))
        .load(conn)?)
}
