//! SQLite's single writer, run well: the process's writer lock and the write-ahead log
//! kept bounded.
//!
//! **Writer lock.** SQLite lets one transaction write at a time; the others wait in its busy
//! handler, which polls the lock with growing sleeps (up to 100 ms apart), so the lock sat
//! idle between writers and the order among them was left to chance. Every write
//! transaction (`db::write_transaction`) on SQLite first takes [`WRITER`] (a process-wide
//! lock: one service process serves one database; tests that run several databases in
//! one process only serialize their writes), and hands it to the next writer the moment it
//! commits. A writer that cannot have it within [`WRITER_WAIT`] gets SQLite's own "database
//! is locked" error (a 503), as a busy timeout would have given.
//!
//! **Write-ahead log.** SQLite copies the WAL back into the database file in checkpoints
//! and starts writing the log from its beginning again only at a moment when no reader
//! still uses an older snapshot. Its automatic checkpoints run in the connection that
//! commits, and under steady traffic that moment never came: during a 1M-invoice load the
//! `-wal` file grew to 4.9 GB and its `-shm` index, mapped into the process, to 9.8 MB.
//! The service's connections therefore leave checkpoints to one thread of this module
//! ([`start_wal_keeper`]): every [`LOOK_EVERY`] it runs a passive checkpoint (copies what no
//! reader still needs, blocks nobody, on the other core than the writer), and once the log
//! passes [`WAL_LIMIT_BYTES`] it takes the writer lock and runs `wal_checkpoint(TRUNCATE)`,
//! which waits at most [`CHECKPOINT_WAIT`] for readers of old snapshots, copies the rest and
//! empties the file. If the thread cannot start, the connections keep SQLite's automatic
//! checkpoints.
//!
//! **Planner statistics.** Without `sqlite_stat1`, SQLite takes an equality on `org_id`
//! (one value in most installations) for as selective as one on `customer_id`: the locked
//! read of a customer's open invoices walked every invoice of the organisation through
//! `invoices_org_id` (14 ms a payment at 100 000 invoices). The same thread therefore runs
//! `PRAGMA optimize=0x10002` (every table checked; SQLite bounds each ANALYZE itself) when
//! it starts and every [`OPTIMIZE_EVERY`], under the writer lock, as SQLite recommends
//! for long-lived connections: the statistics follow the book as it grows.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use diesel::RunQueryDsl;
use diesel::connection::SimpleConnection;
use diesel::sql_types::{BigInt, Text};
use diesel::sqlite::SqliteConnection;

use super::{Database, DbConnection};

/// The lock every SQLite write transaction of this process holds from `BEGIN IMMEDIATE` to
/// its end.
static WRITER: parking_lot::Mutex<()> = parking_lot::const_mutex(());

/// How long a writer waits for [`WRITER`]: SQLite's busy timeout of the pool's connections.
pub const WRITER_WAIT: Duration = Duration::from_secs(10);
/// Past this size the log is checkpointed and truncated. Under steady writes the log never
/// restarts by itself (a writer restarts it only if, when it begins, every frame has been
/// copied back, and the next writer begins the moment the last one commits), so this size
/// sets how often writers stop for a truncation: at 64 MB a 400 000-invoice load stopped
/// 29–35 times for about 110 ms each (3.3 s of a 27–31 s load); at 256 MB 9 times. The
/// log's index (`-shm`, mapped into the process) for 256 MB is about 0.5 MB.
pub const WAL_LIMIT_BYTES: u64 = 256 * 1024 * 1024;
/// How often the keeper checkpoints (passively) and looks at the log's size.
pub const LOOK_EVERY: Duration = Duration::from_millis(100);

/// How often the planner statistics are brought up to date (see the module comment).
pub const OPTIMIZE_EVERY: Duration = Duration::from_secs(60);

/// The longest the truncating checkpoint waits for readers of old snapshots (the busy
/// timeout of the keeper's connection); writers wait for it meanwhile.
pub const CHECKPOINT_WAIT: Duration = Duration::from_millis(1000);

/// Writers waiting for [`WRITER`] now (not counting its holder).
static WAITING: AtomicUsize = AtomicUsize::new(0);

/// Takes the writer lock, waiting at most `wait`; a timeout is SQLite's "database is
/// locked", so callers report it as they would a busy timeout.
pub fn lock_writer(wait: Duration) -> Result<parking_lot::MutexGuard<'static, ()>, diesel::result::Error> {
    WAITING.fetch_add(1, Ordering::Relaxed);
    let guard = WRITER.try_lock_for(wait);
    WAITING.fetch_sub(1, Ordering::Relaxed);
    guard.ok_or_else(|| {
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::Unknown,
            Box::new(format!(
                "database is locked: another write transaction held it for over {} ms",
                wait.as_millis()
            )),
        )
    })
}

/// Whether some write transaction is waiting for the writer lock: background work that can
/// wait (the credit worker) gives way to it.
pub fn writers_waiting() -> bool {
    WAITING.load(Ordering::Relaxed) > 0
}

/// What a checkpoint reported: whether it could not finish (`busy`), the frames in the
/// log and the frames copied into the database, as `PRAGMA wal_checkpoint` returns them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, diesel::QueryableByName)]
pub struct Checkpoint {
    #[diesel(sql_type = BigInt)]
    pub busy: i64,
    #[diesel(sql_type = BigInt)]
    pub log: i64,
    #[diesel(sql_type = BigInt)]
    pub checkpointed: i64,
}

#[derive(diesel::QueryableByName)]
struct AttachedFile {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    file: String,
}

/// The path of the main database's `-wal` file; `None` for an in-memory database.
pub fn wal_path(conn: &mut SqliteConnection) -> Result<Option<PathBuf>, diesel::result::Error> {
    let files: Vec<AttachedFile> = diesel::sql_query("PRAGMA database_list").load(conn)?;
    Ok(files
        .into_iter()
        .find(|f| f.name == "main" && !f.file.is_empty())
        .map(|f| PathBuf::from(format!("{}-wal", f.file))))
}

/// The log's size on disk; 0 when there is no log file.
pub fn wal_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// One turn of the keeper, given the log's size: a passive checkpoint while it is at most
/// `limit` bytes; past it, under the writer lock, a checkpoint that truncates the log. A
/// `busy` result means a reader outlasted the connection's busy timeout; an error, that
/// the writer lock was not free within [`CHECKPOINT_WAIT`]. Either way nothing is lost:
/// the log is only left as it was until the next turn.
pub fn checkpoint(
    conn: &mut SqliteConnection,
    wal_bytes: u64,
    limit: u64,
) -> Result<Checkpoint, diesel::result::Error> {
    if wal_bytes <= limit {
        return diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)").get_result(conn);
    }
    let _writer = lock_writer(CHECKPOINT_WAIT)?;
    diesel::sql_query("PRAGMA wal_checkpoint(TRUNCATE)").get_result(conn)
}

/// Refreshes the planner statistics of the tables that changed enough since their last
/// analysis (all of them the first time), holding the writer lock while it writes them.
pub fn optimize(conn: &mut SqliteConnection) -> Result<(), diesel::result::Error> {
    let _writer = lock_writer(CHECKPOINT_WAIT)?;
    conn.batch_execute("PRAGMA optimize=0x10002;")
}

/// Starts the keeper on a connection of its own for a file database; `None` (and SQLite's
/// automatic checkpoints stay on) for PostgreSQL, an in-memory database, or when the
/// connection cannot be opened (logged).
pub fn start_wal_keeper(database: &Database) -> Option<Arc<AtomicBool>> {
    let mut conn = match database.connect() {
        Ok(DbConnection::Sqlite(c)) => c,
        Ok(DbConnection::Pg(_)) => return None,
        Err(e) => {
            tracing::warn!(error = %e, "WAL keeper: cannot open a connection; SQLite checkpoints by itself");
            return None;
        }
    };
    let setup = format!("PRAGMA busy_timeout = {};", CHECKPOINT_WAIT.as_millis());
    let path = match conn.batch_execute(&setup).and_then(|()| wal_path(&mut conn)) {
        Ok(Some(path)) => path,
        Ok(None) => return None,
        Err(e) => {
            tracing::warn!(error = %e, "WAL keeper: cannot configure its connection; SQLite checkpoints by itself");
            return None;
        }
    };
    // Sleeps after its turn, so that a stop requested meanwhile ends the loop before the
    // next checkpoint (a test's database directory may be gone by then).
    let mut optimized_at: Option<std::time::Instant> = None;
    Some(crate::scheduler::spawn_loop("recaudo-sqlite-wal", move || {
        if optimized_at.is_none_or(|at| at.elapsed() >= OPTIMIZE_EVERY) {
            if let Err(e) = optimize(&mut conn) {
                tracing::warn!(error = %e, "planner statistics not refreshed");
            }
            optimized_at = Some(std::time::Instant::now());
        }
        let before = wal_size(&path);
        match checkpoint(&mut conn, before, WAL_LIMIT_BYTES) {
            Ok(c) if before <= WAL_LIMIT_BYTES => {
                tracing::trace!(log_frames = c.log, copied = c.checkpointed, "WAL passive checkpoint")
            }
            Ok(c) if c.busy != 0 => {
                tracing::debug!(wal_bytes = before, "WAL over its limit; readers kept it, trying again")
            }
            Ok(_) => tracing::debug!(wal_bytes = before, "WAL checkpointed and truncated"),
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
        }
        std::thread::sleep(LOOK_EVERY);
    }))
}

#[cfg(test)]
mod tests {
    use diesel::Connection;

    use super::*;

    fn open(path: &Path) -> SqliteConnection {
        let mut c = SqliteConnection::establish(&path.to_string_lossy()).expect("open");
        c.batch_execute("PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 1000; PRAGMA wal_autocheckpoint = 0;")
            .expect("configure");
        c
    }

    /// A reader holding an old snapshot keeps any checkpoint from restarting the log, so it
    /// grows with every write; once the reader is gone the truncating checkpoint empties
    /// it, and the rows are all there.
    #[test]
    fn the_log_grows_under_an_old_snapshot_and_is_truncated_after_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("wal.db");
        let mut writer = open(&db);
        writer
            .batch_execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
            .expect("create");
        let path = wal_path(&mut writer).expect("database_list").expect("a file database");
        let mut reader = open(&db);
        reader
            .batch_execute("BEGIN; SELECT count(*) FROM t;")
            .expect("read snapshot");
        for _ in 0..50 {
            writer
                .batch_execute("INSERT INTO t (body) SELECT printf('%.4000c', 'x') FROM (SELECT 1 UNION SELECT 2)")
                .expect("insert");
        }
        let grown = wal_size(&path);
        assert!(grown > 100 * 4096, "log of {grown} bytes");

        let passive = checkpoint(&mut writer, wal_size(&path), u64::MAX).expect("passive checkpoint");
        assert_eq!(passive.busy, 0, "a passive checkpoint never waits");
        assert!(passive.checkpointed < passive.log, "the reader's snapshot is kept");
        assert_eq!(wal_size(&path), grown);

        let busy = checkpoint(&mut writer, wal_size(&path), 0).expect("truncating checkpoint");
        assert_eq!(busy.busy, 1, "the old snapshot is still read");
        assert_eq!(wal_size(&path), grown);

        reader.batch_execute("COMMIT").expect("end read");
        let done = checkpoint(&mut writer, wal_size(&path), 0).expect("truncating checkpoint");
        assert_eq!(done.busy, 0);
        assert_eq!(wal_size(&path), 0);
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let count: Count = diesel::sql_query("SELECT count(*) AS n FROM t")
            .get_result(&mut reader)
            .expect("count");
        assert_eq!(count.n, 100);
    }

    /// The plan SQLite picks for a query, as `EXPLAIN QUERY PLAN` details it.
    fn plan(c: &mut SqliteConnection, sql: &str) -> String {
        #[derive(diesel::QueryableByName)]
        struct Step {
            #[diesel(sql_type = Text)]
            detail: String,
        }
        diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}"))
            .load::<Step>(c)
            .expect("plan")
            .into_iter()
            .map(|s| s.detail)
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Without statistics an equality on the one organisation looks as selective as one on
    /// a customer; after `optimize` the customer's index serves the read.
    #[test]
    fn optimize_gives_the_planner_statistics_it_lacked() {
        let mut c = SqliteConnection::establish(":memory:").expect("open");
        c.batch_execute(
            "CREATE TABLE inv (id INTEGER PRIMARY KEY, org_id INTEGER NOT NULL, customer_id INTEGER NOT NULL,
                               due_date TEXT NOT NULL, open_minor INTEGER NOT NULL, kind TEXT NOT NULL);
             CREATE INDEX inv_org_id ON inv (org_id, id);
             CREATE INDEX inv_customer_due ON inv (customer_id, due_date);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
             INSERT INTO inv (org_id, customer_id, due_date, open_minor, kind)
             SELECT 1, i % 500, '2026-11-23', i % 3, 'invoice' FROM n;",
        )
        .expect("table");
        // The locked read of `repo::payments::lock_open_invoices_of_customers`.
        let read = "SELECT id FROM inv WHERE org_id = 1 AND customer_id IN (7) AND open_minor > 0 \
                    AND kind <> 'credit_note' ORDER BY id";
        assert!(plan(&mut c, read).contains("inv_org_id"), "{}", plan(&mut c, read));
        optimize(&mut c).expect("optimize");
        assert!(
            plan(&mut c, read).contains("inv_customer_due"),
            "{}",
            plan(&mut c, read)
        );
    }

    #[test]
    fn an_in_memory_database_has_no_log_file() {
        let mut c = SqliteConnection::establish(":memory:").expect("open");
        assert_eq!(wal_path(&mut c).expect("database_list"), None);
    }

    /// The text column `name` of each row a query returns.
    fn names(c: &mut SqliteConnection, sql: &str) -> Vec<String> {
        #[derive(diesel::QueryableByName)]
        struct Named {
            #[diesel(sql_type = Text)]
            name: String,
        }
        diesel::sql_query(sql)
            .load::<Named>(c)
            .expect("read")
            .into_iter()
            .map(|n| n.name)
            .collect()
    }

    /// An in-memory database migrated up to and including `version`.
    fn migrated_to(version: &str) -> SqliteConnection {
        use diesel_migrations::MigrationHarness;

        let mut c = SqliteConnection::establish(":memory:").expect("open");
        c.batch_execute("PRAGMA foreign_keys = ON;").expect("configure");
        while c
            .run_next_migration(crate::db::SQLITE_MIGRATIONS)
            .expect("migrate")
            .to_string()
            != version
        {}
        c
    }

    /// Organisation 1 and its customer 7, for rows a migration test needs.
    const ORG_AND_CUSTOMER: &str = "INSERT INTO organizations (id, slug, name, settings, created_at, updated_at) \
         VALUES (1, 'default', 'Default', '{}', '2026-12-05 00:00:00', '2026-12-05 00:00:00');
         INSERT INTO customers (id, org_id, external_id, name, country, language, currency, \
             payment_terms_days, credit_limit_minor, contacts, version, created_at, updated_at) \
         VALUES (7, 1, 'C-7', 'Seven', 'ES', 'es', 'EUR', 30, 100000, '[]', 1, \
             '2026-12-05 00:00:00', '2026-12-05 00:00:00');";

    /// Migration 000012 rebuilds the credit queue and the credit snapshots keyed by rowid:
    /// the rows already there survive it and its revert, and the separate key indexes go.
    #[test]
    fn the_rowid_migration_keeps_the_queue_and_the_credit_snapshots() {
        use diesel_migrations::MigrationHarness;

        use crate::db::SQLITE_MIGRATIONS;

        let snapshot = "SELECT customer_id || '/' || seq || '/' || queued_at AS name FROM credit_refresh_queue \
                        UNION ALL SELECT customer_id || '/' || risk_signals || '/' || updated_at FROM customer_credit \
                        ORDER BY 1";
        let key_indexes = "SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'sqlite_autoindex_%' \
                           AND tbl_name IN ('credit_refresh_queue', 'customer_credit') ORDER BY name";

        let mut c = migrated_to("20261204000011");
        c.batch_execute(ORG_AND_CUSTOMER).expect("organisation and customer");
        c.batch_execute(
            "INSERT INTO customer_credit (customer_id, org_id, risk_signals, updated_at) \
             VALUES (7, 1, '[{\"signal\":\"x\"}]', '2026-12-05 01:00:00');
             INSERT INTO credit_refresh_queue (customer_id, org_id, seq, queued_at) \
             VALUES (7, 1, 3, '2026-12-05 02:00:00');",
        )
        .expect("rows before the migration");
        let before = names(&mut c, snapshot);
        assert_eq!(before.len(), 2);
        assert_eq!(names(&mut c, key_indexes).len(), 2);

        c.run_pending_migrations(SQLITE_MIGRATIONS).expect("migrate");
        assert_eq!(names(&mut c, snapshot), before);
        assert_eq!(names(&mut c, key_indexes), Vec::<String>::new());

        while c.revert_last_migration(SQLITE_MIGRATIONS).expect("revert").to_string() != "20261205000012" {}
        assert_eq!(names(&mut c, snapshot), before);
        assert_eq!(names(&mut c, key_indexes).len(), 2);
    }

    /// Migration 000013 moves the dunning state out of `invoices`: an invoice the run acted
    /// on keeps its level, dates and clock in `invoice_dunning`, an untouched one gets no
    /// row, and the revert puts the values back on the invoices.
    #[test]
    fn the_dunning_migration_keeps_each_invoices_place_on_the_ladder() {
        use diesel_migrations::MigrationHarness;

        use crate::db::SQLITE_MIGRATIONS;

        let on_invoices = "SELECT id || '/' || dunning_level || '/' || IFNULL(last_dunned_on, '-') || '/' \
                           || IFNULL(clock_start, '-') AS name FROM invoices ORDER BY id";

        let mut c = migrated_to("20261205000012");
        c.batch_execute(ORG_AND_CUSTOMER).expect("organisation and customer");
        let invoice = |id: i64, level: i32, dunned: &str, clock: &str| {
            format!(
                "INSERT INTO invoices (id, org_id, customer_id, kind, number, currency, amount_minor, open_minor, \
                     issue_date, due_date, status, created_at, updated_at, dunning_level, last_dunned_on, clock_start) \
                 VALUES ({id}, 1, 7, 'invoice', 'F-{id}', 'EUR', 10000, 10000, '2026-10-01', '2026-10-31', 'open', \
                     '2026-12-05 00:00:00', '2026-12-05 00:00:00', {level}, {dunned}, {clock});"
            )
        };
        c.batch_execute(&format!(
            "{}{}{}",
            invoice(1, 2, "'2026-11-20'", "NULL"),
            invoice(2, 0, "NULL", "NULL"),
            invoice(3, 0, "'2026-11-21'", "'2026-11-21'"),
        ))
        .expect("invoices before the migration");
        let before = names(&mut c, on_invoices);
        assert_eq!(before, ["1/2/2026-11-20/-", "2/0/-/-", "3/0/2026-11-21/2026-11-21"]);

        c.run_pending_migrations(SQLITE_MIGRATIONS).expect("migrate");
        assert_eq!(
            names(
                &mut c,
                "SELECT invoice_id || '/' || level || '/' || IFNULL(last_dunned_on, '-') || '/' \
                 || IFNULL(clock_start, '-') AS name FROM invoice_dunning ORDER BY invoice_id"
            ),
            ["1/2/2026-11-20/-", "3/0/2026-11-21/2026-11-21"]
        );

        while c.revert_last_migration(SQLITE_MIGRATIONS).expect("revert").to_string() != "20261205000013" {}
        assert_eq!(names(&mut c, on_invoices), before);
    }

    /// A writer that cannot have the lock in time gets SQLite's "database is locked", which
    /// the service reports as a 503 to retry; the lock is free again after its holder.
    #[test]
    fn a_writer_waits_for_the_lock_and_then_gives_up_as_on_a_busy_database() {
        let held = lock_writer(WRITER_WAIT).expect("free lock");
        let waiter = std::thread::spawn(|| lock_writer(Duration::from_millis(50)).map(drop));
        let err = waiter.join().expect("thread").expect_err("the lock is held");
        assert!(err.to_string().contains("database is locked"), "{err}");
        drop(held);
        assert!(
            std::thread::spawn(|| lock_writer(WRITER_WAIT).map(drop))
                .join()
                .expect("thread")
                .is_ok()
        );
    }
}
