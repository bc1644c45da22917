//! `cargo xtask db`: create, migrate, reset and inspect the database named by `DATABASE_URL`.
//!
//! The work is done by `tasker_db::migrate` (the same code services run at start-up); this module
//! only parses the command, runs it on a current-thread runtime and prints the outcome. Failures
//! are rendered as one paragraph with a hint, never with the URL's password.

use std::fmt::Write as _;
use std::io::Write as _;

use anyhow::Context as _;
use tasker_db::migrate::{self, MigrateError, MigrationState, PgmqInstallation};
use tasker_db::pool::{PoolConfig, PoolError};
use tasker_db::target::{DatabaseTarget, parse_url, scrub_password};

mod pgmq_extension;

/// The database used when `DATABASE_URL` is not set.
const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/tasker_development";

/// Database commands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum DbCmd {
    /// Create the database named by DATABASE_URL unless it exists.
    Create,
    /// Create the database if needed, install pgmq's SQL, apply pending migrations and show the
    /// resulting status.
    Migrate,
    /// Drop the database, create it again and migrate it.
    Reset {
        /// Allow resetting a database on a host other than localhost.
        #[arg(long)]
        force: bool,
    },
    /// Show the applied and pending migrations and summarise the `tasker` schema.
    Status,
    /// Install pgmq as a PostgreSQL extension on the (local) server DATABASE_URL names, from the
    /// SQL the `pgmq` crate embeds, so `CREATE EXTENSION pgmq` works there. Writes two files into
    /// the server's extension directory (usually needs root).
    InstallPgmqExtension {
        /// The extension directory to write to, instead of the one the server reports.
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
}

/// Runs a database command against `DATABASE_URL` (default: the local development database).
pub(crate) fn run(cmd: DbCmd) -> anyhow::Result<()> {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the tokio runtime")?;
    runtime.block_on(async {
        match cmd {
            DbCmd::Create => create(&url).await,
            DbCmd::Migrate => migrate_cmd(&url).await,
            DbCmd::Reset { force } => reset(&url, force).await,
            DbCmd::Status => status(&url).await,
            DbCmd::InstallPgmqExtension { dir } => pgmq_extension::install(&url, dir).await,
        }
    })
}

async fn create(url: &str) -> anyhow::Result<()> {
    let target = target(url)?;
    let created = migrate::create_database_if_missing(url)
        .await
        .map_err(|err| explain(&err, url))?;
    let verb = if created {
        "created"
    } else {
        "already exists:"
    };
    say(format_args!("{verb} {target}"))
}

async fn migrate_cmd(url: &str) -> anyhow::Result<()> {
    let target = target(url)?;
    if migrate::create_database_if_missing(url)
        .await
        .map_err(|err| explain(&err, url))?
    {
        say(format_args!("created {target}"))?;
    }
    let pool = connect(url, &target).await?;
    let result = migrate_and_report(&pool, &target, url).await;
    pool.close().await;
    say(format_args!("{}", result?.trim_end()))
}

/// Migrates and prints what was applied; returns the rendered status of the schema it left
/// behind (what a user wants to see after migrating), on the same pool.
async fn migrate_and_report(
    pool: &sqlx::PgPool,
    target: &DatabaseTarget,
    url: &str,
) -> anyhow::Result<String> {
    let report = migrate::run(pool).await.map_err(|err| explain(&err, url))?;
    let mut out = String::new();
    writeln!(out, "{target}: {}", describe_pgmq(&report.pgmq))?;
    if report.applied.is_empty() {
        writeln!(out, "schema is up to date, no migration applied")?;
    } else {
        for migration in &report.applied {
            writeln!(
                out,
                "applied {}  {:<40} {:>8.1} ms",
                migration.version,
                migration.description,
                migration.duration.as_secs_f64() * 1000.0
            )?;
        }
        writeln!(out, "{} migration(s) applied", report.applied.len())?;
    }
    say(format_args!("{}\n", out.trim_end()))?;
    status_report(pool, target, url).await
}

async fn reset(url: &str, force: bool) -> anyhow::Result<()> {
    let target = target(url)?;
    let local = matches!(
        target.host.as_str(),
        "localhost" | "127.0.0.1" | "::1" | "[::1]"
    ) || target.host.starts_with('/');
    if !local && !force {
        anyhow::bail!(
            "refusing to reset {target}: it is not on this machine, and a reset drops every table \
             (pass --force if you really mean it)"
        );
    }
    let existed = migrate::drop_database_if_exists(url)
        .await
        .map_err(|err| explain(&err, url))?;
    if existed {
        say(format_args!("dropped {target}"))?;
    }
    migrate_cmd(url).await
}

async fn status(url: &str) -> anyhow::Result<()> {
    let target = target(url)?;
    let pool = connect(url, &target).await?;
    let result = status_report(&pool, &target, url).await;
    pool.close().await;
    say(format_args!("{}", result?.trim_end()))
}

async fn status_report(
    pool: &sqlx::PgPool,
    target: &DatabaseTarget,
    url: &str,
) -> anyhow::Result<String> {
    let status = migrate::status(pool)
        .await
        .map_err(|err| explain(&err, url))?;
    let summary = tasker_db::schema::summary(pool)
        .await
        .map_err(|err| explain(&MigrateError::Inspect(err), url))?;

    let mut out = String::new();
    writeln!(out, "{target}")?;
    writeln!(out, "pgmq: {}", describe_pgmq(&status.pgmq))?;
    let applied = status
        .migrations
        .iter()
        .filter(|m| matches!(m.state, MigrationState::Applied { .. }))
        .count();
    writeln!(
        out,
        "\nmigrations ({applied} applied, {} pending or modified):",
        status.migrations.len() - applied
    )?;
    for migration in &status.migrations {
        let (label, when) = match &migration.state {
            MigrationState::Pending => ("pending ", String::new()),
            MigrationState::Applied { installed_on } => (
                "applied ",
                installed_on.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            ),
            MigrationState::Modified { installed_on } => (
                "MODIFIED",
                format!(
                    "{} (file changed after it was applied)",
                    installed_on.format("%Y-%m-%d %H:%M:%S UTC")
                ),
            ),
        };
        writeln!(
            out,
            "  {label}  {}  {:<40} {when}",
            migration.version, migration.description
        )?;
    }
    for version in &status.unknown_applied {
        writeln!(
            out,
            "  UNKNOWN   {version}  (applied, but not in this build)"
        )?;
    }

    if summary.tables.is_empty() {
        writeln!(
            out,
            "\nthe `tasker` schema does not exist yet: run `cargo xtask db migrate`"
        )?;
        return Ok(out);
    }
    let width = summary
        .tables
        .iter()
        .map(|t| t.name.len())
        .max()
        .unwrap_or(0);
    writeln!(out, "\ntables ({}):", summary.tables.len())?;
    for table in &summary.tables {
        writeln!(out, "  {:<width$}  {:>10} rows", table.name, table.rows)?;
    }
    let width = summary
        .enums
        .iter()
        .map(|e| e.name.len())
        .max()
        .unwrap_or(0);
    writeln!(out, "\nenum types ({}):", summary.enums.len())?;
    for enum_type in &summary.enums {
        writeln!(
            out,
            "  {:<width$}  {}",
            enum_type.name,
            enum_type.labels.join(", ")
        )?;
    }
    writeln!(out, "\nfunctions ({}):", summary.functions.len())?;
    for function in &summary.functions {
        writeln!(out, "  {function}")?;
    }
    Ok(out)
}

fn describe_pgmq(pgmq: &PgmqInstallation) -> String {
    match pgmq {
        PgmqInstallation::Extension { version } => format!("pgmq extension {version}"),
        PgmqInstallation::Sql { version } => format!("pgmq {version} (SQL install)"),
        PgmqInstallation::Foreign => {
            "pgmq tables of unknown origin (left alone: neither the extension nor our installer)"
                .to_owned()
        }
        PgmqInstallation::Missing => "pgmq not installed".to_owned(),
    }
}

fn target(url: &str) -> anyhow::Result<DatabaseTarget> {
    let options = parse_url(url).map_err(|err| anyhow::anyhow!("{err}; check DATABASE_URL"))?;
    Ok(DatabaseTarget::from_options(&options))
}

async fn connect(url: &str, target: &DatabaseTarget) -> anyhow::Result<sqlx::PgPool> {
    let config = PoolConfig::from_url(url).map_err(|err| anyhow::anyhow!("{err}"))?;
    connect_with(config, url, target).await
}

/// Connects with xtask's small pool settings; errors name `target` and never `url`'s password.
async fn connect_with(
    mut config: PoolConfig,
    url: &str,
    target: &DatabaseTarget,
) -> anyhow::Result<sqlx::PgPool> {
    config.max_connections = 2;
    config.acquire_timeout = std::time::Duration::from_secs(5);
    config.application_name = "tasker-xtask".to_owned();
    config.connect().await.map_err(|err| match err {
        PoolError::Connect { source, .. } => explain(
            &MigrateError::Connect {
                target: target.clone(),
                source,
            },
            url,
        ),
        other => anyhow::anyhow!("{}", scrub_password(&other.to_string(), url)),
    })
}

/// Renders an error and its causes as one paragraph, with a hint for the common cases.
fn explain(err: &MigrateError, url: &str) -> anyhow::Error {
    let mut message = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    let hint = match err {
        MigrateError::Connect { source, .. } => match source.as_database_error() {
            Some(db) if db.code().as_deref() == Some("3D000") => {
                " (the database does not exist: run `cargo xtask db create` or `cargo xtask db migrate`)"
            }
            Some(_) => "",
            None => {
                " (is PostgreSQL running and accepting connections there? Start it, or point \
                 DATABASE_URL at a server that is)"
            }
        },
        MigrateError::InvalidUrl(_) => " (check DATABASE_URL)",
        _ => "",
    };
    message.push_str(hint);
    // The URL's password must never appear, whatever a driver put into its message.
    anyhow::Error::msg(scrub_password(&message, url))
}

fn say(args: std::fmt::Arguments<'_>) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{args}").context("failed to write to stdout")
}
