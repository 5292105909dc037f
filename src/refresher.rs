//! The credit recomputation worker: a background thread that drains the queue of customers
//! whose credit snapshot, hold status and risk signals are due for recomputation
//! (`service::credit_queue`), a batch of up to 1 000 per transaction. A full batch is
//! followed by a pause as long as it took (at most [`MAX_YIELD`]), so the worker never
//! takes more than about half of a core from the API's writers; an empty queue is looked at
//! again after the configured interval. Nothing waits for it to be correct: a credit check
//! or credit view of a still queued customer recomputes that customer first. Several
//! service instances may pick the same customers: their recomputations queue on the
//! customers' rows and the second one finds nothing new to write.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use crate::db::DbPool;
use crate::service::credit_queue;

/// Starts the worker; it stops when the returned flag is set. A full batch is followed by a
/// pause as long as the batch took (at most [`MAX_YIELD`]). On SQLite (`single_writer`: one
/// write transaction at a time for the whole database) a batch also waits while API
/// writers queue for the writer lock (at most [`MAX_GIVE_WAY`]); the pause dates from when
/// writers polled SQLite's lock every 100 ms or so, and a worker that began its next batch
/// right after committing kept it from them (an invoice batch of the 1M SQLite load waited
/// past the 10 s busy timeout, a 503). On PostgreSQL the worker running flat out during a
/// 1M-invoice load took a backend and a thread, most of a core of two, and recomputed the
/// same customers again as each invoice batch queued them: with the pause the load went
/// from 20–22 k to 25–26 k rows/s, and loading and draining together took as long as before
/// (98 s against 97 s); the recomputation finishes after the load instead of during it.
pub fn start(pool: DbPool, interval: Duration, single_writer: bool) -> Arc<AtomicBool> {
    crate::scheduler::spawn_loop("recaudo-credit-refresh", move || {
        if single_writer {
            give_way_to_writers();
        }
        let started = Instant::now();
        if !drain(&pool) {
            std::thread::sleep(interval);
        } else {
            std::thread::sleep(started.elapsed().min(MAX_YIELD));
        }
    })
}

/// The longest pause between two full batches.
pub const MAX_YIELD: Duration = Duration::from_secs(1);

/// The longest the worker waits on SQLite while API writers queue for the writer lock.
/// The queue holds a customer once, however often it is queued, so a worker held back
/// during a load has no more to do after it than before (and a credit read recomputes a
/// queued customer first). Measured on the 1M SQLite load, alternating: 24.0 / 24.5 k
/// rows/s with 5 s against 21.8 / 22.8 k with 1 s, 23.6 k with the worker off; loading and
/// draining the queue took 42.6 + 36.2 s against 45.3 + 32.2 s.
pub const MAX_GIVE_WAY: Duration = Duration::from_secs(5);

/// Waits while API write transactions queue for SQLite's writer lock, at most
/// [`MAX_GIVE_WAY`]: a recomputation can wait, an ERP's batch should not. Without it the
/// worker's batches took about half of the writer's time during a 1M-invoice load (8 959
/// against 11 552 rows/s, before this).
fn give_way_to_writers() {
    let started = Instant::now();
    while crate::db::sqlite::writers_waiting() && started.elapsed() < MAX_GIVE_WAY {
        std::thread::sleep(Duration::from_millis(5));
    }
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
