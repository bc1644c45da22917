//! Workflow steps: atomic state transitions (one or many per round trip), rows, histories, the
//! composable step scope, and steps added to a task after its creation.

mod add;
mod add_from_template;
mod record;
mod transition;

pub mod result;

pub use add::{AddStepsError, AddedStep, Dependency, NewTaskStep, add_to_task};
pub use add_from_template::{StepToAdd, add_from_template};
pub use record::{StepRecord, StepScope, StepTransitionRow, for_tasks, get, history};
pub use transition::{
    AppliedStepTransition, LockedTasksBatch, StepTransition, StepTransitionError, transition,
    transition_batch, transition_batch_locking_tasks,
};
