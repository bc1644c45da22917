//! PostgreSQL adapter for Tasker: the schema, its migrations, pools, atomic state transitions,
//! step readiness, task claiming and the repositories over Tasker's tables.
//!
//! Entry points:
//! - [`migrate::run`] installs pgmq's SQL and applies the embedded migrations (from
//!   `migrations/` at the repository root, the only schema source); [`migrate::status`] reports
//!   them; [`migrate::create_database_if_missing`] bootstraps a server.
//! - [`pool::PoolConfig`] builds a [`sqlx::PgPool`] whose connections have `tasker` on their
//!   search path (required by tasker-state's enum mappings); [`pool::stats`] reports on it.
//! - [`schema::summary`] describes what the `tasker` schema holds.
//!
//! Only this crate writes SQL. It must not depend on messaging, caching, web or service crates:
//! it is an adapter for one external system, PostgreSQL.

pub mod claim;
pub mod context;
pub mod dag;
pub mod dlq;
pub mod error;
pub mod health;
pub mod migrate;
pub mod pool;
pub mod readiness;
pub mod schema;
pub mod stale;
pub mod step;
pub mod target;
pub mod task;
pub mod template;
