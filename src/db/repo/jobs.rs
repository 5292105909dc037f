//! Leases of daily jobs: claiming (org, job, date) succeeds for exactly one caller, across
//! service instances; a claim left `running` for over an hour (a crashed instance) may be
//! taken over.

use chrono::NaiveDate;
use diesel::prelude::*;

use crate::db::schema::job_runs;
use crate::db::{DbConnection, now, write_transaction};
use crate::error::AppError;

/// Claims the job for the day; `false` when it already ran or runs elsewhere.
pub fn claim(c: &mut DbConnection, org_id: i64, job: &str, run_date: NaiveDate) -> Result<bool, AppError> {
    write_transaction(c, |c| {
        let existing: Option<(String, chrono::NaiveDateTime)> = job_runs::table
            .filter(job_runs::org_id.eq(org_id))
            .filter(job_runs::job.eq(job))
            .filter(job_runs::run_date.eq(run_date))
            .select((job_runs::status, job_runs::started_at))
            .first(c)
            .optional()?;
        let at = now();
        match existing {
            None => {
                diesel::insert_into(job_runs::table)
                    .values((
                        job_runs::org_id.eq(org_id),
                        job_runs::job.eq(job),
                        job_runs::run_date.eq(run_date),
                        job_runs::status.eq("running"),
                        job_runs::started_at.eq(at),
                    ))
                    .execute(c)?;
                Ok(true)
            }
            Some((status, started)) if status == "running" && at - started > chrono::Duration::hours(1) => {
                let n = diesel::update(
                    job_runs::table
                        .filter(job_runs::org_id.eq(org_id))
                        .filter(job_runs::job.eq(job))
                        .filter(job_runs::run_date.eq(run_date))
                        .filter(job_runs::started_at.eq(started)),
                )
                .set(job_runs::started_at.eq(at))
                .execute(c)?;
                Ok(n == 1)
            }
            Some(_) => Ok(false),
        }
    })
    .or_else(|e| match e {
        // Another instance inserted the same lease first.
        AppError::Conflict(_) => Ok(false),
        other => Err(other),
    })
}

pub fn finish(
    c: &mut DbConnection,
    org_id: i64,
    job: &str,
    run_date: NaiveDate,
    status: &str,
    summary: &str,
) -> Result<(), AppError> {
    diesel::update(
        job_runs::table
            .filter(job_runs::org_id.eq(org_id))
            .filter(job_runs::job.eq(job))
            .filter(job_runs::run_date.eq(run_date)),
    )
    .set((
        job_runs::status.eq(status),
        job_runs::finished_at.eq(now()),
        job_runs::summary.eq(summary),
    ))
    .execute(c)?;
    Ok(())
}

/// The last date a job completed for an organisation.
pub fn last_completed(c: &mut DbConnection, org_id: i64, job: &str) -> Result<Option<NaiveDate>, AppError> {
    Ok(job_runs::table
        .filter(job_runs::org_id.eq(org_id))
        .filter(job_runs::job.eq(job))
        .filter(job_runs::status.eq("completed"))
        .select(diesel::dsl::max(job_runs::run_date))
        .first::<Option<NaiveDate>>(c)?)
}
