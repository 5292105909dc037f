//! Group posting of single payments. `POST /v1/payments` requests are handed to a few
//! posting threads; each thread takes every request waiting (up to [`MAX_GROUP`]) and
//! posts them together in one write transaction with [`payments::post_group`], so that a
//! busy bank feed or a burst of lockbox postings pays one locked read, one insert per
//! table, one balance update and one commit per group instead of per payment. Each request
//! still gets the answer it would have had alone, in arrival order, and only after the
//! commit that made it durable.
//!
//! A request with an Idempotency-Key gets the answer stored under its key if there is one;
//! otherwise it is posted with the group and its answer stored in the same transaction.
//! A request arriving while no group is being posted is posted at once, in a group of its
//! own: grouping adds no wait, it only gathers what queued during the previous commit. If a
//! group's transaction fails (a constraint a payment breaks, a key or external id that a
//! concurrent request stored first, a lost connection, a deadlock that `write_transaction`'s
//! attempts did not get past), nothing of it was written
//! and each of its payments is posted alone, so one bad payment cannot fail its neighbours
//! and no payment is posted twice.

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, mpsc};

use chrono::NaiveDate;
use tokio::sync::oneshot;

use crate::db::{DbConnection, DbPool, write_transaction};
use crate::domain::payment::PaymentInput;
use crate::error::AppError;
use crate::service::idempotency::{self, IdempotencyKey, Outcome};
use crate::service::payments::{self, GroupOutcome, PostedPayment};
use crate::telemetry::Metrics;

/// The most payments posted in one transaction.
pub const MAX_GROUP: usize = 64;

/// Renders a posted payment as the body of its `201 Created` answer.
pub type Render = fn(&PostedPayment) -> Result<serde_json::Value, AppError>;

/// One waiting request.
struct Job {
    org_id: i64,
    actor: String,
    today: NaiveDate,
    input: PaymentInput,
    key: Option<IdempotencyKey>,
    reply: oneshot::Sender<Result<Outcome, AppError>>,
}

/// The handle requests post through; the posting threads end when it is dropped.
pub struct PaymentPoster {
    sender: mpsc::Sender<Job>,
}

impl PaymentPoster {
    /// Starts `threads` posting threads on `pool`.
    pub fn start(pool: DbPool, metrics: Metrics, threads: usize, render: Render) -> Result<PaymentPoster, String> {
        let (sender, receiver) = mpsc::channel();
        let receiver = Arc::new(Mutex::new(receiver));
        for n in 0..threads.max(1) {
            let (pool, metrics, receiver) = (pool.clone(), metrics.clone(), receiver.clone());
            std::thread::Builder::new()
                .name(format!("recaudo-payments-{n}"))
                .spawn(move || {
                    while let Some(group) = next_group(&receiver) {
                        // A panic answers the group's requests with an error (their reply
                        // channels close) and the thread goes on.
                        let _ = catch_unwind(AssertUnwindSafe(|| post_jobs(&pool, &metrics, render, group)));
                    }
                })
                .map_err(|e| format!("cannot start a payment posting thread: {e}"))?;
        }
        Ok(PaymentPoster { sender })
    }

    /// Posts one payment (with automatic or explicit allocation), guarded by `key` if
    /// given, and waits for its answer.
    pub async fn post(
        &self,
        org_id: i64,
        actor: String,
        today: NaiveDate,
        input: PaymentInput,
        key: Option<IdempotencyKey>,
    ) -> Result<Outcome, AppError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            org_id,
            actor,
            today,
            input,
            key,
            reply,
        };
        self.sender
            .send(job)
            .map_err(|_| AppError::internal("payment posting has stopped"))?;
        answer
            .await
            .map_err(|_| AppError::internal("the payment posting thread failed"))?
    }
}

/// Waits for a request, then takes the others already waiting; `None` once the poster is
/// dropped.
fn next_group(receiver: &Mutex<mpsc::Receiver<Job>>) -> Option<Vec<Job>> {
    let receiver = receiver.lock().ok()?;
    let first = receiver.recv().ok()?;
    let mut group = vec![first];
    while group.len() < MAX_GROUP {
        match receiver.try_recv() {
            Ok(job) => group.push(job),
            Err(_) => break,
        }
    }
    Some(group)
}

/// Splits jobs into groups that can share a transaction (same organisation, actor and
/// date), each in arrival order.
fn partition<T>(jobs: Vec<T>, key: impl Fn(&T) -> (i64, &str, NaiveDate)) -> Vec<Vec<T>> {
    let mut groups: Vec<Vec<T>> = Vec::new();
    for job in jobs {
        match groups.iter_mut().find(|g| key(&g[0]) == key(&job)) {
            Some(group) => group.push(job),
            None => groups.push(vec![job]),
        }
    }
    groups
}

fn post_jobs(pool: &DbPool, metrics: &Metrics, render: Render, jobs: Vec<Job>) {
    let mut conn = match pool.get() {
        Ok(conn) => conn,
        Err(e) => {
            let message = e.to_string();
            for job in jobs {
                let _ = job.reply.send(Err(AppError::Unavailable(format!(
                    "no database connection available: {message}"
                ))));
            }
            return;
        }
    };
    for group in partition(jobs, |j| (j.org_id, j.actor.as_str(), j.today)) {
        metrics.payment_group(group.len());
        let alone: Vec<Job> = match write_transaction(&mut conn, |c| post_together(c, render, &group)) {
            Ok(answers) => group
                .into_iter()
                .zip(answers)
                .filter_map(|(job, answer)| match answer {
                    Some(answer) => {
                        let _ = job.reply.send(answer);
                        None
                    }
                    None => Some(job),
                })
                .collect(),
            Err(e) => {
                tracing::info!(error = %e, payments = group.len(), "a payment group failed; posting its payments one by one");
                metrics.payment_group_failed();
                group
            }
        };
        for job in alone {
            let answer = post_alone(&mut conn, render, &job);
            let _ = job.reply.send(answer);
        }
    }
}

/// Posts a group of one organisation, actor and date in the caller's transaction. For
/// each job, its answer, or `None` for one to post alone after the commit (its key or
/// external id repeats an earlier job's, so its answer depends on that one's).
fn post_together(
    c: &mut DbConnection,
    render: Render,
    group: &[Job],
) -> Result<Vec<Option<Result<Outcome, AppError>>>, AppError> {
    let (org_id, actor, today) = (group[0].org_id, group[0].actor.as_str(), group[0].today);
    let mut answers: Vec<Option<Result<Outcome, AppError>>> = (0..group.len()).map(|_| None).collect();
    let mut keys: HashSet<&str> = HashSet::new();
    let mut to_post = Vec::with_capacity(group.len());
    for (index, job) in group.iter().enumerate() {
        match &job.key {
            Some(key) if !keys.insert(key.key.as_str()) => {}
            Some(key) => match idempotency::stored(c, org_id, key)? {
                Some(answer) => answers[index] = Some(answer),
                None => to_post.push(index),
            },
            None => to_post.push(index),
        }
    }
    let inputs: Vec<&PaymentInput> = to_post.iter().map(|&i| &group[i].input).collect();
    let outcomes = payments::post_group(c, org_id, actor, &inputs, today)?;
    for (index, outcome) in to_post.into_iter().zip(outcomes) {
        answers[index] = match outcome {
            GroupOutcome::Posted(posted) => {
                let body = render(&posted)?;
                if let Some(key) = &group[index].key {
                    idempotency::store(c, org_id, key, 201, &body)?;
                }
                Some(Ok(Outcome {
                    status: 201,
                    body,
                    replayed: false,
                }))
            }
            GroupOutcome::Refused(e) => Some(Err(e)),
            GroupOutcome::PostAlone => None,
        };
    }
    Ok(answers)
}

/// Posts one job in a transaction of its own, guarded by its key if it has one.
fn post_alone(conn: &mut DbConnection, render: Render, job: &Job) -> Result<Outcome, AppError> {
    idempotency::run(
        conn,
        job.org_id,
        job.key.as_ref(),
        |c| payments::post(c, job.org_id, &job.actor, &job.input, job.today),
        |_, posted| Ok((201, render(posted)?)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).expect("valid date")
    }

    #[test]
    fn jobs_of_one_organisation_actor_and_day_share_a_group_in_arrival_order() {
        let jobs = vec![
            (1, "erp", day(23), "a"),
            (2, "erp", day(23), "b"),
            (1, "erp", day(23), "c"),
            (1, "clerk", day(23), "d"),
            (1, "erp", day(24), "e"),
            (1, "erp", day(23), "f"),
        ];
        let groups = partition(jobs, |j| (j.0, j.1, j.2));
        let names: Vec<Vec<&str>> = groups.iter().map(|g| g.iter().map(|j| j.3).collect()).collect();
        assert_eq!(names, vec![vec!["a", "c", "f"], vec!["b"], vec!["d"], vec!["e"]]);
    }
}
