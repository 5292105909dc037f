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
//! Each drain recomputes and deletes the claimed entries in one transaction; see
//! `repo::credit_queue` for why no concurrent change is lost.

use chrono::NaiveDate;

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

fn today() -> NaiveDate {
    crate::db::now().date()
}

/// Recomputes one customer now if it is queued (one primary-key probe when it is not).
pub fn settle_customer(c: &mut DbConnection, org_id: i64, customer_id: i64) -> Result<(), AppError> {
    if !repo::is_queued(c, customer_id)? {
        return Ok(());
    }
    settle(c, org_id, &[customer_id]).map(|_| ())
}

/// Recomputes every queued customer of an organisation now (one indexed probe when none is).
pub fn settle_org(c: &mut DbConnection, org_id: i64) -> Result<(), AppError> {
    loop {
        let pending = repo::queued_of_org(c, org_id, BATCH)?;
        if pending.is_empty() {
            return Ok(());
        }
        let claimed = settle(c, org_id, &pending)?;
        if claimed == 0 || pending.len() < usize::try_from(BATCH).unwrap_or(usize::MAX) {
            return Ok(());
        }
    }
}

/// Claims, recomputes and removes the given entries of one organisation in one
/// transaction; returns how many were still queued.
fn settle(c: &mut DbConnection, org_id: i64, customers: &[i64]) -> Result<usize, AppError> {
    write_transaction(c, |c| {
        let claimed = repo::claim(c, org_id, customers)?;
        if claimed.is_empty() {
            return Ok(0);
        }
        credit::refresh_customers(c, org_id, &claimed, today())?;
        repo::remove(c, &claimed)?;
        Ok(claimed.len())
    })
}

/// The background worker's step: claims up to `BATCH` queued customers of any organisation
/// (skipping entries held by others), recomputes them per organisation and removes them, in
/// one transaction. Returns how many were recomputed.
pub fn drain_batch(c: &mut DbConnection) -> Result<usize, AppError> {
    write_transaction(c, |c| {
        let claimed = repo::claim_batch(c, BATCH)?;
        let mut by_org: std::collections::BTreeMap<i64, Vec<i64>> = std::collections::BTreeMap::new();
        for (org_id, customer_id) in &claimed {
            by_org.entry(*org_id).or_default().push(*customer_id);
        }
        let as_of = today();
        for (org_id, ids) in &by_org {
            credit::refresh_customers(c, *org_id, ids, as_of)?;
        }
        let ids: Vec<i64> = claimed.iter().map(|(_, id)| *id).collect();
        repo::remove(c, &ids)?;
        Ok(ids.len())
    })
}
