//! Tasker's worker engine: receives step messages for the namespaces it serves, starts the
//! steps, runs their handlers (resolved through the registry's resolver chain) with their
//! timeouts, stores the results and reports them to orchestration.
//!
//! Entry points:
//! - [`catalog::Catalog::register`] loads the templates a worker serves, resolves every
//!   step's handler and registers the templates in the database, where orchestrators find
//!   them;
//! - [`engine::start`] starts the worker loops and returns a [`engine::RunningWorker`],
//!   stopped gracefully with [`engine::RunningWorker::shutdown`] (running handlers finish and
//!   their results are stored) or abruptly with [`engine::RunningWorker::abort`].
//!
//! Domain events: a handler publishes the events its step declares through its context
//! (`StepContext::publish`); those whose `condition` matches the outcome are written to the
//! event outbox in the transaction that stores the result, so they exist exactly when the
//! result was committed.
//!
//! Delivery: a worker acknowledges a step message only with (or after) storing its result and
//! sending the result message. While handlers run, it extends its messages' visibility, so a
//! message is delivered again only when its worker is gone; a redelivered message whose step
//! is still `in_progress` means the previous holder died mid-step, and the worker declares
//! that attempt lost (retryable) for orchestration to retry.
//!
//! This crate depends on tasker-state, tasker-models, tasker-db, tasker-messaging and
//! tasker-registry, and imports nothing of the orchestration engine. It writes no SQL.

pub mod catalog;
pub mod engine;
pub mod error;

mod worker;

pub use engine::{RunningWorker, start};
pub use error::{CatalogError, WorkerError};
pub use worker::WorkerSettings;
