//! Domain events: declarations on the template and on steps, and the event name rule.

use std::fmt;

use super::schema::JsonSchema;

/// Longest event name.
pub const EVENT_NAME_MAX_LEN: usize = 255;

/// An event name in `namespace.action` form: lowercase ASCII letters, digits and `_` in
/// segments separated by single dots, at least two segments (`order.created`,
/// `payment.refund.failed`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct EventName(String);

/// Why a string is not an event name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidEventName {
    /// Empty or longer than [`EVENT_NAME_MAX_LEN`].
    #[error("must be 1 to {EVENT_NAME_MAX_LEN} characters long")]
    Length,
    /// No dot.
    #[error("must have the form namespace.action")]
    NoDot,
    /// A dot at the start or end, or two dots in a row.
    #[error("has an empty segment (a leading, trailing or doubled '.')")]
    EmptySegment,
    /// A character other than `a-z`, `0-9`, `_` and `.`.
    #[error("contains {found:?}; only lowercase letters, digits, '_' and '.' are allowed")]
    InvalidChar {
        /// The offending character.
        found: char,
    },
}

impl EventName {
    /// Validates an event name.
    ///
    /// # Errors
    /// The first rule the name breaks.
    pub fn new(name: impl Into<String>) -> Result<Self, InvalidEventName> {
        let name = name.into();
        check_event_name(&name)?;
        Ok(Self(name))
    }

    /// The name as a string slice.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub(crate) fn check_event_name(name: &str) -> Result<(), InvalidEventName> {
    if name.is_empty() || name.chars().count() > EVENT_NAME_MAX_LEN {
        return Err(InvalidEventName::Length);
    }
    if let Some(found) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '.'))
    {
        return Err(InvalidEventName::InvalidChar { found });
    }
    if !name.contains('.') {
        return Err(InvalidEventName::NoDot);
    }
    if name.split('.').any(str::is_empty) {
        return Err(InvalidEventName::EmptySegment);
    }
    Ok(())
}

impl fmt::Display for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// Whether a publisher name is a path of identifiers joined by `::` or `.`
/// (`PaymentEventPublisher`, `payments::Publisher`, `app.events.Publisher`).
pub(crate) fn is_valid_publisher(name: &str) -> bool {
    let segments = name.split("::").flat_map(|part| part.split('.'));
    let mut count = 0;
    for segment in segments {
        count += 1;
        let mut chars = segment.chars();
        let starts_well = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        if !starts_well || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return false;
        }
    }
    count > 0
}

/// An event a step publishes (`steps[].publishes_events[]`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EventDeclaration {
    /// `namespace.action`.
    pub name: EventName,
    /// What the event means.
    pub description: String,
    /// When it is published.
    pub condition: EventCondition,
    /// JSON Schema of the payload: the step's own, or, when the step gives none, the schema of
    /// the template's `domain_events` declaration of the same name (a step event with neither
    /// is refused when the template is loaded). A publisher checks payloads against it.
    pub schema: JsonSchema,
    /// How it is delivered.
    pub delivery_mode: DeliveryMode,
    /// A custom publisher that builds the payload.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publisher: Option<String>,
}

/// A domain event the template as a whole declares (`domain_events[]`): documentation, and the
/// schema of step events of the same name that give none of their own.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DomainEventDefinition {
    /// `namespace.action`, unique within the template.
    pub name: EventName,
    /// What the event means.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema of the payload.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<JsonSchema>,
}

/// When a step's event is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventCondition {
    /// When the step succeeds.
    #[default]
    Success,
    /// When the step fails, retryable or not.
    Failure,
    /// When the step fails and may be retried.
    RetryableFailure,
    /// When the step fails for good.
    PermanentFailure,
    /// Whatever the outcome.
    Always,
}

impl EventCondition {
    pub(crate) const CHOICES: [(&'static str, Self); 5] = [
        ("success", Self::Success),
        ("failure", Self::Failure),
        ("retryable_failure", Self::RetryableFailure),
        ("permanent_failure", Self::PermanentFailure),
        ("always", Self::Always),
    ];

    /// Whether an event with this condition is published for an outcome.
    #[must_use]
    pub const fn should_publish(self, success: bool, retryable: bool) -> bool {
        match self {
            Self::Success => success,
            Self::Failure => !success,
            Self::RetryableFailure => !success && retryable,
            Self::PermanentFailure => !success && !retryable,
            Self::Always => true,
        }
    }
}

/// How an event is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryMode {
    /// Through a durable queue.
    #[default]
    Durable,
    /// In process, best effort.
    Fast,
    /// Both.
    Broadcast,
}

impl DeliveryMode {
    pub(crate) const CHOICES: [(&'static str, Self); 3] = [
        ("durable", Self::Durable),
        ("fast", Self::Fast),
        ("broadcast", Self::Broadcast),
    ];
}
