//! The event log: what happened (invoice paid, payment reversed, …), written in the same
//! transaction as the change, for webhooks and risk signals to read.

use diesel::prelude::*;

use crate::db::schema::events;
use crate::db::{DbConnection, now};
use crate::error::AppError;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = events)]
pub struct EventRow {
    pub id: i64,
    pub org_id: i64,
    pub kind: String,
    pub subject_id: String,
    pub customer_id: Option<i64>,
    pub payload: String,
    pub created_at: chrono::NaiveDateTime,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = events, treat_none_as_default_value = false)]
pub struct NewEvent {
    pub org_id: i64,
    pub kind: String,
    pub subject_id: String,
    pub customer_id: Option<i64>,
    pub payload: String,
    pub created_at: chrono::NaiveDateTime,
}

impl NewEvent {
    pub fn new(
        org_id: i64,
        kind: &str,
        subject_id: String,
        customer_id: Option<i64>,
        payload: serde_json::Value,
    ) -> NewEvent {
        NewEvent {
            org_id,
            kind: kind.to_string(),
            subject_id,
            customer_id,
            payload: payload.to_string(),
            created_at: now(),
        }
    }
}

pub fn insert_many(conn: &mut DbConnection, rows: &[NewEvent]) -> Result<(), AppError> {
    for chunk in rows.chunks(1000) {
        crate::dispatch!(conn, |c| diesel::insert_into(events::table).values(chunk).execute(c))?;
    }
    Ok(())
}

pub fn list(
    conn: &mut DbConnection,
    org_id: i64,
    kind: Option<&str>,
    after_id: i64,
    limit: i64,
) -> Result<Vec<EventRow>, AppError> {
    let mut query = events::table
        .filter(events::org_id.eq(org_id))
        .filter(events::id.gt(after_id))
        .select(EventRow::as_select())
        .order(events::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(k) = kind {
        query = query.filter(events::kind.eq(k.to_string()));
    }
    Ok(query.load(conn)?)
}
