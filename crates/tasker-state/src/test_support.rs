//! Proptest strategies shared by the unit tests of several modules.

use std::time::Duration;

use chrono::DateTime;
use proptest::prelude::*;
use uuid::Uuid;

use crate::{StepError, StepEvent, TaskEvent};

pub(crate) fn arb_uuid() -> impl Strategy<Value = Uuid> {
    any::<u128>().prop_map(Uuid::from_u128)
}

pub(crate) fn arb_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        "[a-z ]{0,8}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
        ]
    })
}

pub(crate) fn arb_task_event() -> impl Strategy<Value = TaskEvent> {
    prop_oneof![
        Just(TaskEvent::Initialize),
        any::<u32>().prop_map(|count| TaskEvent::ReadyStepsFound { count }),
        Just(TaskEvent::NoStepsFound),
        Just(TaskEvent::NoDependenciesReady),
        prop::collection::vec(arb_uuid(), 0..4)
            .prop_map(|step_ids| TaskEvent::StepsEnqueued { step_ids }),
        ".{0,20}".prop_map(|reason| TaskEvent::EnqueueFailed { reason }),
        arb_uuid().prop_map(|step_id| TaskEvent::StepCompleted { step_id }),
        arb_uuid().prop_map(|step_id| TaskEvent::StepFailed { step_id }),
        Just(TaskEvent::AllStepsCompleted),
        Just(TaskEvent::AllStepsSuccessful),
        Just(TaskEvent::StepsStillProcessing),
        Just(TaskEvent::DependenciesReady),
        (0i64..4_102_444_800, 0u32..1_000_000_000).prop_map(|(secs, nanos)| {
            TaskEvent::RetryScheduled {
                retry_at: DateTime::from_timestamp(secs, nanos).unwrap(),
            }
        }),
        Just(TaskEvent::RetryReady),
        ".{0,20}".prop_map(|reason| TaskEvent::PermanentFailure { reason }),
        Just(TaskEvent::GiveUp),
        Just(TaskEvent::StalenessTimeout),
        Just(TaskEvent::ManualResolution),
        Just(TaskEvent::RetryFailedSteps),
        Just(TaskEvent::Reset),
        Just(TaskEvent::Cancel),
    ]
}

pub(crate) fn arb_step_event() -> impl Strategy<Value = StepEvent> {
    let error = (".{0,20}", any::<bool>(), prop::option::of(any::<u32>())).prop_map(
        |(message, retryable, backoff_ms)| StepError {
            message,
            retryable,
            requested_backoff: backoff_ms.map(|ms| Duration::from_millis(u64::from(ms))),
        },
    );
    prop_oneof![
        Just(StepEvent::Enqueue),
        arb_uuid().prop_map(|worker_id| StepEvent::Start { worker_id }),
        arb_json().prop_map(|result| StepEvent::EnqueueForOrchestration { result }),
        Just(StepEvent::Complete),
        error.prop_map(|error| StepEvent::Fail { error }),
        Just(StepEvent::Retry),
        Just(StepEvent::ResetForRetry),
        Just(StepEvent::Cancel),
        Just(StepEvent::ResolveManually),
        arb_json().prop_map(|result| StepEvent::CompleteManually { result }),
    ]
}
