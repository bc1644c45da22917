//! Tasker's vocabulary: the types every other crate speaks in.
//!
//! - [`ids`]: typed UUID v7 identifiers (`TaskId`, `StepId`, ...).
//! - [`names`]: validated names (namespaces, task and step names, template versions).
//! - [`template`]: task templates: the YAML format, its loader and validator (every problem
//!   with its YAML path), and derived graph views. Entry point:
//!   [`template::ValidatedTemplate::from_yaml_str`].
//! - [`identity`]: identity strategies, idempotency keys, canonical JSON and the SHA-256
//!   identity hash used for task deduplication.
//!
//! This crate is pure data and rules: it performs no IO beyond reading template files, runs no
//! async code and knows nothing about SQL, queues or HTTP. It must not depend on tokio, sqlx,
//! tasker-config or any adapter crate; `tasker-db` maps its rows onto these types.

pub mod identity;
pub mod ids;
pub mod names;
pub mod template;
