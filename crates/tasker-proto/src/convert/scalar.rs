//! States, UUIDs and timestamps.

use chrono::{DateTime, Utc};
use prost_types::Timestamp;
use tasker_state::{StepState, TaskState};
use uuid::Uuid;

use super::{ConvertError, Problem};
use crate::v1;

/// The protobuf value of a task state.
pub fn task_state_to_proto(state: TaskState) -> v1::TaskState {
    match state {
        TaskState::Pending => v1::TaskState::Pending,
        TaskState::Initializing => v1::TaskState::Initializing,
        TaskState::EnqueuingSteps => v1::TaskState::EnqueuingSteps,
        TaskState::StepsInProcess => v1::TaskState::StepsInProcess,
        TaskState::EvaluatingResults => v1::TaskState::EvaluatingResults,
        TaskState::WaitingForDependencies => v1::TaskState::WaitingForDependencies,
        TaskState::WaitingForRetry => v1::TaskState::WaitingForRetry,
        TaskState::BlockedByFailures => v1::TaskState::BlockedByFailures,
        TaskState::Complete => v1::TaskState::Complete,
        TaskState::Error => v1::TaskState::Error,
        TaskState::Cancelled => v1::TaskState::Cancelled,
        TaskState::ResolvedManually => v1::TaskState::ResolvedManually,
    }
}

/// The task state of a protobuf enum value; `UNSPECIFIED` and unknown values are refused.
pub fn task_state_from_proto(value: i32, field: &str) -> Result<TaskState, ConvertError> {
    let state = v1::TaskState::try_from(value)
        .map_err(|_| ConvertError::new(field, Problem::UnknownEnum(value)))?;
    Ok(match state {
        v1::TaskState::Unspecified => {
            return Err(ConvertError::new(field, Problem::Unspecified));
        }
        v1::TaskState::Pending => TaskState::Pending,
        v1::TaskState::Initializing => TaskState::Initializing,
        v1::TaskState::EnqueuingSteps => TaskState::EnqueuingSteps,
        v1::TaskState::StepsInProcess => TaskState::StepsInProcess,
        v1::TaskState::EvaluatingResults => TaskState::EvaluatingResults,
        v1::TaskState::WaitingForDependencies => TaskState::WaitingForDependencies,
        v1::TaskState::WaitingForRetry => TaskState::WaitingForRetry,
        v1::TaskState::BlockedByFailures => TaskState::BlockedByFailures,
        v1::TaskState::Complete => TaskState::Complete,
        v1::TaskState::Error => TaskState::Error,
        v1::TaskState::Cancelled => TaskState::Cancelled,
        v1::TaskState::ResolvedManually => TaskState::ResolvedManually,
    })
}

/// The protobuf value of a step state.
pub fn step_state_to_proto(state: StepState) -> v1::StepState {
    match state {
        StepState::Pending => v1::StepState::Pending,
        StepState::Enqueued => v1::StepState::Enqueued,
        StepState::InProgress => v1::StepState::InProgress,
        StepState::EnqueuedForOrchestration => v1::StepState::EnqueuedForOrchestration,
        StepState::Complete => v1::StepState::Complete,
        StepState::Error => v1::StepState::Error,
        StepState::Cancelled => v1::StepState::Cancelled,
        StepState::ResolvedManually => v1::StepState::ResolvedManually,
    }
}

/// The step state of a protobuf enum value; `UNSPECIFIED` and unknown values are refused.
pub fn step_state_from_proto(value: i32, field: &str) -> Result<StepState, ConvertError> {
    let state = v1::StepState::try_from(value)
        .map_err(|_| ConvertError::new(field, Problem::UnknownEnum(value)))?;
    Ok(match state {
        v1::StepState::Unspecified => {
            return Err(ConvertError::new(field, Problem::Unspecified));
        }
        v1::StepState::Pending => StepState::Pending,
        v1::StepState::Enqueued => StepState::Enqueued,
        v1::StepState::InProgress => StepState::InProgress,
        v1::StepState::EnqueuedForOrchestration => StepState::EnqueuedForOrchestration,
        v1::StepState::Complete => StepState::Complete,
        v1::StepState::Error => StepState::Error,
        v1::StepState::Cancelled => StepState::Cancelled,
        v1::StepState::ResolvedManually => StepState::ResolvedManually,
    })
}

/// A UUID in its hyphenated form (any form `Uuid::parse_str` reads is accepted).
pub fn uuid_from_proto(text: &str, field: &str) -> Result<Uuid, ConvertError> {
    Uuid::parse_str(text)
        .map_err(|_| ConvertError::new(field, Problem::InvalidUuid(text.to_owned())))
}

/// The protobuf timestamp of an instant.
pub fn timestamp_to_proto(at: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: at.timestamp(),
        // Below 1e9 by construction (a leap second is folded into the next second's nanos
        // by chrono only above 1e9, which `timestamp_subsec_nanos` never returns here).
        nanos: i32::try_from(at.timestamp_subsec_nanos().min(999_999_999)).unwrap_or(999_999_999),
    }
}

/// The instant of a protobuf timestamp; nanos outside `0..1e9` and seconds outside chrono's
/// range are refused.
pub fn timestamp_from_proto(at: &Timestamp, field: &str) -> Result<DateTime<Utc>, ConvertError> {
    let invalid = || {
        ConvertError::new(
            field,
            Problem::InvalidTimestamp {
                seconds: at.seconds,
                nanos: at.nanos,
            },
        )
    };
    let nanos = u32::try_from(at.nanos).map_err(|_| invalid())?;
    if nanos >= 1_000_000_000 {
        return Err(invalid());
    }
    DateTime::from_timestamp(at.seconds, nanos).ok_or_else(invalid)
}
