//! Durable events: after a scenario, every committed transition that names a lifecycle event
//! reached the namespace's `_domain_events` queue (at least once), in order per task and step,
//! even when an orchestrator was killed between a commit and its relay; and every committed
//! successful result of a step that declares `reference.value_computed` has that domain event
//! there, after its step's `enqueued_for_orchestration` event, while no other step has one
//! (an attempt of a killed worker, whose result was never stored, left none).

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use anyhow::{Context as _, ensure};
use tasker_shared::database::{event_outbox, step, task};
use tasker_shared::messaging::config::{PgmqConfig, RabbitMqConfig};
use tasker_shared::messaging::envelope::DecodeError;
use tasker_shared::messaging::messages::{DomainEvent, LifecycleEventMessage};
use tasker_shared::messaging::pgmq::PgmqQueue;
use tasker_shared::messaging::queue::MessageQueue;
use tasker_shared::messaging::queue_name::{Namespace, domain_events_queue};
use tasker_shared::messaging::rabbitmq::RabbitMqQueue;

use crate::deployment::{Backend, Deployment};

/// Waits until the outbox is empty, drains the reference namespace's event queue and checks
/// it against the transitions in the database; returns how many events were relayed.
pub(crate) async fn check_events(deployment: &Deployment) -> anyhow::Result<usize> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let pending = event_outbox::pending(&deployment.pool).await?;
        if pending == 0 {
            break;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "{pending} lifecycle events were never relayed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Every transition that names a lifecycle event, by (task, step, sort key).
    let mut expected = BTreeSet::new();
    let tasks = task::TaskScope::new().all(&deployment.pool).await?;
    let ids: Vec<_> = tasks.iter().map(|task| task.task_id).collect();
    for record in &tasks {
        for row in task::history(&deployment.pool, record.task_id).await? {
            if row.lifecycle_event.is_some() {
                expected.insert((record.task_id.into_uuid(), None, row.sort_key));
            }
        }
    }
    for step in step::for_tasks(&deployment.pool, &ids)
        .await?
        .values()
        .flatten()
    {
        for row in step::history(&deployment.pool, step.step_id).await? {
            if row.lifecycle_event.is_some() {
                expected.insert((
                    step.task_id.into_uuid(),
                    Some(step.step_id.into_uuid()),
                    row.sort_key,
                ));
            }
        }
    }

    let (received, domain) = drain(deployment).await?;
    let mut seen = BTreeSet::new();
    // Per task and step, first deliveries arrive in order. At least once means a relay whose
    // commit failed sends its batch again, so an event already delivered may come again later:
    // a consumer drops what is not above the last sort key it saw, and so does this check,
    // after making sure it is a repeat and not an event that skipped ahead of its turn.
    let mut last: HashMap<(uuid::Uuid, Option<uuid::Uuid>), i32> = HashMap::new();
    let mut repeats = 0_usize;
    for (_, event) in &received {
        let entity = (
            event.task_id.into_uuid(),
            event
                .step_id
                .map(tasker_shared::models::ids::StepId::into_uuid),
        );
        let key = (entity.0, entity.1, event.sort_key);
        let previous = last.get(&entity).copied().unwrap_or(0);
        if event.sort_key <= previous {
            ensure!(
                seen.contains(&key),
                "events of {entity:?} out of order: {} first arrived after {previous}",
                event.sort_key
            );
            repeats += 1;
            continue;
        }
        // The first delivery of each committed event comes in its turn: none skipped.
        let skipped: Vec<i32> = expected
            .range((entity.0, entity.1, previous + 1)..(entity.0, entity.1, event.sort_key))
            .map(|(_, _, key)| *key)
            .collect();
        ensure!(
            skipped.is_empty(),
            "events of {entity:?} out of order: {} arrived before {skipped:?}",
            event.sort_key
        );
        last.insert(entity, event.sort_key);
        seen.insert(key);
    }
    if repeats > 0 {
        println!("lifecycle events delivered again (at least once): {repeats}");
    }
    let missing: Vec<_> = expected.difference(&seen).take(5).collect();
    ensure!(
        missing.is_empty(),
        "{} of {} transitions have no event, e.g. {missing:?}",
        expected.difference(&seen).count(),
        expected.len()
    );
    ensure!(
        seen.is_subset(&expected),
        "events without a committed transition"
    );
    check_domain_events(deployment, &tasks, &received, &domain).await?;
    Ok(received.len())
}

/// Every step whose template declares `reference.value_computed` and whose successful result
/// is committed has the event (with its value), after the step's transition to
/// `enqueued_for_orchestration`; no other step has one.
async fn check_domain_events(
    deployment: &Deployment,
    tasks: &[task::TaskRecord],
    lifecycle: &[(usize, LifecycleEventMessage)],
    domain: &[(usize, DomainEvent)],
) -> anyhow::Result<()> {
    let declaring = declaring_steps()?;
    let ids: Vec<_> = tasks.iter().map(|task| task.task_id).collect();
    let names: HashMap<_, _> = tasks
        .iter()
        .map(|task| (task.task_id, task.task_name.clone()))
        .collect();
    let mut expected = HashMap::new();
    for step in step::for_tasks(&deployment.pool, &ids)
        .await?
        .values()
        .flatten()
    {
        let declares = names
            .get(&step.task_id)
            .is_some_and(|task| declaring.contains(&(task.clone(), step.name.clone())));
        if declares && step.result_succeeded() {
            expected.insert(step.step_id.into_uuid(), step.result_value().cloned());
        }
    }
    // The position of each step's first `enqueued_for_orchestration` event on the queue.
    let mut stored_at = HashMap::new();
    for (position, event) in lifecycle {
        if event.to_state == "enqueued_for_orchestration"
            && let Some(step) = event.step_id
        {
            stored_at.entry(step.into_uuid()).or_insert(*position);
        }
    }
    let mut seen: HashMap<uuid::Uuid, uuid::Uuid> = HashMap::new();
    let mut repeats = 0_usize;
    for (position, event) in domain {
        ensure!(
            event.name == "reference.value_computed",
            "unexpected domain event {event:?}"
        );
        let step = event
            .step_id
            .context("a domain event names its step")?
            .into_uuid();
        let Some(value) = expected.get(&step) else {
            anyhow::bail!(
                "a domain event of a step without a committed successful result: {event:?}"
            );
        };
        ensure!(
            event.payload.get("value") == value.as_ref(),
            "the event's value {:?} is not the step's stored result {value:?}",
            event.payload
        );
        match seen.get(&step) {
            // At least once: the same event again is a repeat; another event is a duplicate.
            Some(first) => {
                ensure!(
                    *first == event.event_id,
                    "step {step} published its event twice ({first} and {})",
                    event.event_id
                );
                repeats += 1;
            }
            None => {
                let stored = stored_at.get(&step).copied();
                ensure!(
                    stored.is_some_and(|stored| stored < *position),
                    "the domain event of step {step} arrived before its result's transition"
                );
                seen.insert(step, event.event_id);
            }
        }
    }
    if repeats > 0 {
        println!("domain events delivered again (at least once): {repeats}");
    }
    let missing: Vec<_> = expected
        .keys()
        .filter(|step| !seen.contains_key(*step))
        .collect();
    ensure!(
        missing.is_empty(),
        "{} of {} committed results have no domain event, e.g. {:?}",
        missing.len(),
        expected.len(),
        missing.iter().take(5).collect::<Vec<_>>()
    );
    println!("domain events relayed: {}", seen.len());
    Ok(())
}

/// (template name, step name) of every reference step that declares the event.
fn declaring_steps() -> anyhow::Result<BTreeSet<(String, String)>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    let report = tasker_shared::models::template::load_directory(
        &dir,
        tasker_shared::models::template::Strictness::Strict,
    )?;
    let mut declaring = BTreeSet::new();
    for file in report.files {
        let loaded = file
            .result
            .map_err(|error| anyhow::anyhow!("{}: {error}", file.path.display()))?;
        let template = loaded.template;
        for step in template.steps() {
            if step
                .publishes_events
                .iter()
                .any(|event| event.name.as_str() == "reference.value_computed")
            {
                declaring.insert((template.template().name.to_string(), step.name.to_string()));
            }
        }
    }
    ensure!(
        !declaring.is_empty(),
        "no reference step declares the event"
    );
    Ok(declaring)
}

/// The lifecycle and domain events on a namespace's event queue, each with its position.
type Drained = (
    Vec<(usize, LifecycleEventMessage)>,
    Vec<(usize, DomainEvent)>,
);

/// Every message of the reference namespace's event queue, in queue order, acknowledged.
async fn drain(deployment: &Deployment) -> anyhow::Result<Drained> {
    let queue = domain_events_queue(&Namespace::new("reference")?);
    let backend: Box<dyn MessageQueue> = match deployment.backend {
        Backend::Pgmq => {
            Box::new(PgmqQueue::new(deployment.pool.clone(), PgmqConfig::default()).await)
        }
        Backend::Rabbitmq => Box::new(
            RabbitMqQueue::connect(RabbitMqConfig {
                url: std::env::var("RABBITMQ_URL")
                    .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned()),
                queue_prefix: format!("{}.", deployment.database()),
                connection_name: "tasker-reference-it-events".to_owned(),
                ..RabbitMqConfig::default()
            })
            .await
            .context("connecting to RabbitMQ to read the event queue")?,
        ),
    };
    backend.ensure_queue(&queue).await?;
    let mut events = Vec::new();
    let mut domain = Vec::new();
    let mut position = 0_usize;
    let mut empty_rounds = 0;
    // RabbitMQ hands deliveries over as they arrive: an empty receive ends the drain only
    // when the broker also reports the queue empty, a few times in a row.
    while empty_rounds < 3 {
        let received = backend
            .receive(&queue, 1000, Duration::from_secs(60))
            .await?;
        if received.is_empty() {
            if backend.depth(&queue).await?.ready == 0 {
                empty_rounds += 1;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        empty_rounds = 0;
        let receipts: Vec<_> = received
            .iter()
            .map(|message| message.receipt().clone())
            .collect();
        for message in &received {
            position += 1;
            match message.decode::<LifecycleEventMessage>() {
                Ok(event) => events.push((position, event)),
                Err(DecodeError::WrongKind { .. }) => {
                    domain.push((position, message.decode::<DomainEvent>()?));
                }
                Err(error) => return Err(error.into()),
            }
        }
        backend.ack_batch(&receipts).await?;
    }
    Ok((events, domain))
}
