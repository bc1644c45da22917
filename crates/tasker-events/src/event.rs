//! [`Event`]: what a bus carries, a lifecycle event or a domain event.

use serde::Serialize;
use uuid::Uuid;

use crate::domain::DomainEvent;
use crate::lifecycle::LifecycleEvent;

/// A lifecycle event or a checked domain event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", content = "event", rename_all = "snake_case")]
pub enum Event {
    /// A task or step transition.
    Lifecycle(LifecycleEvent),
    /// An event a template declares.
    Domain(DomainEvent),
}

impl Event {
    /// The event's name, which subscription patterns match.
    pub fn name(&self) -> &str {
        match self {
            Event::Lifecycle(event) => event.name(),
            Event::Domain(event) => event.name(),
        }
    }

    /// The task the event belongs to.
    pub fn task_id(&self) -> Uuid {
        match self {
            Event::Lifecycle(event) => event.task_id(),
            Event::Domain(event) => event.task_id(),
        }
    }

    /// A lifecycle event's sequence number (its transition's sort key within the task or the
    /// step). Domain events have none: between them, the bus's per-task publish order is the
    /// order.
    pub fn sequence(&self) -> Option<u64> {
        match self {
            Event::Lifecycle(event) => Some(event.sequence()),
            Event::Domain(_) => None,
        }
    }
}

impl From<LifecycleEvent> for Event {
    fn from(event: LifecycleEvent) -> Self {
        Event::Lifecycle(event)
    }
}

impl From<DomainEvent> for Event {
    fn from(event: DomainEvent) -> Self {
        Event::Domain(event)
    }
}
