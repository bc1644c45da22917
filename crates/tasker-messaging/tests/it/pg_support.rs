//! A fresh PostgreSQL database per test, with pgmq installed, dropped at the end.
//!
//! The server comes from `DATABASE_URL` (set by `.cargo/config.toml`); databases are created
//! through its `postgres` maintenance database as `tasker_msg_<random>`. An unreachable server
//! fails the test.
//!
//! This file holds the test suite's own SQL (creating, dropping and probing databases).

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database that lives for one test.
pub(crate) struct TestDb {
    pub(crate) name: String,
    pub(crate) pool: PgPool,
    admin: PgConnectOptions,
}

impl TestDb {
    /// Creates the database and installs pgmq's SQL with the pgmq crate's installer.
    pub(crate) async fn create() -> anyhow::Result<Self> {
        let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());
        let server = PgConnectOptions::from_str(&url)
            .with_context(|| format!("parsing DATABASE_URL {url:?}"))?;
        let admin = server.clone().database("postgres");
        let name = format!("tasker_msg_{:016x}", rand::random::<u64>());
        let mut conn = admin.connect().await.with_context(|| {
            format!(
                "connecting to PostgreSQL at {}:{} (is it running? the tests need it)",
                admin.get_host(),
                admin.get_port()
            )
        })?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .with_context(|| format!("creating database {name}"))?;
        drop(conn);
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(server.database(&name))
            .await
            .with_context(|| format!("connecting to {name}"))?;
        pgmq::install::install_sql_from_embedded(&pool)
            .await
            .context("installing pgmq")?;
        Ok(Self { name, pool, admin })
    }

    /// Ends the server process `pid`, as an administrator would.
    pub(crate) async fn terminate_backend(&self, pid: i32) -> anyhow::Result<bool> {
        sqlx::query_scalar("SELECT pg_terminate_backend($1)")
            .bind(pid)
            .fetch_one(&self.pool)
            .await
            .context("terminating a backend")
    }

    /// Cleans up after a conformance test: drops the database.
    pub(crate) async fn finish(self, _: &crate::suite::Harness) -> anyhow::Result<()> {
        self.drop_database().await
    }

    /// Runs `test` on a fresh database and drops the database afterwards, whether the test
    /// passed or not; the test's error wins over the clean-up's.
    pub(crate) async fn with(
        test: impl AsyncFnOnce(&TestDb) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let db = TestDb::create().await?;
        let result = test(&db).await;
        let dropped = db.drop_database().await;
        result.and(dropped)
    }

    /// Closes the pool and drops the database.
    pub(crate) async fn drop_database(self) -> anyhow::Result<()> {
        self.pool.close().await;
        let mut conn = self.admin.connect().await?;
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&mut conn)
        .await
        .with_context(|| format!("dropping database {}", self.name))?;
        Ok(())
    }
}
