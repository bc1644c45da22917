//! Integration tests of tasker-cache: one conformance suite run against every backend, and the
//! fault tests of the network backends.
//!
//! `suite` holds the shared test functions; `noop`, `moka`, `redis` and `memcached` instantiate
//! them (Redis at 127.0.0.1:6379 and memcached at 127.0.0.1:11211), and the network backends'
//! modules add fault tests that start private servers on free ports. A missing service or
//! server binary fails the tests; nothing is skipped. The memcached tests need the crate's
//! `memcached` feature, which `cargo xtask ci` (`--all-features`) turns on.

#[cfg(feature = "memcached")]
mod memcached;
#[cfg(feature = "moka")]
mod moka;
mod noop;
#[cfg(feature = "redis")]
mod redis;
#[cfg(any(feature = "redis", feature = "memcached"))]
mod server;
mod suite;
mod support;
