//! Tasker's vocabulary: the types every other crate speaks in.
//!
//! - [`ids`]: typed UUID v7 identifiers (`TaskId`, `StepId`, ...).
//! - [`names`]: validated names (namespaces, task and step names, template versions).
//! - [`template`]: task templates: the YAML format, its loader and validator (every problem
//!   with its YAML path), and derived graph views. Entry point:
//!   [`template::ValidatedTemplate::from_yaml_str`].
//! - [`request`]: task requests, their limits and validation against a template's
//!   `input_schema`, every violation located by a JSON pointer.
//! - [`dag`]: dependency graphs and the one acyclicity check ([`dag::sort`]), which template
//!   validation, task creation and added steps share; a cycle is named by its path.
//! - [`identity`]: identity strategies, idempotency keys, canonical JSON and the SHA-256
//!   identity hash used for task deduplication.
//!
//! This crate is pure data and rules: it performs no IO beyond reading template files, runs no
//! async code and knows nothing about SQL, queues or HTTP. It depends on no workspace crate and
//! must not depend on tokio or sqlx. It holds no records of database rows: what tasker-db
//! returns (`TaskRecord`, `StepRecord`, their transition rows, `DlqEntry`, ...) is defined
//! there, with this crate's ids in it, so a changed column changes one crate.

pub mod dag;
pub mod identity;
pub mod ids;
pub mod names;
pub mod request;
pub mod template;
