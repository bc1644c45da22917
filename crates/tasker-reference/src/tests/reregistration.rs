//! A template registered again (same version, changed, forced) while an orchestrator runs: the
//! orchestrator's in-memory copy is checked against the registry every second, so tasks
//! requested after that create their steps from the new definition.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use serde_json::json;
use tasker_shared::database::step;
use tasker_shared::models::request::TaskRequest;
use tasker_shared::models::template::{Strictness, ValidatedTemplate};
use tasker_shared::registry::registry::TemplateRegistry;

use super::harness::{
    Calls, TestEngines, catalog, messaging, orchestrator_settings, templates_dir, with_database,
};
use crate::setup::Backend;

/// The `seed` step's `max_attempts` in the task of `task_id`.
async fn seed_attempts(
    pool: &sqlx::PgPool,
    task_id: tasker_shared::models::ids::TaskId,
) -> anyhow::Result<i32> {
    let steps = step::for_tasks(pool, &[task_id]).await?;
    let seed = steps
        .values()
        .flatten()
        .find(|step| step.name == "seed")
        .context("the task has a seed step")?;
    Ok(seed.max_attempts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_registered_again_is_picked_up_by_a_running_orchestrator() -> anyhow::Result<()>
{
    with_database(|pool| async move {
        let calls = Arc::new(Calls::default());
        let catalog = catalog(&pool, &calls, None).await?;
        let messaging = messaging(Backend::Pgmq, &pool).await?;
        let mut engines =
            TestEngines::start(&pool, messaging, &catalog, 2, orchestrator_settings()).await?;
        let outcome = async {
            let request = |value: i64| {
                TaskRequest::new("reference", "linear", "1.0.0", json!({ "value": value }))
            };
            let (before, _) = engines.run_one(&request(1), Duration::from_secs(60)).await?;
            let original = seed_attempts(&pool, before).await?;

            // The same version, changed: the seed step may now be tried seven times.
            let text = std::fs::read_to_string(templates_dir().join("linear.yaml"))?;
            let changed = text.replace(
                "handler: {callable: Reference::Seed}",
                "handler: {callable: Reference::Seed}\n    retry: {retryable: true, max_attempts: 7}",
            );
            ensure!(changed != text, "the template text has the seed step");
            let template = ValidatedTemplate::from_yaml_str(&changed, Strictness::Strict)?.template;
            TemplateRegistry::new(pool.clone())
                .register_templates(&[template], true)
                .await?;

            // Within the recheck (a second) and then some, new tasks use the new definition.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            let mut value = 2;
            loop {
                let (task_id, _) = engines.run_one(&request(value), Duration::from_secs(60)).await?;
                let attempts = seed_attempts(&pool, task_id).await?;
                if attempts == 7 {
                    ensure!(original != 7, "the original template allowed {original} attempts");
                    return anyhow::Ok(());
                }
                ensure!(
                    tokio::time::Instant::now() < deadline,
                    "tasks still use the old template ({attempts} attempts) after 20 s"
                );
                value += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        .await;
        let stopped = engines.shutdown().await;
        outcome.and(stopped)
    })
    .await
}
