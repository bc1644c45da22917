//! Conversions between the domain types and the protobuf types, exact in both directions.
//!
//! Domain → protobuf cannot fail. Protobuf → domain refuses what it cannot represent exactly,
//! with a [`ConvertError`] that names the field (a dotted path such as `request.context.items[2]`):
//! `UNSPECIFIED` and unknown enum values, malformed UUIDs, timestamps out of range, non-finite
//! numbers, a JSON value without a kind, a context that is not an object. Nothing becomes a
//! default silently (the predecessor turned bad timestamps into 1970).
//!
//! JSON travels as [`v1::Json`](crate::v1::Json), not `google.protobuf.Struct`: integers keep all
//! 64 bits, so 2^53 + 1 arrives as 2^53 + 1.

mod json;
mod request;
mod scalar;

pub use json::{json_from_proto, json_to_proto, object_from_proto, object_to_proto};
pub use request::{task_request_from_proto, task_request_to_proto};
pub use scalar::{
    step_state_from_proto, step_state_to_proto, task_state_from_proto, task_state_to_proto,
    timestamp_from_proto, timestamp_to_proto, uuid_from_proto,
};

/// A protobuf value that has no exact domain value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("field `{field}`: {problem}")]
pub struct ConvertError {
    /// Where: a dotted path from the request message (`request.context.amount`).
    pub field: String,
    /// What is wrong.
    pub problem: Problem,
}

/// What is wrong with a protobuf value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Problem {
    /// A required field is absent.
    #[error("is required")]
    Missing,
    /// An enum is `UNSPECIFIED` (0).
    #[error("must be specified (it is UNSPECIFIED)")]
    Unspecified,
    /// An enum value this version does not know.
    #[error("{0} is not a known value")]
    UnknownEnum(i32),
    /// Not a UUID.
    #[error("{0:?} is not a UUID")]
    InvalidUuid(String),
    /// A timestamp outside what the domain represents, or nanos outside 0..1e9.
    #[error("seconds {seconds} and nanos {nanos} are not a valid timestamp")]
    InvalidTimestamp {
        /// The seconds.
        seconds: i64,
        /// The nanos.
        nanos: i32,
    },
    /// A JSON number that is NaN or infinite.
    #[error("{0} is not a finite number")]
    NonFinite(f64),
    /// A JSON value must be an object here.
    #[error("must be a JSON object")]
    NotAnObject,
}

impl ConvertError {
    pub(crate) fn new(field: impl Into<String>, problem: Problem) -> Self {
        Self {
            field: field.into(),
            problem,
        }
    }
}

impl From<ConvertError> for tonic::Status {
    /// `INVALID_ARGUMENT`, naming the field.
    fn from(error: ConvertError) -> Self {
        tonic::Status::invalid_argument(error.to_string())
    }
}

#[cfg(test)]
mod tests;
