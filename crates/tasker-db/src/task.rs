//! Tasks: creation (set-based, idempotent by identity hash), atomic state transitions, rows,
//! histories and the composable task scope.

mod batch;
mod create;
mod facts;
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
pub use facts::{TaskFacts, TaskFactsCache};
pub use record::{
    TaskCursor, TaskOrder, TaskRecord, TaskScope, TaskTransitionRow, by_request_ids, get, get_many,
    history,
};
pub use request::{RequestOrigin, RequestToCreate, create_from_request, create_many_from_requests};
pub use transition::{AppliedTaskTransition, TaskTransition, TaskTransitionError, transition};
