//! Task requests: what a caller sends to start a task, and its validation.
//!
//! [`TaskRequest`] is the wire type (unknown fields are rejected, so a misspelled `contxt`
//! cannot silently drop the input). [`TaskRequest::validate`] checks every field and the JSON
//! limits and returns a [`ValidatedTaskRequest`] with typed fields, or every violation at
//! once, each located by a JSON pointer into the request. [`TaskRequest::validate_for`] also
//! checks the request against its template, including the context against `input_schema`.
//!
//! The context is never rewritten: what the caller sent is what is stored, hashed and handed
//! to the steps. (The predecessor silently dropped keys such as `online` or `on_hold`.)

mod json_limits;

use std::fmt;

use chrono::{DateTime, Utc};

use crate::identity::IdempotencyKey;
use crate::ids::CorrelationId;
use crate::names::{NamespaceName, TaskName, TemplateVersion};
use crate::template::ValidatedTemplate;

pub use json_limits::JsonLimits;

/// A request to start a task (the wire format).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskRequest {
    /// Template name.
    pub name: String,
    /// Template namespace.
    pub namespace: String,
    /// Template version.
    pub version: String,
    /// The task's input: a JSON object (default `{}`).
    #[serde(default = "empty_object")]
    pub context: serde_json::Value,
    /// Who asks (default `system`).
    #[serde(default = "default_initiator")]
    pub initiator: String,
    /// Which system asks (default `tasker`).
    #[serde(default = "default_source_system")]
    pub source_system: String,
    /// Why (default `task requested`).
    #[serde(default = "default_reason")]
    pub reason: String,
    /// Free-form tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Higher runs first, -100..=100 (default 0).
    #[serde(default)]
    pub priority: i32,
    /// Correlates everything the task causes (generated when absent).
    #[serde(default = "CorrelationId::new_v7")]
    pub correlation_id: CorrelationId,
    /// The correlation id of the task that caused this one.
    #[serde(default)]
    pub parent_correlation_id: Option<CorrelationId>,
    /// Identifies the request for deduplication; overrides the identity strategy.
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// Execution options: a JSON object.
    #[serde(default)]
    pub options: Option<serde_json::Map<String, serde_json::Value>>,
    /// When the request was made (default: when it was parsed).
    #[serde(default = "Utc::now")]
    pub requested_at: DateTime<Utc>,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

fn default_initiator() -> String {
    "system".to_owned()
}

fn default_source_system() -> String {
    "tasker".to_owned()
}

fn default_reason() -> String {
    "task requested".to_owned()
}

/// Longest `initiator`, `source_system` and `reason` (their columns).
pub const AUDIT_FIELD_MAX_LEN: usize = 128;
/// Most tags on one request.
pub const MAX_TAGS: usize = 64;
/// Longest tag.
pub const TAG_MAX_LEN: usize = 128;
/// Priority bounds.
pub const PRIORITY_RANGE: (i32, i32) = (-100, 100);
/// Most violations reported for one request; the rest are counted in a final entry.
pub const MAX_VIOLATIONS: usize = 100;

impl TaskRequest {
    /// A request with the defaults for everything but the template and the context.
    #[must_use]
    pub fn new(
        namespace: impl Into<String>,
        name: impl Into<String>,
        version: impl Into<String>,
        context: serde_json::Value,
    ) -> Self {
        Self {
            name: name.into(),
            namespace: namespace.into(),
            version: version.into(),
            context,
            initiator: default_initiator(),
            source_system: default_source_system(),
            reason: default_reason(),
            tags: Vec::new(),
            priority: 0,
            correlation_id: CorrelationId::new_v7(),
            parent_correlation_id: None,
            idempotency_key: None,
            options: None,
            requested_at: Utc::now(),
        }
    }

    /// `namespace/name:version`, the template's registry key.
    #[must_use]
    pub fn routing_key(&self) -> String {
        format!("{}/{}:{}", self.namespace, self.name, self.version)
    }

    /// Checks every field and the JSON limits of `context` and `options`.
    ///
    /// # Errors
    /// Every violation found (at most [`MAX_VIOLATIONS`] listed).
    pub fn validate(&self, limits: &JsonLimits) -> Result<ValidatedTaskRequest, RequestError> {
        let mut violations = Violations::default();
        let validated = self.check_fields(limits, &mut violations);
        violations.finish(validated)
    }

    /// As [`TaskRequest::validate`], and also checks that the request names `template` and that
    /// the context satisfies the template's `input_schema` (each violation located by its JSON
    /// pointer under `/context`).
    ///
    /// # Errors
    /// Every violation found (at most [`MAX_VIOLATIONS`] listed).
    pub fn validate_for(
        &self,
        template: &ValidatedTemplate,
        limits: &JsonLimits,
    ) -> Result<ValidatedTaskRequest, RequestError> {
        let mut violations = Violations::default();
        let validated = self.check_fields(limits, &mut violations);
        let data = template.template();
        for (pointer, given, expected) in [
            (
                "/namespace",
                self.namespace.as_str(),
                data.namespace_name.as_str(),
            ),
            ("/name", self.name.as_str(), data.name.as_str()),
            ("/version", self.version.as_str(), data.version.as_str()),
        ] {
            if given != expected {
                violations.push(
                    pointer,
                    RequestRule::TemplateMismatch,
                    format!(
                        "is {given:?} but the template is {}",
                        template.routing_key()
                    ),
                );
            }
        }
        if let (Some(schema), true) = (template.input_schema(), self.context.is_object()) {
            for violation in schema.violations(&self.context) {
                violations.push(
                    format!("/context{}", violation.pointer),
                    RequestRule::InputSchema,
                    violation.message,
                );
            }
        }
        violations.finish(validated)
    }

    fn check_fields(
        &self,
        limits: &JsonLimits,
        violations: &mut Violations,
    ) -> Option<ValidatedTaskRequest> {
        let name = TaskName::new(self.name.as_str())
            .map_err(|error| {
                violations.push("/name", RequestRule::Name, error.reason().to_string())
            })
            .ok();
        let namespace = NamespaceName::new(self.namespace.as_str())
            .map_err(|error| {
                violations.push("/namespace", RequestRule::Name, error.reason().to_string())
            })
            .ok();
        let version = TemplateVersion::new(self.version.as_str())
            .map_err(|error| violations.push("/version", RequestRule::Version, error.to_string()))
            .ok();
        if self.context.is_object() {
            json_limits::check(&self.context, "/context", limits, violations);
        } else {
            violations.push(
                "/context",
                RequestRule::Context,
                "must be a JSON object".to_owned(),
            );
        }
        if let Some(options) = &self.options {
            json_limits::check_object(options, "/options", limits, violations);
        }
        for (pointer, value) in [
            ("/initiator", &self.initiator),
            ("/source_system", &self.source_system),
            ("/reason", &self.reason),
        ] {
            check_text(value, pointer, AUDIT_FIELD_MAX_LEN, violations);
        }
        if self.tags.len() > MAX_TAGS {
            violations.push(
                "/tags",
                RequestRule::Limit,
                format!("has {} tags; the limit is {MAX_TAGS}", self.tags.len()),
            );
        }
        for (index, tag) in self.tags.iter().enumerate() {
            check_text(tag, &format!("/tags/{index}"), TAG_MAX_LEN, violations);
        }
        if !(PRIORITY_RANGE.0..=PRIORITY_RANGE.1).contains(&self.priority) {
            violations.push(
                "/priority",
                RequestRule::Limit,
                format!(
                    "is {}; it must be between {} and {}",
                    self.priority, PRIORITY_RANGE.0, PRIORITY_RANGE.1
                ),
            );
        }
        let idempotency_key = match &self.idempotency_key {
            None => Some(None),
            Some(key) => IdempotencyKey::new(key.as_str())
                .map(Some)
                .map_err(|error| {
                    violations.push(
                        "/idempotency_key",
                        RequestRule::IdempotencyKey,
                        error.to_string(),
                    )
                })
                .ok(),
        };
        Some(ValidatedTaskRequest {
            name: name?,
            namespace: namespace?,
            version: version?,
            context: self.context.clone(),
            initiator: self.initiator.clone(),
            source_system: self.source_system.clone(),
            reason: self.reason.clone(),
            tags: self.tags.clone(),
            priority: self.priority,
            correlation_id: self.correlation_id,
            parent_correlation_id: self.parent_correlation_id,
            idempotency_key: idempotency_key?,
            options: self.options.clone().unwrap_or_default(),
            requested_at: self.requested_at,
        })
    }
}

fn check_text(value: &str, pointer: &str, max: usize, violations: &mut Violations) {
    let len = value.chars().count();
    if value.trim().is_empty() {
        violations.push(pointer, RequestRule::Limit, "must not be empty".to_owned());
    } else if len > max {
        violations.push(
            pointer,
            RequestRule::Limit,
            format!("is {len} characters long; the limit is {max}"),
        );
    }
}

/// A task request whose every field has been checked.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ValidatedTaskRequest {
    /// Template name.
    pub name: TaskName,
    /// Template namespace.
    pub namespace: NamespaceName,
    /// Template version.
    pub version: TemplateVersion,
    /// The context exactly as requested (a JSON object within the limits).
    pub context: serde_json::Value,
    /// Who asks.
    pub initiator: String,
    /// Which system asks.
    pub source_system: String,
    /// Why.
    pub reason: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Priority, -100..=100.
    pub priority: i32,
    /// Correlation id.
    pub correlation_id: CorrelationId,
    /// Parent correlation id.
    pub parent_correlation_id: Option<CorrelationId>,
    /// Deduplication key.
    pub idempotency_key: Option<IdempotencyKey>,
    /// Execution options.
    pub options: serde_json::Map<String, serde_json::Value>,
    /// When the request was made.
    pub requested_at: DateTime<Utc>,
}

/// Which rule a request breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RequestRule {
    /// A name breaks the identifier rule.
    Name,
    /// The version is not a semantic version.
    Version,
    /// The context is not a JSON object.
    Context,
    /// A size, depth, count or length limit.
    Limit,
    /// An invalid idempotency key.
    IdempotencyKey,
    /// The request names another template than the one it is checked against.
    TemplateMismatch,
    /// The context breaks the template's `input_schema`.
    InputSchema,
    /// More violations than are listed.
    Truncated,
}

/// One problem with a task request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RequestViolation {
    /// JSON pointer into the request (`/context/customer/email`).
    pub pointer: String,
    /// The rule broken.
    pub rule: RequestRule,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for RequestViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.pointer, self.message)
    }
}

/// A task request was rejected.
#[derive(Debug, thiserror::Error)]
#[error("invalid task request: {}", render(violations))]
pub struct RequestError {
    /// Every violation, in field order (at most [`MAX_VIOLATIONS`] plus a truncation entry).
    pub violations: Vec<RequestViolation>,
}

fn render(violations: &[RequestViolation]) -> String {
    violations
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Collects violations, keeping at most [`MAX_VIOLATIONS`].
#[derive(Debug, Default)]
pub(crate) struct Violations {
    listed: Vec<RequestViolation>,
    dropped: usize,
}

impl Violations {
    pub(crate) fn push(&mut self, pointer: impl Into<String>, rule: RequestRule, message: String) {
        if self.listed.len() < MAX_VIOLATIONS {
            self.listed.push(RequestViolation {
                pointer: pointer.into(),
                rule,
                message,
            });
        } else {
            self.dropped += 1;
        }
    }

    fn finish(
        mut self,
        validated: Option<ValidatedTaskRequest>,
    ) -> Result<ValidatedTaskRequest, RequestError> {
        if self.dropped > 0 {
            self.listed.push(RequestViolation {
                pointer: String::new(),
                rule: RequestRule::Truncated,
                message: format!("{} more violation(s) not listed", self.dropped),
            });
        }
        match validated {
            Some(validated) if self.listed.is_empty() => Ok(validated),
            _ => Err(RequestError {
                violations: self.listed,
            }),
        }
    }
}

#[cfg(test)]
mod tests;
