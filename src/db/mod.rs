//! Storage: the connection type shared by both engines, the pool, embedded migrations and
//! the transaction helpers every use case runs in. Repositories live in `repo/`, one file
//! per aggregate; SQL differs between engines only where `dispatch!` says so.

pub mod prepared;
pub mod repo;
pub mod schema;
pub mod sqlite;

use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::r2d2::{CustomizeConnection, ManageConnection, Pool};
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::error::AppError;

pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// One connection of either engine. Most queries are written once against this type;
/// where an engine needs its own SQL, `dispatch!` runs the same body on the inner connection.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Pg(PgConnection),
    Sqlite(SqliteConnection),
}

/// Runs the same diesel code on the concrete connection of each engine, for the features
/// `MultiConnection` does not carry (ON CONFLICT, multi-row INSERT … RETURNING), and for the
/// hot paths: a query run through `MultiConnection` has its SQL text rebuilt on every
/// execution (its wrapper serialises the inner query in each AST pass) even when the
/// prepared statement is cached, which cost the credit check about 15 % of its throughput.
#[macro_export]
macro_rules! dispatch {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::DbConnection::Pg($c) => $body,
            $crate::db::DbConnection::Sqlite($c) => $body,
        }
    };
}

/// Rows per statement of [`in_prepared_chunks`]: the widest table written this way has 19
/// columns, and 19 × 250 parameters stays far under both engines' bound-parameter limits.
pub const PREPARED_CHUNK_ROWS: usize = 250;

/// Runs a multi-row write over `$rows` (a slice of `Insertable` values) in statements of
/// [`PREPARED_CHUNK_ROWS`] rows that diesel keeps prepared: each full chunk is passed as
/// `&[T; PREPARED_CHUNK_ROWS]`, whose static query id lets every connection prepare the
/// statement once and reuse it; the fewer rows left over go in one statement of their own,
/// prepared for that call only, as a slice of any length has to be. A slice of 1 000 rows
/// was parsed and compiled anew on every batch (18 000 parameters, about 3 ms under
/// SQLite's writer lock).
#[macro_export]
macro_rules! in_prepared_chunks {
    ($rows:expr, |$values:ident| $write:expr) => {{
        let (chunks, rest) = $rows.as_chunks::<{ $crate::db::PREPARED_CHUNK_ROWS }>();
        for $values in chunks {
            $write;
        }
        if !rest.is_empty() {
            let $values = rest;
            $write;
        }
    }};
}

/// Runs a read that must lock its rows until the transaction ends: `SELECT … FOR UPDATE`
/// on PostgreSQL; on SQLite the write transaction (`BEGIN IMMEDIATE`) already excludes
/// other writers, so the plain query is run.
///
/// `in_order_of` gives the order PostgreSQL takes the locks in (a fixed order avoids
/// deadlocks). SQLite runs the query unordered: it takes no row locks, and an `ORDER BY id`
/// let its planner walk every row of the organisation through `(org_id, id)` instead of
/// seeking the keys asked for (an invoice batch load fell from 16 770 to 4 602 rows/s).
#[macro_export]
macro_rules! locked {
    ($conn:expr, $query:expr, in_order_of $order:expr, |$q:ident, $c:ident| $run:expr) => {
        match $conn {
            $crate::db::DbConnection::Pg($c) => {
                let $q = $query.order($order).for_update();
                $run
            }
            $crate::db::DbConnection::Sqlite($c) => {
                let $q = $query;
                $run
            }
        }
    };
    ($conn:expr, $query:expr, |$q:ident, $c:ident| $run:expr) => {
        match $conn {
            $crate::db::DbConnection::Pg($c) => {
                let $q = $query.for_update();
                $run
            }
            $crate::db::DbConnection::Sqlite($c) => {
                let $q = $query;
                $run
            }
        }
    };
}

pub type DbPool = Pool<Database>;

/// The database engine, chosen from the URL scheme and nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Postgres,
    Sqlite,
}

impl Engine {
    pub fn from_url(url: &str) -> Result<Engine, String> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Engine::Postgres)
        } else if url.starts_with("sqlite://") || url.starts_with("file:") || url == ":memory:" {
            Ok(Engine::Sqlite)
        } else {
            let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or(url);
            Err(format!(
                "unsupported database URL scheme `{scheme}`: use postgres://… or sqlite://PATH"
            ))
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Engine::Postgres => "postgres",
            Engine::Sqlite => "sqlite",
        }
    }
}

/// The path diesel's SQLite driver wants: `sqlite://data/x.db` → `data/x.db`.
fn sqlite_path(url: &str) -> &str {
    url.strip_prefix("sqlite://").unwrap_or(url)
}

/// Configures each new SQLite connection of a pool; `checkpoints_elsewhere` turns off the
/// automatic checkpoints a committing connection would run (see `sqlite`).
#[derive(Debug)]
struct ConnectionSetup {
    checkpoints_elsewhere: bool,
}

impl CustomizeConnection<DbConnection, diesel::r2d2::Error> for ConnectionSetup {
    fn on_acquire(&self, conn: &mut DbConnection) -> Result<(), diesel::r2d2::Error> {
        if let DbConnection::Sqlite(c) = conn {
            c.batch_execute(
                "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; \
                 PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
            )
            .map_err(diesel::r2d2::Error::QueryError)?;
            // A number sets the limit but also reads as a boolean, and SQLite takes its low
            // byte: `cache_spill = 4096` alone turns spilling off altogether (no limit at
            // all). `ON` afterwards turns it back on and keeps the limit.
            c.batch_execute(&format!(
                "PRAGMA cache_spill = {}; PRAGMA cache_spill = ON;",
                sqlite::SPILL_PAGES
            ))
            .map_err(diesel::r2d2::Error::QueryError)?;
            if self.checkpoints_elsewhere {
                // The log's file is kept at the size it reached (the keeper restarts it
                // rather than truncating it), but never more than this once it restarts.
                c.batch_execute(&format!(
                    "PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = {};",
                    sqlite::WAL_LIMIT_BYTES
                ))
                .map_err(diesel::r2d2::Error::QueryError)?;
            }
        }
        Ok(())
    }
}

/// The configured database, and the pool's connection manager: it builds the variant the
/// URL names, instead of diesel's `establish`, which silently falls back from PostgreSQL
/// to SQLite.
#[derive(Debug, Clone)]
pub struct Database {
    pub engine: Engine,
    pub url: String,
}

impl Database {
    pub fn new(url: &str) -> Result<Database, String> {
        Ok(Database {
            engine: Engine::from_url(url)?,
            url: url.to_string(),
        })
    }

    pub fn connect(&self) -> Result<DbConnection, String> {
        use diesel::Connection;
        match self.engine {
            Engine::Postgres => PgConnection::establish(&self.url)
                .map(DbConnection::Pg)
                .map_err(|e| format!("cannot connect to PostgreSQL: {}", e.to_string().trim())),
            Engine::Sqlite => SqliteConnection::establish(sqlite_path(&self.url))
                .map(DbConnection::Sqlite)
                .map_err(|e| format!("cannot open SQLite database: {}", e.to_string().trim())),
        }
    }

    /// Applies pending migrations of this engine.
    pub fn migrate(&self) -> Result<usize, String> {
        let mut conn = self.connect()?;
        let applied = match &mut conn {
            DbConnection::Pg(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS).map(|v| v.len()),
            DbConnection::Sqlite(c) => {
                c.batch_execute("PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON;")
                    .map_err(|e| format!("cannot configure SQLite: {e}"))?;
                c.run_pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len())
            }
        };
        applied.map_err(|e| format!("migration failed: {e}"))
    }

    /// A pool whose SQLite connections checkpoint the WAL themselves (commands, tools).
    pub fn pool(&self, size: u32) -> Result<DbPool, String> {
        self.build_pool(size, false)
    }

    /// The serving pool, with the WAL keeper of a SQLite file database started first; the
    /// returned flag stops the keeper (`None` when it does not run: PostgreSQL, an
    /// in-memory database, or a keeper that could not start, and then the pool's
    /// connections checkpoint themselves).
    pub fn serving_pool(
        &self,
        size: u32,
    ) -> Result<(DbPool, Option<std::sync::Arc<std::sync::atomic::AtomicBool>>), String> {
        let keeper = sqlite::start_wal_keeper(self);
        Ok((self.build_pool(size, keeper.is_some())?, keeper))
    }

    fn build_pool(&self, size: u32, checkpoints_elsewhere: bool) -> Result<DbPool, String> {
        Pool::builder()
            .max_size(size)
            .min_idle(Some(1))
            // A SELECT 1 per checkout costs a fifth of read throughput; failures surface as
            // errors on use and through /health/ready instead.
            .test_on_check_out(false)
            .connection_timeout(Duration::from_secs(10))
            .connection_customizer(Box::new(ConnectionSetup { checkpoints_elsewhere }))
            .build(self.clone())
            .map_err(|e| format!("cannot open database pool: {e}"))
    }
}

impl ManageConnection for Database {
    type Connection = DbConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConnection, Self::Error> {
        Database::connect(self)
            .map_err(|e| diesel::r2d2::Error::ConnectionError(diesel::ConnectionError::BadConnection(e)))
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), Self::Error> {
        conn.batch_execute("SELECT 1").map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        std::thread::panicking()
            || <DbConnection as diesel::Connection>::TransactionManager::is_broken_transaction_manager(conn)
    }
}

/// Errors that say PostgreSQL aborted the transaction to resolve a race (a deadlock or a
/// serialization failure): nothing of it was written, and running it again is safe.
pub trait Contention {
    fn is_contention(&self) -> bool;
}

impl Contention for AppError {
    fn is_contention(&self) -> bool {
        matches!(self, AppError::Contention(_))
    }
}

impl Contention for diesel::result::Error {
    fn is_contention(&self) -> bool {
        crate::error::lost_a_race(self)
    }
}

/// How often an outermost PostgreSQL transaction runs before its contention error reaches
/// the client (as a 503 with `Retry-After`).
pub const CONTENTION_ATTEMPTS: u32 = 3;

/// Runs `f` in a transaction that holds the write lock from its first statement: on SQLite
/// the process's writer lock (`sqlite::lock_writer`, so writers queue in order and take
/// over at once) and `BEGIN IMMEDIATE` (never a read lock that fails to upgrade), a plain
/// `BEGIN` on PostgreSQL, where rows are locked explicitly.
/// Called inside a transaction (a write whose answer reads a credit view, which settles a
/// queued customer in its own `write_transaction`), it opens a savepoint instead: SQLite
/// refuses a `BEGIN` inside a transaction, and the outer one already holds the write lock.
/// An outermost PostgreSQL transaction that PostgreSQL aborts to break a deadlock (or for a
/// serialization failure) is rolled back and run again, up to [`CONTENTION_ATTEMPTS`]
/// times: rows are locked in id order wherever one request locks several, but a client
/// should not see a 503 for an ordering no test found. `f` therefore writes only to the
/// database; what it sends elsewhere goes through the outbox after the commit.
pub fn write_transaction<T, E>(
    conn: &mut DbConnection,
    mut f: impl FnMut(&mut DbConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<diesel::result::Error> + Contention,
{
    let nested = <DbConnection as diesel::Connection>::TransactionManager::transaction_manager_status_mut(conn)
        .transaction_depth()?
        .is_some();
    let retries = matches!(conn, DbConnection::Pg(_)) && !nested;
    let mut attempt = 1;
    loop {
        match transaction_once(conn, nested, &mut f) {
            Err(err) if retries && attempt < CONTENTION_ATTEMPTS && err.is_contention() => {
                tracing::info!(attempt, "transaction aborted by a concurrent one; running it again");
                // Run again at once, the aborted transaction can take its first lock back
                // before the survivor gets it and deadlock with it a second time (seen under
                // load); a random pause lets the survivor finish first.
                std::thread::sleep(contention_pause(attempt));
                attempt += 1;
            }
            outcome => return outcome,
        }
    }
}

/// The pause before running an aborted transaction again: random, growing with the attempt.
fn contention_pause(attempt: u32) -> Duration {
    use rand::Rng;
    Duration::from_millis(rand::rng().random_range(5..=25) * u64::from(attempt))
}

fn transaction_once<T, E>(
    conn: &mut DbConnection,
    nested: bool,
    f: &mut impl FnMut(&mut DbConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    // Held until this function returns, after the commit or the rollback.
    let writer = match conn {
        DbConnection::Sqlite(c) if !nested => {
            let writer = sqlite::lock_writer(sqlite::WRITER_WAIT)?;
            AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?;
            Some(writer)
        }
        _ => {
            <DbConnection as diesel::Connection>::TransactionManager::begin_transaction(conn)?;
            None
        }
    };
    match f(conn) {
        Ok(value) => {
            let memory_before = writer.as_ref().map(|_| sqlite::memory_in_use());
            <DbConnection as diesel::Connection>::TransactionManager::commit_transaction(conn)?;
            // Still under the writer lock: trimmed after handing the lock on, the 1M load
            // peaked higher (with a 16 MB spill limit, 64.1–65.4 MB against 62.1–62.6 MB;
            // bench/findings.md).
            if let Some(before) = memory_before {
                sqlite::release_freed_pages(before);
            }
            Ok(value)
        }
        Err(err) => {
            // The original error matters more than a failed rollback; the connection is
            // marked broken by diesel in that case and dropped by the pool.
            let _ = <DbConnection as diesel::Connection>::TransactionManager::rollback_transaction(conn);
            Err(err)
        }
    }
}

/// Makes PostgreSQL reuse the generic plan of every prepared statement until the end of
/// the current transaction (`SET LOCAL plan_cache_mode = force_generic_plan`); a no-op on
/// SQLite. For transactions over one entity whose statements are key or index lookups:
/// under the default (`auto`) PostgreSQL plans a statement with `= ANY($1)` again on every
/// call, because the generic plan of an array of unknown length always looks costlier
/// than the custom plan of a one-element array. Measured on the payment path: 44 % of the
/// server's statement time was planning; with this and `db::prepared`, 526 → 651
/// payments/s on the quick book. Not for the whole connection (700 payments/s): a batch's
/// generic plan made while a table was still empty (a sequential scan) stayed cached, and
/// the invoice load fell from 29 923 to 13 652 rows/s.
pub fn prefer_generic_plans(conn: &mut DbConnection) -> Result<(), diesel::result::Error> {
    match conn {
        DbConnection::Pg(c) => c.batch_execute("SET LOCAL plan_cache_mode = force_generic_plan"),
        DbConnection::Sqlite(_) => Ok(()),
    }
}

/// Turns PostgreSQL's JIT compilation off until the end of the current transaction
/// (`SET LOCAL jit = off`; outside a transaction PostgreSQL only warns and ignores it); a
/// no-op on SQLite. For the set-based reads over a chunk of customers: planned for the
/// actual array of a thousand ids (see [`prefer_generic_plans`]), a read whose cost
/// estimate passes `jit_above_cost` was compiled on every call it was planned for, and the
/// compilation took longer than the read (the credit recomputation's history read in
/// `psql`: 64.5 ms with JIT against 30.0 ms without, same plan; in a 20 s payment run it
/// was compiled in 8 of 20 batches).
pub fn without_jit(conn: &mut DbConnection) -> Result<(), diesel::result::Error> {
    match conn {
        DbConnection::Pg(c) => c.batch_execute("SET LOCAL jit = off"),
        DbConnection::Sqlite(_) => Ok(()),
    }
}

/// Runs blocking database work on actix's blocking thread pool with a pooled connection.
pub async fn run<T, F>(pool: &DbPool, f: F) -> Result<T, AppError>
where
    F: FnOnce(&mut DbConnection) -> Result<T, AppError> + Send + 'static,
    T: Send + 'static,
{
    let pool = pool.clone();
    actix_web::web::block(move || {
        let mut conn = pool.get().map_err(AppError::from_pool)?;
        f(&mut conn)
    })
    .await
    .map_err(|e| AppError::internal(format!("blocking task failed: {e}")))?
}

/// Current instant, truncated to microseconds so both engines store the same value.
pub fn now() -> chrono::NaiveDateTime {
    use chrono::{SubsecRound, Utc};
    Utc::now().naive_utc().trunc_subsecs(6)
}
