//! Credit control and risk storage: the per-customer credit snapshot (`customer_credit`),
//! exposure per customer and currency (`credit_exposures`), the history of credit-limit
//! decisions, the customer's derived credit/risk columns, and the set-based reads the
//! recomputation needs (one query per kind of fact for up to 1 000 customers at a time).

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel::upsert::excluded;

use crate::db::repo::customers::CustomerRow;
use crate::db::schema::{
    allocations, credit_exposures, credit_limit_history, credit_refresh_queue, customer_credit, customers, disputes,
    invoices, organizations, payment_plans, payments, risk_facts,
};
use crate::db::{DbConnection, now};
use crate::dispatch;
use crate::error::AppError;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = customer_credit)]
pub struct SnapshotRow {
    pub customer_id: i64,
    pub org_id: i64,
    pub oldest_due_date: Option<NaiveDate>,
    pub broken_promise_dates: String,
    pub plan_defaulted_on: Option<NaiveDate>,
    pub hold_reasons: String,
    pub held_since: Option<NaiveDateTime>,
    pub release_until: Option<NaiveDate>,
    pub release_reason: Option<String>,
    pub released_by: Option<String>,
    pub risk_signals: String,
    pub risk_computed_on: Option<NaiveDate>,
    pub updated_at: NaiveDateTime,
    pub strategy_hold_since: Option<NaiveDate>,
    /// The day of the first assessment with history (see `risk::check_in_signals`).
    pub risk_baseline_on: Option<NaiveDate>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = credit_exposures, treat_none_as_default_value = false)]
pub struct ExposureRow {
    pub customer_id: i64,
    pub currency: String,
    pub org_id: i64,
    pub open_receivables_minor: i64,
    pub unapplied_minor: i64,
    pub open_orders_minor: i64,
    pub updated_at: NaiveDateTime,
}

impl ExposureRow {
    pub fn exposure(&self) -> crate::domain::credit::Exposure {
        crate::domain::credit::Exposure {
            open_receivables_minor: self.open_receivables_minor,
            unapplied_minor: self.unapplied_minor,
            open_orders_minor: self.open_orders_minor,
        }
    }
}

/// The computed part of a snapshot (the manual-release fields are kept as they are).
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = customer_credit, treat_none_as_default_value = false)]
pub struct SnapshotValues {
    pub customer_id: i64,
    pub org_id: i64,
    pub oldest_due_date: Option<NaiveDate>,
    pub broken_promise_dates: String,
    pub plan_defaulted_on: Option<NaiveDate>,
    pub hold_reasons: String,
    pub held_since: Option<NaiveDateTime>,
    pub risk_signals: String,
    pub risk_computed_on: Option<NaiveDate>,
    pub updated_at: NaiveDateTime,
    pub strategy_hold_since: Option<NaiveDate>,
    /// The day of the first assessment with history (see `risk::check_in_signals`).
    pub risk_baseline_on: Option<NaiveDate>,
}

pub fn snapshot(c: &mut DbConnection, customer_id: i64) -> Result<Option<SnapshotRow>, AppError> {
    Ok(customer_credit::table
        .find(customer_id)
        .select(SnapshotRow::as_select())
        .first(c)
        .optional()?)
}

pub fn snapshots(c: &mut DbConnection, customer_ids: &[i64]) -> Result<Vec<SnapshotRow>, AppError> {
    Ok(customer_credit::table
        .filter(customer_credit::customer_id.eq_any(customer_ids))
        .select(SnapshotRow::as_select())
        .load(c)?)
}

/// How a credit check names its customer.
#[derive(Debug, Clone, Copy)]
pub enum CustomerKey<'a> {
    Id(i64),
    ExternalId(&'a str),
}

/// Everything a credit check reads, fetched in one round trip: the customer, the
/// organisation's stored settings, the customer's credit snapshot and its exposure in its
/// own currency (the last two absent before the first recomputation).
#[derive(Debug, Clone)]
pub struct CheckInputs {
    pub customer: CustomerRow,
    pub settings: String,
    pub snapshot: Option<SnapshotRow>,
    pub exposure: Option<ExposureRow>,
    /// The customer waits in the recomputation queue: the snapshot may predate a posting.
    pub queued: bool,
}

/// The credit check's hot path: one indexed read (customer by primary key or by
/// `(org_id, external_id)`) joined to four single-row reads.
pub fn check_inputs(c: &mut DbConnection, org_id: i64, key: CustomerKey<'_>) -> Result<Option<CheckInputs>, AppError> {
    type Found = (
        CustomerRow,
        String,
        Option<SnapshotRow>,
        Option<ExposureRow>,
        Option<i64>,
    );
    // The hot path of order release: run on the engine's own connection (see `dispatch!`).
    let found: Option<Found> = dispatch!(c, |c| {
        let joined = customers::table
            .inner_join(organizations::table)
            .left_join(customer_credit::table.on(customer_credit::customer_id.eq(customers::id)))
            .left_join(
                credit_exposures::table.on(credit_exposures::customer_id
                    .eq(customers::id)
                    .and(credit_exposures::currency.eq(customers::currency))),
            )
            .left_join(credit_refresh_queue::table.on(credit_refresh_queue::customer_id.eq(customers::id)))
            .filter(customers::org_id.eq(org_id));
        let select = (
            CustomerRow::as_select(),
            organizations::settings,
            Option::<SnapshotRow>::as_select(),
            Option::<ExposureRow>::as_select(),
            credit_refresh_queue::customer_id.nullable(),
        );
        match key {
            CustomerKey::Id(id) => joined.filter(customers::id.eq(id)).select(select).first(c).optional(),
            CustomerKey::ExternalId(ext) => joined
                .filter(customers::external_id.eq(ext))
                .select(select)
                .first(c)
                .optional(),
        }
    })?;
    Ok(
        found.map(|(customer, settings, snapshot, exposure, queued)| CheckInputs {
            customer,
            settings,
            snapshot,
            exposure,
            queued: queued.is_some(),
        }),
    )
}

/// One exposure row (a primary-key read: the credit check's hot path).
pub fn exposure(c: &mut DbConnection, customer_id: i64, currency: &str) -> Result<Option<ExposureRow>, AppError> {
    Ok(credit_exposures::table
        .find((customer_id, currency))
        .select(ExposureRow::as_select())
        .first(c)
        .optional()?)
}

pub fn exposures_of(c: &mut DbConnection, customer_id: i64) -> Result<Vec<ExposureRow>, AppError> {
    Ok(credit_exposures::table
        .filter(credit_exposures::customer_id.eq(customer_id))
        .select(ExposureRow::as_select())
        .order(credit_exposures::currency.asc())
        .load(c)?)
}

pub fn exposures_of_many(c: &mut DbConnection, customer_ids: &[i64]) -> Result<Vec<ExposureRow>, AppError> {
    Ok(credit_exposures::table
        .filter(credit_exposures::customer_id.eq_any(customer_ids))
        .select(ExposureRow::as_select())
        .load(c)?)
}

/// Writes the computed snapshots of many customers in one statement per 500 rows (the
/// manual-release fields are left as they are).
pub fn upsert_snapshots(c: &mut DbConnection, rows: &[SnapshotValues]) -> Result<(), AppError> {
    for chunk in rows.chunks(500) {
        dispatch!(c, |c| diesel::insert_into(customer_credit::table)
            .values(chunk)
            .on_conflict(customer_credit::customer_id)
            .do_update()
            .set((
                customer_credit::oldest_due_date.eq(excluded(customer_credit::oldest_due_date)),
                customer_credit::broken_promise_dates.eq(excluded(customer_credit::broken_promise_dates)),
                customer_credit::plan_defaulted_on.eq(excluded(customer_credit::plan_defaulted_on)),
                customer_credit::hold_reasons.eq(excluded(customer_credit::hold_reasons)),
                customer_credit::held_since.eq(excluded(customer_credit::held_since)),
                customer_credit::risk_signals.eq(excluded(customer_credit::risk_signals)),
                customer_credit::risk_computed_on.eq(excluded(customer_credit::risk_computed_on)),
                customer_credit::updated_at.eq(excluded(customer_credit::updated_at)),
                customer_credit::strategy_hold_since.eq(excluded(customer_credit::strategy_hold_since)),
                customer_credit::risk_baseline_on.eq(excluded(customer_credit::risk_baseline_on)),
            ))
            .execute(c))?;
    }
    Ok(())
}

/// Writes the receivables and unapplied cash of these exposure rows (open orders stay),
/// one upsert per 1 000 rows. The recomputation passes only the rows that changed.
pub fn write_exposures(c: &mut DbConnection, rows: &[ExposureRow]) -> Result<(), AppError> {
    for chunk in rows.chunks(1000) {
        dispatch!(c, |c| diesel::insert_into(credit_exposures::table)
            .values(chunk)
            .on_conflict((credit_exposures::customer_id, credit_exposures::currency))
            .do_update()
            .set((
                credit_exposures::open_receivables_minor.eq(excluded(credit_exposures::open_receivables_minor)),
                credit_exposures::unapplied_minor.eq(excluded(credit_exposures::unapplied_minor)),
                credit_exposures::updated_at.eq(excluded(credit_exposures::updated_at)),
            ))
            .execute(c))?;
    }
    Ok(())
}

/// Sets the open orders the ERP reports for a customer in one currency.
pub fn set_open_orders(
    c: &mut DbConnection,
    org_id: i64,
    customer_id: i64,
    currency: &str,
    amount_minor: i64,
) -> Result<(), AppError> {
    let row = ExposureRow {
        customer_id,
        currency: currency.to_string(),
        org_id,
        open_receivables_minor: 0,
        unapplied_minor: 0,
        open_orders_minor: amount_minor,
        updated_at: now(),
    };
    dispatch!(c, |c| diesel::insert_into(credit_exposures::table)
        .values(&row)
        .on_conflict((credit_exposures::customer_id, credit_exposures::currency))
        .do_update()
        .set((
            credit_exposures::open_orders_minor.eq(excluded(credit_exposures::open_orders_minor)),
            credit_exposures::updated_at.eq(excluded(credit_exposures::updated_at)),
        ))
        .execute(c))?;
    Ok(())
}

/// Records (or clears, with `None`) a manual release of a customer's hold.
pub fn set_release(
    c: &mut DbConnection,
    org_id: i64,
    customer_id: i64,
    until: Option<NaiveDate>,
    reason: Option<&str>,
    by: Option<&str>,
) -> Result<(), AppError> {
    let at = now();
    dispatch!(c, |c| diesel::insert_into(customer_credit::table)
        .values((
            customer_credit::customer_id.eq(customer_id),
            customer_credit::org_id.eq(org_id),
            customer_credit::release_until.eq(until),
            customer_credit::release_reason.eq(reason),
            customer_credit::released_by.eq(by),
            customer_credit::updated_at.eq(at),
        ))
        .on_conflict(customer_credit::customer_id)
        .do_update()
        .set((
            customer_credit::release_until.eq(until),
            customer_credit::release_reason.eq(reason),
            customer_credit::released_by.eq(by),
            customer_credit::updated_at.eq(at),
        ))
        .execute(c))?;
    Ok(())
}

/// The derived credit and risk columns of a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerCreditColumns {
    pub credit_status: String,
    pub risk_class: Option<String>,
    pub risk_score: i32,
    pub flag_broken_promise: bool,
    pub flag_over_limit: bool,
    pub flag_at_risk: bool,
    pub flag_in_dispute: bool,
    pub flag_with_agency: bool,
    pub flag_legal: bool,
}

/// Writes the derived credit and risk columns of the customers whose values changed; their
/// version and `updated_at` move on, as their representation changed. Customers that end up
/// with the same values share one `UPDATE … WHERE id IN (…)`: a handful of statements per
/// batch of a recomputation instead of one per customer.
pub fn set_customer_columns(
    c: &mut DbConnection,
    org_id: i64,
    changed: &[(i64, CustomerCreditColumns)],
) -> Result<(), AppError> {
    let mut groups: Vec<(&CustomerCreditColumns, Vec<i64>)> = Vec::new();
    for (id, v) in changed {
        match groups.iter_mut().find(|(g, _)| *g == v) {
            Some((_, ids)) => ids.push(*id),
            None => groups.push((v, vec![*id])),
        }
    }
    let at = crate::db::now();
    for (v, ids) in &groups {
        for chunk in ids.chunks(1000) {
            diesel::update(
                customers::table
                    .filter(customers::org_id.eq(org_id))
                    .filter(customers::id.eq_any(chunk)),
            )
            .set((
                customers::credit_status.eq(&v.credit_status),
                customers::risk_class.eq(&v.risk_class),
                customers::risk_score.eq(v.risk_score),
                customers::flag_broken_promise.eq(v.flag_broken_promise),
                customers::flag_over_limit.eq(v.flag_over_limit),
                customers::flag_at_risk.eq(v.flag_at_risk),
                customers::flag_in_dispute.eq(v.flag_in_dispute),
                customers::flag_with_agency.eq(v.flag_with_agency),
                customers::flag_legal.eq(v.flag_legal),
                // The flags are part of the customer as the API shows it: an ERP pulling
                // `updated_since` and a client holding an ETag must see that it changed.
                customers::version.eq(customers::version + 1),
                customers::updated_at.eq(at),
            ))
            .execute(c)?;
        }
    }
    Ok(())
}

/// Sets a customer's limit, terms and class by a credit decision (a change of customer
/// data: its version moves on).
pub fn set_customer_terms(
    c: &mut DbConnection,
    org_id: i64,
    customer_id: i64,
    limit_minor: Option<i64>,
    terms_days: i32,
    risk_class: &str,
) -> Result<(), AppError> {
    diesel::update(
        customers::table
            .filter(customers::org_id.eq(org_id))
            .filter(customers::id.eq(customer_id)),
    )
    .set((
        customers::credit_limit_minor.eq(limit_minor),
        customers::payment_terms_days.eq(terms_days),
        customers::risk_class.eq(risk_class),
        customers::version.eq(customers::version + 1),
        customers::updated_at.eq(now()),
    ))
    .execute(c)?;
    Ok(())
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = credit_limit_history)]
pub struct HistoryRow {
    pub id: i64,
    pub org_id: i64,
    pub customer_id: i64,
    pub application_id: Option<i64>,
    pub currency: String,
    pub previous_limit_minor: Option<i64>,
    pub new_limit_minor: Option<i64>,
    pub previous_terms_days: i32,
    pub new_terms_days: i32,
    pub previous_risk_class: Option<String>,
    pub new_risk_class: Option<String>,
    pub changed_by: String,
    pub reason: Option<String>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = credit_limit_history, treat_none_as_default_value = false)]
pub struct NewHistory {
    pub org_id: i64,
    pub customer_id: i64,
    pub application_id: Option<i64>,
    pub currency: String,
    pub previous_limit_minor: Option<i64>,
    pub new_limit_minor: Option<i64>,
    pub previous_terms_days: i32,
    pub new_terms_days: i32,
    pub previous_risk_class: Option<String>,
    pub new_risk_class: Option<String>,
    pub changed_by: String,
    pub reason: Option<String>,
    pub created_at: NaiveDateTime,
}

pub fn add_history(c: &mut DbConnection, row: &NewHistory) -> Result<(), AppError> {
    diesel::insert_into(credit_limit_history::table)
        .values(row)
        .execute(c)?;
    Ok(())
}

/// The latest credit decisions of a customer, newest first.
pub fn history(c: &mut DbConnection, org_id: i64, customer_id: i64, limit: i64) -> Result<Vec<HistoryRow>, AppError> {
    Ok(credit_limit_history::table
        .filter(credit_limit_history::org_id.eq(org_id))
        .filter(credit_limit_history::customer_id.eq(customer_id))
        .select(HistoryRow::as_select())
        .order(credit_limit_history::id.desc())
        .limit(limit)
        .load(c)?)
}

// ---- set-based reads for the recomputation -------------------------------------------

/// Unapplied cash: (customer, currency, amount − allocated) of live payments.
pub fn unapplied(c: &mut DbConnection, customer_ids: &[i64]) -> Result<Vec<(i64, String, i64)>, AppError> {
    let rows: Vec<(i64, String, i64, i64)> = payments::table
        .filter(payments::customer_id.eq_any(customer_ids))
        .filter(payments::allocated_minor.lt(payments::amount_minor))
        .filter(payments::status.ne("reversed"))
        .select((
            payments::customer_id,
            payments::currency,
            payments::amount_minor,
            payments::allocated_minor,
        ))
        .load(c)?;
    Ok(rows.into_iter().map(|(cu, cur, a, al)| (cu, cur, a - al)).collect())
}

/// Risk facts of a kind since a date: (customer, occurred on).
pub fn facts_since(
    c: &mut DbConnection,
    customer_ids: &[i64],
    kind: &str,
    since: NaiveDate,
) -> Result<Vec<(i64, NaiveDate)>, AppError> {
    Ok(risk_facts::table
        .filter(risk_facts::customer_id.eq_any(customer_ids))
        .filter(risk_facts::kind.eq(kind))
        .filter(risk_facts::occurred_on.gt(since))
        .select((risk_facts::customer_id, risk_facts::occurred_on))
        .load(c)?)
}

/// Defaulted plans: (customer, defaulted on).
pub fn plan_defaults(c: &mut DbConnection, customer_ids: &[i64]) -> Result<Vec<(i64, Option<NaiveDate>)>, AppError> {
    Ok(payment_plans::table
        .filter(payment_plans::customer_id.eq_any(customer_ids))
        .filter(payment_plans::status.eq("defaulted"))
        .select((payment_plans::customer_id, payment_plans::defaulted_on))
        .load(c)?)
}

/// Invoices paid in full since a date: (customer, currency, amount, issue, due, paid on).
pub type PaidDoc = (i64, String, i64, NaiveDate, NaiveDate, Option<NaiveDate>);

pub fn paid_since(c: &mut DbConnection, customer_ids: &[i64], since: NaiveDate) -> Result<Vec<PaidDoc>, AppError> {
    Ok(invoices::table
        .filter(invoices::customer_id.eq_any(customer_ids))
        .filter(invoices::kind.ne("credit_note"))
        .filter(invoices::status.eq("paid"))
        .filter(invoices::paid_on.gt(since))
        .select((
            invoices::customer_id,
            invoices::currency,
            invoices::amount_minor,
            invoices::issue_date,
            invoices::due_date,
            invoices::paid_on,
        ))
        .load(c)?)
}

/// A document the recomputation reads ([`credit_documents`]): open, or an invoice in one
/// of the history windows.
#[derive(Debug, Clone, Queryable)]
pub struct CreditDoc {
    pub customer_id: i64,
    pub currency: String,
    pub kind: String,
    pub amount_minor: i64,
    pub open_minor: i64,
    pub disputed_minor: i64,
    pub issue_date: NaiveDate,
    pub due_date: NaiveDate,
    pub paid_on: Option<NaiveDate>,
    pub status: String,
    /// Whether a live payment allocation was applied to it after `paid_into_after`.
    pub paid_into: bool,
}

/// The windows of a customer's history that the risk assessment reads (each bound
/// exclusive).
#[derive(Debug, Clone, Copy)]
pub struct HistoryWindows {
    /// Invoices paid in full after this date.
    pub paid_after: NaiveDate,
    /// Invoices that received payment money after this date.
    pub paid_into_after: NaiveDate,
    /// Invoices issued after this date.
    pub issued_after: NaiveDate,
}

/// These customers' open documents and their invoices (not credit notes) that fall in
/// any of the history windows, in one read: the open documents and the history are mostly
/// the same heap pages, and none of the window dates leads an index. Whether an invoice
/// was paid into is one probe of `allocations_invoice_applied` per invoice. `None` when
/// there are more than `limit` documents (read one past it, so that a caller can split its
/// customers instead of holding them all).
pub fn credit_documents(
    c: &mut DbConnection,
    customer_ids: &[i64],
    windows: HistoryWindows,
    limit: Option<i64>,
) -> Result<Option<Vec<CreditDoc>>, AppError> {
    let paid_into = diesel::dsl::exists(
        allocations::table
            .filter(allocations::invoice_id.eq(invoices::id))
            .filter(allocations::payment_id.is_not_null())
            .filter(allocations::released_at.is_null())
            .filter(allocations::applied_on.gt(windows.paid_into_after)),
    );
    let in_history = invoices::kind.ne("credit_note").and(
        invoices::status
            .eq("paid")
            .and(invoices::paid_on.gt(windows.paid_after))
            .or(invoices::issue_date.gt(windows.issued_after))
            .or(paid_into),
    );
    let mut query = invoices::table
        .filter(invoices::customer_id.eq_any(customer_ids))
        .filter(invoices::open_minor.gt(0).or(in_history))
        .select((
            invoices::customer_id,
            invoices::currency,
            invoices::kind,
            invoices::amount_minor,
            invoices::open_minor,
            invoices::disputed_minor,
            invoices::issue_date,
            invoices::due_date,
            invoices::paid_on,
            invoices::status,
            paid_into,
        ))
        .into_boxed();
    if let Some(limit) = limit {
        query = query.limit(limit.saturating_add(1));
    }
    let docs: Vec<CreditDoc> = query.load(c)?;
    Ok((limit.is_none_or(|l| docs.len() as i64 <= l)).then_some(docs))
}

/// Customers of disputes raised since a date (one entry per dispute).
pub fn disputes_since(c: &mut DbConnection, customer_ids: &[i64], since: NaiveDate) -> Result<Vec<i64>, AppError> {
    Ok(disputes::table
        .filter(disputes::customer_id.eq_any(customer_ids))
        .filter(disputes::raised_on.gt(since))
        .select(disputes::customer_id)
        .load(c)?)
}
