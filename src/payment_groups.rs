//! Group posting of single payments. `POST /v1/payments` requests without an
//! Idempotency-Key are handed to a few posting threads; each thread takes every request
//! waiting (up to [`MAX_GROUP`]) and posts them together in one write transaction with
//! [`payments::post_group`], so that a busy bank feed or a burst of lockbox postings pays
//! one locked read, one insert per table, one balance update and one commit per group
//! instead of per payment. Each request still gets the answer it would have had alone, in
//! arrival order, and only after the commit that made it durable.
//!
//! A request arriving while no group is being posted is posted at once, in a group of its
//! own: grouping adds no wait, it only gathers what queued during the previous commit. If a
//! group's transaction fails (a deadlock, a constraint a payment breaks, a lost database
//! connection), nothing of it was written and each of its payments is posted alone, so one
//! bad payment cannot fail its neighbours and no payment is posted twice.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, mpsc};

use chrono::NaiveDate;
use tokio::sync::oneshot;

use crate::db::{DbPool, write_transaction};
use crate::domain::payment::PaymentInput;
use crate::error::AppError;
use crate::service::payments::{self, GroupOutcome, PostedPayment};
use crate::telemetry::Metrics;

/// The most payments posted in one transaction.
pub const MAX_GROUP: usize = 64;

/// One waiting request.
struct Job {
    org_id: i64,
    actor: String,
    today: NaiveDate,
    input: PaymentInput,
    reply: oneshot::Sender<Result<PostedPayment, AppError>>,
}

/// The handle requests post through; the posting threads end when it is dropped.
pub struct PaymentPoster {
    sender: mpsc::Sender<Job>,
}

impl PaymentPoster {
    /// Starts `threads` posting threads on `pool`.
    pub fn start(pool: DbPool, metrics: Metrics, threads: usize) -> Result<PaymentPoster, String> {
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
                        let _ = catch_unwind(AssertUnwindSafe(|| post_jobs(&pool, &metrics, group)));
                    }
                })
                .map_err(|e| format!("cannot start a payment posting thread: {e}"))?;
        }
        Ok(PaymentPoster { sender })
    }

    /// Posts one payment (with automatic or explicit allocation) and waits for its answer.
    pub async fn post(
        &self,
        org_id: i64,
        actor: String,
        today: NaiveDate,
        input: PaymentInput,
    ) -> Result<PostedPayment, AppError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            org_id,
            actor,
            today,
            input,
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

fn post_jobs(pool: &DbPool, metrics: &Metrics, jobs: Vec<Job>) {
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
        let (org_id, today) = (group[0].org_id, group[0].today);
        let inputs: Vec<PaymentInput> = group.iter().map(|j| j.input.clone()).collect();
        let posted = write_transaction(&mut conn, |c| {
            payments::post_group(c, org_id, &group[0].actor, &inputs, today)
        });
        let alone: Vec<Job> = match posted {
            Ok(outcomes) => group
                .into_iter()
                .zip(outcomes)
                .filter_map(|(job, outcome)| match outcome {
                    GroupOutcome::Posted(p) => {
                        let _ = job.reply.send(Ok(*p));
                        None
                    }
                    GroupOutcome::Refused(e) => {
                        let _ = job.reply.send(Err(e));
                        None
                    }
                    GroupOutcome::PostAlone => Some(job),
                })
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, payments = group.len(), "a payment group failed; posting its payments one by one");
                metrics.payment_group_failed();
                group
            }
        };
        for job in alone {
            let answer = write_transaction(&mut conn, |c| {
                payments::post(c, job.org_id, &job.actor, &job.input, job.today)
            });
            let _ = job.reply.send(answer);
        }
    }
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
