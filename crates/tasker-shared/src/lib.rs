//! The Tasker foundation in one dependency.
//!
//! This crate holds no logic: it re-exports each `tasker-*` crate as a module under the name
//! users know, and forwards features. Depend on it when you want everything; depend on the
//! sub-crates directly when a service needs only some of them. No crate of this workspace
//! depends on it.
//!
//! | module | crate |
//! |---|---|
//! | [`state_machine`] | `tasker-state` |
//! | [`config`] | `tasker-config` |
//! | [`models`] | `tasker-models` |
//! | [`messaging`] | `tasker-messaging` |
//! | [`cache`] | `tasker-cache` |
//! | `database`, `scopes` (feature `postgres`) | `tasker-db` |
//! | `registry` (feature `postgres`) | `tasker-registry` |
//! | [`resilience`] | `tasker-resilience` |
//! | [`events`] | `tasker-events` |
//! | [`metrics`] | `tasker-metrics` |
//! | [`web`] | `tasker-web` |
//! | [`proto`] | `tasker-proto` |
//!
//! # Feature flags
//!
//! - `postgres` (default): the `database`, `scopes` and `registry` modules.
//! - `cache-redis` (default), `cache-moka` (default), `cache-memcached`: the `cache` module's
//!   backends; `cache-redis-tls` adds `rediss://` URLs. The no-op backend is always there.
//! - `metrics-otlp`, `metrics-subscriber`: OTLP export of metrics (`metrics::otlp`), and the
//!   binaries' tracing init with OTLP span export (`metrics::subscriber`).
//! - `metrics-listener`: `metrics::listener`, the `GET /metrics` server.
//!
//! # The README
//!
//! The repository's README follows; its Rust examples run as this crate's doctests.
#![doc = include_str!("../../../README.md")]

pub use tasker_cache as cache;
pub use tasker_config as config;
#[cfg(feature = "postgres")]
pub use tasker_db as database;
pub use tasker_events as events;
pub use tasker_messaging as messaging;
pub use tasker_metrics as metrics;
pub use tasker_models as models;
pub use tasker_proto as proto;
#[cfg(feature = "postgres")]
pub use tasker_registry as registry;
pub use tasker_resilience as resilience;
pub use tasker_state as state_machine;
pub use tasker_web as web;

/// Composable, typed query builders over tasks and steps (the predecessor's named scopes).
///
/// The scopes live beside the records they load in `tasker-db`; users know them as one module,
/// so this is the facade's only item-level re-export.
#[cfg(feature = "postgres")]
pub mod scopes {
    pub use tasker_db::{step::StepScope, task::TaskScope};
}
