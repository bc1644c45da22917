//! Embedded schema migrations and the pgmq SQL installation.
//!
//! `migrations/` at the repository root is the only schema source; [`MIGRATOR`] embeds it at
//! compile time. [`run`] applies what is missing: each migration in its own transaction, under
//! PostgreSQL's advisory lock (two migrators started at once are safe: the second waits, then
//! finds nothing to do), after verifying the checksums of those already applied. The bookkeeping
//! table is sqlx's `_sqlx_migrations`, kept in the `tasker` schema.
//!
//! Before the schema migrations, [`run`] installs pgmq's SQL from the copy embedded in the `pgmq`
//! crate, because PostgreSQL servers without the pgmq extension are common. Where the extension
//! is installed, or a `pgmq` schema exists that the SQL installer did not create, it is left
//! alone.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::migrate::{Migrate, MigrateDatabase, Migrator};
use sqlx::{PgPool, Postgres};

use crate::target::{DatabaseTarget, InvalidUrl, parse_url};

/// The migrations under `migrations/`, embedded at compile time.
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations");

/// What [`run`] did.
#[derive(Debug)]
pub struct MigrationReport {
    /// The state of pgmq after the run.
    pub pgmq: PgmqInstallation,
    /// The migrations this run applied, in order (empty when the schema was up to date).
    pub applied: Vec<AppliedMigration>,
}

/// A migration applied by [`run`].
#[derive(Debug, Clone)]
pub struct AppliedMigration {
    /// The migration's version (its file name's timestamp).
    pub version: i64,
    /// The file name's description part.
    pub description: String,
    /// How long it took.
    pub duration: Duration,
}

/// How pgmq is present in a database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgmqInstallation {
    /// The pgmq extension is installed (`CREATE EXTENSION pgmq`); its SQL is left alone.
    Extension {
        /// The extension's version.
        version: String,
    },
    /// pgmq's SQL was installed by the pgmq crate's installer (by this run or an earlier one).
    Sql {
        /// The installed pgmq version.
        version: String,
    },
    /// pgmq's tables exist without the extension or the installer's bookkeeping (an older
    /// SQL-only install); they are left alone, because upgrading an installation of unknown
    /// version could break it.
    Foreign,
    /// pgmq is not installed ([`status`] only; [`run`] always installs it).
    Missing,
}

/// The migration state of a database, as reported by [`status`].
#[derive(Debug)]
pub struct MigrationStatus {
    /// Every migration of this build, in order, with its state in the database.
    pub migrations: Vec<MigrationInfo>,
    /// Versions recorded as applied that this build does not know (the database is newer).
    pub unknown_applied: Vec<i64>,
    /// How pgmq is present.
    pub pgmq: PgmqInstallation,
}

impl MigrationStatus {
    /// True when every migration is applied unmodified and nothing unknown is recorded.
    pub fn is_up_to_date(&self) -> bool {
        self.unknown_applied.is_empty()
            && self
                .migrations
                .iter()
                .all(|migration| matches!(migration.state, MigrationState::Applied { .. }))
    }
}

/// One embedded migration and its state in the database.
#[derive(Debug, Clone)]
pub struct MigrationInfo {
    /// The migration's version.
    pub version: i64,
    /// The file name's description part.
    pub description: String,
    /// Whether and how it is applied.
    pub state: MigrationState,
}

/// The state of one migration in a database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MigrationState {
    /// Not applied yet.
    Pending,
    /// Applied, with the same checksum as the embedded file.
    Applied {
        /// When it was applied.
        installed_on: DateTime<Utc>,
    },
    /// Applied, but the embedded file has changed since (checksum mismatch).
    Modified {
        /// When it was applied.
        installed_on: DateTime<Utc>,
    },
}

/// A failure of [`run`], [`status`] or [`create_database_if_missing`].
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The URL could not be parsed.
    #[error(transparent)]
    InvalidUrl(#[from] InvalidUrl),
    /// The server could not be reached or refused the connection.
    #[error("failed to connect to {target}")]
    Connect {
        /// Which database.
        target: DatabaseTarget,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
    /// The server did not answer in time: it accepts connections but says nothing (a wrong
    /// port, a proxy with no server behind it, a server hung).
    #[error(
        "{target} did not answer within {waited:?}; is that the right host and port, and is \
         PostgreSQL responsive?"
    )]
    Timeout {
        /// Which database.
        target: DatabaseTarget,
        /// How long it waited.
        waited: std::time::Duration,
    },
    /// Creating the database failed.
    #[error("failed to create {target}")]
    CreateDatabase {
        /// Which database.
        target: DatabaseTarget,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
    /// Dropping the database failed.
    #[error("failed to drop {target}")]
    DropDatabase {
        /// Which database.
        target: DatabaseTarget,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
    /// A query about the database's state failed.
    #[error("failed to inspect the database's migration state")]
    Inspect(#[source] sqlx::Error),
    /// The pgmq crate's installer failed.
    #[error("failed to install pgmq's SQL")]
    PgmqInstall(#[source] pgmq::PgmqError),
    /// Locking, reading or creating the migrations table failed.
    #[error("failed to read or lock the migrations table `tasker._sqlx_migrations`")]
    Bookkeeping(#[source] sqlx::migrate::MigrateError),
    /// A migration failed; its transaction was rolled back.
    #[error("migration {version} ({description}) failed and was rolled back")]
    Apply {
        /// The migration's version.
        version: i64,
        /// Its description.
        description: String,
        /// The database's error.
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// An applied migration's file changed after it was applied.
    #[error(
        "migration {version} ({description}) changed after it was applied (checksum mismatch); \
         never edit an applied migration, add a new one (for a development database: `cargo xtask db reset`)"
    )]
    Modified {
        /// The migration's version.
        version: i64,
        /// Its description.
        description: String,
    },
    /// The database records a migration this build does not have.
    #[error(
        "migration {version} is applied in the database but unknown to this build: the database was \
         migrated by a newer Tasker (upgrade, or for a development database run `cargo xtask db reset`)"
    )]
    UnknownApplied {
        /// The unknown version.
        version: i64,
    },
    /// A migration is recorded as partially applied.
    #[error(
        "migration {version} is recorded as partially applied; repair the schema by hand, then delete \
         its row from `tasker._sqlx_migrations`"
    )]
    Dirty {
        /// The dirty version.
        version: i64,
    },
}

/// Installs pgmq's SQL if needed and applies every pending migration.
///
/// Safe to run concurrently from several processes and idempotent: a second run applies nothing.
/// A failing migration is rolled back and stops the run; earlier ones stay applied.
pub async fn run(pool: &PgPool) -> Result<MigrationReport, MigrateError> {
    let pgmq = install_pgmq(pool).await?;

    // A dedicated connection holds the session-level advisory lock. It is detached from the pool
    // and closed at the end, so an error can never hand a locked connection back to the pool.
    let mut conn = pool
        .acquire()
        .await
        .map_err(MigrateError::Inspect)?
        .detach();
    conn.lock().await.map_err(MigrateError::Bookkeeping)?;
    let result = match use_tasker_schema(&mut conn).await {
        Ok(()) => apply_pending(&mut conn).await,
        Err(err) => Err(err),
    };
    if result.is_ok() {
        conn.unlock().await.map_err(MigrateError::Bookkeeping)?;
    }
    // Closing ends the session, which also releases the lock after an error.
    if let Err(err) = sqlx::Connection::close(conn).await {
        tracing::debug!(error = %err, "closing the migration connection failed");
    }
    let applied = result?;
    Ok(MigrationReport { pgmq, applied })
}

/// Points the migration session at the `tasker` schema, so sqlx keeps its bookkeeping table in
/// `tasker._sqlx_migrations` (another application's sqlx migrations in `public` cannot clash
/// with ours). Runs under the advisory lock, because concurrent `CREATE SCHEMA IF NOT EXISTS`
/// can fail on the catalog's unique index.
async fn use_tasker_schema(conn: &mut sqlx::PgConnection) -> Result<(), MigrateError> {
    sqlx::query("CREATE SCHEMA IF NOT EXISTS tasker")
        .execute(&mut *conn)
        .await
        .map_err(MigrateError::Inspect)?;
    sqlx::query("SELECT pg_catalog.set_config('search_path', 'tasker', false)")
        .execute(&mut *conn)
        .await
        .map_err(MigrateError::Inspect)?;
    Ok(())
}

async fn apply_pending(
    conn: &mut sqlx::PgConnection,
) -> Result<Vec<AppliedMigration>, MigrateError> {
    conn.ensure_migrations_table()
        .await
        .map_err(MigrateError::Bookkeeping)?;
    if let Some(version) = conn
        .dirty_version()
        .await
        .map_err(MigrateError::Bookkeeping)?
    {
        return Err(MigrateError::Dirty { version });
    }
    let applied: HashMap<i64, Vec<u8>> = conn
        .list_applied_migrations()
        .await
        .map_err(MigrateError::Bookkeeping)?
        .into_iter()
        .map(|migration| (migration.version, migration.checksum.into_owned()))
        .collect();

    let known: Vec<i64> = up_migrations().map(|migration| migration.version).collect();
    if let Some(version) = applied
        .keys()
        .copied()
        .filter(|version| !known.contains(version))
        .min()
    {
        return Err(MigrateError::UnknownApplied { version });
    }

    let mut report = Vec::new();
    for migration in up_migrations() {
        match applied.get(&migration.version) {
            Some(checksum) if checksum.as_slice() == &*migration.checksum => {}
            Some(_) => {
                return Err(MigrateError::Modified {
                    version: migration.version,
                    description: migration.description.to_string(),
                });
            }
            None => {
                let duration =
                    conn.apply(migration)
                        .await
                        .map_err(|source| MigrateError::Apply {
                            version: migration.version,
                            description: migration.description.to_string(),
                            source,
                        })?;
                tracing::info!(
                    version = migration.version,
                    description = %migration.description,
                    ?duration,
                    "applied migration"
                );
                report.push(AppliedMigration {
                    version: migration.version,
                    description: migration.description.to_string(),
                    duration,
                });
            }
        }
    }
    Ok(report)
}

fn up_migrations() -> impl Iterator<Item = &'static sqlx::migrate::Migration> {
    MIGRATOR
        .iter()
        .filter(|migration| migration.migration_type.is_up_migration())
}

/// Reports which migrations are applied, pending or modified, and how pgmq is present.
///
/// Read-only: it creates nothing, not even the migrations table.
pub async fn status(pool: &PgPool) -> Result<MigrationStatus, MigrateError> {
    let pgmq = pgmq_installation(pool).await?;
    let table_exists: bool =
        sqlx::query_scalar("SELECT to_regclass('tasker._sqlx_migrations') IS NOT NULL")
            .fetch_one(pool)
            .await
            .map_err(MigrateError::Inspect)?;
    let rows: Vec<(i64, Vec<u8>, DateTime<Utc>)> = if table_exists {
        sqlx::query_as(
            "SELECT version, checksum, installed_on FROM tasker._sqlx_migrations \
             WHERE success ORDER BY version",
        )
        .fetch_all(pool)
        .await
        .map_err(MigrateError::Inspect)?
    } else {
        Vec::new()
    };
    let applied: HashMap<i64, (Vec<u8>, DateTime<Utc>)> = rows
        .into_iter()
        .map(|(version, checksum, installed_on)| (version, (checksum, installed_on)))
        .collect();

    let migrations: Vec<MigrationInfo> = up_migrations()
        .map(|migration| {
            let state = match applied.get(&migration.version) {
                None => MigrationState::Pending,
                Some((checksum, installed_on)) if checksum.as_slice() == &*migration.checksum => {
                    MigrationState::Applied {
                        installed_on: *installed_on,
                    }
                }
                Some((_, installed_on)) => MigrationState::Modified {
                    installed_on: *installed_on,
                },
            };
            MigrationInfo {
                version: migration.version,
                description: migration.description.to_string(),
                state,
            }
        })
        .collect();
    let mut unknown_applied: Vec<i64> = applied
        .keys()
        .copied()
        .filter(|version| !migrations.iter().any(|m| m.version == *version))
        .collect();
    unknown_applied.sort_unstable();
    Ok(MigrationStatus {
        migrations,
        unknown_applied,
        pgmq,
    })
}

/// Creates the database a URL names unless it exists; returns whether it was created.
///
/// Connects to the server's `postgres` maintenance database to do so. Two callers racing to
/// create the same database both succeed.
pub async fn create_database_if_missing(url: &str) -> Result<bool, MigrateError> {
    let options = parse_url(url)?;
    let target = DatabaseTarget::from_options(&options);
    let exists = Postgres::database_exists(url)
        .await
        .map_err(|source| MigrateError::Connect {
            target: maintenance_target(&target),
            source,
        })?;
    if exists {
        return Ok(false);
    }
    match Postgres::create_database(url).await {
        Ok(()) => {
            tracing::info!(%target, "created database");
            Ok(true)
        }
        // duplicate_database, or the catalog's unique index when the race is very tight.
        Err(sqlx::Error::Database(err))
            if matches!(err.code().as_deref(), Some("42P04" | "23505")) =>
        {
            Ok(false)
        }
        Err(source) => Err(MigrateError::CreateDatabase { target, source }),
    }
}

/// [`create_database_if_missing`], giving up after `limit` when the server does not answer.
pub async fn create_database_if_missing_within(
    url: &str,
    limit: std::time::Duration,
) -> Result<bool, MigrateError> {
    let target = DatabaseTarget::from_options(&parse_url(url)?);
    match tokio::time::timeout(limit, create_database_if_missing(url)).await {
        Ok(created) => created,
        Err(_) => Err(MigrateError::Timeout {
            target,
            waited: limit,
        }),
    }
}

/// Drops the database a URL names if it exists; returns whether it existed.
///
/// Fails if other sessions are connected to it (PostgreSQL's "database is being accessed by
/// other users"); close them first.
pub async fn drop_database_if_exists(url: &str) -> Result<bool, MigrateError> {
    let options = parse_url(url)?;
    let target = DatabaseTarget::from_options(&options);
    let exists = Postgres::database_exists(url)
        .await
        .map_err(|source| MigrateError::Connect {
            target: maintenance_target(&target),
            source,
        })?;
    if !exists {
        return Ok(false);
    }
    Postgres::drop_database(url)
        .await
        .map_err(|source| MigrateError::DropDatabase {
            target: target.clone(),
            source,
        })?;
    tracing::info!(%target, "dropped database");
    Ok(true)
}

/// The directory the server loads extension files from (`SHAREDIR/extension`), as the server
/// itself reports it, and the pgmq version it offers there, if any.
///
/// Used to install pgmq as an extension next to a local server (`cargo xtask db
/// install-pgmq-extension`). Reading `pg_config` needs a superuser (or a role granted it).
pub async fn server_extension_dir(
    pool: &PgPool,
) -> Result<(std::path::PathBuf, Option<String>), MigrateError> {
    let (share_dir, available): (String, Option<String>) = sqlx::query_as(
        "SELECT (SELECT setting FROM pg_catalog.pg_config WHERE name = 'SHAREDIR'), \
                (SELECT default_version FROM pg_catalog.pg_available_extensions \
                  WHERE name = 'pgmq')",
    )
    .fetch_one(pool)
    .await
    .map_err(MigrateError::Inspect)?;
    Ok((
        std::path::Path::new(&share_dir).join("extension"),
        available,
    ))
}

fn maintenance_target(target: &DatabaseTarget) -> DatabaseTarget {
    DatabaseTarget {
        database: if target.database == "postgres" {
            "template1".to_owned()
        } else {
            "postgres".to_owned()
        },
        ..target.clone()
    }
}

async fn install_pgmq(pool: &PgPool) -> Result<PgmqInstallation, MigrateError> {
    match pgmq_installation(pool).await? {
        installed @ (PgmqInstallation::Extension { .. } | PgmqInstallation::Foreign) => {
            tracing::debug!(?installed, "leaving the existing pgmq installation alone");
            Ok(installed)
        }
        PgmqInstallation::Sql { .. } | PgmqInstallation::Missing => {
            // Idempotent: the installer records applied scripts in pgmq.__pgmq_migrations, takes
            // an advisory lock and only runs what is missing (a fresh install or an upgrade).
            pgmq::install::install_sql_from_embedded(pool)
                .await
                .map_err(MigrateError::PgmqInstall)?;
            match pgmq_installation(pool).await? {
                PgmqInstallation::Sql { version } => Ok(PgmqInstallation::Sql { version }),
                // The installer always records its version, so anything else means a concurrent
                // CREATE EXTENSION; report what is there.
                other => Ok(other),
            }
        }
    }
}

async fn pgmq_installation(pool: &PgPool) -> Result<PgmqInstallation, MigrateError> {
    let (extension, bookkeeping, queues_table): (Option<String>, bool, bool) = sqlx::query_as(
        "SELECT (SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'pgmq'), \
                to_regclass('pgmq.__pgmq_migrations') IS NOT NULL, \
                to_regclass('pgmq.meta') IS NOT NULL",
    )
    .fetch_one(pool)
    .await
    .map_err(MigrateError::Inspect)?;
    if let Some(version) = extension {
        return Ok(PgmqInstallation::Extension { version });
    }
    if bookkeeping {
        let version: Option<String> = sqlx::query_scalar(
            "SELECT version FROM pgmq.__pgmq_migrations \
             ORDER BY string_to_array(version, '.')::int[] DESC LIMIT 1",
        )
        .fetch_optional(pool)
        .await
        .map_err(MigrateError::Inspect)?;
        return Ok(match version {
            Some(version) => PgmqInstallation::Sql { version },
            None => PgmqInstallation::Missing,
        });
    }
    Ok(if queues_table {
        PgmqInstallation::Foreign
    } else {
        PgmqInstallation::Missing
    })
}
