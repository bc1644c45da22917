//! The versioned JSON envelope every Tasker message travels in, and the [`Payload`] backends
//! carry.
//!
//! On the wire a message is `{"version":1,"kind":"step","body":{...}}`. The `kind` names the
//! message type, so a message sent to the wrong queue is refused when it is decoded instead of
//! being misread; the `version` lets a consumer refuse (and dead-letter) a message from a newer
//! producer it cannot read. An optional `traceparent` (W3C trace context) names the span that
//! sent the message, so the span that handles it continues the same trace; it is left out when
//! there is none, and a message without it (from an older producer) decodes as before.
//! Decoding never panics: every failure is a [`DecodeError`] whose text
//! becomes the dead-letter reason.

use std::borrow::Cow;
use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The envelope version this crate writes and reads.
pub const ENVELOPE_VERSION: u16 = 1;

/// The type of a message, recorded in its envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// [`crate::messages::StepMessage`]: orchestration asks a worker to run a step.
    Step,
    /// [`crate::messages::StepResultMessage`]: a worker reports that a step's result is stored.
    StepResult,
    /// [`crate::messages::TaskRequestMessage`]: a request to create a task.
    TaskRequest,
    /// [`crate::messages::TaskFinalizationMessage`]: a request to finalize a task.
    TaskFinalization,
    /// [`crate::messages::DomainEvent`]: an event declared by a task template.
    DomainEvent,
    /// [`crate::messages::TaskReplyMessage`]: orchestration tells a requester about its
    /// request.
    TaskReply,
    /// [`crate::messages::LifecycleEventMessage`]: a task or step transition happened.
    LifecycleEvent,
}

impl MessageKind {
    /// The name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Step => "step",
            Self::StepResult => "step_result",
            Self::TaskRequest => "task_request",
            Self::TaskFinalization => "task_finalization",
            Self::DomainEvent => "domain_event",
            Self::TaskReply => "task_reply",
            Self::LifecycleEvent => "lifecycle_event",
        }
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A message type that travels in an envelope.
pub trait QueueMessage: Serialize + DeserializeOwned {
    /// The kind recorded in the envelope.
    const KIND: MessageKind;
}

#[derive(Serialize)]
struct EnvelopeOut<'a, T> {
    version: u16,
    kind: MessageKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    traceparent: Option<&'a str>,
    body: &'a T,
}

#[derive(Deserialize)]
struct EnvelopeIn<'a> {
    version: u16,
    kind: &'a str,
    #[serde(default, borrow)]
    traceparent: Option<Cow<'a, str>>,
    #[serde(borrow)]
    body: &'a RawValue,
}

/// A decoded message with the trace context it was sent with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Traced<M> {
    /// The message.
    pub message: M,
    /// The W3C `traceparent` of the span that sent it, if the sender traced it. Not validated
    /// here: whoever uses it parses it and ignores it when malformed.
    pub traceparent: Option<String>,
}

/// A JSON document ready to send: normally an encoded envelope. Backends refuse payloads over
/// their configured maximum size with [`crate::error::QueueError::TooLarge`].
#[derive(Clone, PartialEq, Eq)]
pub struct Payload(String);

impl Payload {
    /// Encodes `message` in an envelope.
    pub fn encode<M: QueueMessage>(message: &M) -> Result<Self, EncodeError> {
        Self::encode_traced(message, None)
    }

    /// Encodes `message` in an envelope with the `traceparent` of the span that sends it
    /// (left out when `None`).
    pub fn encode_traced<M: QueueMessage>(
        message: &M,
        traceparent: Option<&str>,
    ) -> Result<Self, EncodeError> {
        let envelope = EnvelopeOut {
            version: ENVELOPE_VERSION,
            kind: M::KIND,
            traceparent,
            body: message,
        };
        serde_json::to_string(&envelope)
            .map(Self)
            .map_err(|source| EncodeError {
                kind: M::KIND,
                source,
            })
    }

    /// An arbitrary JSON document, sent as it is: for interoperating with producers outside
    /// Tasker and for tests. A consumer dead-letters it unless it is a valid envelope.
    pub fn from_json(value: &serde_json::Value) -> Self {
        Self(value.to_string())
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The size in bytes, which the backends compare with their limit.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the payload is empty (never, for an encoded envelope).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Bodies can be large and carry business data: show the size, not the content.
        write!(f, "Payload({} bytes)", self.0.len())
    }
}

/// Decodes the envelope in `bytes` as an `M`.
pub fn decode<M: QueueMessage>(bytes: &[u8]) -> Result<M, DecodeError> {
    open(bytes).map(|(message, _)| message)
}

/// Decodes the envelope in `bytes` as an `M`, with its `traceparent`.
pub fn decode_traced<M: QueueMessage>(bytes: &[u8]) -> Result<Traced<M>, DecodeError> {
    open(bytes).map(|(message, traceparent)| Traced {
        message,
        traceparent: traceparent.map(Cow::into_owned),
    })
}

fn open<M: QueueMessage>(bytes: &[u8]) -> Result<(M, Option<Cow<'_, str>>), DecodeError> {
    let envelope: EnvelopeIn<'_> =
        serde_json::from_slice(bytes).map_err(|source| DecodeError::NotAnEnvelope {
            size: bytes.len(),
            source,
        })?;
    if envelope.version != ENVELOPE_VERSION {
        return Err(DecodeError::UnsupportedVersion {
            found: envelope.version,
            supported: ENVELOPE_VERSION,
        });
    }
    if envelope.kind != M::KIND.as_str() {
        return Err(DecodeError::WrongKind {
            expected: M::KIND,
            found: envelope.kind.to_owned(),
        });
    }
    let message =
        serde_json::from_str(envelope.body.get()).map_err(|source| DecodeError::InvalidBody {
            kind: M::KIND,
            source,
        })?;
    Ok((message, envelope.traceparent))
}

/// A message could not be encoded.
#[derive(Debug, thiserror::Error)]
#[error("could not encode a {kind} message as JSON")]
pub struct EncodeError {
    /// The message's kind.
    pub kind: MessageKind,
    /// What serde_json reported.
    #[source]
    pub source: serde_json::Error,
}

/// A received message could not be decoded. Consumers dead-letter the message with this error's
/// text as the reason.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The bytes are not JSON of the form `{"version":..,"kind":..,"body":..}`.
    #[error(
        "the message ({size} bytes) is not a Tasker envelope \
         {{\"version\",\"kind\",\"body\"}}; was it sent by another producer?"
    )]
    NotAnEnvelope {
        /// The message's size in bytes.
        size: usize,
        /// What serde_json reported.
        #[source]
        source: serde_json::Error,
    },
    /// The envelope has a version this build cannot read.
    #[error(
        "envelope version {found} is not supported (this build reads version {supported}); \
         upgrade the consumer"
    )]
    UnsupportedVersion {
        /// The version in the message.
        found: u16,
        /// The version this build reads.
        supported: u16,
    },
    /// The envelope holds another kind of message than the consumer expects.
    #[error(
        "expected a {expected} message but the envelope holds kind {found:?}; was it sent to the wrong queue?"
    )]
    WrongKind {
        /// The kind the consumer expects.
        expected: MessageKind,
        /// The kind in the envelope.
        found: String,
    },
    /// The body does not match the message type.
    #[error("the body of the {kind} message does not match its type")]
    InvalidBody {
        /// The expected kind.
        kind: MessageKind,
        /// What serde_json reported.
        #[source]
        source: serde_json::Error,
    },
}

impl DecodeError {
    /// The error and its causes on one line: the reason recorded when the message is
    /// dead-lettered.
    pub fn reason(&self) -> String {
        let mut reason = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            reason.push_str(": ");
            reason.push_str(&cause.to_string());
            source = cause.source();
        }
        reason
    }
}

#[cfg(test)]
mod tests;
