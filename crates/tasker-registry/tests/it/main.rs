//! Integration tests for tasker-registry.
//!
//! - `templates`: the fixture templates against a resolver chain, without a database.
//! - `register`, `lookup`: the template registry against the real PostgreSQL named by
//!   `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/...`). Every test gets a fresh
//!   database of its own (`harness::run`), migrated with tasker-db's migrator and dropped
//!   afterwards, and writes its template files to a scratch directory of its own. A missing
//!   server fails the test; it never skips.

mod cached;
mod harness;
mod lookup;
mod register;
mod templates;
