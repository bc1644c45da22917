//! Tasker's task and step state machines: states, events, guarded transitions, retry and backoff.
//!
//! Every other crate records, persists, routes or reports these transitions; this crate decides
//! them. It is pure: no IO, no clock, no randomness. Callers pass in what the rules depend on
//! (the current state, guard context, the time, a jitter draw) and get back a decision.
//!
//! # Entry points
//!
//! - [`TaskStateMachine`] with [`TaskState`] (12 states) and [`TaskEvent`]: task transitions.
//!   They have no data guards; [`TaskStateMachine::transition`] gives the next state and
//!   [`TaskStateMachine::apply`] the [`TaskTransitionRecord`] to persist.
//! - [`StepStateMachine`] with [`StepState`] (8 states) and [`StepEvent`]: step transitions,
//!   some guarded ([`StepGuard`]) by a [`StepGuardContext`] the caller supplies.
//!   [`StepStateMachine::apply`] checks the guard, [`StepStateMachine::apply_unguarded`] leaves it
//!   to the caller; both yield a [`StepTransitionRecord`] with typed [`StepEffect`]s.
//! - [`is_retry_eligible`], [`BackoffPolicy::backoff_for`] and [`next_retry_at`]: retry and
//!   backoff as pure functions.
//! - [`docs::state_machine_markdown`]: `docs/state-machine.md`, rendered from the same tables the
//!   transitions use (`cargo xtask codegen` writes it).
//!
//! ```
//! use tasker_state::{TaskEvent, TaskState, TaskStateMachine};
//!
//! // Task lifecycle: Pending → Initializing → EnqueuingSteps → StepsInProcess → Complete
//! let machine = TaskStateMachine::new();
//! let next = machine.transition(TaskState::Pending, TaskEvent::Initialize)?;
//! assert_eq!(next, TaskState::Initializing);
//!
//! // A pair the table does not have is a typed error naming the state and the event.
//! let error = machine.transition(TaskState::Pending, TaskEvent::GiveUp).unwrap_err();
//! assert_eq!((error.from, error.event.as_str()), (TaskState::Pending, "give_up"));
//! # Ok::<(), tasker_state::InvalidTaskTransition>(())
//! ```
//!
//! # Storage labels
//!
//! States serialize (serde, [`std::fmt::Display`], `as_str`) as snake_case labels, which are
//! also the labels of the Postgres enums `task_state` and `step_state`. Events serialize as JSON
//! objects tagged with `type`, for example `{"type":"ready_steps_found","count":3}`.
//!
//! # Feature flags
//!
//! - `sqlx` (off by default): derives `sqlx::Type` on [`TaskState`] and [`StepState`] for the
//!   Postgres enums `task_state` and `step_state` (with `tasker` on the search_path); the
//!   derive also covers arrays (`task_state[]`, `step_state[]`), for `state = ANY($1)`.
//!
//! # Must not depend on
//!
//! Anything that performs IO (tokio, sqlx without the feature, messaging), nor `tasker-models`
//! or `tasker-config`, which sit in the same layer, nor the `tasker-shared` facade.

mod event;
mod guard;
mod retry;
mod rule;
mod state;
mod step;
mod task;

pub mod docs;

#[cfg(test)]
mod test_support;

pub use event::{StepError, StepEvent, StepEventKind, TaskEvent, TaskEventKind};
pub use guard::{DependencyStatus, GuardError, StepGuard, StepGuardContext};
pub use retry::{
    BackoffPolicy, InvalidBackoffPolicy, InvalidJitterSample, JitterSample, RetryContext,
    RetryIneligible, is_retry_eligible, next_retry_at,
};
pub use rule::{Actor, LifecycleTransition};
pub use state::{Machine, StepState, TaskState, UnknownState};
pub use step::{
    InvalidStepTransition, StepEffect, StepStateMachine, StepTransitionError, StepTransitionRecord,
};
pub use task::{InvalidTaskTransition, TaskEffect, TaskStateMachine, TaskTransitionRecord};
