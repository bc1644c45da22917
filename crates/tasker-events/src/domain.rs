//! Domain events: the events a template declares (`domain_events`), with a JSON Schema payload.
//!
//! A [`DomainEventCatalog`] is built once from the declarations (name and optional schema):
//! names are checked, each schema is checked against its meta-schema and compiled once, without
//! any network or file access (external `$ref`s are refused, as tasker-models does). The only
//! way to get a [`DomainEvent`] is [`DomainEventCatalog::event`], which refuses names the
//! catalogue does not have and payloads that break the schema, so every domain event on a bus
//! has been checked.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use tasker_models::template::CompiledSchema;
use uuid::Uuid;

use crate::name::{InvalidEventName, check_domain_name};

/// A declared domain event, as the catalogue is built from it (a template's `domain_events[]`
/// entry, mapped by the caller).
#[derive(Debug, Clone, PartialEq)]
pub struct DomainEventDeclaration {
    /// `namespace.action`.
    pub name: String,
    /// The payload's JSON Schema; without one, any JSON payload is accepted.
    pub schema: Option<serde_json::Value>,
}

/// A checked domain event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DomainEvent {
    #[serde(serialize_with = "as_str")]
    name: Arc<str>,
    task_id: Uuid,
    step_id: Option<Uuid>,
    payload: serde_json::Value,
}

impl DomainEvent {
    /// An event its publisher checked in another process against the same declaration (a
    /// step's `publishes_events`), read back from the durable outbox by the relay.
    #[must_use]
    pub fn relayed(
        name: &str,
        task_id: Uuid,
        step_id: Option<Uuid>,
        payload: serde_json::Value,
    ) -> Self {
        Self {
            name: Arc::from(name),
            task_id,
            step_id,
            payload,
        }
    }

    /// The declared name (`payment.processed`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The task it happened in.
    pub fn task_id(&self) -> Uuid {
        self.task_id
    }

    /// The step it happened in, if a step published it.
    pub fn step_id(&self) -> Option<Uuid> {
        self.step_id
    }

    /// The payload, valid against the declared schema.
    pub fn payload(&self) -> &serde_json::Value {
        &self.payload
    }
}

/// The declared domain events, each with its compiled schema.
#[derive(Clone, Default)]
pub struct DomainEventCatalog {
    events: BTreeMap<Arc<str>, Option<CompiledSchema>>,
}

/// One problem with one declaration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeclarationError {
    /// The name breaks the event name rule.
    #[error("domain event {name:?}: the name {reason}")]
    InvalidName {
        /// The name as declared.
        name: String,
        /// The rule it breaks.
        reason: InvalidEventName,
    },
    /// Two declarations share a name.
    #[error("domain event `{name}` is declared more than once")]
    Duplicate {
        /// The name.
        name: String,
    },
    /// The schema is not a valid JSON Schema.
    #[error("domain event `{name}`: the schema is invalid: {}", list(.issues))]
    InvalidSchema {
        /// The name.
        name: String,
        /// Every problem found, each at its JSON pointer into the schema.
        issues: Vec<Violation>,
    },
}

/// Every problem with a set of declarations, found at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} invalid domain event declaration(s): {}", .errors.len(), list(.errors))]
pub struct InvalidCatalog {
    /// One entry per problem, in declaration order.
    pub errors: Vec<DeclarationError>,
}

/// Why a domain event could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainEventError {
    /// The catalogue declares no event of that name.
    #[error("domain event `{name}` is not declared{}", suggestion_text(.suggestion.as_deref()))]
    Unknown {
        /// The name given.
        name: String,
        /// The closest declared name, if one is close.
        suggestion: Option<String>,
    },
    /// The payload breaks the declared schema.
    #[error("payload of domain event `{name}` breaks its schema: {}", list(.violations))]
    InvalidPayload {
        /// The event's name.
        name: String,
        /// Every violation, each at its JSON pointer into the payload.
        violations: Vec<Violation>,
    },
}

/// One way a document breaks a schema (or a schema its meta-schema).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// JSON pointer into the document (`/customer/email`), empty for the whole document.
    pub pointer: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pointer.is_empty() {
            write!(f, "at the root: {}", self.message)
        } else {
            write!(f, "at {}: {}", self.pointer, self.message)
        }
    }
}

impl DomainEventCatalog {
    /// Checks and compiles the declarations, reporting every problem at once.
    ///
    /// # Errors
    /// [`InvalidCatalog`] listing each invalid name, duplicate and invalid schema.
    pub fn new(
        declarations: impl IntoIterator<Item = DomainEventDeclaration>,
    ) -> Result<Self, InvalidCatalog> {
        let mut events = BTreeMap::new();
        let mut errors = Vec::new();
        for declaration in declarations {
            let name = declaration.name;
            if let Err(reason) = check_domain_name(&name) {
                errors.push(DeclarationError::InvalidName { name, reason });
                continue;
            }
            if events.contains_key(name.as_str()) {
                errors.push(DeclarationError::Duplicate { name });
                continue;
            }
            let validator = match declaration.schema.as_ref().map(compile).transpose() {
                Ok(validator) => validator,
                Err(issues) => {
                    errors.push(DeclarationError::InvalidSchema { name, issues });
                    continue;
                }
            };
            events.insert(Arc::from(name), validator);
        }
        if errors.is_empty() {
            Ok(Self { events })
        } else {
            Err(InvalidCatalog { errors })
        }
    }

    /// Builds a domain event, checking its name and payload.
    ///
    /// # Errors
    /// [`DomainEventError::Unknown`] for an undeclared name (with the closest declared one),
    /// [`DomainEventError::InvalidPayload`] with every schema violation.
    pub fn event(
        &self,
        name: &str,
        task_id: Uuid,
        step_id: Option<Uuid>,
        payload: serde_json::Value,
    ) -> Result<DomainEvent, DomainEventError> {
        let Some((name, validator)) = self.events.get_key_value(name) else {
            return Err(DomainEventError::Unknown {
                name: name.to_owned(),
                suggestion: self.closest(name),
            });
        };
        if let Some(validator) = validator {
            let violations: Vec<Violation> = validator
                .violations(&payload)
                .into_iter()
                .map(|violation| Violation {
                    pointer: violation.pointer,
                    message: violation.message,
                })
                .collect();
            if !violations.is_empty() {
                return Err(DomainEventError::InvalidPayload {
                    name: name.to_string(),
                    violations,
                });
            }
        }
        Ok(DomainEvent {
            name: Arc::clone(name),
            task_id,
            step_id,
            payload,
        })
    }

    /// The declared names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.events.keys().map(|name| &**name)
    }

    fn closest(&self, name: &str) -> Option<String> {
        self.names()
            .map(|known| (strsim::jaro_winkler(name, known), known))
            .filter(|(score, _)| *score > 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, known)| known.to_owned())
    }
}

impl fmt::Debug for DomainEventCatalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DomainEventCatalog")
            .field("events", &self.events.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn as_str<S: serde::Serializer>(name: &Arc<str>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(name)
}

fn list<T: fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

fn suggestion_text(suggestion: Option<&str>) -> String {
    suggestion.map_or_else(String::new, |known| format!(" (did you mean `{known}`?)"))
}

/// Checks a schema against its meta-schema (every violation) and compiles it, as tasker-models
/// does for template schemas (`CompiledSchema::compile`): the draft from `$schema` (2020-12
/// without one), `format` asserted, external references refused.
fn compile(value: &serde_json::Value) -> Result<CompiledSchema, Vec<Violation>> {
    if !(value.is_object() || value.is_boolean()) {
        return Err(vec![Violation {
            pointer: String::new(),
            message: "a JSON Schema must be an object (or a boolean)".to_owned(),
        }]);
    }
    CompiledSchema::compile(value).map_err(|issues| {
        issues
            .into_iter()
            .map(|issue| Violation {
                pointer: issue.pointer,
                message: issue.message,
            })
            .collect()
    })
}
