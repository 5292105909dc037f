//! The e-mail outbox: e-mail actions waiting for delivery (`queued`) or in flight
//! (`sending`). Messages are claimed a batch at a time with a lease and a claim token, and
//! every later write is conditional on that token, so two instances never send the same
//! message at once and an instance whose lease was taken over cannot overwrite the outcome.
//! The worker is not tenant-scoped (it serves every organisation); the bounce lookups are.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use crate::db::repo::actions::ActionRow;
use crate::db::schema::actions;
use crate::db::{DbConnection, write_transaction};
use crate::error::AppError;

/// Statuses a message may be cancelled from before delivery (a payment or a promise came
/// first). `sending` is not among them: a message in flight is left to its worker, unless
/// its lease has expired (the worker is gone), see `cancellable`.
pub const PENDING: [&str; 3] = ["planned", "queued", "awaiting_approval"];

/// Claims up to `limit` messages due at `now`: queued e-mails whose scheduled date has come
/// and whose next attempt is due, and e-mails whose delivery lease expired (an instance
/// stopped while sending). The claim counts as an attempt. One SELECT (rows locked with
/// `SKIP LOCKED` on PostgreSQL, so concurrent instances take different messages; SQLite has
/// one writer), one UPDATE and one SELECT for the whole batch.
pub fn claim(
    c: &mut DbConnection,
    now: NaiveDateTime,
    today: NaiveDate,
    lease_until: NaiveDateTime,
    token: &str,
    limit: i64,
) -> Result<Vec<ActionRow>, AppError> {
    write_transaction(c, |c| {
        let due = actions::table
            .filter(actions::action.eq("email"))
            .filter(actions::status.eq_any(["queued", "sending"]))
            .filter(
                actions::status
                    .eq("queued")
                    .and(actions::scheduled_on.le(today))
                    .and(actions::next_attempt_at.is_null().or(actions::next_attempt_at.le(now)))
                    .or(actions::status.eq("sending").and(actions::lease_until.lt(now))),
            )
            .select(actions::id)
            .order(actions::id.asc())
            .limit(limit);
        let ids: Vec<i64> = match c {
            DbConnection::Pg(pg) => due.for_update().skip_locked().load(pg)?,
            DbConnection::Sqlite(lite) => due.load(lite)?,
        };
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        diesel::update(actions::table.filter(actions::id.eq_any(&ids)))
            .set((
                actions::status.eq("sending"),
                actions::lease_until.eq(lease_until),
                actions::claim_token.eq(token),
                actions::attempts.eq(actions::attempts + 1),
                actions::updated_at.eq(now),
            ))
            .execute(c)?;
        Ok(actions::table
            .filter(actions::id.eq_any(&ids))
            .filter(actions::claim_token.eq(token))
            .select(ActionRow::as_select())
            .order(actions::id.asc())
            .load(c)?)
    })
}

/// The outcome of one attempt, as written on the action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish<'a> {
    Sent { message_id: &'a str },
    Retry { at: NaiveDateTime, error: &'a str },
    Failed { error: &'a str, outcome: &'a str },
}

/// Records the outcome of a claimed message; returns false (and writes nothing) when the
/// claim is no longer this worker's: its lease expired and another instance took it over.
pub fn finish(
    c: &mut DbConnection,
    id: i64,
    token: &str,
    now: NaiveDateTime,
    result: &Finish<'_>,
) -> Result<bool, AppError> {
    let target = actions::table
        .filter(actions::id.eq(id))
        .filter(actions::status.eq("sending"))
        .filter(actions::claim_token.eq(token));
    let released = (
        actions::lease_until.eq(None::<NaiveDateTime>),
        actions::claim_token.eq(None::<String>),
        actions::updated_at.eq(now),
    );
    let n = match result {
        Finish::Sent { message_id } => diesel::update(target)
            .set((
                actions::status.eq("sent"),
                actions::sent_at.eq(now),
                actions::completed_at.eq(now),
                actions::message_id.eq(*message_id),
                actions::next_attempt_at.eq(None::<NaiveDateTime>),
                actions::last_error.eq(None::<String>),
                released,
            ))
            .execute(c)?,
        Finish::Retry { at, error } => diesel::update(target)
            .set((
                actions::status.eq("queued"),
                actions::next_attempt_at.eq(*at),
                actions::last_error.eq(*error),
                released,
            ))
            .execute(c)?,
        Finish::Failed { error, outcome } => diesel::update(target)
            .set((
                actions::status.eq("failed"),
                actions::completed_at.eq(now),
                actions::next_attempt_at.eq(None::<NaiveDateTime>),
                actions::last_error.eq(*error),
                actions::outcome.eq(*outcome),
                released,
            ))
            .execute(c)?,
    };
    Ok(n == 1)
}

/// Cancels the given actions that are still pending (or whose delivery lease expired),
/// in one statement; an action claimed by a worker meanwhile is left alone. Returns how
/// many were cancelled.
pub fn cancel_pending(c: &mut DbConnection, ids: &[i64], reason: &str, now: NaiveDateTime) -> Result<usize, AppError> {
    let mut cancelled = 0;
    for chunk in ids.chunks(1000) {
        cancelled += diesel::update(
            actions::table.filter(actions::id.eq_any(chunk)).filter(
                actions::status
                    .eq_any(PENDING)
                    .or(actions::status.eq("sending").and(actions::lease_until.lt(now))),
            ),
        )
        .set((
            actions::status.eq("cancelled"),
            actions::outcome.eq(reason),
            actions::completed_at.eq(now),
            actions::updated_at.eq(now),
            actions::lease_until.eq(None::<NaiveDateTime>),
            actions::claim_token.eq(None::<String>),
        ))
        .execute(c)?;
    }
    Ok(cancelled)
}

/// The organisation's e-mail action with this Message-ID, locked for the transaction.
pub fn lock_by_message_id(c: &mut DbConnection, org_id: i64, message_id: &str) -> Result<ActionRow, AppError> {
    crate::locked!(
        c,
        actions::table
            .filter(actions::org_id.eq(org_id))
            .filter(actions::message_id.eq(message_id))
            .select(ActionRow::as_select()),
        |q, c| q.first(c).optional()
    )?
    .ok_or_else(|| AppError::not_found("message"))
}

/// Records a bounce reported after delivery: a sent message becomes `failed`.
pub fn mark_bounced(c: &mut DbConnection, id: i64, error: &str, now: NaiveDateTime) -> Result<(), AppError> {
    diesel::update(
        actions::table
            .filter(actions::id.eq(id))
            .filter(actions::status.eq("sent")),
    )
    .set((
        actions::status.eq("failed"),
        actions::last_error.eq(error),
        actions::outcome.eq("bounced"),
        actions::completed_at.eq(now),
        actions::updated_at.eq(now),
    ))
    .execute(c)?;
    Ok(())
}
