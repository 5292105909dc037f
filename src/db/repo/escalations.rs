//! Escalations (credit holds, agency placements, legal cases, repossession offers), the
//! invoices each covers and their history of transitions; and the set-based reads the
//! collection engine and credit control need (open escalations of a page of invoices or a
//! chunk of customers).

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use crate::db::schema::{escalation_invoices, escalation_transitions, escalations, invoices};
use crate::db::{DbConnection, now};
use crate::dispatch;
use crate::error::AppError;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = escalations)]
pub struct EscalationRow {
    pub id: i64,
    pub org_id: i64,
    pub customer_id: i64,
    pub kind: String,
    pub status: String,
    pub is_open: bool,
    pub currency: String,
    pub recovered_minor: i64,
    pub commission_minor: i64,
    pub action_id: Option<i64>,
    pub opened_on: NaiveDate,
    pub agency: Option<String>,
    pub agency_reference: Option<String>,
    pub placed_on: Option<NaiveDate>,
    pub law_firm: Option<String>,
    pub court: Option<String>,
    pub filing_reference: Option<String>,
    pub filed_on: Option<NaiveDate>,
    pub judgment_on: Option<NaiveDate>,
    pub closed_on: Option<NaiveDate>,
    pub reason: Option<String>,
    pub notes: Option<String>,
    pub created_by: String,
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = escalations, treat_none_as_default_value = false)]
pub struct NewEscalation {
    pub org_id: i64,
    pub customer_id: i64,
    pub kind: String,
    pub status: String,
    pub is_open: bool,
    pub currency: String,
    pub action_id: Option<i64>,
    pub opened_on: NaiveDate,
    pub agency: Option<String>,
    pub law_firm: Option<String>,
    pub reason: Option<String>,
    pub notes: Option<String>,
    pub created_by: String,
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = escalation_transitions)]
pub struct TransitionRow {
    pub id: i64,
    pub escalation_id: i64,
    pub from_status: Option<String>,
    pub to_status: String,
    pub on_date: NaiveDate,
    pub reason: Option<String>,
    pub created_by: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = escalation_transitions, treat_none_as_default_value = false)]
pub struct NewTransition {
    pub escalation_id: i64,
    pub from_status: Option<String>,
    pub to_status: String,
    pub on_date: NaiveDate,
    pub reason: Option<String>,
    pub created_by: String,
    pub created_at: NaiveDateTime,
}

/// What a transition writes besides the status (`None` keeps the stored value).
#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = escalations)]
pub struct EscalationChanges {
    pub status: Option<String>,
    pub is_open: Option<bool>,
    pub agency: Option<String>,
    pub agency_reference: Option<String>,
    pub placed_on: Option<NaiveDate>,
    pub law_firm: Option<String>,
    pub court: Option<String>,
    pub filing_reference: Option<String>,
    pub filed_on: Option<NaiveDate>,
    pub judgment_on: Option<NaiveDate>,
    pub closed_on: Option<NaiveDate>,
    pub recovered_minor: Option<i64>,
    pub commission_minor: Option<i64>,
}

/// Inserts escalations (500 per statement) and returns them with their ids.
pub fn insert_many(c: &mut DbConnection, rows: &[NewEscalation]) -> Result<Vec<EscalationRow>, AppError> {
    let mut out = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(500) {
        let inserted: Vec<EscalationRow> = dispatch!(c, |c| diesel::insert_into(escalations::table)
            .values(chunk)
            .returning(EscalationRow::as_returning())
            .get_results(c))?;
        out.extend(inserted);
    }
    Ok(out)
}

/// Links invoices to escalations (escalation, invoice, amount); a link that exists stays.
pub fn insert_invoices(c: &mut DbConnection, rows: &[(i64, i64, i64)]) -> Result<(), AppError> {
    for chunk in rows.chunks(1000) {
        let values: Vec<_> = chunk
            .iter()
            .map(|(e, i, a)| {
                (
                    escalation_invoices::escalation_id.eq(*e),
                    escalation_invoices::invoice_id.eq(*i),
                    escalation_invoices::amount_minor.eq(*a),
                )
            })
            .collect();
        dispatch!(c, |c| diesel::insert_into(escalation_invoices::table)
            .values(&values)
            .on_conflict_do_nothing()
            .execute(c))?;
    }
    Ok(())
}

pub fn insert_transitions(c: &mut DbConnection, rows: &[NewTransition]) -> Result<(), AppError> {
    for chunk in rows.chunks(1000) {
        dispatch!(c, |c| diesel::insert_into(escalation_transitions::table)
            .values(chunk)
            .execute(c))?;
    }
    Ok(())
}

pub fn find(c: &mut DbConnection, org_id: i64, id: i64) -> Result<EscalationRow, AppError> {
    escalations::table
        .filter(escalations::org_id.eq(org_id))
        .filter(escalations::id.eq(id))
        .select(EscalationRow::as_select())
        .first(c)
        .optional()?
        .ok_or_else(|| AppError::not_found("escalation"))
}

#[derive(Debug, Default, Clone)]
pub struct EscalationFilter {
    pub customer_id: Option<i64>,
    pub invoice_id: Option<i64>,
    pub kind: Option<String>,
    pub status: Option<String>,
    pub open: Option<bool>,
    pub updated_since: Option<NaiveDateTime>,
}

pub fn list(
    c: &mut DbConnection,
    org_id: i64,
    f: &EscalationFilter,
    after_id: i64,
    limit: i64,
) -> Result<Vec<EscalationRow>, AppError> {
    let mut q = escalations::table
        .filter(escalations::org_id.eq(org_id))
        .filter(escalations::id.gt(after_id))
        .select(EscalationRow::as_select())
        .order(escalations::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(v) = f.customer_id {
        q = q.filter(escalations::customer_id.eq(v));
    }
    if let Some(v) = f.invoice_id {
        q = q.filter(
            escalations::id.eq_any(
                escalation_invoices::table
                    .filter(escalation_invoices::invoice_id.eq(v))
                    .select(escalation_invoices::escalation_id),
            ),
        );
    }
    if let Some(v) = &f.kind {
        q = q.filter(escalations::kind.eq(v.clone()));
    }
    if let Some(v) = &f.status {
        q = q.filter(escalations::status.eq(v.clone()));
    }
    if let Some(v) = f.open {
        q = q.filter(escalations::is_open.eq(v));
    }
    if let Some(v) = f.updated_since {
        q = q.filter(escalations::updated_at.ge(v));
    }
    Ok(q.load(c)?)
}

/// (escalation, invoice, amount) links of some escalations.
pub fn invoices_of(c: &mut DbConnection, escalation_ids: &[i64]) -> Result<Vec<(i64, i64, i64)>, AppError> {
    let mut out = Vec::new();
    for chunk in escalation_ids.chunks(1000) {
        out.extend(
            escalation_invoices::table
                .filter(escalation_invoices::escalation_id.eq_any(chunk))
                .select((
                    escalation_invoices::escalation_id,
                    escalation_invoices::invoice_id,
                    escalation_invoices::amount_minor,
                ))
                .order((escalation_invoices::escalation_id, escalation_invoices::invoice_id))
                .load::<(i64, i64, i64)>(c)?,
        );
    }
    Ok(out)
}

pub fn transitions_of(c: &mut DbConnection, escalation_ids: &[i64]) -> Result<Vec<TransitionRow>, AppError> {
    let mut out = Vec::new();
    for chunk in escalation_ids.chunks(1000) {
        out.extend(
            escalation_transitions::table
                .filter(escalation_transitions::escalation_id.eq_any(chunk))
                .select(TransitionRow::as_select())
                .order(escalation_transitions::id.asc())
                .load(c)?,
        );
    }
    Ok(out)
}

/// (invoice, kind) for the open escalations covering any of these invoices.
pub fn open_kinds_of_invoices(c: &mut DbConnection, invoice_ids: &[i64]) -> Result<Vec<(i64, String)>, AppError> {
    let mut out = Vec::new();
    for chunk in invoice_ids.chunks(1000) {
        out.extend(
            escalation_invoices::table
                .inner_join(escalations::table)
                .filter(escalation_invoices::invoice_id.eq_any(chunk))
                .filter(escalations::is_open.eq(true))
                .select((escalation_invoices::invoice_id, escalations::kind))
                .load::<(i64, String)>(c)?,
        );
    }
    Ok(out)
}

/// (customer, kind, opened on) of the open escalations of these customers.
pub fn open_of_customers(
    c: &mut DbConnection,
    customer_ids: &[i64],
) -> Result<Vec<(i64, String, NaiveDate)>, AppError> {
    let mut out = Vec::new();
    for chunk in customer_ids.chunks(1000) {
        out.extend(
            escalations::table
                .filter(escalations::customer_id.eq_any(chunk))
                .filter(escalations::is_open.eq(true))
                .select((escalations::customer_id, escalations::kind, escalations::opened_on))
                .load::<(i64, String, NaiveDate)>(c)?,
        );
    }
    Ok(out)
}

/// Open escalations of one kind for these customers.
pub fn open_of_kind(c: &mut DbConnection, customer_ids: &[i64], kind: &str) -> Result<Vec<EscalationRow>, AppError> {
    let mut out = Vec::new();
    for chunk in customer_ids.chunks(1000) {
        out.extend(
            escalations::table
                .filter(escalations::customer_id.eq_any(chunk))
                .filter(escalations::is_open.eq(true))
                .filter(escalations::kind.eq(kind))
                .select(EscalationRow::as_select())
                .load(c)?,
        );
    }
    Ok(out)
}

/// (escalation, open amount of a covered invoice) for these escalations.
pub fn covered_open_amounts(c: &mut DbConnection, escalation_ids: &[i64]) -> Result<Vec<(i64, i64)>, AppError> {
    let mut out = Vec::new();
    for chunk in escalation_ids.chunks(1000) {
        out.extend(
            escalation_invoices::table
                .inner_join(invoices::table)
                .filter(escalation_invoices::escalation_id.eq_any(chunk))
                .select((escalation_invoices::escalation_id, invoices::open_minor))
                .load::<(i64, i64)>(c)?,
        );
    }
    Ok(out)
}

/// The action ids among these that already opened an escalation.
pub fn actions_with_escalations(c: &mut DbConnection, action_ids: &[i64]) -> Result<Vec<i64>, AppError> {
    let mut out = Vec::new();
    for chunk in action_ids.chunks(1000) {
        out.extend(
            escalations::table
                .filter(escalations::action_id.eq_any(chunk))
                .select(escalations::action_id)
                .load::<Option<i64>>(c)?
                .into_iter()
                .flatten(),
        );
    }
    Ok(out)
}

/// Applies a transition if the escalation is still at `version`; false when it moved.
pub fn update(c: &mut DbConnection, id: i64, version: i64, changes: &EscalationChanges) -> Result<bool, AppError> {
    let n = diesel::update(
        escalations::table
            .filter(escalations::id.eq(id))
            .filter(escalations::version.eq(version)),
    )
    .set((
        changes,
        escalations::version.eq(version + 1),
        escalations::updated_at.eq(now()),
    ))
    .execute(c)?;
    Ok(n == 1)
}

/// Closes several escalations in one statement (the automatic release of credit holds).
pub fn close_many(c: &mut DbConnection, ids: &[i64], status: &str, on: NaiveDate) -> Result<(), AppError> {
    for chunk in ids.chunks(1000) {
        diesel::update(escalations::table.filter(escalations::id.eq_any(chunk)))
            .set((
                escalations::status.eq(status),
                escalations::is_open.eq(false),
                escalations::closed_on.eq(on),
                escalations::version.eq(escalations::version + 1),
                escalations::updated_at.eq(now()),
            ))
            .execute(c)?;
    }
    Ok(())
}
