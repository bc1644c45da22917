//! Integration tests for tasker-db against the real PostgreSQL named by `DATABASE_URL`.
//!
//! Every test gets its own database from `#[sqlx::test(migrations = false)]` and migrates it
//! with the crate's own migrator ([`harness::migrated`]), so tests never share data.

mod add_steps;
mod batch;
mod claim;
mod context;
mod create;
mod dag_health_stale;
mod fixtures;
mod harness;
mod health;
mod leases;
mod migrate;
mod namespaces;
mod outbox;
mod readiness;
mod retry_rules;
mod scopes;
mod task_locks;
mod transitions;
