//! Workflow steps: atomic state transitions (one or many per round trip), rows, histories and
//! the composable step scope.

mod record;
mod transition;

pub use record::{StepRecord, StepScope, StepTransitionRow, for_tasks, get, history};
pub use transition::{
    AppliedStepTransition, StepTransition, StepTransitionError, transition, transition_batch,
};
