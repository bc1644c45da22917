//! Process leases: who runs an attempt, as the database tells it (a live lease of the
//! incarnation that started it), renewal, take-over under one id, release and expiry.

use std::time::Duration;

use sqlx::PgPool;
use tasker_db::lease::{self, Renewal};
use tasker_db::readiness::BackoffParams;
use tasker_db::step::{self, StepTransition};
use tasker_models::ids::{ProcessorId, StepId};
use tasker_state::{StepEvent, StepState};

use crate::fixtures::{self, Dag, StepSetup};
use crate::harness;

/// A step `in_progress`, started by `processor`.
async fn started_by(pool: &PgPool, name: &str, processor: ProcessorId) -> anyhow::Result<StepId> {
    let dag = Dag::linear(1);
    let template = fixtures::template(pool, name, &dag).await?;
    let (_, steps) = fixtures::task(pool, &template, &dag, name).await?;
    let step_id = steps[0];
    fixtures::set_step(pool, step_id, StepSetup::new(StepState::Enqueued)).await?;
    let mut conn = pool.acquire().await?;
    step::transition(
        &mut conn,
        StepTransition::new(
            step_id,
            StepState::Enqueued,
            StepEvent::Start {
                worker_id: processor.into_uuid(),
            },
        ),
        Some(processor),
        BackoffParams::DEFAULT,
    )
    .await?;
    Ok(step_id)
}

#[tokio::test]
async fn an_attempt_is_live_only_while_the_lease_of_its_incarnation_lives() -> anyhow::Result<()> {
    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let worker = ProcessorId::new_v7();
        let ttl = Duration::from_secs(60);

        // Without a lease the process that started the attempt is gone.
        let unleased = started_by(&pool, "unleased", worker).await?;
        let holder = lease::attempt_holder(&pool, unleased).await?.expect("the step exists");
        assert_eq!(holder.processor_id, Some(worker));
        assert!(!holder.is_live(), "{holder:?}");

        // An attempt started under a live lease is live, and renewing keeps it so.
        let first = lease::acquire(&pool, worker, "worker", ttl).await?;
        let leased = started_by(&pool, "leased", worker).await?;
        let holder = lease::attempt_holder(&pool, leased).await?.expect("the step exists");
        assert_eq!(holder.live_incarnation, Some(first.started_at));
        assert!(matches!(lease::renew(&pool, &first, "worker", ttl).await?, Renewal::Renewed(at) if at >= first.expires_at));
        // The attempt from before the lease is still not this incarnation's.
        assert!(!lease::attempt_holder(&pool, unleased).await?.expect("exists").is_live());

        // A restart under the same id is a new incarnation: the earlier one's attempts are
        // gone, and the earlier incarnation learns that it was taken over.
        let second = lease::acquire(&pool, worker, "worker", ttl).await?;
        assert!(second.started_at > first.started_at);
        assert!(!lease::attempt_holder(&pool, leased).await?.expect("exists").is_live());
        assert_eq!(
            lease::renew(&pool, &first, "worker", ttl).await?,
            Renewal::TakenOver { by_incarnation_at: second.started_at }
        );
        // Releasing the earlier incarnation leaves the new one's lease alone.
        lease::release(&pool, &first).await?;
        let current = started_by(&pool, "current", worker).await?;
        assert!(lease::attempt_holder(&pool, current).await?.expect("exists").is_live());

        // Released: gone at once. Renewed after a release: taken again, same incarnation.
        lease::release(&pool, &second).await?;
        assert!(!lease::attempt_holder(&pool, current).await?.expect("exists").is_live());
        assert!(matches!(lease::renew(&pool, &second, "worker", ttl).await?, Renewal::Renewed(_)));
        assert!(lease::attempt_holder(&pool, current).await?.expect("exists").is_live());

        // Expired: gone.
        let short = ProcessorId::new_v7();
        lease::acquire(&pool, short, "worker", Duration::from_millis(1)).await?;
        let expiring = started_by(&pool, "expiring", short).await?;
        assert!(!lease::attempt_holder(&pool, expiring).await?.expect("exists").is_live());

        assert_eq!(lease::attempt_holder(&pool, StepId::new_v7()).await?, None);
        Ok(())
    })
    .await
}
