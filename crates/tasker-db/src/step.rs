//! Workflow steps: atomic state transitions, one or many per round trip.

mod transition;

pub use transition::{
    AppliedStepTransition, StepTransition, StepTransitionError, transition, transition_batch,
};
