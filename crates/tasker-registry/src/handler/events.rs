//! The domain events a step handler publishes: declared by its step (`publishes_events`),
//! checked against their schema when published ([`StepContext::publish`](super::StepContext::publish)),
//! and held until the step's outcome is known; [`StepEvents::take`] keeps those whose
//! `condition` matches the outcome, for the worker to write with the step's result.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use serde_json::Value;
use tasker_models::template::{
    CompiledSchema, DeliveryMode, EventCondition, EventDeclaration, SchemaViolation,
};
use uuid::Uuid;

use super::StepOutcome;

/// One event a step declares, its schema compiled.
#[derive(Debug, Clone, PartialEq)]
pub struct DeclaredEvent {
    /// `namespace.action`.
    pub name: String,
    /// When it is kept.
    pub condition: EventCondition,
    /// How it is delivered (every mode is written to the durable outbox for now).
    pub delivery_mode: DeliveryMode,
    /// The payload's schema.
    pub schema: CompiledSchema,
}

/// A declared event's schema that does not compile (the template parser checks schemas, so
/// this means a template that bypassed it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the schema of event `{name}` does not compile: {}", .issues.join("; "))]
pub struct DeclarationError {
    /// The event.
    pub name: String,
    /// What is wrong with the schema.
    pub issues: Vec<String>,
}

impl DeclaredEvent {
    /// Compiles a step's `publishes_events`.
    ///
    /// # Errors
    /// [`DeclarationError`] for the first schema that does not compile.
    pub fn compile_all(declarations: &[EventDeclaration]) -> Result<Vec<Self>, DeclarationError> {
        declarations
            .iter()
            .map(|declaration| {
                let schema =
                    CompiledSchema::compile(declaration.schema.as_value()).map_err(|issues| {
                        DeclarationError {
                            name: declaration.name.to_string(),
                            issues: issues
                                .into_iter()
                                .map(|issue| format!("at {:?}: {}", issue.pointer, issue.message))
                                .collect(),
                        }
                    })?;
                Ok(Self {
                    name: declaration.name.to_string(),
                    condition: declaration.condition,
                    delivery_mode: declaration.delivery_mode,
                    schema,
                })
            })
            .collect()
    }
}

/// An event a handler published, checked against its declaration.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishedEvent {
    /// The event's id (a UUID v7): the same on every delivery of it.
    pub event_id: Uuid,
    /// The declared name.
    pub name: String,
    /// The handler's payload.
    pub payload: Value,
    /// When it was published.
    pub published_at: DateTime<Utc>,
}

/// Why a handler could not publish an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// The step's `publishes_events` does not declare the name.
    #[error(
        "step `{step}` does not declare event `{name}`{}; hint: add it to the step's `publishes_events` (with a `schema`){}",
        suggestion.as_deref().map(|known| format!(" (did you mean `{known}`?)")).unwrap_or_default(),
        if declared.is_empty() { "; the step declares no event".to_owned() } else { format!(", or publish one of: {}", declared.join(", ")) }
    )]
    Undeclared {
        /// The step.
        step: String,
        /// The name given.
        name: String,
        /// The closest declared name, if one is close.
        suggestion: Option<String>,
        /// Every name the step declares.
        declared: Vec<String>,
    },
    /// The payload breaks the declared schema.
    #[error(
        "payload of event `{name}` published by step `{step}` breaks its schema: {}; hint: send a payload valid against the step's `publishes_events` schema for `{name}`",
        violations.iter().map(describe).collect::<Vec<_>>().join("; ")
    )]
    InvalidPayload {
        /// The step.
        step: String,
        /// The event.
        name: String,
        /// Every violation: where in the payload, which schema keyword, what is wrong.
        violations: Vec<SchemaViolation>,
    },
}

fn describe(violation: &SchemaViolation) -> String {
    let at = if violation.pointer.is_empty() {
        "the root".to_owned()
    } else {
        violation.pointer.clone()
    };
    format!(
        "at {at} (schema {}): {}",
        violation.schema_pointer, violation.message
    )
}

/// The events a step may publish and those its handler published in this run. Clones share
/// the published events.
#[derive(Clone, Default)]
pub struct StepEvents {
    step: Arc<str>,
    declared: Arc<[DeclaredEvent]>,
    published: Arc<Mutex<Vec<PublishedEvent>>>,
}

impl StepEvents {
    /// A run of step `step`, which declares `declared`.
    #[must_use]
    pub fn new(step: &str, declared: Arc<[DeclaredEvent]>) -> Self {
        Self {
            step: Arc::from(step),
            declared,
            published: Arc::default(),
        }
    }

    /// A step that declares no event.
    #[must_use]
    pub fn none() -> Self {
        Self::default()
    }

    /// What the step declares.
    #[must_use]
    pub fn declared(&self) -> &[DeclaredEvent] {
        &self.declared
    }

    /// Checks `payload` against every declaration of `name` and holds the event.
    ///
    /// # Errors
    /// [`PublishError::Undeclared`] for a name the step does not declare,
    /// [`PublishError::InvalidPayload`] for a payload that breaks a declared schema.
    pub fn publish(&self, name: &str, payload: Value) -> Result<(), PublishError> {
        let mut matching = self
            .declared
            .iter()
            .filter(|event| event.name == name)
            .peekable();
        if matching.peek().is_none() {
            let declared: Vec<String> = self.names();
            let suggestion = declared
                .iter()
                .map(|known| (strsim::jaro_winkler(name, known), known))
                .filter(|(score, _)| *score > 0.8)
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, known)| known.clone());
            return Err(PublishError::Undeclared {
                step: self.step.to_string(),
                name: name.to_owned(),
                suggestion,
                declared,
            });
        }
        for event in matching {
            let violations = event.schema.violations(&payload);
            if !violations.is_empty() {
                return Err(PublishError::InvalidPayload {
                    step: self.step.to_string(),
                    name: name.to_owned(),
                    violations,
                });
            }
        }
        self.lock().push(PublishedEvent {
            event_id: Uuid::now_v7(),
            name: name.to_owned(),
            payload,
            published_at: Utc::now(),
        });
        Ok(())
    }

    /// Removes the published events and returns those a declaration keeps for `outcome`
    /// (`success`, `failure`, `retryable_failure`, `permanent_failure`, `always`), in publish
    /// order. `will_retry` tells a retryable failure that will be retried from one that used
    /// the last attempt (a `permanent_failure`).
    #[must_use]
    pub fn take(&self, outcome: &StepOutcome, will_retry: bool) -> Vec<PublishedEvent> {
        let success = outcome.is_success();
        let retryable = matches!(outcome, StepOutcome::RetryableFailure { .. }) && will_retry;
        let published = std::mem::take(&mut *self.lock());
        published
            .into_iter()
            .filter(|event| {
                self.declared.iter().any(|declared| {
                    declared.name == event.name
                        && declared.condition.should_publish(success, retryable)
                })
            })
            .collect()
    }

    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.declared.iter().map(|e| e.name.clone()).collect();
        names.sort();
        names.dedup();
        names
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<PublishedEvent>> {
        self.published
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for StepEvents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepEvents")
            .field("step", &self.step)
            .field("declared", &self.names())
            .field("published", &self.lock().len())
            .finish()
    }
}

impl PartialEq for StepEvents {
    /// Equal when they declare the same events (what a handler published is not compared).
    fn eq(&self, other: &Self) -> bool {
        self.step == other.step && self.declared == other.declared
    }
}

#[cfg(test)]
mod tests;
