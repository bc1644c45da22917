//! The lifecycle-event outbox: a transition's event is written by the transition's own
//! statement (a rolled-back transition leaves none), taken in order with its namespace, and
//! one relay holds the lock at a time.

use tasker_db::event_outbox;
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
        let created = event_outbox::take_batch(&mut tx, 100).await?;
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
        let taken = event_outbox::take_batch(&mut relay, 100).await?;
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
