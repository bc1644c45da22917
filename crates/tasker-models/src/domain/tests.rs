//! Tests for the domain records.

use chrono::Utc;

use super::*;
use crate::ids::TaskId;

#[test]
fn workflow_step_attempts() {
    let now = Utc::now();
    let mut step = WorkflowStep {
        id: crate::ids::StepId::new_v7(),
        task_id: TaskId::new_v7(),
        named_step_id: crate::ids::NamedStepId::new_v7(),
        retryable: false,
        max_attempts: 3,
        in_process: false,
        processed: false,
        processed_at: None,
        attempts: 0,
        last_attempted_at: None,
        backoff_request_seconds: None,
        inputs: None,
        results: None,
        priority: 0,
        checkpoint: None,
        created_at: now,
        updated_at: now,
    };
    assert!(step.has_attempts_left(), "the first attempt always runs");
    step.attempts = 1;
    assert!(!step.has_attempts_left(), "not retryable");
    step.retryable = true;
    assert!(step.has_attempts_left());
    step.attempts = 3;
    assert!(!step.has_attempts_left());
}
