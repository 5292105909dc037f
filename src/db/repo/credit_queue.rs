//! The credit recomputation queue (`credit_refresh_queue`): customers whose credit
//! snapshot, hold status and risk signals are due for recomputation because money or
//! invoices moved for them. Writers enqueue in their own transaction; the recomputation
//! claims rows (locked until it commits) and deletes them in the same transaction.

use diesel::prelude::*;
use diesel::upsert::excluded;

use crate::db::schema::credit_refresh_queue as queue;
use crate::db::{DbConnection, now};
use crate::dispatch;
use crate::error::AppError;

#[derive(Insertable)]
#[diesel(table_name = queue, treat_none_as_default_value = false)]
struct NewEntry {
    customer_id: i64,
    org_id: i64,
    queued_at: chrono::NaiveDateTime,
}

/// Queues customers for recomputation (one statement per 500, in id order so that
/// concurrent writers take the rows in the same order). An entry that exists is touched
/// rather than ignored: on PostgreSQL `DO UPDATE` waits for a recomputation that holds the
/// row and then re-inserts it once that one deleted it, so a change committed while a
/// recomputation was running is never dropped with its entry.
pub fn enqueue(c: &mut DbConnection, org_id: i64, customer_ids: &[i64]) -> Result<(), AppError> {
    let mut ids = customer_ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let at = now();
    for chunk in ids.chunks(500) {
        let rows: Vec<NewEntry> = chunk
            .iter()
            .map(|&customer_id| NewEntry {
                customer_id,
                org_id,
                queued_at: at,
            })
            .collect();
        dispatch!(c, |c| diesel::insert_into(queue::table)
            .values(rows.as_slice())
            .on_conflict(queue::customer_id)
            .do_update()
            .set(queue::queued_at.eq(excluded(queue::queued_at)))
            .execute(c))?;
    }
    Ok(())
}

/// Whether one customer is queued (a primary-key probe, without locking).
pub fn is_queued(c: &mut DbConnection, customer_id: i64) -> Result<bool, AppError> {
    let found: Option<i64> = dispatch!(c, |c| queue::table
        .find(customer_id)
        .select(queue::customer_id)
        .first(c)
        .optional())?;
    Ok(found.is_some())
}

/// Which of an organisation's customers are queued, oldest first (no locks).
pub fn queued_of_org(c: &mut DbConnection, org_id: i64, limit: i64) -> Result<Vec<i64>, AppError> {
    Ok(dispatch!(c, |c| queue::table
        .filter(queue::org_id.eq(org_id))
        .order((queue::queued_at.asc(), queue::customer_id.asc()))
        .select(queue::customer_id)
        .limit(limit)
        .load(c))?)
}

/// Claims queued entries of one organisation for recomputation inside the caller's write
/// transaction: on PostgreSQL the rows are locked (waiting for a writer that is queueing one
/// of them right now), so their deletion at the end cannot lose a concurrent change.
pub fn claim(c: &mut DbConnection, org_id: i64, customer_ids: &[i64]) -> Result<Vec<i64>, AppError> {
    let mut ids = customer_ids.to_vec();
    ids.sort_unstable();
    let query = queue::table
        .filter(queue::org_id.eq(org_id))
        .filter(queue::customer_id.eq_any(ids))
        .order(queue::customer_id.asc())
        .select(queue::customer_id);
    Ok(match c {
        DbConnection::Pg(pg) => query.for_update().load(pg)?,
        DbConnection::Sqlite(lite) => query.load(lite)?,
    })
}

/// Claims up to `limit` entries of any organisation, oldest first, skipping those another
/// worker or a writer holds (the background worker's batch): `(org_id, customer_id)`.
pub fn claim_batch(c: &mut DbConnection, limit: i64) -> Result<Vec<(i64, i64)>, AppError> {
    let query = queue::table
        .order((queue::queued_at.asc(), queue::customer_id.asc()))
        .select((queue::org_id, queue::customer_id))
        .limit(limit);
    Ok(match c {
        DbConnection::Pg(pg) => query.for_update().skip_locked().load(pg)?,
        DbConnection::Sqlite(lite) => query.load(lite)?,
    })
}

/// Removes claimed entries once their customers are recomputed (same transaction).
pub fn remove(c: &mut DbConnection, customer_ids: &[i64]) -> Result<(), AppError> {
    for chunk in customer_ids.chunks(1000) {
        dispatch!(c, |c| diesel::delete(
            queue::table.filter(queue::customer_id.eq_any(chunk))
        )
        .execute(c))?;
    }
    Ok(())
}
