//! Integration tests of tasker-messaging: one conformance suite run against every backend.
//!
//! `suite` holds the shared test functions; `memory`, `pgmq` and `rabbitmq` instantiate them
//! for each backend (the real services at 127.0.0.1), and the backend modules add their own
//! fault tests. A missing service fails the tests; nothing is skipped.

mod memory;
mod pg_support;
mod pgmq;
mod pgmq_metrics;
mod rabbitmq;
mod suite;
