//! The event outbox: a transition's event is written by the transition's own statement (a
//! rolled-back transition leaves none), a step's published domain events are written in the
//! transaction that stores its result, both are taken in one order with their namespace, and
//! one relay holds the lock at a time.

use serde_json::json;
use tasker_db::event_outbox::{self, NewDomainEvent, OutboxEntry, OutboxEvent};
use tasker_db::readiness::BackoffParams;
use tasker_db::step::{self, StepTransition};
use tasker_state::{StepEvent, StepState};

use crate::fixtures::{self, Dag, StepSetup};
use crate::harness;

#[tokio::test]
async fn transitions_fill_the_outbox_and_a_relay_takes_them_in_order() -> anyhow::Result<()> {
    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let dag = Dag::linear(1);
        let template = fixtures::template(&pool, "outbox", &dag).await?;
        let (task_id, steps) = fixtures::task(&pool, &template, &dag, "outbox").await?;
        fixtures::set_step(&pool, steps[0], StepSetup::new(StepState::Pending)).await?;
        // Task creation's initial rows name no lifecycle event.
        let mut tx = pool.begin().await?;
        let created = lifecycle(event_outbox::take_batch(&mut tx, 100).await?);
        tx.commit().await?;

        // A rolled-back transition leaves no event.
        let enqueue = || StepTransition::new(steps[0], StepState::Pending, StepEvent::Enqueue);
        let mut tx = pool.begin().await?;
        step::transition(&mut tx, enqueue(), None, BackoffParams::DEFAULT).await?;
        assert_eq!(event_outbox::pending(&mut *tx).await?, 1);
        tx.rollback().await?;
        assert_eq!(event_outbox::pending(&pool).await?, 0);

        let mut conn = pool.acquire().await?;
        step::transition(&mut conn, enqueue(), None, BackoffParams::DEFAULT).await?;
        step::transition(
            &mut conn,
            StepTransition::new(
                steps[0],
                StepState::Enqueued,
                StepEvent::Start {
                    worker_id: uuid::Uuid::now_v7(),
                },
            ),
            None,
            BackoffParams::DEFAULT,
        )
        .await?;
        drop(conn);

        // One relay at a time: a second transaction cannot take the lock meanwhile.
        let mut relay = pool.begin().await?;
        assert!(event_outbox::try_lock_relay(&mut relay).await?);
        let mut other = pool.begin().await?;
        assert!(!event_outbox::try_lock_relay(&mut other).await?);
        other.rollback().await?;
        let taken = lifecycle(event_outbox::take_batch(&mut relay, 100).await?);
        relay.commit().await?;
        let names: Vec<(&str, i32, Option<&str>, &str)> = taken
            .iter()
            .map(|event| {
                (
                    event.name.as_str(),
                    event.sort_key,
                    event.from_state.as_deref(),
                    event.to_state.as_str(),
                )
            })
            .collect();
        assert!(created.iter().all(|event| event.task_id == task_id));
        assert_eq!(
            names,
            [
                ("step.enqueue_requested", 2, Some("pending"), "enqueued"),
                (
                    "step.execution_requested",
                    3,
                    Some("enqueued"),
                    "in_progress"
                ),
            ],
            "{taken:?}"
        );
        assert!(taken.iter().all(|event| event.task_id == task_id
            && event.step_id() == Some(steps[0])
            && !event.namespace_name.is_empty()));
        assert_eq!(event_outbox::pending(&pool).await?, 0);
        Ok(())
    })
    .await
}

fn lifecycle(entries: Vec<OutboxEntry>) -> Vec<OutboxEvent> {
    entries
        .into_iter()
        .map(|entry| match entry {
            OutboxEntry::Lifecycle(event) => event,
            OutboxEntry::Domain(event) => panic!("unexpected domain event {event:?}"),
        })
        .collect()
}

fn published(
    task_id: tasker_models::ids::TaskId,
    step_id: tasker_models::ids::StepId,
    name: &str,
    n: u32,
) -> NewDomainEvent {
    NewDomainEvent {
        domain_event_id: uuid::Uuid::now_v7(),
        task_id,
        step_id,
        name: name.to_owned(),
        payload: json!({"order_id": n}),
        occurred_at: chrono::Utc::now(),
    }
}

#[tokio::test]
async fn domain_events_commit_with_the_result_and_leave_in_order_with_its_transition()
-> anyhow::Result<()> {
    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let dag = Dag::linear(1);
        let template = fixtures::template(&pool, "domain", &dag).await?;
        let (task_id, steps) = fixtures::task(&pool, &template, &dag, "domain").await?;
        fixtures::set_step(&pool, steps[0], StepSetup::new(StepState::InProgress)).await?;
        let mut tx = pool.begin().await?;
        let _ = event_outbox::take_batch(&mut tx, 100).await?;
        tx.commit().await?;
        let store = || {
            StepTransition::new(
                steps[0],
                StepState::InProgress,
                StepEvent::EnqueueForOrchestration {
                    result: json!({"success": true, "result": 1}),
                },
            )
        };

        // A store that rolls back takes its events with it: a rerun does not duplicate them.
        let mut tx = pool.begin().await?;
        step::transition(&mut tx, store(), None, BackoffParams::DEFAULT).await?;
        let first = [published(task_id, steps[0], "order.stored", 1)];
        assert_eq!(
            event_outbox::insert_domain_events(&mut tx, &first, None).await?,
            1
        );
        assert_eq!(event_outbox::pending(&mut *tx).await?, 2);
        tx.rollback().await?;
        assert_eq!(event_outbox::pending(&pool).await?, 0);

        let processor = uuid::Uuid::now_v7();
        let second = [
            published(task_id, steps[0], "order.stored", 2),
            published(task_id, steps[0], "order.audited", 3),
        ];
        let mut tx = pool.begin().await?;
        step::transition(&mut tx, store(), None, BackoffParams::DEFAULT).await?;
        event_outbox::insert_domain_events(&mut tx, &second, Some(processor)).await?;
        tx.commit().await?;

        let mut relay = pool.begin().await?;
        let taken = event_outbox::take_batch(&mut relay, 100).await?;
        relay.commit().await?;
        assert_eq!(taken.len(), 3, "{taken:?}");
        assert!(
            taken
                .windows(2)
                .all(|pair| pair[0].event_id() < pair[1].event_id())
        );
        let OutboxEntry::Lifecycle(transition) = &taken[0] else {
            panic!("the transition's event comes first: {taken:?}");
        };
        assert_eq!(transition.to_state, "enqueued_for_orchestration");
        let domain: Vec<_> = taken[1..]
            .iter()
            .map(|entry| match entry {
                OutboxEntry::Domain(event) => event,
                OutboxEntry::Lifecycle(event) => panic!("unexpected {event:?}"),
            })
            .collect();
        for (event, sent) in domain.iter().zip(&second) {
            assert_eq!(event.domain_event_id, sent.domain_event_id);
            assert_eq!(event.name, sent.name);
            assert_eq!(event.payload, sent.payload);
            assert_eq!(event.task_id, task_id);
            assert_eq!(event.step_id, Some(steps[0]));
            assert_eq!(event.processor_uuid, Some(processor));
            assert_eq!(event.namespace_name, transition.namespace_name);
            assert!(!event.template_version.is_empty());
        }
        assert_eq!(event_outbox::pending(&pool).await?, 0);
        Ok(())
    })
    .await
}
