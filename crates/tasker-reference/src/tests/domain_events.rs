//! Domain events published by step handlers, through the real engines: a task whose first
//! step succeeds and whose second fails for good. Each handler publishes
//! `reference.step_attempted` first (declared with `condition: failure`) and the seed
//! `reference.value_computed` on success (`condition: success`); only the events whose
//! condition matches their step's outcome reach the namespace's event queue, once each, after
//! the lifecycle event of the transition that stored their step's result, with their ids,
//! template version and correlation id; the orchestrator's in-process bus receives them too.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use serde_json::json;
use tasker_orchestration::OrchestratorSettings;
use tasker_shared::database::{event_outbox, step};
use tasker_shared::events::bus::{Bus, Overflow, SubscriberOptions};
use tasker_shared::messaging::envelope::DecodeError;
use tasker_shared::messaging::messages::{DomainEvent, LifecycleEventMessage};
use tasker_shared::messaging::queue_name::{Namespace, QueueName, domain_events_queue};
use tasker_shared::models::request::TaskRequest;
use tasker_shared::state_machine::TaskState;
use uuid::Uuid;

use super::harness::{
    Calls, TestEngines, catalog_from, messaging, orchestrator_settings, with_database,
};
use crate::setup::Backend;

const LIMIT: Duration = Duration::from_secs(60);

const TEMPLATE: &str = r"
name: published
namespace_name: domain_it
version: 2.1.0
steps:
  - name: seed
    handler: {callable: Reference::Seed}
    publishes_events:
      - name: reference.value_computed
        description: the seed's value
        schema:
          type: object
          required: [step, value]
          properties: {step: {type: string}, value: {type: integer}}
      - name: reference.step_attempted
        description: kept only when the step fails
        condition: failure
        schema: {type: object, required: [step, attempt]}
  - name: refuse
    handler: {callable: Reference::AlwaysFails, initialization: {reason: no}}
    dependencies: [seed]
    publishes_events:
      - name: reference.step_attempted
        description: kept only when the step fails
        condition: failure
        schema: {type: object, required: [step, attempt]}
";

async fn run(backend: Backend) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("tasker-domain-{}", Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("published.yaml"), TEMPLATE)?;
    let templates = dir.clone();
    let outcome = with_database(move |pool| async move {
        let calls = Arc::new(Calls::default());
        let catalog = catalog_from(&pool, &templates, &calls, None).await?;
        let messaging = messaging(backend, &pool).await?;
        let queue = domain_events_queue(&Namespace::new("domain_it")?);
        let bus = Bus::new();
        let options = SubscriberOptions {
            capacity: NonZeroUsize::new(16).context("non-zero")?,
            overflow: Overflow::Wait,
        };
        let mut subscription = bus.subscribe("reference.*", options)?;
        let settings = OrchestratorSettings {
            events: Some(bus),
            ..orchestrator_settings()
        };
        let mut engines = TestEngines::start(&pool, messaging, &catalog, 2, settings).await?;
        let outcome = async {
            let request = TaskRequest::new("domain_it", "published", "2.1.0", json!({"value": 5}));
            let (task_id, state) = engines.run_one(&request, LIMIT).await?;
            ensure!(
                state == TaskState::Error,
                "the refusing step fails the task: {state:?}"
            );
            wait_for_relay(&pool).await?;
            let (lifecycle, domain) = drain(&engines, &queue).await?;
            anyhow::Ok((task_id, lifecycle, domain))
        }
        .await;
        let deleted = engines.messaging.queue.delete_queue(&queue).await;
        let stopped = engines.shutdown().await;
        let (task_id, lifecycle, domain) = outcome?;
        stopped?;
        deleted?;

        let steps: HashMap<String, _> = step::for_tasks(&pool, &[task_id])
            .await?
            .into_values()
            .flatten()
            .map(|step| (step.name.clone(), step))
            .collect();
        let seed = steps.get("seed").context("seed")?;
        let refuse = steps.get("refuse").context("refuse")?;
        let kept: Vec<(&str, Option<Uuid>, serde_json::Value)> = domain
            .iter()
            .map(|(_, event)| {
                (
                    event.name.as_str(),
                    event.step_id.map(|id| id.into_uuid()),
                    event.payload.clone(),
                )
            })
            .collect();
        ensure!(
            kept == [
                (
                    "reference.value_computed",
                    Some(seed.step_id.into_uuid()),
                    json!({"step": "seed", "value": 5})
                ),
                (
                    "reference.step_attempted",
                    Some(refuse.step_id.into_uuid()),
                    json!({"step": "refuse", "attempt": 1})
                ),
            ],
            "only the events whose condition matches the outcome, once each: {kept:?}"
        );
        let task = tasker_shared::database::task::TaskScope::new()
            .all(&pool)
            .await?
            .into_iter()
            .find(|task| task.task_id == task_id)
            .context("the task")?;
        // The bus got the same events, in the same order.
        let mut on_bus = Vec::new();
        while on_bus.len() < kept.len() {
            let event = tokio::time::timeout(LIMIT, subscription.recv())
                .await
                .context("the bus delivers the relayed domain events")?
                .context("the bus is open")?;
            on_bus.push((event.name().to_owned(), event.task_id()));
        }
        let expected: Vec<_> = kept
            .iter()
            .map(|(name, _, _)| ((*name).to_owned(), task_id.into_uuid()))
            .collect();
        ensure!(on_bus == expected, "on the bus: {on_bus:?}");
        for (position, event) in &domain {
            ensure!(event.task_id == task_id && event.namespace == "domain_it");
            ensure!(
                event.version == "2.1.0",
                "the template's version: {event:?}"
            );
            ensure!(event.correlation_id == task.correlation_id, "{event:?}");
            // After the lifecycle event of the transition that stored the step's result.
            let stored = lifecycle
                .iter()
                .find(|(_, stored)| {
                    stored.step_id == event.step_id
                        && stored.to_state == "enqueued_for_orchestration"
                })
                .context("the step's result was stored")?;
            ensure!(
                stored.0 < *position && stored.1.event_id < event.sequence,
                "the domain event {event:?} comes after {:?}",
                stored.1
            );
        }
        anyhow::Ok(())
    })
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    outcome
}

/// Waits until the relay emptied the outbox.
async fn wait_for_relay(pool: &sqlx::PgPool) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + LIMIT;
    while event_outbox::pending(pool).await? > 0 {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "the relay did not empty the outbox"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

type Positioned<T> = Vec<(usize, T)>;

/// Every message on `queue`, acknowledged, each with its position.
async fn drain(
    engines: &TestEngines,
    queue: &QueueName,
) -> anyhow::Result<(Positioned<LifecycleEventMessage>, Positioned<DomainEvent>)> {
    let backend = &engines.messaging.queue;
    let (mut lifecycle, mut domain) = (Vec::new(), Vec::new());
    let mut position = 0_usize;
    let mut empty_rounds = 0;
    while empty_rounds < 3 {
        let received = backend.receive(queue, 100, Duration::from_secs(30)).await?;
        if received.is_empty() {
            if backend.depth(queue).await?.ready == 0 {
                empty_rounds += 1;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        empty_rounds = 0;
        for message in &received {
            position += 1;
            match message.decode::<LifecycleEventMessage>() {
                Ok(event) => lifecycle.push((position, event)),
                Err(DecodeError::WrongKind { .. }) => {
                    domain.push((position, message.decode::<DomainEvent>()?));
                }
                Err(error) => return Err(error.into()),
            }
        }
        let receipts: Vec<_> = received.iter().map(|m| m.receipt().clone()).collect();
        backend.ack_batch(&receipts).await?;
    }
    Ok((lifecycle, domain))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_events_follow_their_results_on_pgmq() -> anyhow::Result<()> {
    run(Backend::Pgmq).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_events_follow_their_results_on_rabbitmq() -> anyhow::Result<()> {
    run(Backend::Rabbitmq).await
}
