//! Tasker's orchestration engine: turns task requests into tasks, claims ready tasks, enqueues
//! their ready steps, applies the step results workers report, finalizes tasks, tells
//! requesters what became of their requests, redrives work whose messages were lost, and
//! detects tasks stuck too long (when its settings ask for it).
//!
//! Entry points:
//! - [`engine::start`] starts the engine's loops on a database pool and a messaging backend
//!   and returns a [`engine::RunningOrchestrator`], stopped gracefully with
//!   [`engine::RunningOrchestrator::shutdown`]. Any number of orchestrators may run against
//!   one database, in one process or many: every decision is a compare-and-set in a
//!   transaction that holds the task's row lock.
//! - [`api::router`] is the orchestrator's HTTP API on tasker-web (tasks, templates, health,
//!   the OpenAPI document), over an [`api::ApiState`] with its own database pool; created
//!   tasks wake a running engine's claim loop through its [`engine::ClaimWaker`].
//! - [`client::Submitter`] sends task requests and follows them to their end through replies
//!   addressed to it (with the database as the safety net), whichever orchestrator does the
//!   work.
//!
//! The loops, each owned by the engine and stopped by one shutdown signal:
//! - `intake`: task requests a batch at a time (creating the tasks and settling the new ones
//!   in the same transaction) and finalization requests (giving up on tasks blocked by
//!   permanent failures);
//! - `claim`: claims ready tasks (retries that are due, waits that are over, tasks created
//!   elsewhere) and settles them; redrives messages lost between a commit and its send;
//! - `results`: step results, recorded a batch at a time with their tasks settled in the
//!   same transaction;
//! - `settle`: the decision shared by all of them;
//! - [`staleness`]: every interval, finds tasks stuck in a transient state too long and
//!   reports them, opens their DLQ entries, moves them to `error` and announces them, as
//!   configured ([`engine::RunningOrchestrator::staleness`] counts what it did).
//!
//! This crate depends on tasker-state, tasker-models, tasker-db, tasker-messaging,
//! tasker-registry, tasker-web (for the API) and tasker-metrics (metrics, and its spans' trace
//! context: see `spans`), and on nothing of the worker: what both need lives in the crate that owns
//! it. It writes no SQL (tasker-db does) and initialises no tracing subscriber.

pub mod api;
pub mod client;
pub mod engine;
pub mod error;
pub mod staleness;

mod claim;
mod intake;
mod orchestrator;
mod relay;
mod results;
mod settle;
mod spans;
mod templates;

pub use engine::{ClaimWaker, OrchestratorSettings, RunningOrchestrator, start};
pub use error::OrchestrationError;
