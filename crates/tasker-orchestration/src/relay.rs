//! The event relay: moves events from the database's outbox (`tasker_db::event_outbox`) to
//! each task's namespace queue `<namespace>_domain_events`, and publishes them on the
//! in-process bus when one is given: lifecycle events (written by a trigger in each
//! transition's own transaction) as `LifecycleEventMessage`s, and the domain events step
//! handlers published (written with their step's result) as `DomainEvent`s, in one order.
//!
//! One relay runs at a time across every orchestrator (an advisory lock), so a task's events
//! leave in the order they were written. On PGMQ the sends and the deletion commit together;
//! elsewhere the events are sent (and confirmed) before the transaction that deletes them
//! commits, so a relay that dies in between sends them again: at least once, never lost.

use std::collections::BTreeMap;
use std::sync::Arc;

use tasker_db::event_outbox::{self, OutboxDomainEvent, OutboxEntry, OutboxEvent};
use tasker_events::bus::Bus;
use tasker_events::domain::DomainEvent as BusDomainEvent;
use tasker_events::event::Event;
use tasker_events::lifecycle::{LifecycleEvent, Occurrence, Transition};
use tasker_messaging::envelope::Payload;
use tasker_messaging::messages::{DomainEvent, LifecycleEventMessage};
use tasker_messaging::queue_name::{Namespace, QueueName, domain_events_queue};
use tasker_messaging::retry::within;
use tasker_messaging::shutdown::Shutdown;
use tasker_models::ids::CorrelationId;

use crate::error::{Doing as _, OrchestrationError, display_chain};
use crate::orchestrator::Orchestrator;

/// Events relayed per transaction.
const BATCH: i64 = 500;

impl Orchestrator {
    /// Relays events every poll interval until shutdown.
    pub(crate) async fn run_relay(
        self: Arc<Self>,
        bus: Option<Bus>,
        mut shutdown: Shutdown,
    ) -> Result<(), OrchestrationError> {
        let every = self.settings.messaging.poll_interval;
        loop {
            loop {
                let relayed = within(
                    self.settings.operation_timeout,
                    self.relay_once(bus.as_ref()),
                )
                .await
                .doing("relaying events")
                .and_then(|relayed| relayed);
                match relayed {
                    Ok(count) if count == usize::try_from(BATCH).unwrap_or(usize::MAX) => {}
                    Ok(_) => break,
                    Err(error) => {
                        // Rolled back: the events wait in the outbox for the next round.
                        tracing::warn!(error = %display_chain(&error), "relaying events failed; retrying");
                        break;
                    }
                }
            }
            tokio::select! {
                () = shutdown.wait() => return Ok(()),
                () = tokio::time::sleep(every) => {}
            }
        }
    }

    /// One batch: returns how many events were relayed (0 when another relay holds the lock).
    async fn relay_once(&self, bus: Option<&Bus>) -> Result<usize, OrchestrationError> {
        let mut tx = self.pool.begin().await.doing("starting an event relay")?;
        if !event_outbox::try_lock_relay(&mut tx)
            .await
            .doing("taking the event relay's lock")?
        {
            return Ok(0);
        }
        let events = event_outbox::take_batch(&mut tx, BATCH)
            .await
            .doing("taking lifecycle events")?;
        if events.is_empty() {
            return Ok(0);
        }
        let mut by_queue: BTreeMap<QueueName, Vec<Payload>> = BTreeMap::new();
        for event in &events {
            let namespace = Namespace::new(event.namespace_name())
                .doing_with(|| format!("naming the event queue of task {}", event.task_id()))?;
            let payload = match event {
                OutboxEntry::Lifecycle(event) => Payload::encode(&message(event)),
                OutboxEntry::Domain(event) => Payload::encode(&domain_message(event)),
            }
            .doing("encoding an event")?;
            by_queue
                .entry(domain_events_queue(&namespace))
                .or_default()
                .push(payload);
        }
        for queue in by_queue.keys() {
            self.ensure_queue(queue).await?;
        }
        match &self.messaging.pgmq {
            Some(_) => {
                let mut outbox = self.messaging.outbox();
                for (queue, payloads) in by_queue {
                    for payload in payloads {
                        outbox.push_payload(&queue, payload);
                    }
                }
                outbox.commit(tx).await.doing("committing an event relay")?;
            }
            None => {
                for (queue, payloads) in &by_queue {
                    self.messaging
                        .queue
                        .send_batch(queue, payloads)
                        .await
                        .doing_with(|| format!("sending lifecycle events to {queue}"))?;
                }
                tx.commit().await.doing("committing an event relay")?;
            }
        }
        if let Some(bus) = bus {
            for event in &events {
                match event {
                    OutboxEntry::Lifecycle(event) => match lifecycle_event(event) {
                        Some(lifecycle) => {
                            bus.publish(Event::Lifecycle(lifecycle));
                        }
                        None => {
                            tracing::debug!(name = %event.name, "a lifecycle event tasker-state does not know; not published on the bus")
                        }
                    },
                    OutboxEntry::Domain(event) => {
                        bus.publish(Event::Domain(BusDomainEvent::relayed(
                            &event.name,
                            event.task_id.into_uuid(),
                            event.step_id.map(tasker_models::ids::StepId::into_uuid),
                            event.payload.clone(),
                        )));
                    }
                }
            }
        }
        Ok(events.len())
    }
}

fn message(event: &OutboxEvent) -> LifecycleEventMessage {
    LifecycleEventMessage {
        event_id: event.event_id,
        name: event.name.clone(),
        task_id: event.task_id,
        step_id: event.step_id(),
        sort_key: event.sort_key,
        from_state: event.from_state.clone(),
        to_state: event.to_state.clone(),
        processor_id: event.processor_uuid,
        occurred_at: event.occurred_at,
    }
}

fn domain_message(event: &OutboxDomainEvent) -> DomainEvent {
    DomainEvent {
        event_id: event.domain_event_id,
        sequence: event.event_id,
        name: event.name.clone(),
        version: event.template_version.clone(),
        namespace: event.namespace_name.clone(),
        task_id: event.task_id,
        step_id: event.step_id,
        correlation_id: CorrelationId::from_uuid(event.correlation_id),
        fired_at: event.occurred_at,
        payload: event.payload.clone(),
    }
}

/// The bus's typed event for an outbox row; `None` for a row tasker-state's rule tables do not
/// describe (an initial transition, or a name from another version).
fn lifecycle_event(event: &OutboxEvent) -> Option<LifecycleEvent> {
    let occurrence = Occurrence {
        processor_id: event.processor_uuid,
        occurred_at: event.occurred_at,
        sequence: u64::try_from(event.sort_key).ok()?,
    };
    let from = event.from_state.as_deref()?;
    let transition = match event.step_id() {
        None => Transition::Task {
            from: from.parse().ok()?,
            to: event.to_state.parse().ok()?,
        },
        Some(step) => Transition::Step {
            step_id: step.into_uuid(),
            from: from.parse().ok()?,
            to: event.to_state.parse().ok()?,
        },
    };
    LifecycleEvent::new(
        event.task_id.into_uuid(),
        transition,
        &event.name,
        occurrence,
    )
    .ok()
}
