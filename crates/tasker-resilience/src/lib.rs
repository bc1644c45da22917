//! Circuit breakers for Tasker's dependencies: a dependency that keeps failing is given time to
//! recover instead of more calls, the breaker probes it with a few trial calls, and closes
//! again when they succeed.
//!
//! Entry points:
//! - [`breaker::CircuitBreaker`]: one breaker. [`breaker::CircuitBreaker::permit`] grants a
//!   [`permit::Permit`] (or fails fast with [`breaker::BreakerError`]), on which the caller
//!   reports the outcome: success, failure, or a caller error that counts neither way
//!   ([`permit::ErrorClass`]). [`breaker::CircuitBreaker::call`] does both around one future.
//! - [`registry::CircuitBreakers`]: one breaker per component name, built from
//!   [`config::CircuitBreakersConfig`] (which mirrors `common.circuit_breakers`).
//! - [`state::BreakerState`] (with a gauge value), [`state::StateChange`] for a metrics
//!   callback, and [`breaker::BreakerCounters`].
//!
//! States, thresholds and the damping of flapping are described on [`config::BreakerConfig`]
//! and [`state::BreakerState`]. Time is tokio's monotonic clock ([`tokio::time::Instant`]), so
//! tests drive breakers with paused time.
//!
//! ```
//! use std::time::Duration;
//! use tasker_resilience::breaker::{BreakerError, CircuitBreaker};
//! use tasker_resilience::config::BreakerConfig;
//!
//! let config = BreakerConfig { failure_threshold: 2, ..BreakerConfig::default() };
//! let breaker = CircuitBreaker::new("messaging", config).expect("a valid configuration");
//! breaker.permit().expect("closed").failure();
//! breaker.permit().expect("closed").failure();
//! let Err(BreakerError::Open { next_trial_in, .. }) = breaker.permit() else {
//!     panic!("two failures in a row open the breaker");
//! };
//! assert!(next_trial_in <= Duration::from_secs(30));
//! ```
//!
//! Items are reached through their modules; the crate root re-exports nothing.
//!
//! This crate depends on no workspace crate: components are plain names, and the composition
//! root maps Tasker's configuration onto [`config`]'s types. Its only IO is `tracing` events,
//! one per state change.

pub mod breaker;
pub mod config;
pub mod permit;
pub mod registry;
pub mod state;
mod window;
