//! The customer statement: open items with their age and per-currency aging totals.

use chrono::NaiveDate;

use crate::db::DbConnection;
use crate::db::repo::customers::{self as customer_repo, CustomerRow};
use crate::db::repo::invoices::{self as invoice_repo, InvoiceRow};
use crate::domain::aging::{self, CurrencyAging, OpenItem};
use crate::error::AppError;

pub struct Statement {
    pub customer: CustomerRow,
    pub as_of: NaiveDate,
    pub items: Vec<InvoiceRow>,
    pub totals: Vec<(String, CurrencyAging)>,
}

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
    Ok(Statement {
        customer,
        as_of,
        items,
        totals,
    })
}
