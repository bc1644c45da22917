//! Tests for the DLQ entry's own rules (the ledger's SQL is tested in `tests/it`).

use chrono::{TimeDelta, TimeZone, Utc};
use serde_json::json;
use tasker_models::ids::{DlqEntryId, TaskId};
use tasker_state::TaskState;

use super::*;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0)
        .single()
        .expect("valid time")
}

/// An entry sent to the DLQ `hours_ago`, resolved now unless `status` is pending.
fn entry(status: DlqResolutionStatus, hours_ago: i64) -> DlqEntry {
    DlqEntry {
        entry_id: DlqEntryId::new_v7(),
        task_id: TaskId::new_v7(),
        original_state: TaskState::WaitingForRetry,
        dlq_reason: DlqReason::StalenessTimeout,
        dlq_timestamp: now() - TimeDelta::hours(hours_ago),
        resolution_status: status,
        resolution_timestamp: (status != DlqResolutionStatus::Pending).then_some(now()),
        resolution_notes: None,
        resolved_by: None,
        task_snapshot: json!({}),
        metadata: json!({}),
    }
}

#[test]
fn staleness_applies_to_open_investigations_only() {
    let pending = entry(DlqResolutionStatus::Pending, 2);
    assert!(pending.is_pending());
    assert!(pending.is_stale(now(), TimeDelta::hours(1)));
    assert!(!pending.is_stale(now(), TimeDelta::hours(3)));
    assert_eq!(pending.age(now()), TimeDelta::hours(2));

    let resolved = entry(DlqResolutionStatus::ManuallyResolved, 2);
    assert!(!resolved.is_pending());
    assert!(!resolved.is_stale(now(), TimeDelta::hours(1)));
    // A resolved entry's age stops at its resolution.
    assert_eq!(
        resolved.age(now() + TimeDelta::hours(5)),
        TimeDelta::hours(2)
    );
}
