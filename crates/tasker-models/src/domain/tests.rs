//! Tests for the domain records.

use chrono::{TimeDelta, TimeZone, Utc};
use serde_json::json;
use tasker_state::TaskState;

use super::*;
use crate::ids::{DlqEntryId, TaskId};

fn entry(status: DlqResolutionStatus, hours_ago: i64) -> DlqEntry {
    let now = Utc
        .with_ymd_and_hms(2026, 1, 1, 12, 0, 0)
        .single()
        .expect("valid time");
    let sent = now - TimeDelta::hours(hours_ago);
    DlqEntry {
        id: DlqEntryId::new_v7(),
        task_id: TaskId::new_v7(),
        original_state: TaskState::WaitingForRetry,
        reason: DlqReason::StalenessTimeout,
        dlq_timestamp: sent,
        resolution_status: status,
        resolution_timestamp: (status != DlqResolutionStatus::Pending).then_some(now),
        resolution_notes: None,
        resolved_by: None,
        task_snapshot: json!({}),
        metadata: None,
        created_at: sent,
        updated_at: sent,
    }
}

#[test]
fn staleness_applies_to_open_investigations_only() {
    let now = Utc
        .with_ymd_and_hms(2026, 1, 1, 12, 0, 0)
        .single()
        .expect("valid time");
    assert!(entry(DlqResolutionStatus::Pending, 2).is_stale(now, TimeDelta::hours(1)));
    assert!(!entry(DlqResolutionStatus::Pending, 2).is_stale(now, TimeDelta::hours(3)));
    assert!(!entry(DlqResolutionStatus::ManuallyResolved, 2).is_stale(now, TimeDelta::hours(1)));
    assert_eq!(
        entry(DlqResolutionStatus::Pending, 2).age(now),
        TimeDelta::hours(2)
    );
}

#[test]
fn dlq_enums_round_trip_their_database_spelling() {
    for reason in DlqReason::ALL {
        assert_eq!(
            reason.as_str().parse::<DlqReason>().expect("parses"),
            *reason
        );
        assert_eq!(
            serde_json::to_value(reason).expect("json"),
            json!(reason.as_str())
        );
    }
    for status in DlqResolutionStatus::ALL {
        assert_eq!(
            status
                .as_str()
                .parse::<DlqResolutionStatus>()
                .expect("parses"),
            *status
        );
    }
    let err = "transition_failed"
        .parse::<DlqReason>()
        .expect_err("unknown values are errors");
    assert_eq!(
        err.to_string(),
        "unknown dlq reason \"transition_failed\"; expected one of: staleness_timeout, max_retries_exceeded, dependency_cycle_detected, worker_unavailable, manual_dlq, "
    );
}

#[test]
fn reasons_are_weighted_for_the_investigation_queue() {
    let mut reasons = DlqReason::ALL.to_vec();
    reasons.sort_by_key(|reason| std::cmp::Reverse(reason.priority_weight()));
    assert_eq!(reasons[0], DlqReason::DependencyCycleDetected);
    assert_eq!(reasons[4], DlqReason::ManualDlq);
}

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
