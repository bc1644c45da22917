//! Lifecycle events: one for every task and step transition, named by tasker-state's rule tables.
//!
//! The names are not written down here: [`names`] and [`catalog`] read them from
//! `TaskStateMachine::lifecycle_transitions` and `StepStateMachine::lifecycle_transitions`, and
//! an event is built from a transition record (whose name comes from the rule that made it) or
//! checked against those tables, so an event name cannot drift from the state machines.
//!
//! The payload is small on purpose: identifiers, the two states, who made the transition, when,
//! and its sequence number. Consumers that need more read the database.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tasker_state::{
    Machine, StepState, StepStateMachine, StepTransitionRecord, TaskState, TaskStateMachine,
    TaskTransitionRecord,
};
use uuid::Uuid;

/// A task or step transition, as published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LifecycleEvent {
    name: &'static str,
    task_id: Uuid,
    transition: Transition,
    processor_id: Option<Uuid>,
    occurred_at: DateTime<Utc>,
    sequence: u64,
}

/// Which entity moved, and between which states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "machine", rename_all = "snake_case")]
pub enum Transition {
    /// The task itself moved.
    Task {
        /// The state it left.
        from: TaskState,
        /// The state it reached.
        to: TaskState,
    },
    /// One of the task's steps moved.
    Step {
        /// The step.
        step_id: Uuid,
        /// The state it left.
        from: StepState,
        /// The state it reached.
        to: StepState,
    },
}

/// Who made a transition, when, and where it falls in its entity's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occurrence {
    /// The orchestrator or worker process that made it, if known.
    pub processor_id: Option<Uuid>,
    /// When it was recorded.
    pub occurred_at: DateTime<Utc>,
    /// The transition row's sort key: 1, 2, 3 ... per entity, without gaps. For a task event it
    /// orders the task's own transitions, for a step event that step's.
    pub sequence: u64,
}

/// A (name, from, to) triple that no rule of the state machines has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no {machine} rule named `{name}` moves from `{from}` to `{to}`")]
pub struct UnknownLifecycleTransition {
    /// The machine the transition belongs to.
    pub machine: Machine,
    /// The name given.
    pub name: String,
    /// The state left, as its storage label.
    pub from: &'static str,
    /// The state reached, as its storage label.
    pub to: &'static str,
}

impl LifecycleEvent {
    /// The event for a task transition tasker-state has just decided.
    pub fn task(task_id: Uuid, record: &TaskTransitionRecord, occurrence: Occurrence) -> Self {
        Self::assemble(
            record.lifecycle_event,
            task_id,
            Transition::Task {
                from: record.from,
                to: record.to,
            },
            occurrence,
        )
    }

    /// The event for a step transition tasker-state has just decided.
    pub fn step(
        task_id: Uuid,
        step_id: Uuid,
        record: &StepTransitionRecord,
        occurrence: Occurrence,
    ) -> Self {
        Self::assemble(
            record.lifecycle_event,
            task_id,
            Transition::Step {
                step_id,
                from: record.from,
                to: record.to,
            },
            occurrence,
        )
    }

    /// The event for a transition read back from storage (a history row has the states, the
    /// name is checked against the rule tables).
    ///
    /// # Errors
    /// [`UnknownLifecycleTransition`] when no rule of that name connects the two states.
    pub fn new(
        task_id: Uuid,
        transition: Transition,
        name: &str,
        occurrence: Occurrence,
    ) -> Result<Self, UnknownLifecycleTransition> {
        let found = match transition {
            Transition::Task { from, to } => TaskStateMachine::new()
                .lifecycle_transitions()
                .into_iter()
                .find(|rule| rule.name == name && rule.connects(&from, &to))
                .map(|rule| rule.name),
            Transition::Step { from, to, .. } => StepStateMachine::new()
                .lifecycle_transitions()
                .into_iter()
                .find(|rule| rule.name == name && rule.connects(&from, &to))
                .map(|rule| rule.name),
        };
        match found {
            Some(name) => Ok(Self::assemble(name, task_id, transition, occurrence)),
            None => {
                let (machine, from, to) = match transition {
                    Transition::Task { from, to } => (Machine::Task, from.as_str(), to.as_str()),
                    Transition::Step { from, to, .. } => {
                        (Machine::Step, from.as_str(), to.as_str())
                    }
                };
                Err(UnknownLifecycleTransition {
                    machine,
                    name: name.to_owned(),
                    from,
                    to,
                })
            }
        }
    }

    fn assemble(
        name: &'static str,
        task_id: Uuid,
        transition: Transition,
        occurrence: Occurrence,
    ) -> Self {
        Self {
            name,
            task_id,
            transition,
            processor_id: occurrence.processor_id,
            occurred_at: occurrence.occurred_at,
            sequence: occurrence.sequence,
        }
    }

    /// The lifecycle event name (`task.completed`).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The task, for task and step events alike.
    pub fn task_id(&self) -> Uuid {
        self.task_id
    }

    /// The step, for step events.
    pub fn step_id(&self) -> Option<Uuid> {
        match self.transition {
            Transition::Task { .. } => None,
            Transition::Step { step_id, .. } => Some(step_id),
        }
    }

    /// The entity and the two states.
    pub fn transition(&self) -> Transition {
        self.transition
    }

    /// The process that made the transition, if known.
    pub fn processor_id(&self) -> Option<Uuid> {
        self.processor_id
    }

    /// When the transition was recorded.
    pub fn occurred_at(&self) -> DateTime<Utc> {
        self.occurred_at
    }

    /// The transition's sort key within its entity (see [`Occurrence::sequence`]).
    pub fn sequence(&self) -> u64 {
        self.sequence
    }
}

/// One rule of either state machine as the catalogue lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CatalogEntry {
    /// The lifecycle event name.
    pub name: &'static str,
    /// The machine whose rule it is.
    #[serde(serialize_with = "machine_label")]
    pub machine: Machine,
    /// The states the transition leaves, as storage labels in lifecycle order.
    pub from: Vec<&'static str>,
    /// The state it reaches.
    pub to: &'static str,
}

fn machine_label<S: serde::Serializer>(
    machine: &Machine,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(machine.as_str())
}

/// Every rule of the task machine, then every rule of the step machine, in table order.
pub fn catalog() -> Vec<CatalogEntry> {
    let tasks = TaskStateMachine::new()
        .lifecycle_transitions()
        .into_iter()
        .map(|rule| CatalogEntry {
            name: rule.name,
            machine: Machine::Task,
            from: rule.from.iter().map(|state| state.as_str()).collect(),
            to: rule.to.as_str(),
        });
    let steps = StepStateMachine::new()
        .lifecycle_transitions()
        .into_iter()
        .map(|rule| CatalogEntry {
            name: rule.name,
            machine: Machine::Step,
            from: rule.from.iter().map(|state| state.as_str()).collect(),
            to: rule.to.as_str(),
        });
    tasks.chain(steps).collect()
}

/// Every distinct lifecycle event name, task names first, in table order.
pub fn names() -> Vec<&'static str> {
    let mut names = TaskStateMachine::new().lifecycle_events();
    names.extend(StepStateMachine::new().lifecycle_events());
    names
}

/// The catalogue as a Markdown table: one row per rule, `name | from | to`.
pub fn catalog_markdown() -> String {
    let mut out = String::from("| event | from | to |\n|---|---|---|\n");
    for entry in catalog() {
        let from = entry
            .from
            .iter()
            .map(|state| format!("`{state}`"))
            .collect::<Vec<_>>()
            .join(", ");
        // Writing to a String cannot fail.
        let _ = writeln!(out, "| `{}` | {from} | `{}` |", entry.name, entry.to);
    }
    out
}

#[cfg(test)]
mod tests;
