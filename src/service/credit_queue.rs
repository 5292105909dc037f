//! Deferred credit recomputation. A payment, an invoice batch, a dispute or a limit change
//! queues the customers it affects instead of recomputing their credit snapshot, hold
//! status and risk signals inside its own transaction (about twenty statements per
//! customer that every ERP posting would otherwise wait for). The queue is drained:
//!
//! - by the background worker (`crate::refresher`), in batches of up to 1 000 customers,
//!   shortly after the writes commit;
//! - before any read of one customer's credit state (the customer, its credit view, its
//!   risk view, a credit check), for that customer only, so a reader always sees every
//!   posting that committed before its request;
//! - before organisation-wide reads that show derived state (customer lists, events, tasks,
//!   the worklist) and before the collection run, for the whole organisation.
//!
//! Each drain reads entries without locking them, recomputes, and deletes in the same
//! transaction only the entries whose `seq` has not moved; see `repo::credit_queue` for
//! why no concurrent change is lost and why writers never wait for a recomputation.

use std::collections::BTreeMap;

use crate::db::repo::credit_queue as repo;
use crate::db::{DbConnection, write_transaction};
use crate::error::AppError;
use crate::service::credit;

/// Customers recomputed per transaction.
pub const BATCH: i64 = 1000;

/// Queues customers for recomputation (in the caller's transaction).
pub fn enqueue(c: &mut DbConnection, org_id: i64, customers: &[i64]) -> Result<(), AppError> {
    if customers.is_empty() {
        return Ok(());
    }
    repo::enqueue(c, org_id, customers)
}

/// Recomputes one customer now if it is queued (one primary-key probe when it is not).
pub fn settle_customer(c: &mut DbConnection, org_id: i64, customer_id: i64) -> Result<(), AppError> {
    match repo::entry(c, customer_id)? {
        Some(e) if e.org_id == org_id => recompute(c, &[e]),
        _ => Ok(()),
    }
}

/// Recomputes every queued customer of an organisation now (one indexed probe when none is).
pub fn settle_org(c: &mut DbConnection, org_id: i64) -> Result<(), AppError> {
    // Bounded: writers that keep bumping entries cannot keep a reader here for ever.
    for _ in 0..1000 {
        let pending = repo::of_org(c, org_id, BATCH)?;
        if pending.is_empty() {
            return Ok(());
        }
        recompute(c, &pending)?;
        if pending.len() < usize::try_from(BATCH).unwrap_or(usize::MAX) {
            return Ok(());
        }
    }
    Ok(())
}

/// The background worker's step: recomputes up to `BATCH` of the oldest queued customers of
/// any organisation. Returns how many it read.
pub fn drain_batch(c: &mut DbConnection) -> Result<usize, AppError> {
    let pending = repo::oldest(c, BATCH)?;
    if !pending.is_empty() {
        recompute(c, &pending)?;
    }
    Ok(pending.len())
}

/// Recomputes the entries read (per organisation) and removes those no writer touched
/// since, in one transaction. The customers are locked first: a recomputation of the same
/// customers already running (the worker while a reader settles, or the other way round)
/// is waited for, and what it removed is then not computed twice (the collection run's
/// settle and the worker did every customer twice after a book load). The entries are read
/// again after the locks and before the recomputation's queries, so these see every
/// posting whose entry they remove.
fn recompute(c: &mut DbConnection, entries: &[repo::Entry]) -> Result<(), AppError> {
    let as_of = crate::db::now().date();
    write_transaction(c, |c| {
        for (org_id, ids) in &by_org(entries) {
            credit::lock_customers(c, *org_id, ids)?;
        }
        let ids: Vec<i64> = entries.iter().map(|e| e.customer_id).collect();
        let current = repo::current(c, &ids)?;
        for (org_id, ids) in &by_org(&current) {
            credit::refresh_customers(c, *org_id, ids, as_of)?;
        }
        repo::remove_done(c, &current)
    })
}

fn by_org(entries: &[repo::Entry]) -> BTreeMap<i64, Vec<i64>> {
    let mut by_org: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for e in entries {
        by_org.entry(e.org_id).or_default().push(e.customer_id);
    }
    by_org
}
