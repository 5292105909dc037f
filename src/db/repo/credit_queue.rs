//! The credit recomputation queue (`credit_refresh_queue`): customers whose credit
//! snapshot, hold status and risk signals are due for recomputation because money or
//! invoices moved for them. Writers enqueue in their own transaction (or bump the `seq` of
//! the entry already there); a recomputation reads entries without locking them and
//! afterwards deletes only those whose `seq` has not moved (skipping any a writer holds), so
//! a writer never waits for a recomputation and a posting committed during one keeps its
//! entry.
//!
//! On SQLite nothing can commit while a recomputation runs: it re-reads its entries,
//! recomputes and deletes them in one write transaction, under the process's writer lock.
//! An entry already queued there is left as it is; see [`enqueue`].

use std::collections::BTreeMap;

use diesel::prelude::*;
use diesel::upsert::excluded;

use crate::db::schema::credit_refresh_queue as queue;
use crate::db::{DbConnection, now};
use crate::error::AppError;
use crate::{dispatch, in_prepared_chunks};

/// A queued customer as a recomputation read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Queryable)]
pub struct Entry {
    pub org_id: i64,
    pub customer_id: i64,
    pub seq: i64,
}

#[derive(Insertable)]
#[diesel(table_name = queue, treat_none_as_default_value = false)]
struct NewEntry {
    customer_id: i64,
    org_id: i64,
    seq: i64,
    queued_at: chrono::NaiveDateTime,
}

/// Queues customers for recomputation (one statement per 500, in id order so that
/// concurrent writers take the rows in the same order).
///
/// On PostgreSQL an entry already queued gets its `seq` bumped, which tells a
/// recomputation running now that it must not delete it, and goes to the back of the
/// queue (`queued_at` now). Keeping its first `queued_at` instead (tried: it spares an
/// index update per re-queued customer) let the customers that every batch re-queues, the
/// largest ones, stay at the front: the worker recomputed them again and again while the
/// others waited (the queue a 100 000-invoice load left took 4.0–4.6 s to drain,
/// against 2.2–2.4 s before and 2.8–3.3 s after; see bench/findings.md).
///
/// On SQLite an entry already queued is left as it is (`ON CONFLICT DO NOTHING`). No
/// recomputation runs beside this transaction (module comment), so one that removes the
/// entry later reads everything this one wrote, and one that removed it earlier left no
/// entry, so this one is inserted. Nothing is bumped, so nothing stays behind either: the
/// entry keeps its place and leaves with the next recomputation. The bump cost an invoice
/// batch there a write of a random queue page and two of its `queued_at` index per
/// customer, all copied into the log at commit: 12 ms of the 58 ms a 1 000-invoice batch
/// held the writer lock at 1M invoices (the same statements replayed alone: 13 ms with the
/// bump, 3 ms without; bench/findings.md).
pub fn enqueue(c: &mut DbConnection, org_id: i64, customer_ids: &[i64]) -> Result<(), AppError> {
    let mut ids = customer_ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let at = now();
    let rows: Vec<NewEntry> = ids
        .iter()
        .map(|&customer_id| NewEntry {
            customer_id,
            org_id,
            seq: 1,
            queued_at: at,
        })
        .collect();
    in_prepared_chunks!(rows, |chunk| {
        let insert = diesel::insert_into(queue::table)
            .values(chunk)
            .on_conflict(queue::customer_id);
        match c {
            DbConnection::Pg(pg) => insert
                .do_update()
                .set((
                    queue::seq.eq(queue::seq + 1),
                    queue::queued_at.eq(excluded(queue::queued_at)),
                ))
                .execute(pg)?,
            DbConnection::Sqlite(lite) => insert.do_nothing().execute(lite)?,
        }
    });
    Ok(())
}

const ENTRY: (queue::org_id, queue::customer_id, queue::seq) = (queue::org_id, queue::customer_id, queue::seq);

/// One customer's entry, if it is queued (a primary-key probe).
pub fn entry(c: &mut DbConnection, customer_id: i64) -> Result<Option<Entry>, AppError> {
    Ok(dispatch!(c, |c| queue::table
        .find(customer_id)
        .select(ENTRY)
        .first(c)
        .optional())?)
}

/// The entries of these customers as they stand now (those still queued).
pub fn current(c: &mut DbConnection, customer_ids: &[i64]) -> Result<Vec<Entry>, AppError> {
    let mut out = Vec::with_capacity(customer_ids.len());
    for chunk in customer_ids.chunks(1000) {
        out.extend(dispatch!(c, |c| queue::table
            .filter(queue::customer_id.eq_any(chunk))
            .order(queue::customer_id.asc())
            .select(ENTRY)
            .load::<Entry>(c))?);
    }
    Ok(out)
}

/// Whether one customer is queued.
pub fn is_queued(c: &mut DbConnection, customer_id: i64) -> Result<bool, AppError> {
    Ok(entry(c, customer_id)?.is_some())
}

/// An organisation's queued customers, oldest first.
pub fn of_org(c: &mut DbConnection, org_id: i64, limit: i64) -> Result<Vec<Entry>, AppError> {
    Ok(dispatch!(c, |c| queue::table
        .filter(queue::org_id.eq(org_id))
        .order((queue::queued_at.asc(), queue::customer_id.asc()))
        .select(ENTRY)
        .limit(limit)
        .load(c))?)
}

/// The oldest queued customers of any organisation (the background worker's batch).
pub fn oldest(c: &mut DbConnection, limit: i64) -> Result<Vec<Entry>, AppError> {
    Ok(dispatch!(c, |c| queue::table
        .order((queue::queued_at.asc(), queue::customer_id.asc()))
        .select(ENTRY)
        .limit(limit)
        .load(c))?)
}

/// Removes recomputed entries whose `seq` is still the one read (one statement per
/// distinct `seq` and 1 000 customers; nearly all entries have `seq` 1). An entry a writer
/// bumped meanwhile stays queued. On PostgreSQL an entry a writer is bumping right now
/// (locked by its open transaction) is skipped, not waited for: its `seq` is about to move,
/// so it must stay, and waiting would let a writer that enqueues more customers later in
/// its transaction deadlock with this removal (seen loading invoice batches while the
/// worker ran). Two statements there, as diesel cannot delete through a locking subquery.
/// SQLite has one writer at a time, so nothing can be locked there.
pub fn remove_done(c: &mut DbConnection, done: &[Entry]) -> Result<(), AppError> {
    let mut by_seq: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for e in done {
        by_seq.entry(e.seq).or_default().push(e.customer_id);
    }
    for (seq, ids) in by_seq {
        for chunk in ids.chunks(1000) {
            let unchanged = queue::table
                .filter(queue::customer_id.eq_any(chunk))
                .filter(queue::seq.eq(seq));
            match c {
                DbConnection::Pg(pg) => {
                    let free: Vec<i64> = unchanged
                        .select(queue::customer_id)
                        .for_update()
                        .skip_locked()
                        .load(pg)?;
                    diesel::delete(queue::table.filter(queue::customer_id.eq_any(&free))).execute(pg)?
                }
                DbConnection::Sqlite(lite) => diesel::delete(unchanged).execute(lite)?,
            };
        }
    }
    Ok(())
}
