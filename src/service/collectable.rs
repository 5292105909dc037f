//! The "due for dunning" query the collection engine builds on: every open invoice of the
//! organisation with its collectable amount (open minus disputed) and, when it must not be
//! chased, why (placed with an agency, legal, repossession offered, customer paused, fully
//! disputed, in an active payment plan, promised). Set-based: a page of invoices and five
//! queries for the facts, whatever the page size.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::repo::actions::DunningState;
use crate::db::repo::invoices::OpenInvoiceRow;
use crate::db::schema::{customers, invoices};
use crate::domain::collectable::{Exclusion, InvoiceFacts, collectable_amount, exclusion};
use crate::domain::escalation::{EscalationKind, strongest};
use crate::error::AppError;

#[derive(Debug, Clone)]
pub struct CollectableItem {
    pub invoice: OpenInvoiceRow,
    /// Its place on the dunning ladder.
    pub dunning: DunningState,
    pub collectable_minor: i64,
    pub days_past_due: i64,
    pub exclusion: Option<Exclusion>,
}

/// `open_minor > 0` written out, not bound: the predicate of the partial indexes on open
/// invoices, which PostgreSQL matches only against a constant (a bound value would leave a
/// cached generic plan unable to use them).
fn is_open() -> diesel::expression::SqlLiteral<diesel::sql_types::Bool> {
    diesel::dsl::sql::<diesel::sql_types::Bool>("invoices.open_minor > 0")
}

/// One page of open invoices (by id after `after_id`) as the collection engine sees them
/// as of a date.
pub fn collectable_items(
    c: &mut DbConnection,
    org_id: i64,
    as_of: NaiveDate,
    after_id: i64,
    limit: i64,
) -> Result<Vec<CollectableItem>, AppError> {
    let page: Vec<OpenInvoiceRow> = invoices::table
        .filter(invoices::org_id.eq(org_id))
        .filter(invoices::id.gt(after_id))
        .filter(is_open())
        .filter(invoices::kind.ne("credit_note"))
        .filter(invoices::status.eq_any(["open", "partially_paid"]))
        .order(invoices::id.asc())
        .limit(limit)
        .select(OpenInvoiceRow::as_select())
        .load(c)?;
    classify(c, org_id, as_of, page)
}

/// Every open invoice of these customers as the collection engine sees it.
pub fn collectable_for_customers(
    c: &mut DbConnection,
    org_id: i64,
    as_of: NaiveDate,
    customer_ids: &[i64],
) -> Result<Vec<CollectableItem>, AppError> {
    let mut page: Vec<OpenInvoiceRow> = Vec::new();
    for chunk in customer_ids.chunks(1000) {
        page.extend(open_invoices_of(c, org_id, chunk, None)?);
    }
    classify(c, org_id, as_of, page)
}

/// Customers whose invoices are read per statement by `collectable_for_first_customers`.
const GROUP: usize = 100;

/// The open invoices of the first of `customer_ids` as the collection engine sees them:
/// whole customers, in order, up to `max_items` invoices (or the first customer alone when
/// it holds more). Read `GROUP` customers per statement, each read limited to what still
/// fits, so a group holding a customer with tens of thousands of invoices does not load
/// them all at once. Returns the items and how many of the customers (a prefix) they cover.
pub fn collectable_for_first_customers(
    c: &mut DbConnection,
    org_id: i64,
    as_of: NaiveDate,
    customer_ids: &[i64],
    max_items: usize,
) -> Result<(Vec<CollectableItem>, usize), AppError> {
    let mut page: Vec<OpenInvoiceRow> = Vec::new();
    let mut covered = 0;
    while covered < customer_ids.len() && page.len() < max_items {
        let group = &customer_ids[covered..(covered + GROUP).min(customer_ids.len())];
        let room = max_items - page.len();
        let mut rows = open_invoices_of(c, org_id, group, Some(room + 1))?;
        let owners: Vec<i64> = rows.iter().map(|r| r.customer_id).collect();
        match whole_customers(&owners, room) {
            None => {
                page.extend(rows);
                covered += group.len();
            }
            Some(0) if page.is_empty() => {
                // The group's first customer with invoices holds more than a chunk: it is
                // the chunk, read whole.
                let big = owners[0];
                page = open_invoices_of(c, org_id, &[big], None)?;
                covered += group.iter().position(|&id| id == big).map_or(group.len(), |i| i + 1);
                break;
            }
            Some(complete) => {
                // The customers before the one cut off are covered, those without invoices
                // included; the one cut off starts the next chunk.
                let cut = owners[complete];
                rows.truncate(complete);
                page.extend(rows);
                covered += group.iter().position(|&id| id == cut).unwrap_or(group.len());
                break;
            }
        }
    }
    Ok((classify(c, org_id, as_of, page)?, covered))
}

/// Of rows read in customer order with a limit one above `room` (`owners`: each row's
/// customer), how many belong to customers read whole: `None` when nothing was cut off (at
/// most `room` rows), else the rows before the first row of the last customer read.
fn whole_customers(owners: &[i64], room: usize) -> Option<usize> {
    if owners.len() <= room {
        return None;
    }
    let last = owners[owners.len() - 1];
    Some(owners.iter().position(|&o| o == last).unwrap_or(0))
}

/// The open (chaseable) invoices of some customers, by customer, oldest due first.
fn open_invoices_of(
    c: &mut DbConnection,
    org_id: i64,
    customer_ids: &[i64],
    limit: Option<usize>,
) -> Result<Vec<OpenInvoiceRow>, AppError> {
    let query = invoices::table
        .filter(invoices::org_id.eq(org_id))
        .filter(invoices::customer_id.eq_any(customer_ids))
        .filter(is_open())
        .filter(invoices::kind.ne("credit_note"))
        .filter(invoices::status.eq_any(["open", "partially_paid"]))
        .order((
            invoices::customer_id.asc(),
            invoices::due_date.asc(),
            invoices::id.asc(),
        ))
        .select(OpenInvoiceRow::as_select());
    Ok(match limit {
        Some(n) => query
            .limit(i64::try_from(n).unwrap_or(i64::MAX))
            .load::<OpenInvoiceRow>(c)?,
        None => query.load::<OpenInvoiceRow>(c)?,
    })
}

fn classify(
    c: &mut DbConnection,
    org_id: i64,
    as_of: NaiveDate,
    page: Vec<OpenInvoiceRow>,
) -> Result<Vec<CollectableItem>, AppError> {
    let ids: Vec<i64> = page.iter().map(|i| i.id).collect();
    let customer_ids: Vec<i64> = page
        .iter()
        .map(|i| i.customer_id)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut paused: HashMap<i64, Option<NaiveDate>> = HashMap::new();
    for chunk in customer_ids.chunks(1000) {
        paused.extend(
            customers::table
                .filter(customers::id.eq_any(chunk))
                .select((customers::id, customers::dunning_paused_until))
                .load::<(i64, Option<NaiveDate>)>(c)?,
        );
    }
    let promised: HashSet<i64> = crate::db::repo::promises::promised_invoices(c, &ids)?
        .into_iter()
        .collect();
    let on_account = on_account_promises(c, org_id, &customer_ids)?;
    let planned: HashSet<i64> = crate::db::repo::plans::invoices_in_active_plans(c, &ids)?
        .into_iter()
        .collect();
    let dunning = crate::db::repo::actions::dunning_states(c, &ids)?;
    let mut escalated: HashMap<i64, Exclusion> = HashMap::new();
    for (invoice, kind) in crate::db::repo::escalations::open_kinds_of_invoices(c, &ids)? {
        let e = EscalationKind::parse(&kind).and_then(EscalationKind::dunning_exclusion);
        if let Some(e) = strongest(escalated.get(&invoice).copied(), e) {
            escalated.insert(invoice, e);
        }
    }
    Ok(page
        .into_iter()
        .map(|invoice| {
            let facts = InvoiceFacts {
                open_minor: invoice.open_minor,
                disputed_minor: invoice.disputed_minor,
                paused_until: paused.get(&invoice.customer_id).copied().flatten(),
                promised: promised.contains(&invoice.id)
                    || on_account.contains(&(invoice.customer_id, invoice.currency.clone())),
                in_active_plan: planned.contains(&invoice.id),
                escalated: escalated.get(&invoice.id).copied(),
            };
            let dunning = dunning.get(&invoice.id).copied().unwrap_or_default();
            let clock = dunning
                .clock_start
                .map_or(invoice.due_date, |start| start.max(invoice.due_date));
            CollectableItem {
                dunning,
                collectable_minor: collectable_amount(&facts),
                days_past_due: crate::domain::invoice::days_past_due(clock, as_of),
                exclusion: exclusion(&facts, as_of),
                invoice,
            }
        })
        .collect())
}

/// (customer, currency) pairs with an open promise on account (covering no invoice).
fn on_account_promises(
    c: &mut DbConnection,
    org_id: i64,
    customers: &[i64],
) -> Result<HashSet<(i64, String)>, AppError> {
    let open = crate::db::repo::promises::open_promises(c, org_id, Some(customers))?;
    let ids: Vec<i64> = open.iter().map(|p| p.id).collect();
    let linked: HashSet<i64> = crate::db::repo::promises::links(c, &ids)?
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    Ok(open
        .into_iter()
        .filter(|p| !linked.contains(&p.id))
        .map(|p| (p.customer_id, p.currency))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every column the collection engine reads or filters on must be in the covering
    /// index of migration 000015, or PostgreSQL falls back to one heap visit per invoice
    /// (nothing fails, the run just gets slow at scale).
    #[test]
    fn the_open_invoice_index_covers_every_column_the_engine_reads() {
        let migration = include_str!("../../migrations/postgres/2026-12-05-000015_open_invoices_covering/up.sql");
        let definition = &migration[migration.find("CREATE INDEX").expect("index definition")..];
        let indexed: HashSet<&str> = definition
            .split(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
            .collect();
        let select =
            diesel::debug_query::<diesel::pg::Pg, _>(&invoices::table.select(OpenInvoiceRow::as_select())).to_string();
        let read: Vec<&str> = select
            .split("\"invoices\".\"")
            .skip(1)
            .filter_map(|part| part.split('"').next())
            .collect();
        assert_eq!(read.len(), 10, "{select}");
        // What `open_invoices_of` filters and orders on besides the selected columns.
        for column in read.iter().copied().chain(["org_id", "kind", "status"]) {
            assert!(indexed.contains(column), "{column} is not in {definition}");
        }
    }

    #[test]
    fn nothing_is_cut_off_when_the_rows_fit() {
        assert_eq!(whole_customers(&[], 5), None);
        assert_eq!(whole_customers(&[1, 1, 2], 3), None);
    }

    #[test]
    fn the_customer_read_last_is_cut_off_when_the_limit_was_reached() {
        // Read with limit 4 (room 3): customer 3's rows may continue past the limit.
        assert_eq!(whole_customers(&[1, 2, 2, 3], 3), Some(3));
        assert_eq!(whole_customers(&[1, 1, 3, 3], 3), Some(2));
    }

    #[test]
    fn a_customer_alone_over_the_limit_leaves_no_whole_customer() {
        assert_eq!(whole_customers(&[7, 7, 7, 7], 3), Some(0));
        assert_eq!(whole_customers(&[7], 0), Some(0));
    }
}
