//! A request that cannot become a task, submitted in one batch with good ones: it alone is
//! refused, with the reason, and every other task runs to its expected end.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use tasker_shared::database::task;
use uuid::Uuid;

use super::harness::{
    Calls, TestEngines, catalog_from, messaging, orchestrator_settings, templates_dir,
    with_database,
};
use crate::driver::{DriveOptions, drive, plan};
use crate::setup::Backend;

/// A copy of the shipped linear template that needs an idempotency key (`caller_provided`),
/// which the driver's requests do not carry: such a request passes validation against its
/// template and fails only when its identity is computed, at creation.
fn keyed_template() -> anyhow::Result<String> {
    let linear = std::fs::read_to_string(templates_dir().join("linear.yaml"))?;
    ensure!(
        linear.contains("\nname: linear\n"),
        "the shipped linear template names itself"
    );
    Ok(linear.replacen(
        "\nname: linear\n",
        "\nname: keyed\nidentity_strategy: caller_provided\n",
        1,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_cannot_become_a_task_is_refused_alone() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("tasker-intake-{}", Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir)?;
    std::fs::copy(templates_dir().join("linear.yaml"), dir.join("linear.yaml"))?;
    std::fs::write(dir.join("keyed.yaml"), keyed_template()?)?;
    let templates = dir.clone();
    let outcome = with_database(move |pool| async move {
        let calls = Arc::new(Calls::default());
        let catalog = catalog_from(&pool, &templates, &calls, None).await?;
        let linear = Arc::new(
            catalog
                .by_name("linear")
                .context("linear")?
                .template
                .clone(),
        );
        let keyed = Arc::new(catalog.by_name("keyed").context("keyed")?.template.clone());
        let messaging = messaging(Backend::InMemory, &pool).await?;
        let mut engines =
            TestEngines::start(&pool, messaging, &catalog, 4, orchestrator_settings()).await?;
        // Eleven requests at once, the keyed one in the middle.
        let run = Uuid::now_v7();
        let mut planned = plan(&[Arc::clone(&linear)], 10, run);
        planned.insert(5, plan(&[keyed], 1, run).remove(0));
        let options = DriveOptions {
            concurrency: 64,
            stall_limit: Duration::from_secs(60),
            progress: false,
        };
        let mut submitter = engines.submitter.take().context("a submitter")?;
        let driven = drive(&mut submitter, &pool, planned, options, &mut || {
            engines.check_alive()
        })
        .await;
        engines.submitter = Some(submitter);
        engines.shutdown().await?;
        let report = driven?;

        let refused: Vec<_> = report
            .tasks
            .iter()
            .filter(|outcome| outcome.rejected.is_some())
            .collect();
        ensure!(
            refused.len() == 1,
            "exactly one request refused: {refused:?}"
        );
        ensure!(refused[0].template.contains("/keyed:"), "{refused:?}");
        let reason = refused[0].rejected.as_deref().unwrap_or_default();
        ensure!(
            reason.contains("idempotency_key is required"),
            "the reason names the cause: {reason}"
        );
        for outcome in report
            .tasks
            .iter()
            .filter(|outcome| outcome.rejected.is_none())
        {
            ensure!(
                outcome.task_id.is_some() && outcome.mismatches.is_empty(),
                "{outcome:?}"
            );
        }
        // Without the refused request holding them back, the good ones were created in the
        // transaction of their batch (tasks of one transaction share its start time), not one
        // transaction each.
        let tasks = task::TaskScope::new().all(&pool).await?;
        ensure!(tasks.len() == 10, "{} tasks", tasks.len());
        let transactions = tasks
            .iter()
            .map(|task| task.created_at)
            .collect::<HashSet<_>>()
            .len();
        ensure!(
            transactions <= 3,
            "10 tasks created in {transactions} transactions"
        );
        Ok(())
    })
    .await;
    std::fs::remove_dir_all(&dir)?;
    outcome
}
