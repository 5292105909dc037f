//! Hook points other features attach to. `cash_applied` runs inside the transaction that
//! applied or released money on invoices, after their balances were re-derived.

use crate::db::DbConnection;
use crate::error::AppError;

/// Called with the invoices whose balance just changed (payments, credit notes,
/// unapplications, reversals). Promise re-evaluation and the cancellation of collection
/// actions planned for paid invoices are attached here as those features land; the
/// `invoice.paid` events it follows are already written by the caller.
pub fn cash_applied(_conn: &mut DbConnection, _org_id: i64, _invoice_ids: &[i64]) -> Result<(), AppError> {
    Ok(())
}
