//! Connection pools: [`PoolConfig`] becomes a [`PgPool`] whose connections all use Tasker's
//! search path, statement timeout and application name.
//!
//! Every connection that runs this crate's queries must have `tasker` on its search path,
//! because tasker-state's enums map to the unqualified types `task_state` and `step_state`.
//! Pools built here guarantee that ([`SEARCH_PATH`], set as a startup option, so it costs no
//! round trip).

use std::fmt;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection as _, PgConnection, PgPool};

use crate::target::{DatabaseTarget, InvalidUrl, parse_url};

/// Connections a pool opens at most, unless configured.
pub const MAX_CONNECTIONS_DEFAULT: u32 = 10;
/// Connections a pool keeps open at least, unless configured.
pub const MIN_CONNECTIONS_DEFAULT: u32 = 0;
/// How long `acquire` waits for a free connection, unless configured.
pub const ACQUIRE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(30);
/// How long a connection may sit idle before it is closed, unless configured.
pub const IDLE_TIMEOUT_DEFAULT: Option<Duration> = Some(Duration::from_secs(600));
/// How long a connection lives at most, unless configured.
pub const MAX_LIFETIME_DEFAULT: Option<Duration> = Some(Duration::from_secs(1800));
/// The `application_name` shown in `pg_stat_activity`, unless configured.
pub const APPLICATION_NAME_DEFAULT: &str = "tasker";
/// The search path of every Tasker connection: Tasker's schema first, then `public`.
pub const SEARCH_PATH: &str = "tasker,public";
/// Whether pooled connections plan prepared statements once (`plan_cache_mode =
/// force_generic_plan`), unless configured.
pub const GENERIC_PLANS_DEFAULT: bool = true;
/// Idle connections are checked before use once they have been idle this long, unless
/// configured.
pub const CHECK_IDLE_AFTER_DEFAULT: Option<Duration> = Some(Duration::from_secs(10));

/// How to build a pool: the server and the pool's limits.
///
/// Owned by this crate; the composition root maps tasker-config's database section onto it.
/// Build one with [`PoolConfig::from_url`] (named defaults for everything else), adjust the
/// public fields, then [`connect`](PoolConfig::connect). `Debug` never shows the password.
#[derive(Clone)]
pub struct PoolConfig {
    options: PgConnectOptions,
    /// Connections the pool opens at most (> 0).
    pub max_connections: u32,
    /// Connections the pool keeps open at least (<= `max_connections`).
    pub min_connections: u32,
    /// How long `acquire` waits for a free connection before failing.
    pub acquire_timeout: Duration,
    /// Idle connections are closed after this long; `None` keeps them.
    pub idle_timeout: Option<Duration>,
    /// Connections are replaced after this long; `None` keeps them forever.
    pub max_lifetime: Option<Duration>,
    /// PostgreSQL's `statement_timeout` for every statement; `None` uses the server's setting.
    pub statement_timeout: Option<Duration>,
    /// PostgreSQL's `idle_in_transaction_session_timeout` for every session; `None` uses the
    /// server's setting. A client that vanished in the middle of a transaction (killed, or cut
    /// off by the network, which the server may not notice for hours) leaves its session open
    /// with its locks held; with this set, the server ends such a session after this long
    /// without a statement, and the locks are free again. Tasker's transactions never wait on
    /// anything but the database between their statements.
    pub idle_in_transaction_timeout: Option<Duration>,
    /// Shown in `pg_stat_activity` and server logs.
    pub application_name: String,
    /// Plan each prepared statement once per connection (`plan_cache_mode =
    /// force_generic_plan`). Tasker's statements are written to be planned generically (index
    /// lookups by key, arrays of ids); left to `auto`, PostgreSQL keeps re-planning the ones that
    /// take arrays (step transitions, task creation), because it cannot know the arrays are
    /// short, and the planning costs more than the execution.
    pub generic_plans: bool,
    /// A connection that sat idle in the pool at least this long is checked with a round trip
    /// (a ping) before it is handed out, and replaced if it is dead; one used more recently is
    /// handed out as it is. `None` checks every connection on every acquire (sqlx's default),
    /// which adds a round trip to every transaction and every query run on the pool. A
    /// connection that died unnoticed may fail the statement that next uses it (the pool then
    /// drops it), as a connection dying mid-use would.
    pub check_idle_after: Option<Duration>,
    /// A connection given back to the pool is checked by sqlx with a round trip that has no
    /// time limit: one whose server stopped answering (hung, or a black-holed network, after
    /// the caller gave up on it with a timeout) would hold its slot forever, and the pool would
    /// run dry. With this set, a ping bounded by it runs first and a connection that does not
    /// answer is closed. It costs one more round trip per release. `None` leaves sqlx's check
    /// alone.
    pub release_timeout: Option<Duration>,
}

impl fmt::Debug for PoolConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolConfig")
            .field("target", &self.target().to_string())
            .field("max_connections", &self.max_connections)
            .field("min_connections", &self.min_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_lifetime", &self.max_lifetime)
            .field("statement_timeout", &self.statement_timeout)
            .field(
                "idle_in_transaction_timeout",
                &self.idle_in_transaction_timeout,
            )
            .field("application_name", &self.application_name)
            .field("generic_plans", &self.generic_plans)
            .field("check_idle_after", &self.check_idle_after)
            .field("release_timeout", &self.release_timeout)
            .finish()
    }
}

/// A pool configuration that cannot work, or a server that could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// The URL could not be parsed.
    #[error(transparent)]
    InvalidUrl(#[from] InvalidUrl),
    /// `max_connections` is zero.
    #[error("pool for {target}: max_connections must be at least 1")]
    NoConnections {
        /// Which database.
        target: DatabaseTarget,
    },
    /// `min_connections` exceeds `max_connections`.
    #[error("pool for {target}: min_connections ({min}) must not exceed max_connections ({max})")]
    MinExceedsMax {
        /// Which database.
        target: DatabaseTarget,
        /// The configured minimum.
        min: u32,
        /// The configured maximum.
        max: u32,
    },
    /// The application name cannot be sent as a startup option.
    #[error(
        "pool for {target}: application_name `{name}` must be 1 to 63 printable ASCII characters"
    )]
    InvalidApplicationName {
        /// Which database.
        target: DatabaseTarget,
        /// The rejected name.
        name: String,
    },
    /// The first connection failed.
    #[error("failed to connect to {target}")]
    Connect {
        /// Which database.
        target: DatabaseTarget,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
}

impl PoolConfig {
    /// A configuration for the database a URL names, with the named defaults for everything
    /// else.
    pub fn from_url(url: &str) -> Result<Self, PoolError> {
        Ok(Self::from_options(parse_url(url)?))
    }

    /// A configuration for already parsed connect options, with the named defaults.
    pub fn from_options(options: PgConnectOptions) -> Self {
        Self {
            options,
            max_connections: MAX_CONNECTIONS_DEFAULT,
            min_connections: MIN_CONNECTIONS_DEFAULT,
            acquire_timeout: ACQUIRE_TIMEOUT_DEFAULT,
            idle_timeout: IDLE_TIMEOUT_DEFAULT,
            max_lifetime: MAX_LIFETIME_DEFAULT,
            statement_timeout: None,
            idle_in_transaction_timeout: None,
            application_name: APPLICATION_NAME_DEFAULT.to_owned(),
            generic_plans: GENERIC_PLANS_DEFAULT,
            check_idle_after: CHECK_IDLE_AFTER_DEFAULT,
            release_timeout: Some(ACQUIRE_TIMEOUT_DEFAULT),
        }
    }

    /// Which server and database the pool connects to.
    pub fn target(&self) -> DatabaseTarget {
        DatabaseTarget::from_options(&self.options)
    }

    /// Checks the limits, reporting the first problem.
    pub fn validate(&self) -> Result<(), PoolError> {
        if self.max_connections == 0 {
            return Err(PoolError::NoConnections {
                target: self.target(),
            });
        }
        if self.min_connections > self.max_connections {
            return Err(PoolError::MinExceedsMax {
                target: self.target(),
                min: self.min_connections,
                max: self.max_connections,
            });
        }
        let name = &self.application_name;
        // A startup option value cannot contain spaces; PostgreSQL truncates names at 63 bytes.
        if name.is_empty() || name.len() > 63 || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(PoolError::InvalidApplicationName {
                target: self.target(),
                name: name.clone(),
            });
        }
        Ok(())
    }

    /// The connect options every pooled connection uses: the URL's, plus the search path, the
    /// application name, the statement timeout and the plan cache mode.
    pub fn connect_options(&self) -> PgConnectOptions {
        let mut options = self
            .options
            .clone()
            .application_name(&self.application_name)
            .options([("search_path", SEARCH_PATH)]);
        if self.generic_plans {
            options = options.options([("plan_cache_mode", "force_generic_plan")]);
        }
        if let Some(timeout) = self.statement_timeout {
            options =
                options.options([("statement_timeout", format!("{}ms", timeout.as_millis()))]);
        }
        if let Some(timeout) = self.idle_in_transaction_timeout {
            options = options.options([(
                "idle_in_transaction_session_timeout",
                format!("{}ms", timeout.as_millis()),
            )]);
        }
        options
    }

    fn pool_options(&self) -> PgPoolOptions {
        let mut options = PgPoolOptions::new()
            .max_connections(self.max_connections)
            .min_connections(self.min_connections)
            .acquire_timeout(self.acquire_timeout)
            .idle_timeout(self.idle_timeout)
            .max_lifetime(self.max_lifetime);
        if let Some(limit) = self.release_timeout {
            options = options.after_release(move |conn, _| {
                Box::pin(async move {
                    // An error closes the connection without a goodbye (nothing more is sent
                    // on it), and the slot is free again.
                    match tokio::time::timeout(limit, conn.ping()).await {
                        Ok(Ok(())) => Ok(true),
                        Ok(Err(error)) => Err(error),
                        Err(_) => Err(sqlx::Error::PoolTimedOut),
                    }
                })
            });
        }
        match self.check_idle_after {
            None => options.test_before_acquire(true),
            Some(after) => options
                .test_before_acquire(false)
                .before_acquire(move |conn, meta| {
                    Box::pin(async move {
                        // An error closes the connection and the pool tries another.
                        if meta.idle_for >= after {
                            conn.ping().await?;
                        }
                        Ok(true)
                    })
                }),
        }
    }

    /// Validates the configuration and opens the pool, connecting once to prove the server is
    /// reachable.
    pub async fn connect(&self) -> Result<PgPool, PoolError> {
        self.validate()?;
        let options = self.connect_options();
        let connect_error = |source| PoolError::Connect {
            target: self.target(),
            source,
        };
        // One direct connection first: the pool retries failed connects until its acquire
        // timeout and then reports only "pool timed out", hiding "connection refused" or
        // "database does not exist".
        let probe = tokio_timeout(self.acquire_timeout, PgConnection::connect_with(&options))
            .await
            .map_err(connect_error)?;
        if let Err(err) = probe.close().await {
            tracing::debug!(error = %err, "closing the probe connection failed");
        }
        self.pool_options()
            .connect_with(options)
            .await
            .map_err(connect_error)
    }

    /// Validates the configuration and returns a pool that connects on first use.
    pub fn connect_lazy(&self) -> Result<PgPool, PoolError> {
        self.validate()?;
        Ok(self
            .pool_options()
            .connect_lazy_with(self.connect_options()))
    }
}

/// Begins a transaction that commits without waiting for its WAL to be flushed
/// (`synchronous_commit = off` for this transaction only), in one round trip.
///
/// For transactions whose loss in a server crash is harmless because everything they decide
/// lives in the same database and is redone: a worker starting steps or storing results that
/// are announced by PGMQ messages in the same transaction. Whoever reads what it wrote commits
/// synchronously, which flushes it too.
pub async fn begin_asynchronous_commit(
    pool: &PgPool,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
    pool.begin_with("BEGIN; SET LOCAL synchronous_commit = off")
        .await
}

/// A snapshot of a pool's connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Open connections, idle or in use.
    pub size: u32,
    /// Open connections waiting to be used.
    pub idle: u32,
    /// Connections currently lent out.
    pub in_use: u32,
    /// The configured maximum.
    pub max_connections: u32,
    /// The configured minimum.
    pub min_connections: u32,
    /// Whether the pool was closed.
    pub closed: bool,
}

/// Reads a pool's statistics (no database round trip).
pub fn stats(pool: &PgPool) -> PoolStats {
    let size = pool.size();
    let idle = u32::try_from(pool.num_idle()).unwrap_or(u32::MAX).min(size);
    PoolStats {
        size,
        idle,
        in_use: size - idle,
        max_connections: pool.options().get_max_connections(),
        min_connections: pool.options().get_min_connections(),
        closed: pool.is_closed(),
    }
}

/// Runs a connect attempt with a deadline, reporting an expired one as sqlx's pool timeout.
async fn tokio_timeout<T>(
    limit: Duration,
    attempt: impl std::future::Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, sqlx::Error> {
    match tokio::time::timeout(limit, attempt).await {
        Ok(result) => result,
        Err(_) => Err(sqlx::Error::PoolTimedOut),
    }
}
