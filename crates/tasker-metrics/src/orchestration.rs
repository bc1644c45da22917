//! Orchestration instruments: tasks created, completed and failed, step and task durations,
//! claim batch sizes.

use std::time::Duration;

use opentelemetry::{
    KeyValue,
    metrics::{Counter, Histogram, Meter},
};

use crate::attribute::{
    BATCH_SIZE_BOUNDS, HANDLER, NAMESPACE, STEP_DURATION_BOUNDS, TASK_DURATION_BOUNDS,
};

/// The orchestration instruments (`tasker.*`; the semantic conventions have none for workflows).
#[derive(Debug, Clone)]
pub struct OrchestrationMetrics {
    tasks_created: Counter<u64>,
    tasks_completed: Counter<u64>,
    tasks_failed: Counter<u64>,
    step_duration: Histogram<f64>,
    claim_batch_size: Histogram<u64>,
    task_duration: Histogram<f64>,
}

impl OrchestrationMetrics {
    pub(crate) fn new(meter: &Meter) -> Self {
        Self {
            tasks_created: meter
                .u64_counter("tasker.tasks.created")
                .with_unit("{task}")
                .with_description("Tasks created, by namespace.")
                .build(),
            tasks_completed: meter
                .u64_counter("tasker.tasks.completed")
                .with_unit("{task}")
                .with_description("Tasks that reached `complete`, by namespace.")
                .build(),
            tasks_failed: meter
                .u64_counter("tasker.tasks.failed")
                .with_unit("{task}")
                .with_description("Tasks that reached `error`, by namespace.")
                .build(),
            step_duration: meter
                .f64_histogram("tasker.step.duration")
                .with_unit("s")
                .with_description("Duration of a step handler's run, by handler.")
                .with_boundaries(STEP_DURATION_BOUNDS.to_vec())
                .build(),
            claim_batch_size: meter
                .u64_histogram("tasker.claim.batch_size")
                .with_unit("{task}")
                .with_description("Tasks claimed per claim of ready tasks.")
                .with_boundaries(BATCH_SIZE_BOUNDS.to_vec())
                .build(),
            task_duration: meter
                .f64_histogram("tasker.task.duration")
                .with_unit("s")
                .with_description(
                    "Duration of a task from creation to its final state, by namespace.",
                )
                .with_boundaries(TASK_DURATION_BOUNDS.to_vec())
                .build(),
        }
    }

    /// Counts one task created in `namespace`.
    pub fn task_created(&self, namespace: &str) {
        self.tasks_created.add(1, &[namespace_attribute(namespace)]);
    }

    /// Counts one task of `namespace` completed.
    pub fn task_completed(&self, namespace: &str) {
        self.tasks_completed
            .add(1, &[namespace_attribute(namespace)]);
    }

    /// Counts one task of `namespace` failed.
    pub fn task_failed(&self, namespace: &str) {
        self.tasks_failed.add(1, &[namespace_attribute(namespace)]);
    }

    /// Records how long one run of the step handler `handler` took.
    pub fn step_duration(&self, handler: &str, duration: Duration) {
        self.step_duration.record(
            duration.as_secs_f64(),
            &[KeyValue::new(HANDLER, handler.to_owned())],
        );
    }

    /// Records how many tasks one claim of ready tasks returned (zero included).
    pub fn claim_batch(&self, size: u64) {
        self.claim_batch_size.record(size, &[]);
    }

    /// Records a task's end-to-end duration, from creation to its final state.
    pub fn task_duration(&self, namespace: &str, duration: Duration) {
        self.task_duration
            .record(duration.as_secs_f64(), &[namespace_attribute(namespace)]);
    }
}

fn namespace_attribute(namespace: &str) -> KeyValue {
    KeyValue::new(NAMESPACE, namespace.to_owned())
}
