//! Collector tasks and the risk facts that feed risk signals. Both are keyed by their
//! source, so recording the same fact or task twice is a no-op.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use crate::db::schema::{risk_facts, tasks};
use crate::db::{DbConnection, now};
use crate::error::AppError;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = tasks)]
pub struct TaskRow {
    pub id: i64,
    pub org_id: i64,
    pub customer_id: i64,
    pub kind: String,
    pub priority: String,
    pub assignee: Option<String>,
    pub title: String,
    pub due_on: NaiveDate,
    pub status: String,
    pub source_id: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

pub struct NewTask<'a> {
    pub org_id: i64,
    pub customer_id: i64,
    pub kind: &'a str,
    pub priority: &'a str,
    pub assignee: Option<&'a str>,
    pub title: &'a str,
    pub due_on: NaiveDate,
    pub source_id: &'a str,
}

/// Creates the task unless one of the same kind for the same source exists (also when two
/// transactions try at once: the unique index decides, the loser does nothing).
pub fn create_once(c: &mut DbConnection, t: &NewTask<'_>) -> Result<(), AppError> {
    create_many_once(c, std::slice::from_ref(t))
}

/// `create_once` for many tasks: one multi-row insert per 1 000 tasks (a batch job such as
/// the credit recomputation must not pay a round trip per customer).
pub fn create_many_once(c: &mut DbConnection, all: &[NewTask<'_>]) -> Result<(), AppError> {
    let at = now();
    for chunk in all.chunks(1000) {
        let values: Vec<_> = chunk
            .iter()
            .map(|t| {
                (
                    tasks::org_id.eq(t.org_id),
                    tasks::customer_id.eq(t.customer_id),
                    tasks::kind.eq(t.kind),
                    tasks::priority.eq(t.priority),
                    tasks::assignee.eq(t.assignee),
                    tasks::title.eq(t.title),
                    tasks::due_on.eq(t.due_on),
                    tasks::status.eq("open"),
                    tasks::source_id.eq(t.source_id),
                    tasks::created_at.eq(at),
                    tasks::updated_at.eq(at),
                )
            })
            .collect();
        crate::dispatch!(c, |c| diesel::insert_into(tasks::table)
            .values(&values)
            .on_conflict_do_nothing()
            .execute(c))?;
    }
    Ok(())
}

pub fn list(
    c: &mut DbConnection,
    org_id: i64,
    assignee: Option<&str>,
    status: Option<&str>,
    customer_id: Option<i64>,
    after_id: i64,
    limit: i64,
) -> Result<Vec<TaskRow>, AppError> {
    let mut q = tasks::table
        .filter(tasks::org_id.eq(org_id))
        .filter(tasks::id.gt(after_id))
        .select(TaskRow::as_select())
        .order(tasks::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(a) = assignee {
        q = q.filter(tasks::assignee.eq(a.to_string()));
    }
    if let Some(s) = status {
        q = q.filter(tasks::status.eq(s.to_string()));
    }
    if let Some(cid) = customer_id {
        q = q.filter(tasks::customer_id.eq(cid));
    }
    Ok(q.load(c)?)
}

pub struct NewRiskFact<'a> {
    pub org_id: i64,
    pub customer_id: i64,
    pub kind: &'a str,
    pub subject_id: &'a str,
    pub occurred_on: NaiveDate,
    pub amount_minor: Option<i64>,
    pub currency: Option<&'a str>,
}

/// Records a fact once per (kind, subject), also under concurrent attempts.
pub fn record_fact(c: &mut DbConnection, f: &NewRiskFact<'_>) -> Result<(), AppError> {
    let values = (
        risk_facts::org_id.eq(f.org_id),
        risk_facts::customer_id.eq(f.customer_id),
        risk_facts::kind.eq(f.kind),
        risk_facts::subject_id.eq(f.subject_id),
        risk_facts::occurred_on.eq(f.occurred_on),
        risk_facts::amount_minor.eq(f.amount_minor),
        risk_facts::currency.eq(f.currency),
        risk_facts::created_at.eq(now()),
    );
    crate::dispatch!(c, |c| diesel::insert_into(risk_facts::table)
        .values(values)
        .on_conflict_do_nothing()
        .execute(c))?;
    Ok(())
}

/// How many facts of a kind a customer has.
pub fn count_facts(c: &mut DbConnection, customer_id: i64, kind: &str) -> Result<i64, AppError> {
    Ok(risk_facts::table
        .filter(risk_facts::customer_id.eq(customer_id))
        .filter(risk_facts::kind.eq(kind))
        .count()
        .get_result(c)?)
}
