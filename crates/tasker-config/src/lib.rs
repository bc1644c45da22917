//! Typed, validated, layered configuration for Tasker services.
//!
//! Configuration is the first thing every Tasker process touches, so this crate makes it
//! impossible to misconfigure silently: every key has a type, a documented default and its
//! rules; unknown keys are errors with a "did you mean"; every problem is reported at once
//! with its file (or environment variable), dotted key, redacted value and the rule broken.
//!
//! ```
//! use tasker_config::{ConfigLoader, tasker::TaskerConfig};
//!
//! // Load configuration from TOML files based on TASKER_ENV
//! let config: TaskerConfig = ConfigLoader::load_from_env().expect("Failed to load config");
//! // Access configuration sections
//! assert!(config.common.database.pool.max_connections > 0);
//! ```
//!
//! # Entry points
//! - [`ConfigLoader::load_from_env`]: the complete [`tasker::TaskerConfig`], strict.
//! - [`ConfigLoader::builder`]: inject the environment, pick a root, file or environment,
//!   choose [`Strictness`], and load the complete configuration or only what one service
//!   needs ([`ConfigLoader::load_orchestration`], [`ConfigLoader::load_worker`]). Returns a
//!   [`Loaded`] with warnings, [`provenance::Provenance`] and [`Loaded::show`].
//! - [`docs::configuration_markdown`]: the reference of every key, generated from the schema.
//!
//! # Layers
//! Compiled defaults, then `config/tasker/base/<section>.toml`, then
//! `config/tasker/environments/$TASKER_ENV/<section>.toml` (or one pre-merged file named by
//! `TASKER_CONFIG_PATH`), then `TASKER__SECTION__KEY=value` variables. The root is
//! `TASKER_CONFIG_ROOT`, else the nearest `config/tasker` above the current directory, else
//! none (compiled defaults). `${VAR}` and `${VAR:-default}` placeholders in string values
//! are expanded after merging. See `docs/design/configuration.md`.
//!
//! # Secrets
//! URLs ([`types::DatabaseUrl`] ...) mask their passwords and [`types::Secret`] hides its
//! value in `Debug` and `Display`; problems and [`Loaded::show`] redact them too.
//!
//! # Dependencies
//! This crate sits low in the graph: it depends on `config`, `serde`, `toml`, `thiserror`
//! and `strsim` only. It must not depend on adapter crates (`tasker-db`, messaging, web),
//! on `tokio` or on `sqlx`; consumers map the validated sections onto their own config types.

pub mod channels;
pub mod common;
pub mod docs;
mod error;
pub mod event_system;
pub mod grpc;
mod loader;
pub mod orchestration;
mod placeholder;
pub mod problem;
pub mod provenance;
mod schema;
mod show;
pub mod tasker;
pub mod types;
mod validate;
pub mod web;
pub mod worker;

pub use error::{ConfigError, TomlSyntaxError};
pub use loader::{ConfigLoader, ConfigSource, Loaded, Strictness};
