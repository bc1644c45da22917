//! Test databases: each test runs in a fresh database of its own on the server `DATABASE_URL`
//! names, which is dropped afterwards, whether the test passed, failed or panicked.
//!
//! Only the server is taken from `DATABASE_URL`; the database it names need not exist. A
//! missing server fails the test (never a skip).

use std::future::Future;
use std::str::FromStr;

use sqlx::ConnectOptions as _;
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;
use tasker_db::pool::PoolConfig;

const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/tasker_development";

/// A database created for one test.
#[derive(Debug, Clone)]
pub(crate) struct TestDb {
    options: PgConnectOptions,
}

impl TestDb {
    /// The database's name.
    pub(crate) fn name(&self) -> &str {
        self.options
            .get_database()
            .expect("test databases are named")
    }

    /// Connect options for the test database.
    pub(crate) fn options(&self) -> PgConnectOptions {
        self.options.clone()
    }

    /// Connect options for another database on the same server.
    pub(crate) fn options_for(&self, database: &str) -> PgConnectOptions {
        self.options.clone().database(database)
    }

    /// A URL for another database on the same server.
    pub(crate) fn url_for(&self, database: &str) -> String {
        self.options_for(database).to_url_lossy().to_string()
    }

    /// A pool with Tasker's connection settings, not migrated.
    pub(crate) async fn pool(&self) -> anyhow::Result<PgPool> {
        pool(self.options()).await
    }

    /// A pool with Tasker's connection settings over the migrated database.
    pub(crate) async fn migrated(&self) -> anyhow::Result<PgPool> {
        let pool = self.pool().await?;
        tasker_db::migrate::run(&pool).await?;
        Ok(pool)
    }
}

/// A pool with Tasker's connection settings.
pub(crate) async fn pool(options: PgConnectOptions) -> anyhow::Result<PgPool> {
    let mut config = PoolConfig::from_options(options);
    config.max_connections = 24;
    Ok(config.connect().await?)
}

fn server_options() -> anyhow::Result<PgConnectOptions> {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned());
    Ok(PgConnectOptions::from_str(&url)?)
}

/// Drops another database of the test's server, closing any session still connected to it.
pub(crate) async fn force_drop(db: &TestDb, name: &str) -> anyhow::Result<()> {
    let mut admin = db.options_for("postgres").connect().await?;
    drop_forcibly(&mut admin, name).await
}

async fn drop_forcibly(admin: &mut sqlx::PgConnection, name: &str) -> anyhow::Result<()> {
    // Test database names are generated here (`tasker_it_<uuid>` plus a short suffix).
    anyhow::ensure!(
        name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
        "unexpected database name {name}"
    );
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(admin)
        .await?;
    Ok(())
}

/// Runs `test` against a fresh database, then drops the database (forcibly closing connections
/// the test left open) and reports the test's outcome, re-raising its panic if it panicked.
pub(crate) async fn run<F, Fut>(test: F) -> anyhow::Result<()>
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let server = server_options()?;
    let name = format!("tasker_it_{}", uuid::Uuid::now_v7().simple());
    let db = TestDb {
        options: server.clone().database(&name),
    };
    let url = db.url_for(&name);
    tasker_db::migrate::create_database_if_missing(&url).await?;

    let outcome = tokio::spawn(test(db)).await;

    // The test's database and any it derived from its name (`<name>_…`).
    let mut admin = server.database("postgres").connect().await?;
    let databases: Vec<String> = sqlx::query_scalar(
        "SELECT datname FROM pg_catalog.pg_database WHERE datname = $1 OR starts_with(datname, $1 || '_')",
    )
    .bind(&name)
    .fetch_all(&mut admin)
    .await?;
    for database in databases {
        drop_forcibly(&mut admin, &database).await?;
    }
    match outcome {
        Ok(result) => result,
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        Err(err) => Err(err.into()),
    }
}
