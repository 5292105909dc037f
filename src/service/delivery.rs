//! E-mail delivery use cases: claiming the messages a delivery worker sends next, recording
//! the outcome of each attempt, and bounce reports that arrive after delivery. A message
//! that fails for good (rejected by the SMTP server, bounced later, undeliverable, or out of
//! attempts) records an event (`email.bounced` or `email.failed`); a bounce also gives the
//! customer's collector a task to check the collections contact.

use std::time::Duration;

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::repo::actions::{self as actions_repo, ActionRow};
use crate::db::repo::events::{self, NewEvent};
use crate::db::repo::outbox::{self, Finish};
use crate::db::repo::{customers, tasks};
use crate::db::{DbConnection, now, write_transaction};
use crate::domain::delivery::{self, AfterFailure, Failure, RetryPolicy};
use crate::domain::ids::Kind;
use crate::error::AppError;

/// How long a claimed message stays with its worker before another instance may take it
/// over. Longer than a batch of attempts can take (`SEND_TIMEOUT` each).
pub const LEASE: Duration = Duration::from_secs(15 * 60);

/// A batch of claimed messages and the token that proves the claim.
#[derive(Debug)]
pub struct Claim {
    pub token: String,
    pub messages: Vec<ActionRow>,
}

/// Claims up to `limit` due messages for this worker (one claim token per batch).
pub fn claim(c: &mut DbConnection, at: NaiveDateTime, limit: i64) -> Result<Claim, AppError> {
    let token = claim_token();
    let lease_until = at + chrono::Duration::from_std(LEASE).unwrap_or(chrono::Duration::MAX);
    let messages = outbox::claim(c, at, at.date(), lease_until, &token, limit)?;
    Ok(Claim { token, messages })
}

fn claim_token() -> String {
    use rand::Rng;
    let bytes: [u8; 12] = rand::rng().random();
    hex::encode(bytes)
}

/// What one attempt gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Sent { message_id: String },
    Failed(Failure),
}

/// What was recorded for an attempt, for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    Sent,
    Retry {
        at: NaiveDateTime,
        error: String,
    },
    Failed {
        error: String,
        bounce: bool,
    },
    /// The claim had expired and another instance took the message over; nothing written.
    ClaimLost,
}

impl Recorded {
    /// The metrics label.
    pub fn label(&self) -> &'static str {
        match self {
            Recorded::Sent => "sent",
            Recorded::Retry { .. } => "retry",
            Recorded::Failed { bounce: true, .. } => "bounced",
            Recorded::Failed { bounce: false, .. } => "failed",
            Recorded::ClaimLost => "claim_lost",
        }
    }
}

/// Records the outcome of one attempt at a claimed message, in one transaction.
pub fn record(
    c: &mut DbConnection,
    message: &ActionRow,
    token: &str,
    policy: &RetryPolicy,
    attempt: &Attempt,
) -> Result<Recorded, AppError> {
    let at = now();
    write_transaction(c, |c| match attempt {
        Attempt::Sent { message_id } => Ok(
            match outbox::finish(c, message.id, token, at, &Finish::Sent { message_id })? {
                true => Recorded::Sent,
                false => Recorded::ClaimLost,
            },
        ),
        Attempt::Failed(failure) => {
            let attempts = u32::try_from(message.attempts).unwrap_or(0);
            match delivery::after_failure(policy, attempts, failure, at) {
                AfterFailure::Retry { at: next, error } => {
                    let kept = outbox::finish(
                        c,
                        message.id,
                        token,
                        at,
                        &Finish::Retry {
                            at: next,
                            error: &error,
                        },
                    )?;
                    Ok(match kept {
                        true => Recorded::Retry { at: next, error },
                        false => Recorded::ClaimLost,
                    })
                }
                AfterFailure::Fail { error, bounce } => {
                    let outcome = if bounce { "bounced" } else { "undeliverable" };
                    let result = Finish::Failed { error: &error, outcome };
                    if !outbox::finish(c, message.id, token, at, &result)? {
                        return Ok(Recorded::ClaimLost);
                    }
                    failed(c, message, &error, bounce, "smtp")?;
                    Ok(Recorded::Failed { error, bounce })
                }
            }
        }
    })
}

/// The event of a message that failed for good and, for a bounce, the collector's task.
fn failed(c: &mut DbConnection, message: &ActionRow, error: &str, bounce: bool, source: &str) -> Result<(), AppError> {
    let code = Kind::Action.encode(message.id);
    let kind = if bounce { "email.bounced" } else { "email.failed" };
    events::insert_many(
        c,
        &[NewEvent::new(
            message.org_id,
            kind,
            code.clone(),
            Some(message.customer_id),
            serde_json::json!({
                "action_id": code,
                "recipient": message.recipient,
                "message_id": message.message_id,
                "attempts": message.attempts,
                "reason": error,
                "source": source,
            }),
        )],
    )?;
    if bounce {
        let customer = customers::find(c, message.org_id, message.customer_id)?;
        let title = format!(
            "E-mail to {} bounced: check the collections contact ({error})",
            message.recipient.as_deref().unwrap_or("the customer")
        );
        tasks::create_once(
            c,
            &tasks::NewTask {
                org_id: message.org_id,
                customer_id: message.customer_id,
                kind: "email_bounced",
                priority: "high",
                assignee: customer.collector.as_deref(),
                title: &title,
                due_on: now().date(),
                source_id: &code,
            },
        )?;
    }
    Ok(())
}

/// A bounce reported after delivery (by the e-mail provider or an operator): which message,
/// and why. Exactly one of `action_id` and `message_id`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"message_id": "<act_42.1795426200000000@acme.example>",
    "reason": "550 5.1.1 <ap@ferreteriapuig.example>: user unknown"}))]
pub struct BounceReport {
    /// The e-mail action, e.g. `act_42`.
    #[serde(default)]
    pub action_id: Option<String>,
    /// The Message-ID the message was sent with (angle brackets optional).
    #[serde(default)]
    pub message_id: Option<String>,
    /// The reason given by the receiving server or provider (up to 500 characters).
    pub reason: String,
}

/// Records a bounce: a sent message becomes `failed` with the reason, an `email.bounced`
/// event and a task for the collector. A report for a message already failed changes
/// nothing (providers repeat their notifications); any other status is a conflict.
/// Returns the action and whether this report bounced it (false when it had already failed).
pub fn report_bounce(c: &mut DbConnection, org_id: i64, report: &BounceReport) -> Result<(ActionRow, bool), AppError> {
    let mut v = crate::error::Violations::new();
    let reason = crate::domain::text::required(&mut v, "reason", Some(report.reason.as_str()), delivery::MAX_ERROR_LEN);
    let target = match (&report.action_id, &report.message_id) {
        (Some(id), None) => Some(Target::Action(
            Kind::Action.decode(id).ok_or_else(|| AppError::not_found("action"))?,
        )),
        (None, Some(mid)) => match delivery::normalize_message_id(mid) {
            Some(m) => Some(Target::MessageId(m)),
            None => {
                v.add("message_id", "must be a Message-ID such as <id@domain>");
                None
            }
        },
        _ => {
            v.add("action_id", "give exactly one of action_id and message_id");
            None
        }
    };
    let (reason, target) = v.into_result((reason, target))?;
    let (Some(reason), Some(target)) = (reason, target) else {
        return Err(AppError::invalid("reason", "is required"));
    };
    write_transaction(c, |c| {
        let row = match &target {
            Target::Action(id) => actions_repo::lock_action(c, org_id, *id)?,
            Target::MessageId(m) => outbox::lock_by_message_id(c, org_id, m)?,
        };
        if row.action != "email" {
            return Err(AppError::Conflict("only e-mail actions can bounce".into()));
        }
        let bounced = match row.status.as_str() {
            "sent" => {
                let error = format!("bounced: {reason}");
                outbox::mark_bounced(c, row.id, &error, now())?;
                failed(c, &row, &error, true, "report")?;
                true
            }
            "failed" => false,
            other => {
                return Err(AppError::Conflict(format!(
                    "the message is {other}: only a sent message can bounce"
                )));
            }
        };
        Ok((actions_repo::find_action(c, org_id, row.id)?, bounced))
    })
}

enum Target {
    Action(i64),
    MessageId(String),
}
