//! The in-process scheduler: once a day, after the configured UTC time, it runs each
//! organisation's daily jobs — promise and payment-plan evaluation with the purge of
//! expired idempotency keys, the credit and risk recomputation of every customer, then the
//! collection run. Every job takes a lease in the database (`job_runs`), so several service
//! instances never run the same job for the same day twice, and every job is also callable
//! through the API with an explicit `as_of`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{NaiveDate, NaiveTime, Utc};

use crate::db::repo::{idempotency, jobs, organizations};
use crate::db::{DbConnection, DbPool, write_transaction};
use crate::error::AppError;
use crate::service::{credit, plans, promises};

pub const EVALUATION_JOB: &str = "promise_evaluation";
pub const CREDIT_JOB: &str = "credit_risk_recomputation";
pub const COLLECTION_JOB: &str = "collection_run";

#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// UTC time of day after which the daily jobs run.
    pub daily_at: NaiveTime,
    /// How often the scheduler wakes up to check.
    pub tick: Duration,
}

/// Runs the daily jobs of one organisation for `as_of`, each at most once per day.
/// Returns the names of the jobs it ran.
pub fn run_daily(c: &mut DbConnection, org_id: i64, as_of: NaiveDate) -> Result<Vec<&'static str>, AppError> {
    let mut ran = Vec::new();
    if jobs::claim(c, org_id, EVALUATION_JOB, as_of)? {
        let outcome: Result<promises::EvaluationSummary, AppError> = write_transaction(c, |c| {
            let mut summary = promises::evaluate_all(c, org_id, as_of)?;
            plans::evaluate(c, org_id, None, as_of, &mut summary)?;
            let before = crate::db::now() - crate::service::idempotency::RETENTION;
            idempotency::purge(c, org_id, before)?;
            Ok(summary)
        });
        match outcome {
            Ok(summary) => {
                let text = serde_json::to_string(&summary).unwrap_or_default();
                jobs::finish(c, org_id, EVALUATION_JOB, as_of, "completed", &text)?;
                ran.push(EVALUATION_JOB);
            }
            Err(e) => {
                jobs::finish(c, org_id, EVALUATION_JOB, as_of, "failed", &e.to_string())?;
                return Err(e);
            }
        }
    }
    // After promise and plan evaluation, so today's broken promises and defaults count.
    if jobs::claim(c, org_id, CREDIT_JOB, as_of)? {
        match write_transaction(c, |c| credit::refresh_all(c, org_id, as_of)) {
            Ok(summary) => {
                let text = serde_json::to_string(&summary).unwrap_or_default();
                jobs::finish(c, org_id, CREDIT_JOB, as_of, "completed", &text)?;
                ran.push(CREDIT_JOB);
            }
            Err(e) => {
                jobs::finish(c, org_id, CREDIT_JOB, as_of, "failed", &e.to_string())?;
                return Err(e);
            }
        }
    }
    // The collection run keeps its own lease and is idempotent per date; after the
    // evaluation, so that promises broken today are not chased as promised.
    if jobs::claim(c, org_id, COLLECTION_JOB, as_of)? {
        match crate::service::collection_run::run(c, org_id, as_of, false, "scheduler") {
            Ok(run) => {
                jobs::finish(c, org_id, COLLECTION_JOB, as_of, "completed", &run.summary)?;
                ran.push(COLLECTION_JOB);
            }
            Err(e) => {
                jobs::finish(c, org_id, COLLECTION_JOB, as_of, "failed", &e.to_string())?;
                return Err(e);
            }
        }
    }
    Ok(ran)
}

/// Starts the scheduler thread; setting the returned flag stops it at its next tick.
pub fn start(pool: DbPool, config: SchedulerConfig) -> Arc<AtomicBool> {
    spawn_loop("recaudo-scheduler", move || {
        let now = Utc::now();
        if now.time() >= config.daily_at {
            tick(&pool, now.date_naive());
        }
        std::thread::sleep(config.tick);
    })
}

/// Runs `step` on a named background thread until the returned flag is set (the step
/// does its own waiting). Shared by the scheduler and the credit recomputation worker.
pub fn spawn_loop(name: &str, mut step: impl FnMut() + Send + 'static) -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let spawned = std::thread::Builder::new().name(name.into()).spawn(move || {
        while !flag.load(Ordering::Relaxed) {
            step();
        }
    });
    if let Err(e) = spawned {
        tracing::error!(error = %e, thread = name, "cannot start a background thread");
    }
    stop
}

fn tick(pool: &DbPool, today: NaiveDate) {
    let mut conn = match pool.get() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "scheduler: no database connection");
            return;
        }
    };
    let orgs = match organizations::all(&mut conn) {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!(error = %e, "scheduler: cannot list organisations");
            return;
        }
    };
    for org in orgs {
        match run_daily(&mut conn, org.id, today) {
            Ok(ran) if !ran.is_empty() => tracing::info!(org = %org.slug, jobs = ?ran, %today, "daily jobs ran"),
            Ok(_) => {}
            Err(e) => tracing::error!(org = %org.slug, error = %e, "daily jobs failed"),
        }
    }
}
