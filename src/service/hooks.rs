//! Hook points run inside the transaction that changed money on invoices, after their
//! balances were re-derived: promises and payment plans covering those invoices (or their
//! customers' on-account promises) are re-evaluated at once, so a promise is kept the
//! moment the payment that keeps it is posted. The customers' credit snapshots, hold
//! status and risk signals are queued for recomputation (`service::credit_queue`): the
//! background worker recomputes them set-based moments later, and any read of a customer's
//! credit recomputes a queued customer first.

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::invoices;
use crate::error::AppError;
use crate::service::{credit_queue, plans, promises};

/// Called with the invoices whose balance just changed (payments, credit notes,
/// unapplications, reversals).
pub fn cash_applied(conn: &mut DbConnection, org_id: i64, invoice_ids: &[i64]) -> Result<(), AppError> {
    if invoice_ids.is_empty() {
        return Ok(());
    }
    let mut customers: Vec<i64> = Vec::new();
    for chunk in invoice_ids.chunks(1000) {
        customers.extend(
            invoices::table
                .filter(invoices::org_id.eq(org_id))
                .filter(invoices::id.eq_any(chunk))
                .select(invoices::customer_id)
                .distinct()
                .load::<i64>(conn)?,
        );
    }
    customers.sort_unstable();
    customers.dedup();
    payment_received(conn, org_id, &customers)?;
    cancel_settled_actions(conn, invoice_ids)
}

/// Cancels actions not yet delivered whose invoices are all paid now: nobody is chased for
/// money that has arrived (P2).
pub fn cancel_settled_actions(conn: &mut DbConnection, invoice_ids: &[i64]) -> Result<(), AppError> {
    cancel_pending_actions(conn, invoice_ids, &[], "paid before delivery", |open, _| open == 0)
}

/// Cancels actions not yet delivered for invoices a new promise covers.
pub fn cancel_promised_actions(conn: &mut DbConnection, invoice_ids: &[i64]) -> Result<(), AppError> {
    cancel_pending_actions(
        conn,
        invoice_ids,
        &[],
        "promise to pay taken before delivery",
        |_, _| true,
    )
}

/// Cancels actions not yet done for invoices an agency placement, a legal step or a
/// repossession offer just took over: normal dunning stops for them. The actions that
/// opened the escalations (`keep`) go on.
pub fn cancel_escalated_actions(conn: &mut DbConnection, invoice_ids: &[i64], keep: &[i64]) -> Result<(), AppError> {
    cancel_pending_actions(conn, invoice_ids, keep, "escalated before delivery", |_, _| true)
}

fn cancel_pending_actions(
    conn: &mut DbConnection,
    invoice_ids: &[i64],
    keep: &[i64],
    reason: &str,
    settled: impl Fn(i64, i64) -> bool,
) -> Result<(), AppError> {
    use crate::db::repo::actions as repo;
    let mut pending = repo::pending_actions_for_invoices(conn, invoice_ids)?;
    pending.retain(|a| !keep.contains(a));
    if pending.is_empty() {
        return Ok(());
    }
    let links = repo::invoices_of_actions(conn, &pending)?;
    let ids: Vec<i64> = links.iter().map(|(_, i, _)| *i).collect();
    let mut state: std::collections::HashMap<i64, (i64, i64)> = std::collections::HashMap::new();
    for chunk in ids.chunks(1000) {
        for (id, open, amount) in invoices::table
            .filter(invoices::id.eq_any(chunk))
            .select((invoices::id, invoices::open_minor, invoices::amount_minor))
            .load::<(i64, i64, i64)>(conn)?
        {
            state.insert(id, (open, amount));
        }
    }
    let cancel: Vec<i64> = pending
        .into_iter()
        .filter(|action| {
            links.iter().filter(|(a, _, _)| a == action).all(|(_, i, _)| {
                invoice_ids.contains(i) && state.get(i).is_some_and(|(open, amount)| settled(*open, *amount))
            })
        })
        .collect();
    // One conditional statement: an action a delivery worker claimed since it was read
    // above is in flight and is left to the worker, never marked cancelled after it went out.
    crate::db::repo::outbox::cancel_pending(conn, &cancel, reason, crate::db::now())?;
    Ok(())
}

/// Called when money arrives for customers (also unapplied cash, which counts towards
/// on-account promises).
pub fn payment_received(conn: &mut DbConnection, org_id: i64, customers: &[i64]) -> Result<(), AppError> {
    let today = crate::db::now().date();
    let mut summary = promises::evaluate_customers(conn, org_id, customers, today)?;
    plans::evaluate(conn, org_id, Some(customers), today, &mut summary)?;
    // A credit-hold escalation whose items are now paid is released with the payment (one
    // indexed read when the customers have none); the credit snapshot follows from the queue.
    crate::service::escalations::release_settled_holds(conn, org_id, customers, today)?;
    credit_queue::enqueue(conn, org_id, customers)
}

/// Called when what credit control reads about these customers changed outside a
/// payment — invoices created, changed, cancelled or disputed, a credit limit or currency
/// changed: their exposure, hold status and risk signals are queued for recomputation.
pub fn credit_inputs_changed(conn: &mut DbConnection, org_id: i64, customers: &[i64]) -> Result<(), AppError> {
    credit_queue::enqueue(conn, org_id, customers)
}
