//! The customer statement: open items with their age, per-currency aging totals, unapplied
//! cash and the latest payments with their allocations.

use chrono::NaiveDate;

use crate::db::DbConnection;
use crate::db::repo::customers::{self as customer_repo, CustomerRow};
use crate::db::repo::invoices::{self as invoice_repo, InvoiceRow};
use crate::db::repo::payments::{self as payment_repo, AllocationRow, PaymentRow};
use crate::domain::aging::{self, CurrencyAging, OpenItem};
use crate::error::AppError;

pub struct Statement {
    pub customer: CustomerRow,
    pub as_of: NaiveDate,
    pub items: Vec<InvoiceRow>,
    pub totals: Vec<(String, CurrencyAging)>,
    /// Payments with cash not yet applied, oldest first.
    pub unapplied_payments: Vec<PaymentRow>,
    /// The latest payments (any status) with their allocations.
    pub recent_payments: Vec<PaymentRow>,
    pub allocations: Vec<AllocationRow>,
}

/// How many recent payments a statement shows.
pub const RECENT_PAYMENTS: i64 = 20;

pub fn statement(
    conn: &mut DbConnection,
    org_id: i64,
    customer_id: i64,
    as_of: NaiveDate,
) -> Result<Statement, AppError> {
    let customer = customer_repo::find(conn, org_id, customer_id)?;
    let items = invoice_repo::open_items_of_customer(conn, org_id, customer_id)?;
    let totals = aging::age(
        items.iter().map(|i| OpenItem {
            currency: &i.currency,
            open_minor: i.open_minor,
            due_date: i.due_date,
            is_credit: i.kind == "credit_note",
        }),
        as_of,
    )
    .into_iter()
    .collect();
    let unapplied_payments = payment_repo::unapplied_of_customer(conn, org_id, customer_id)?;
    let recent_payments = payment_repo::recent_of_customer(conn, org_id, customer_id, RECENT_PAYMENTS)?;
    let ids: Vec<i64> = recent_payments
        .iter()
        .chain(&unapplied_payments)
        .map(|p| p.id)
        .collect();
    let allocations = payment_repo::allocations_of_payments(conn, &ids)?;
    Ok(Statement {
        customer,
        as_of,
        items,
        totals,
        unapplied_payments,
        recent_payments,
        allocations,
    })
}
