//! The credit recomputation worker: a background thread that drains the queue of customers
//! whose credit snapshot, hold status and risk signals are due for recomputation
//! (`service::credit_queue`), a batch of up to 1 000 per transaction. A full batch is
//! followed at once by the next; an empty queue is looked at again after the configured
//! interval. Several service instances may pick the same customers: their recomputations
//! queue on the customers' rows and the second one finds nothing new to write.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::db::DbPool;
use crate::service::credit_queue;

/// Starts the worker; it stops when the returned flag is set.
pub fn start(pool: DbPool, interval: Duration) -> Arc<AtomicBool> {
    crate::scheduler::spawn_loop("recaudo-credit-refresh", move || {
        if !drain(&pool) {
            std::thread::sleep(interval);
        }
    })
}

/// One batch; true when the batch was full (more may be waiting).
fn drain(pool: &DbPool) -> bool {
    let mut conn = match pool.get() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "credit recomputation: no database connection");
            return false;
        }
    };
    match credit_queue::drain_batch(&mut conn) {
        Ok(n) => i64::try_from(n).unwrap_or(i64::MAX) >= credit_queue::BATCH,
        Err(e) => {
            tracing::error!(error = %e, "credit recomputation failed; the customers stay queued");
            false
        }
    }
}
