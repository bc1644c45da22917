//! Event and option builders shared by the tests.

use std::num::NonZeroUsize;

use chrono::DateTime;
use tasker_events::bus::{Overflow, SubscriberOptions};
use tasker_events::event::Event;
use tasker_events::lifecycle::{LifecycleEvent, Occurrence, Transition};
use tasker_state::TaskState;
use uuid::Uuid;

/// A task lifecycle event (`task.steps_enqueued`) of task `task` with sequence `sequence`.
pub(crate) fn task_event(task: u128, sequence: u64) -> LifecycleEvent {
    LifecycleEvent::new(
        Uuid::from_u128(task),
        Transition::Task {
            from: TaskState::EnqueuingSteps,
            to: TaskState::StepsInProcess,
        },
        "task.steps_enqueued",
        Occurrence {
            processor_id: Some(Uuid::from_u128(7)),
            occurred_at: DateTime::UNIX_EPOCH,
            sequence,
        },
    )
    .expect("a rule of the task machine")
}

pub(crate) fn options(capacity: usize, overflow: Overflow) -> SubscriberOptions {
    SubscriberOptions {
        capacity: NonZeroUsize::new(capacity).expect("non-zero capacity"),
        overflow,
    }
}

/// `(task, sequence)` of a received event.
pub(crate) fn key(event: &Event) -> (u128, u64) {
    (
        event.task_id().as_u128(),
        event.sequence().expect("a lifecycle event"),
    )
}
