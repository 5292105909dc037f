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
//! holds more than [`WAL_LIMIT_BYTES`] it takes the writer lock and runs
//! `wal_checkpoint(RESTART)`, which waits at most [`CHECKPOINT_WAIT`] for readers of old
//! snapshots and copies the rest, so that the next writer writes the log from its beginning
//! again, over the file's blocks as they are. (It emptied the file with `TRUNCATE` before:
//! the log's blocks were then allocated again as it grew, and a 1M-invoice load went from
//! 20.3–21.5 k to 23.6–24.6 k rows/s without that.) The pool's connections cap the file at
//! the same size (`journal_size_limit`), should it outgrow it while a restart waits. If the
//! thread cannot start, the connections keep SQLite's automatic checkpoints.
//!
//! **Dirty pages stay in memory until the commit.** A 1 000-invoice batch near a million
//! invoices dirties more pages than a connection's 2 MB page cache holds (a thousand
//! random customers land on a thousand leaf pages of each customer index), and by default
//! SQLite then writes dirty pages to the log in the middle of the transaction and reads
//! them back. The pool's connections let a transaction keep up to [`SPILL_PAGES`] dirty
//! pages in memory (`cache_spill`): the 1M load went from 38 % to 43–49 % of the Python
//! reference. At the commit SQLite frees the pages above the cache size, but glibc keeps
//! freed memory in its arenas: with spilling off and nothing else the load peaked at
//! 66.7 MB against 56.7 MB before, glibc's second arena alone holding 29 MB. After a
//! commit that freed at least [`TRIM_AFTER_BYTES`] of SQLite's memory the process hands
//! freed memory back to the system (`malloc_trim`), still under the writer lock: peak
//! 56.5–58.6 MB with the limit below.
//!
//! **Planner statistics.** Without `sqlite_stat1`, SQLite takes an equality on `org_id`
//! (one value in most installations) for as selective as one on `customer_id`: the locked
//! read of a customer's open invoices walked every invoice of the organisation through
//! `invoices_org_id` (14 ms a payment at 100 000 invoices). The same thread therefore runs
//! `PRAGMA optimize=0x10002` (every table checked; SQLite bounds each ANALYZE itself) when
//! it starts and every [`OPTIMIZE_EVERY`], under the writer lock, as SQLite recommends
//! for long-lived connections: the statistics follow the book as it grows.

use std::path::PathBuf;
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
/// Past this much the log is checkpointed and restarted. Under steady writes the log never
/// restarts by itself (a writer restarts it only if, when it begins, every frame has been
/// copied back, and the next writer begins the moment the last one commits), so this size
/// sets how often writers stop for a restart: with truncation at 64 MB, a 400 000-invoice
/// load stopped 29–35 times for about 110 ms each (3.3 s of a 27–31 s load), at 256 MB 9
/// times; with restarts, the 1M load ran at 20.8–23.2 k rows/s at 64 MB against
/// 23.6–24.6 k at 256 MB. The log's index (`-shm`, mapped into the process) for 256 MB is
/// about 0.5 MB.
pub const WAL_LIMIT_BYTES: u64 = 256 * 1024 * 1024;
/// How often the keeper checkpoints (passively) and looks at how much the log holds.
pub const LOOK_EVERY: Duration = Duration::from_millis(100);

/// How often the planner statistics are brought up to date (see the module comment).
pub const OPTIMIZE_EVERY: Duration = Duration::from_secs(60);

/// The longest the restarting checkpoint waits for readers of old snapshots (the busy
/// timeout of the keeper's connection); writers wait for it meanwhile.
pub const CHECKPOINT_WAIT: Duration = Duration::from_millis(1000);

/// The dirty pages a write transaction may keep in its connection's page cache before
/// SQLite spills them to the log mid-transaction (`PRAGMA cache_spill`): 8 MB of 4 KiB
/// pages. A 1 000-invoice batch and its customers' credit queue dirty up to about 12 MB
/// near a million invoices; with a 16 MB limit the 1M load peaked at 62.1–62.6 MB, with
/// this one at 56.5–58.6 MB (bench/findings.md), and a larger transaction (a collection
/// run's, a recomputation's) cannot hold all of its pages in memory.
pub const SPILL_PAGES: u32 = 2048;

/// How much of SQLite's memory a commit must have freed for the process to return freed
/// memory to the system right after it (see the module comment).
pub const TRIM_AFTER_BYTES: i64 = 1024 * 1024;

/// SQLite's heap in use by every connection of the process, in bytes.
pub fn memory_in_use() -> i64 {
    // SAFETY: a read of SQLite's global memory statistics, under its own mutex.
    unsafe { libsqlite3_sys::sqlite3_memory_used() }
}

/// Whether a commit that took SQLite's memory from `before` to `after` bytes freed enough
/// page memory to be worth returning to the system.
pub fn worth_trimming(before: i64, after: i64) -> bool {
    before - after >= TRIM_AFTER_BYTES
}

/// Called after a SQLite commit with [`memory_in_use`] from just before it: returns the
/// pages the commit freed to the system when there were many of them (glibc only; a no-op
/// elsewhere).
pub fn release_freed_pages(before_commit: i64) {
    if worth_trimming(before_commit, memory_in_use()) {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim only returns free memory of the allocator's arenas to the
        // system; it takes the arenas' locks itself.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

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

/// What one turn of the keeper did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// A passive checkpoint, the log being within its limit.
    Passive(Checkpoint),
    /// The log was over its limit: a checkpoint under the writer lock that restarts it.
    Restarted(Checkpoint),
}

/// One turn of the keeper: a passive checkpoint, and if the log then holds more than
/// `limit_frames` frames, a `RESTART` checkpoint under the writer lock. That one copies
/// what the passive one could not, waits for readers of old snapshots, and leaves the log
/// to be written from its beginning by the next writer, in the file as it is: a truncated
/// log has its file blocks allocated again as it grows (ext4's `ext4_da_write_begin` held
/// 13 % of the samples of a `perf` profile of the request threads during a SQLite load,
/// bench/findings.md). Until that next writer comes, the log still reports its old
/// frames, so an idle keeper restarts it again each turn: with nothing left to copy that
/// holds the writer lock for 10–40 µs and writes nothing. A `busy` result means a reader
/// outlasted the connection's busy timeout; an error, that the writer lock was not free
/// within [`CHECKPOINT_WAIT`]. Either way nothing is lost: the log is only left as it was
/// until the next turn.
pub fn checkpoint(conn: &mut SqliteConnection, limit_frames: i64) -> Result<Turn, diesel::result::Error> {
    let passive: Checkpoint = diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)").get_result(conn)?;
    if passive.log <= limit_frames {
        return Ok(Turn::Passive(passive));
    }
    let _writer = lock_writer(CHECKPOINT_WAIT)?;
    Ok(Turn::Restarted(
        diesel::sql_query("PRAGMA wal_checkpoint(RESTART)").get_result(conn)?,
    ))
}

#[derive(diesel::QueryableByName)]
struct PageSize {
    #[diesel(sql_type = BigInt)]
    page_size: i64,
}

/// How many frames of the log make `bytes`: a frame is a page and its 24-byte header.
pub fn frames_in(conn: &mut SqliteConnection, bytes: u64) -> Result<i64, diesel::result::Error> {
    let page: PageSize = diesel::sql_query("PRAGMA page_size").get_result(conn)?;
    Ok(i64::try_from(bytes).unwrap_or(i64::MAX) / (page.page_size + 24))
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
    let limit_frames = match conn
        .batch_execute(&setup)
        .and_then(|()| wal_path(&mut conn))
        .and_then(|file| file.map(|_| frames_in(&mut conn, WAL_LIMIT_BYTES)).transpose())
    {
        Ok(Some(frames)) => frames,
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
        match checkpoint(&mut conn, limit_frames) {
            Ok(Turn::Passive(c)) => {
                tracing::trace!(log_frames = c.log, copied = c.checkpointed, "WAL passive checkpoint")
            }
            Ok(Turn::Restarted(c)) if c.busy != 0 => {
                tracing::debug!(log_frames = c.log, "WAL over its limit; readers kept it, trying again")
            }
            Ok(Turn::Restarted(c)) => tracing::debug!(log_frames = c.log, "WAL checkpointed and restarted"),
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
        }
        std::thread::sleep(LOOK_EVERY);
    }))
}

#[cfg(test)]
mod tests {
    use diesel::Connection;

    use std::path::Path;

    use super::*;

    /// The log's size on disk; 0 when there is no log file.
    fn wal_size(path: &Path) -> u64 {
        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
    }

    fn open(path: &Path) -> SqliteConnection {
        let mut c = SqliteConnection::establish(&path.to_string_lossy()).expect("open");
        c.batch_execute("PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 1000; PRAGMA wal_autocheckpoint = 0;")
            .expect("configure");
        c
    }

    #[derive(diesel::QueryableByName)]
    struct CacheSpill {
        #[diesel(sql_type = BigInt)]
        cache_spill: i64,
    }

    /// The pool's connections keep a batch's dirty pages in memory up to [`SPILL_PAGES`];
    /// a connection opened without the pool's setup has SQLite's default (its cache size).
    #[test]
    fn pool_connections_keep_dirty_pages_until_the_commit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("spill.db").to_string_lossy());
        let database = Database::new(&url).expect("database");
        let pool = database.pool(1).expect("pool");
        let mut pooled = pool.get().expect("connection");
        let DbConnection::Sqlite(c) = &mut *pooled else {
            panic!("a SQLite URL gives SQLite connections")
        };
        let spill: CacheSpill = diesel::sql_query("PRAGMA cache_spill").get_result(c).expect("pragma");
        assert_eq!(spill.cache_spill, i64::from(SPILL_PAGES));
        let mut plain = open(&dir.path().join("spill.db"));
        let spill: CacheSpill = diesel::sql_query("PRAGMA cache_spill")
            .get_result(&mut plain)
            .expect("pragma");
        assert!(spill.cache_spill < i64::from(SPILL_PAGES), "{}", spill.cache_spill);
    }

    /// Memory goes back to the system only after a commit that freed at least a
    /// mebibyte of SQLite's pages, not after every small write.
    #[test]
    fn only_a_commit_that_freed_many_pages_is_worth_a_trim() {
        assert!(worth_trimming(9 << 20, (9 << 20) - TRIM_AFTER_BYTES));
        assert!(worth_trimming(20 << 20, 8 << 20));
        assert!(!worth_trimming(9 << 20, (9 << 20) - TRIM_AFTER_BYTES + 1));
        assert!(!worth_trimming(8 << 20, 9 << 20));
    }

    /// A reader holding an old snapshot keeps any checkpoint from restarting the log, so it
    /// grows with every write; once the reader is gone the restarting checkpoint copies it
    /// all back, and the next writes fill the log from its beginning again instead of
    /// growing the file; the rows are all there.
    #[test]
    fn the_log_grows_under_an_old_snapshot_and_restarts_after_it() {
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
        let write_rows = |c: &mut SqliteConnection| {
            for _ in 0..50 {
                c.batch_execute("INSERT INTO t (body) SELECT printf('%.4000c', 'x') FROM (SELECT 1 UNION SELECT 2)")
                    .expect("insert");
            }
        };
        write_rows(&mut writer);
        let grown = wal_size(&path);
        assert!(grown > 100 * 4096, "log of {grown} bytes");

        let Turn::Passive(passive) = checkpoint(&mut writer, i64::MAX).expect("passive checkpoint") else {
            panic!("a log within its limit gets a passive checkpoint")
        };
        assert_eq!(passive.busy, 0, "a passive checkpoint never waits");
        assert!(passive.checkpointed < passive.log, "the reader's snapshot is kept");
        assert_eq!(wal_size(&path), grown);

        let Turn::Restarted(busy) = checkpoint(&mut writer, 0).expect("restarting checkpoint") else {
            panic!("a log over its limit is restarted")
        };
        assert_eq!(busy.busy, 1, "the old snapshot is still read");

        reader.batch_execute("COMMIT").expect("end read");
        let Turn::Restarted(done) = checkpoint(&mut writer, 0).expect("restarting checkpoint") else {
            panic!("a log over its limit is restarted")
        };
        assert_eq!(done.busy, 0);
        assert_eq!(done.checkpointed, done.log, "every frame copied back");
        assert_eq!(wal_size(&path), grown, "the file is kept, not truncated");
        write_rows(&mut writer);
        let again = wal_size(&path);
        assert!(
            again < grown + grown / 4,
            "the same writes again, from the log's beginning: {grown} then {again} bytes"
        );
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let count: Count = diesel::sql_query("SELECT count(*) AS n FROM t")
            .get_result(&mut reader)
            .expect("count");
        assert_eq!(count.n, 200);
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
        // A customer's open invoices in id order, the shape the locked reads had on SQLite
        // before `locked!` ordered them on PostgreSQL only: any read by org and customer
        // with an `ORDER BY id` meets the same plan.
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
