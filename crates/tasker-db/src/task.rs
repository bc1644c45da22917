//! Tasks: creation (set-based, idempotent by identity hash), atomic state transitions, rows,
//! histories and the composable task scope.

mod batch;
mod create;
mod record;
mod request;
mod transition;

pub use batch::{
    TaskBatchError, TaskTransitionChain, lock_batch, transition_batch, transition_chains,
};
pub use create::{CreateTaskError, NewEdge, NewStep, NewTask, TaskCreation, create};
pub use record::{TaskOrder, TaskRecord, TaskScope, TaskTransitionRow, get, history};
pub use request::create_from_request;
pub use transition::{AppliedTaskTransition, TaskTransition, TaskTransitionError, transition};
