//! Collection runs, the actions they plan (with the invoices each covers), and the
//! contact log.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use diesel::upsert::excluded;

use crate::db::schema::{action_invoices, actions, activities, collection_runs, invoice_dunning};
use crate::db::{DbConnection, now};
use crate::dispatch;
use crate::error::AppError;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = collection_runs)]
pub struct RunRow {
    pub id: i64,
    pub org_id: i64,
    pub as_of: NaiveDate,
    pub dry_run: bool,
    pub status: String,
    pub started_at: NaiveDateTime,
    pub finished_at: Option<NaiveDateTime>,
    pub customers_examined: i64,
    pub invoices_examined: i64,
    pub actions_created: i64,
    pub summary: String,
    pub created_by: String,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = actions)]
pub struct ActionRow {
    pub id: i64,
    pub org_id: i64,
    pub run_id: Option<i64>,
    pub customer_id: i64,
    pub strategy_version_id: Option<i64>,
    pub step_level: i32,
    pub step_key: String,
    pub action: String,
    pub tone: String,
    pub status: String,
    pub assignee: Option<String>,
    pub requires_approval: bool,
    pub scheduled_on: NaiveDate,
    pub language: String,
    pub recipient: Option<String>,
    pub subject: Option<String>,
    pub body_text: Option<String>,
    pub body_html: Option<String>,
    pub approved_by: Option<String>,
    pub completed_at: Option<NaiveDateTime>,
    pub outcome: Option<String>,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub next_attempt_at: Option<NaiveDateTime>,
    pub lease_until: Option<NaiveDateTime>,
    pub claim_token: Option<String>,
    pub sent_at: Option<NaiveDateTime>,
    pub message_id: Option<String>,
}

/// What callers need back from an inserted action: its id and the fields that decide
/// follow-up work (escalations, links), without the letter bodies.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = actions)]
pub struct ActionHead {
    pub id: i64,
    pub customer_id: i64,
    pub step_key: String,
    pub action: String,
    pub status: String,
    pub approved_by: Option<String>,
}

impl From<&ActionRow> for ActionHead {
    fn from(row: &ActionRow) -> ActionHead {
        ActionHead {
            id: row.id,
            customer_id: row.customer_id,
            step_key: row.step_key.clone(),
            action: row.action.clone(),
            status: row.status.clone(),
            approved_by: row.approved_by.clone(),
        }
    }
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = actions, treat_none_as_default_value = false)]
pub struct NewAction {
    pub org_id: i64,
    pub run_id: Option<i64>,
    pub customer_id: i64,
    pub strategy_version_id: Option<i64>,
    pub step_level: i32,
    pub step_key: String,
    pub action: String,
    pub tone: String,
    pub status: String,
    pub assignee: Option<String>,
    pub requires_approval: bool,
    pub scheduled_on: NaiveDate,
    pub language: String,
    pub recipient: Option<String>,
    pub subject: Option<String>,
    pub body_text: Option<String>,
    pub body_html: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl NewAction {
    /// Size of the rendered letter this action carries.
    fn text_bytes(&self) -> usize {
        [&self.subject, &self.body_text, &self.body_html]
            .iter()
            .map(|t| t.as_ref().map_or(0, String::len))
            .sum()
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = activities)]
pub struct ActivityRow {
    pub id: i64,
    pub org_id: i64,
    pub customer_id: i64,
    pub action_id: Option<i64>,
    pub invoice_ids: String,
    pub channel: String,
    pub direction: String,
    pub outcome: String,
    pub notes: Option<String>,
    pub next_action_on: Option<NaiveDate>,
    pub created_by: String,
    pub created_at: NaiveDateTime,
}

/// Starts a run; fails with a conflict while another run of the organisation is running.
pub fn start_run(
    c: &mut DbConnection,
    org_id: i64,
    as_of: NaiveDate,
    dry_run: bool,
    actor: &str,
) -> Result<i64, AppError> {
    let result: Result<i64, AppError> = dispatch!(c, |c| diesel::insert_into(collection_runs::table)
        .values((
            collection_runs::org_id.eq(org_id),
            collection_runs::as_of.eq(as_of),
            collection_runs::dry_run.eq(dry_run),
            collection_runs::status.eq("running"),
            collection_runs::started_at.eq(now()),
            collection_runs::created_by.eq(actor),
        ))
        .returning(collection_runs::id)
        .get_result(c))
    .map_err(AppError::from);
    result.map_err(|e| match e {
        AppError::Conflict(_) => {
            AppError::Conflict("another collection run of this organisation is in progress".into())
        }
        other => other,
    })
}

/// Marks runs left `running` for over an hour (a crashed instance) as failed.
pub fn expire_stale(c: &mut DbConnection, org_id: i64) -> Result<(), AppError> {
    diesel::update(
        collection_runs::table
            .filter(collection_runs::org_id.eq(org_id))
            .filter(collection_runs::status.eq("running"))
            .filter(collection_runs::started_at.lt(now() - chrono::Duration::hours(1))),
    )
    .set((
        collection_runs::status.eq("failed"),
        collection_runs::finished_at.eq(now()),
    ))
    .execute(c)?;
    Ok(())
}

pub fn finish_run(
    c: &mut DbConnection,
    id: i64,
    status: &str,
    customers: i64,
    invoices: i64,
    actions_created: i64,
    summary: &str,
) -> Result<(), AppError> {
    diesel::update(collection_runs::table.find(id))
        .set((
            collection_runs::status.eq(status),
            collection_runs::finished_at.eq(now()),
            collection_runs::customers_examined.eq(customers),
            collection_runs::invoices_examined.eq(invoices),
            collection_runs::actions_created.eq(actions_created),
            collection_runs::summary.eq(summary),
        ))
        .execute(c)?;
    Ok(())
}

pub fn find_run(c: &mut DbConnection, org_id: i64, id: i64) -> Result<RunRow, AppError> {
    collection_runs::table
        .filter(collection_runs::org_id.eq(org_id))
        .filter(collection_runs::id.eq(id))
        .select(RunRow::as_select())
        .first(c)
        .optional()?
        .ok_or_else(|| AppError::not_found("collection run"))
}

/// The completed real run of a date, if any.
pub fn completed_run_on(c: &mut DbConnection, org_id: i64, as_of: NaiveDate) -> Result<Option<RunRow>, AppError> {
    Ok(collection_runs::table
        .filter(collection_runs::org_id.eq(org_id))
        .filter(collection_runs::as_of.eq(as_of))
        .filter(collection_runs::dry_run.eq(false))
        .filter(collection_runs::status.eq("completed"))
        .select(RunRow::as_select())
        .first(c)
        .optional()?)
}

/// The latest date of a completed real run.
pub fn last_completed_date(c: &mut DbConnection, org_id: i64) -> Result<Option<NaiveDate>, AppError> {
    Ok(collection_runs::table
        .filter(collection_runs::org_id.eq(org_id))
        .filter(collection_runs::dry_run.eq(false))
        .filter(collection_runs::status.eq("completed"))
        .select(diesel::dsl::max(collection_runs::as_of))
        .first::<Option<NaiveDate>>(c)?)
}

pub fn list_runs(c: &mut DbConnection, org_id: i64, after_id: i64, limit: i64) -> Result<Vec<RunRow>, AppError> {
    Ok(collection_runs::table
        .filter(collection_runs::org_id.eq(org_id))
        .filter(collection_runs::id.gt(after_id))
        .select(RunRow::as_select())
        .order(collection_runs::id.asc())
        .limit(limit)
        .load(c)?)
}

/// Bytes of letter text bound into one `INSERT` of actions: statements are cut at this
/// size (or 500 rows) so the bound copies of the bodies (diesel's bind buffer, libpq's
/// output buffer, which keeps its largest size for the connection's life) stay small.
const INSERT_BYTES: usize = 512 * 1024;

/// Inserts the actions of one chunk of customers and returns their heads (with their ids),
/// in the order given.
pub fn insert_actions(c: &mut DbConnection, rows: &[NewAction]) -> Result<Vec<ActionHead>, AppError> {
    let mut out = Vec::with_capacity(rows.len());
    let mut start = 0;
    while start < rows.len() {
        let mut end = start;
        let mut bytes = 0;
        while end < rows.len() && end - start < 500 && (end == start || bytes < INSERT_BYTES) {
            bytes += rows[end].text_bytes();
            end += 1;
        }
        let chunk = &rows[start..end];
        let inserted: Vec<ActionHead> = dispatch!(c, |c| diesel::insert_into(actions::table)
            .values(chunk)
            .returning(ActionHead::as_returning())
            .get_results(c))?;
        out.extend(inserted);
        start = end;
    }
    Ok(out)
}

pub fn insert_action_invoices(c: &mut DbConnection, rows: &[(i64, i64, i32)]) -> Result<(), AppError> {
    for chunk in rows.chunks(1000) {
        let values: Vec<_> = chunk
            .iter()
            .map(|(a, i, l)| {
                (
                    action_invoices::action_id.eq(*a),
                    action_invoices::invoice_id.eq(*i),
                    action_invoices::step_level.eq(*l),
                )
            })
            .collect();
        dispatch!(c, |c| diesel::insert_into(action_invoices::table)
            .values(&values)
            .execute(c))?;
    }
    Ok(())
}

/// An invoice's place on the dunning ladder (`invoice_dunning`; no row = level 0, never
/// dunned, never re-sent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = invoice_dunning)]
pub struct DunningState {
    /// How far along the ladder the invoice is (0 = no step done).
    pub level: i32,
    pub last_dunned_on: Option<NaiveDate>,
    /// Re-sent on this date: offsets count from here when later than the due date.
    pub clock_start: Option<NaiveDate>,
}

/// The dunning state of these invoices that have one.
pub fn dunning_states(
    c: &mut DbConnection,
    invoice_ids: &[i64],
) -> Result<std::collections::HashMap<i64, DunningState>, AppError> {
    let mut out = std::collections::HashMap::new();
    for chunk in invoice_ids.chunks(1000) {
        out.extend(
            invoice_dunning::table
                .filter(invoice_dunning::invoice_id.eq_any(chunk))
                .select((invoice_dunning::invoice_id, DunningState::as_select()))
                .load::<(i64, DunningState)>(c)?,
        );
    }
    Ok(out)
}

/// Records that invoices reached a level on a date.
pub fn set_dunning_level(c: &mut DbConnection, invoice_ids: &[i64], level: i32, on: NaiveDate) -> Result<(), AppError> {
    for chunk in invoice_ids.chunks(1000) {
        let rows: Vec<_> = chunk
            .iter()
            .map(|id| {
                (
                    invoice_dunning::invoice_id.eq(*id),
                    invoice_dunning::level.eq(level),
                    invoice_dunning::last_dunned_on.eq(Some(on)),
                )
            })
            .collect();
        dispatch!(c, |c| diesel::insert_into(invoice_dunning::table)
            .values(&rows)
            .on_conflict(invoice_dunning::invoice_id)
            .do_update()
            .set((
                invoice_dunning::level.eq(excluded(invoice_dunning::level)),
                invoice_dunning::last_dunned_on.eq(excluded(invoice_dunning::last_dunned_on)),
            ))
            .execute(c))?;
    }
    Ok(())
}

/// Restarts the clock of re-sent invoices (P16, P18).
pub fn restart_clock(c: &mut DbConnection, invoice_ids: &[i64], on: NaiveDate) -> Result<(), AppError> {
    for chunk in invoice_ids.chunks(1000) {
        let rows: Vec<_> = chunk
            .iter()
            .map(|id| {
                (
                    invoice_dunning::invoice_id.eq(*id),
                    invoice_dunning::level.eq(0),
                    invoice_dunning::last_dunned_on.eq(Some(on)),
                    invoice_dunning::clock_start.eq(Some(on)),
                )
            })
            .collect();
        dispatch!(c, |c| diesel::insert_into(invoice_dunning::table)
            .values(&rows)
            .on_conflict(invoice_dunning::invoice_id)
            .do_update()
            .set((
                invoice_dunning::level.eq(excluded(invoice_dunning::level)),
                invoice_dunning::last_dunned_on.eq(excluded(invoice_dunning::last_dunned_on)),
                invoice_dunning::clock_start.eq(excluded(invoice_dunning::clock_start)),
            ))
            .execute(c))?;
    }
    Ok(())
}

pub fn find_action(c: &mut DbConnection, org_id: i64, id: i64) -> Result<ActionRow, AppError> {
    actions::table
        .filter(actions::org_id.eq(org_id))
        .filter(actions::id.eq(id))
        .select(ActionRow::as_select())
        .first(c)
        .optional()?
        .ok_or_else(|| AppError::not_found("action"))
}

/// The organisation's action with this id, locked for the transaction.
pub fn lock_action(c: &mut DbConnection, org_id: i64, id: i64) -> Result<ActionRow, AppError> {
    crate::locked!(
        c,
        actions::table
            .filter(actions::org_id.eq(org_id))
            .filter(actions::id.eq(id))
            .select(ActionRow::as_select()),
        |q, c| q.first(c).optional()
    )?
    .ok_or_else(|| AppError::not_found("action"))
}

pub fn set_action_status(
    c: &mut DbConnection,
    id: i64,
    status: &str,
    approved_by: Option<&str>,
    outcome: Option<&str>,
) -> Result<(), AppError> {
    let at = now();
    let completed = matches!(status, "done" | "sent" | "cancelled" | "failed" | "skipped").then_some(at);
    diesel::update(actions::table.find(id))
        .set((
            actions::status.eq(status),
            actions::updated_at.eq(at),
            actions::completed_at.eq(completed),
        ))
        .execute(c)?;
    if let Some(by) = approved_by {
        diesel::update(actions::table.find(id))
            .set(actions::approved_by.eq(by))
            .execute(c)?;
    }
    if let Some(o) = outcome {
        diesel::update(actions::table.find(id))
            .set(actions::outcome.eq(o))
            .execute(c)?;
    }
    Ok(())
}

pub fn invoices_of_actions(c: &mut DbConnection, action_ids: &[i64]) -> Result<Vec<(i64, i64, i32)>, AppError> {
    let mut out = Vec::new();
    for chunk in action_ids.chunks(1000) {
        out.extend(
            action_invoices::table
                .filter(action_invoices::action_id.eq_any(chunk))
                .select((
                    action_invoices::action_id,
                    action_invoices::invoice_id,
                    action_invoices::step_level,
                ))
                .load::<(i64, i64, i32)>(c)?,
        );
    }
    Ok(out)
}

#[derive(Debug, Default, Clone)]
pub struct ActionFilter {
    pub customer_id: Option<i64>,
    pub invoice_id: Option<i64>,
    pub status: Option<String>,
    pub channel: Option<String>,
    pub step_key: Option<String>,
    pub run_id: Option<i64>,
    pub assignee: Option<String>,
}

pub fn list_actions(
    c: &mut DbConnection,
    org_id: i64,
    f: &ActionFilter,
    after_id: i64,
    limit: i64,
) -> Result<Vec<ActionRow>, AppError> {
    let mut q = actions::table
        .filter(actions::org_id.eq(org_id))
        .filter(actions::id.gt(after_id))
        .select(ActionRow::as_select())
        .order(actions::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(v) = f.customer_id {
        q = q.filter(actions::customer_id.eq(v));
    }
    if let Some(v) = f.invoice_id {
        q = q.filter(
            actions::id.eq_any(
                action_invoices::table
                    .filter(action_invoices::invoice_id.eq(v))
                    .select(action_invoices::action_id),
            ),
        );
    }
    if let Some(v) = &f.status {
        q = q.filter(actions::status.eq(v.clone()));
    }
    if let Some(v) = &f.channel {
        q = q.filter(actions::action.eq(v.clone()));
    }
    if let Some(v) = &f.step_key {
        q = q.filter(actions::step_key.eq(v.clone()));
    }
    if let Some(v) = f.run_id {
        q = q.filter(actions::run_id.eq(v));
    }
    if let Some(v) = &f.assignee {
        q = q.filter(actions::assignee.eq(v.clone()));
    }
    Ok(q.load(c)?)
}

/// Open (not yet delivered or done) actions covering any of these invoices: pending ones,
/// and e-mails whose delivery lease expired (their worker is gone; a message a live worker
/// is sending is left to it).
pub fn pending_actions_for_invoices(c: &mut DbConnection, invoice_ids: &[i64]) -> Result<Vec<i64>, AppError> {
    let mut out = Vec::new();
    let at = now();
    for chunk in invoice_ids.chunks(1000) {
        out.extend(
            actions::table
                .inner_join(action_invoices::table)
                .filter(action_invoices::invoice_id.eq_any(chunk))
                .filter(
                    actions::status
                        .eq_any(crate::db::repo::outbox::PENDING)
                        .or(actions::status.eq("sending").and(actions::lease_until.lt(at))),
                )
                .select(actions::id)
                .distinct()
                .load::<i64>(c)?,
        );
    }
    Ok(out)
}

pub struct NewActivity<'a> {
    pub org_id: i64,
    pub customer_id: i64,
    pub action_id: Option<i64>,
    pub invoice_ids: &'a str,
    pub channel: &'a str,
    pub direction: &'a str,
    pub outcome: &'a str,
    pub notes: Option<&'a str>,
    pub next_action_on: Option<NaiveDate>,
    pub created_by: &'a str,
}

pub fn insert_activity(c: &mut DbConnection, a: &NewActivity<'_>) -> Result<i64, AppError> {
    Ok(dispatch!(c, |c| diesel::insert_into(activities::table)
        .values((
            activities::org_id.eq(a.org_id),
            activities::customer_id.eq(a.customer_id),
            activities::action_id.eq(a.action_id),
            activities::invoice_ids.eq(a.invoice_ids),
            activities::channel.eq(a.channel),
            activities::direction.eq(a.direction),
            activities::outcome.eq(a.outcome),
            activities::notes.eq(a.notes),
            activities::next_action_on.eq(a.next_action_on),
            activities::created_by.eq(a.created_by),
            activities::created_at.eq(now()),
        ))
        .returning(activities::id)
        .get_result(c))?)
}

pub fn find_activity(c: &mut DbConnection, org_id: i64, id: i64) -> Result<ActivityRow, AppError> {
    activities::table
        .filter(activities::org_id.eq(org_id))
        .filter(activities::id.eq(id))
        .select(ActivityRow::as_select())
        .first(c)
        .optional()?
        .ok_or_else(|| AppError::not_found("activity"))
}

/// The latest contacts of a customer, newest first.
pub fn recent_activities(c: &mut DbConnection, customer_id: i64, limit: i64) -> Result<Vec<ActivityRow>, AppError> {
    Ok(activities::table
        .filter(activities::customer_id.eq(customer_id))
        .select(ActivityRow::as_select())
        .order(activities::id.desc())
        .limit(limit)
        .load(c)?)
}
