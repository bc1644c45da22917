//! Tasker's typed events and an in-process bus to publish them on.
//!
//! Two kinds of [`event::Event`]:
//!
//! - [`lifecycle::LifecycleEvent`]: one for every task and step transition, named by
//!   tasker-state's rule tables (`task.completed`, `step.enqueue_requested`), carrying
//!   identifiers, the two states, the processor, the time and the transition's sequence number;
//!   [`lifecycle::catalog`] lists every name with the states it connects.
//! - [`domain::DomainEvent`]: an event a template declares (`domain_events`), built only through
//!   a [`domain::DomainEventCatalog`], which compiles each declared JSON Schema once and refuses
//!   unknown names and invalid payloads with the offending JSON pointer.
//!
//! The [`bus::Bus`] delivers them in process: [`bus::Bus::subscribe`] by name or pattern
//! (`task.*`, `step.failed`, `*`; grammar in [`name`]), each subscriber with its own bounded
//! queue and an explicit [`bus::Overflow`] policy, so a slow subscriber never blocks the
//! publisher or the other subscribers. The bus holds no global state and spawns no task.
//!
//! ```
//! use std::num::NonZeroUsize;
//! use tasker_events::bus::{Bus, Overflow, SubscriberOptions};
//! use tasker_events::lifecycle::{LifecycleEvent, Occurrence};
//! use tasker_state::{TaskEvent, TaskState, TaskStateMachine};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let bus = Bus::new();
//! let options = SubscriberOptions { capacity: NonZeroUsize::new(64).unwrap(), overflow: Overflow::DropOldest };
//! let mut tasks = bus.subscribe("task.*", options)?;
//!
//! let record = TaskStateMachine::new().apply(TaskState::Pending, TaskEvent::Initialize)?;
//! let occurrence = Occurrence { processor_id: None, occurred_at: chrono::Utc::now(), sequence: 2 };
//! bus.publish(LifecycleEvent::task(uuid::Uuid::now_v7(), &record, occurrence));
//!
//! let event = tasks.recv().await.unwrap();
//! assert_eq!(event.name(), "task.initialize_requested");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! # Delivery outside the process
//!
//! Not here: both kinds are written to the database's event outbox in the transaction that
//! makes them true (lifecycle events by a trigger, domain events by the worker with the step's
//! result; `tasker_db::event_outbox`), and tasker-orchestration's relay sends them to the
//! namespace's event queue and publishes them on a bus when one is configured
//! ([`domain::DomainEvent::relayed`] for the domain events, checked by their publisher).
//!
//! # Must not depend on
//!
//! Any workspace crate but `tasker-state` (whose rule tables name the lifecycle events) and
//! `tasker-models` (whose `CompiledSchema` compiles the declared schemas), nor anything that
//! performs IO.

pub mod bus;
pub mod domain;
pub mod event;
pub mod lifecycle;
pub mod name;
