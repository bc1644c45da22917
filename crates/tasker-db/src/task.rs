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
pub use create::{
    CreateTaskError, MAX_IDENTITY_HASH_CHARS, NewEdge, NewStep, NewTask, NewTaskGraph,
    TaskCreation, create, create_many,
};
pub use record::{TaskOrder, TaskRecord, TaskScope, TaskTransitionRow, get, history};
pub use request::{RequestToCreate, create_from_request, create_many_from_requests};
pub use transition::{AppliedTaskTransition, TaskTransition, TaskTransitionError, transition};
