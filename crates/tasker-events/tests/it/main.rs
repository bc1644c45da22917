//! Integration tests of tasker-events through the public API: the pattern grammar as a table,
//! per-task order under random interleavings and under concurrency, the overflow policies with
//! a subscriber that never reads, subscription lifetime, and the domain catalogue's errors as
//! snapshots.

mod domain;
mod order;
mod overflow;
mod patterns;
mod support;
