//! Tasks: creation (set-based, idempotent by identity hash) and atomic state transitions.

mod create;
mod transition;

pub use create::{CreateTaskError, NewEdge, NewStep, NewTask, TaskCreation, create};
pub use transition::{AppliedTaskTransition, TaskTransition, TaskTransitionError, transition};
