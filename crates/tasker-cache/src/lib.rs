//! Tasker's cache: one narrow async interface over Redis, moka, memcached and a no-op backend,
//! and a typed handle that turns every backend failure into a miss.
//!
//! Entry points:
//! - [`Cache`], built by [`Cache::from_config`] from [`config::CacheConfig`]: `get`/`set` of
//!   serde values in a versioned encoding ([`encoding`]), `delete`, `invalidate` of a
//!   [`Namespace`], `get_or_load` for the cache-aside path, `health` and `stats`. While its
//!   backend is down, gets miss and writes are dropped (counted in [`state::CacheStats`],
//!   logged once per change of state), and it heals by itself when the backend returns.
//! - [`backend::CacheBackend`], the object-safe trait the backends implement: `redis`
//!   (feature `redis`, default), `moka` (feature `moka`, default), `memcached` (feature
//!   `memcached`, this crate's own client) and [`noop`] (always). All pass one conformance
//!   suite (`tests/it`).
//!
//! Namespaces are invalidated by generation, never by scanning keys: see [`namespace`].
//!
//! [`Cache`] and [`Namespace`] are re-exported at the root because every user needs both;
//! other items are reached through their modules.
//!
//! This crate depends on no workspace crate: the composition root maps Tasker's configuration
//! onto [`config`]'s types. It spawns no task of its own (the Redis client's reconnects run on
//! the caller's runtime) and initialises no tracing subscriber.

#![cfg_attr(
    not(any(feature = "redis", feature = "memcached")),
    expect(
        dead_code,
        reason = "the key helpers and error constructors serve the network backends"
    )
)]

pub mod backend;
mod cache;
pub mod config;
pub mod encoding;
pub mod error;
#[cfg(feature = "memcached")]
pub mod memcached;
#[cfg(feature = "moka")]
pub mod moka;
pub mod namespace;
pub mod noop;
#[cfg(feature = "redis")]
pub mod redis;
pub mod state;

pub use cache::Cache;
pub use namespace::Namespace;
