//! Tasker's vocabulary: the types every other crate speaks in.
//!
//! - [`domain`]: plain records for what the database stores (tasks, steps, edges,
//!   transitions and result audit), with typed ids, states and UTC timestamps.
//! - [`ids`]: typed UUID v7 identifiers (`TaskId`, `StepId`, ...).
//! - [`names`]: validated names (namespaces, task and step names, template versions).
//! - [`template`]: task templates: the YAML format, its loader and validator (every problem
//!   with its YAML path), and derived graph views. Entry point:
//!   [`template::ValidatedTemplate::from_yaml_str`].
//! - [`request`]: task requests, their limits and validation against a template's
//!   `input_schema`, every violation located by a JSON pointer.
//! - [`identity`]: identity strategies, idempotency keys, canonical JSON and the SHA-256
//!   identity hash used for task deduplication.
//!
//! This crate is pure data and rules: it performs no IO beyond reading template files, runs no
//! async code and knows nothing about SQL, queues or HTTP. It must not depend on tokio, sqlx,
//! tasker-config or any adapter crate; `tasker-db` maps its rows onto these types.

pub mod domain;
pub mod identity;
pub mod ids;
pub mod names;
pub mod request;
pub mod template;
