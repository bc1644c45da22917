//! Integration tests of tasker-resilience, through the public API and on tokio's paused clock:
//! every transition, the errors' text, classification, damping, the registry, properties over
//! random interleavings and a concurrency test on a multi-threaded runtime.

mod concurrency;
mod damping;
mod properties;
mod registry;
mod support;
mod transitions;
