//! PostgreSQL adapter for Tasker: the schema, its migrations, pools, atomic state transitions,
//! step readiness, task claiming and the repositories over Tasker's tables.
//!
//! Entry points:
//! - [`migrate::run`] installs pgmq's SQL and applies the embedded migrations (from
//!   `migrations/` at the repository root, the only schema source); [`migrate::status`] reports
//!   them; [`migrate::create_database_if_missing`] bootstraps a server.
//! - [`pool::PoolConfig`] builds a [`sqlx::PgPool`] whose connections have `tasker` on their
//!   search path (required by tasker-state's enum mappings) and plan statements once;
//!   [`pool::stats`] reports on it.
//! - [`template::register_validated`] registers a tasker-models template;
//!   [`task::create_from_request`] (or [`task::create`] over plain data) creates a task with
//!   its steps, edges and initial transitions in one statement, deduplicated by identity hash.
//! - [`task::transition`] and [`step::transition_batch`] apply tasker-state transitions
//!   atomically (compare-and-set, guard, history row, effects), with typed conflicts.
//! - [`readiness::for_task`], [`context::for_task`], [`claim::claim_ready_tasks`],
//!   [`dag`], [`health::counts`], [`stale::detect`] and [`dlq`] wrap the SQL functions.
//! - [`task::TaskScope`] and [`step::StepScope`] are composable, typed queries.
//! - [`error::DbError`] classifies database errors by SQLSTATE.
//!
//! Every query is checked at run time (`sqlx::query_as` + `FromRow`) and exercised by the
//! integration tests against a migrated database; docs/design/database.md says why.
//!
//! Only this crate writes SQL. It depends on tasker-state (states, events, transitions) and
//! tasker-models (ids, templates, requests) and must not depend on messaging, caching, web or
//! service crates: it is an adapter for one external system, PostgreSQL.

pub mod claim;
pub mod context;
pub mod dag;
pub mod dlq;
pub mod error;
pub mod event_outbox;
pub mod health;
pub mod lease;
pub mod migrate;
pub mod pool;
pub mod readiness;
pub mod schema;
pub mod stale;
pub mod step;
pub mod target;
pub mod task;
pub mod template;
