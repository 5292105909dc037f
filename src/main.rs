//! The `recaudo` command: runs the service, and the operator commands that need no
//! running service (migrations, organisations, tokens, API clients, the OpenAPI document).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use recaudo::auth::TokenKeys;
use recaudo::auth::roles::Role;
use recaudo::config::{Config, parse_ttl};
use recaudo::db::repo::organizations;

#[derive(Parser)]
#[command(name = "recaudo", version, about = "Accounts-receivable collection service")]
struct Cli {
    /// A TOML configuration file (keys as the RECAUDO_* variables, lower-case without the
    /// prefix); environment variables override it. Default: `RECAUDO_CONFIG`, else none.
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage organisations.
    Orgs {
        #[command(subcommand)]
        command: OrgCommand,
    },
    /// Print a bearer token (only the token, so `TOKEN=$(recaudo token …)` works).
    Token {
        #[arg(long)]
        org: String,
        #[arg(long)]
        role: String,
        #[arg(long, default_value = "cli")]
        subject: String,
        /// Lifetime, e.g. 30m, 1h, 7d.
        #[arg(long, default_value = "1h")]
        ttl: String,
    },
    /// Manage API clients.
    ApiClients {
        #[command(subcommand)]
        command: ApiClientCommand,
    },
    /// Print the OpenAPI document.
    Openapi,
}

#[derive(Subcommand)]
enum OrgCommand {
    /// Create an organisation.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        slug: String,
    },
}

#[derive(Subcommand)]
enum ApiClientCommand {
    /// Create an API client and print its id and secret (shown once).
    Create {
        #[arg(long)]
        org: String,
        #[arg(long)]
        role: String,
        #[arg(long)]
        name: String,
    },
}

/// Caps glibc's malloc at two arenas unless `MALLOC_ARENA_MAX` says otherwise. By default
/// glibc gives each thread that allocates under contention its own arena, up to eight per
/// core, and every arena keeps its high-water mark: with actix's workers, the blocking
/// pool and the background workers, the SQLite invoice load peaked at 80–85 MB resident
/// against 56–59 MB with two arenas, at the same throughput (see bench/findings.md).
///
/// Also fixes the threshold above which an allocation gets its own mapping (returned to the
/// system when freed) at 128 KiB unless `MALLOC_MMAP_THRESHOLD_` is set. glibc otherwise
/// raises it each time such a block is freed, so request bodies and batch buffers of a few
/// hundred KiB end up in the arenas and keep them grown: quick PostgreSQL and SQLite loads
/// peaked at 55.3 MB instead of 57.9 MB, at the same rows/s.
/// Called first, before any thread exists.
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
            // SAFETY: mallopt only sets an allocator parameter; no thread has been started yet.
            unsafe {
                libc::mallopt(libc::M_ARENA_MAX, 2);
            }
        }
        if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
            // SAFETY: as above.
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
            }
        }
    }
}

fn main() -> ExitCode {
    tune_malloc();
    let cli = Cli::parse();
    // An empty RECAUDO_CONFIG means no file, as an empty variable means unset everywhere else.
    let config_file = cli.config.or_else(|| {
        std::env::var_os("RECAUDO_CONFIG")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    });
    let result = Config::load(config_file.as_deref()).and_then(|config| {
        recaudo::telemetry::init_tracing(&config.log_filter, config.log_json);
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(config),
            Command::Migrate => recaudo::open_database(&config).map(|_| eprintln!("migrations applied")),
            Command::Openapi => print_stdout(&recaudo::http::openapi::document_json()),
            Command::Orgs {
                command: OrgCommand::Create { name, slug },
            } => create_org(&config, &name, &slug),
            Command::Token {
                org,
                role,
                subject,
                ttl,
            } => token(&config, &org, &role, &subject, &ttl),
            Command::ApiClients {
                command: ApiClientCommand::Create { org, role, name },
            } => create_api_client(&config, &org, &role, &name),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("recaudo: {message}");
            ExitCode::FAILURE
        }
    }
}

fn serve(config: Config) -> Result<(), String> {
    actix_web::rt::System::new().block_on(async move {
        let app = recaudo::Application::build(config).await?;
        app.run_until_stopped()
            .await
            .map_err(|e| format!("server stopped: {e}"))
    })
}

/// Opens the database (applying migrations) and makes sure the default organisation exists.
fn open(config: &Config) -> Result<recaudo::db::DbConnection, String> {
    let database = recaudo::open_database(config)?;
    let pool = database.pool(1)?;
    recaudo::bootstrap(&pool)?;
    database.connect()
}

fn parse_role(role: &str) -> Result<Role, String> {
    Role::parse(role).ok_or_else(|| {
        let all: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
        format!("unknown role `{role}`; use one of {}", all.join(", "))
    })
}

fn find_org(conn: &mut recaudo::db::DbConnection, slug: &str) -> Result<organizations::Organization, String> {
    organizations::find_by_slug(conn, slug)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no organisation `{slug}`; create it with `recaudo orgs create`"))
}

fn create_org(config: &Config, name: &str, slug: &str) -> Result<(), String> {
    if !organizations::valid_slug(slug) {
        return Err("the slug must be 2–63 lower-case letters, digits or dashes".into());
    }
    let mut conn = open(config)?;
    if organizations::find_by_slug(&mut conn, slug)
        .map_err(|e| e.to_string())?
        .is_some()
    {
        return Err(format!("organisation `{slug}` already exists"));
    }
    let org = organizations::create(&mut conn, slug, name.trim()).map_err(|e| e.to_string())?;
    recaudo::service::strategies::ensure_defaults(&mut conn, org.id).map_err(|e| e.to_string())?;
    println!("{}", org.slug);
    Ok(())
}

fn token(config: &Config, org: &str, role: &str, subject: &str, ttl: &str) -> Result<(), String> {
    let role = parse_role(role)?;
    let ttl = parse_ttl(ttl)?;
    let mut conn = open(config)?;
    find_org(&mut conn, org)?;
    let (keys, _) = TokenKeys::load_or_create(config)?;
    let token = keys
        .mint(org, subject, &[role.as_str()], ttl)
        .map_err(|e| e.to_string())?;
    println!("{token}");
    Ok(())
}

fn create_api_client(config: &Config, org: &str, role: &str, name: &str) -> Result<(), String> {
    let role = parse_role(role)?;
    let mut conn = open(config)?;
    let org = find_org(&mut conn, org)?;
    let (client, secret) =
        recaudo::service::api_clients::create(&mut conn, org.id, name.trim(), role).map_err(|e| e.to_string())?;
    println!("client_id={}", client.client_id);
    println!("client_secret={secret}");
    Ok(())
}

/// Writes to standard output; a reader that closes the pipe early (`| head`) ends the
/// command quietly instead of with a panic.
fn print_stdout(text: &str) -> Result<(), String> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(format!("cannot write to standard output: {e}")),
        _ => Ok(()),
    }
}
