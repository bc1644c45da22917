//! `common.database` and `common.pgmq_database`: PostgreSQL connection settings.

use crate::{
    schema::{NON_EMPTY, range, section},
    types::DatabaseUrl,
};

section! {
    /// The primary PostgreSQL database: task, step and workflow state.
    pub struct DatabaseConfig => RawDatabaseConfig {
        /// Connection URL (`postgres://` or `postgresql://`, unix-socket and multi-host forms
        /// accepted). Inject credentials through `${DATABASE_URL}`; the password is redacted
        /// everywhere it is displayed.
        url: DatabaseUrl = "${DATABASE_URL:-postgresql://localhost/tasker}";
        /// `application_name` reported to PostgreSQL (visible in `pg_stat_activity`).
        application_name: String = "tasker", NON_EMPTY;
        /// `statement_timeout` set on every connection, in milliseconds; 0 leaves the server
        /// setting in place.
        statement_timeout_ms: u64 = 0, range(0, 3_600_000);
        /// Connection pool of the primary database.
        pool: PoolConfig = RawPoolConfig::default();
    }
}

section! {
    /// A database connection pool.
    pub struct PoolConfig => RawPoolConfig {
        /// Maximum number of connections the pool opens. Too few queues queries under load;
        /// too many exhausts the server's `max_connections` across all services.
        max_connections: u32 = 25, range(1, 1000);
        /// Connections kept open while idle, to avoid cold-start latency.
        min_connections: u32 = 5, range(0, 100);
        /// Longest wait for a free connection before the query fails, in seconds.
        acquire_timeout_seconds: u32 = 10, range(1, 300);
        /// Idle time after which a connection above `min_connections` is closed, in seconds.
        idle_timeout_seconds: u32 = 300, range(1, 3600);
        /// Lifetime after which a connection is replaced, in seconds.
        max_lifetime_seconds: u32 = 1800, range(60, 86_400);
        /// Acquiring a connection slower than this (milliseconds) is logged as slow.
        slow_acquire_threshold_ms: u32 = 100, range(10, 60_000);
    }
    cross(raw, v) {
        v.le("min_connections", &raw.min_connections, "max_connections", &raw.max_connections);
    }
}

section! {
    /// An optional separate database for the PGMQ message queues.
    pub struct PgmqDatabaseConfig => RawPgmqDatabaseConfig {
        /// Connection URL of the PGMQ database; empty means "use the primary database".
        url: Option<DatabaseUrl> = "${PGMQ_DATABASE_URL:-}";
        /// Whether PGMQ may use this database when `url` is set.
        enabled: bool = true;
        /// Connection pool of the PGMQ database (used only when it is separate).
        pool: PoolConfig = RawPoolConfig {
            max_connections: 15,
            min_connections: 3,
            acquire_timeout_seconds: 5,
            ..RawPoolConfig::default()
        };
    }
}
