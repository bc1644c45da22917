//! Replies to requesters: a requester that leaves before its task finishes (its reply queue
//! deleted under the orchestrator's feet) holds nothing up; the task finishes all the same.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use serde_json::json;
use tasker_orchestration::client::Submitter;
use tasker_shared::database::task;
use tasker_shared::models::request::TaskRequest;
use tasker_shared::state_machine::TaskState;

use super::harness::{
    Calls, TestEngines, catalog, messaging, orchestrator_settings, with_database,
};
use crate::setup::Backend;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_finishes_after_its_requester_left() -> anyhow::Result<()> {
    with_database(|pool| async move {
        let calls = Arc::new(Calls::default());
        let catalog = catalog(&pool, &calls, None).await?;
        let messaging = messaging(Backend::Pgmq, &pool).await?;
        let engines = TestEngines::start(
            &pool,
            messaging.clone(),
            &catalog,
            2,
            orchestrator_settings(),
        )
        .await?;
        let outcome = async {
            // The requester sends and leaves at once: its reply queue is deleted while the
            // orchestrator is about to answer there.
            let mut leaving = Submitter::open(
                pool.clone(),
                &messaging,
                super::harness::submitter_settings(),
            )
            .await?;
            let requests: Vec<TaskRequest> = (0..5)
                .map(|value| {
                    TaskRequest::new("reference", "linear", "1.0.0", json!({ "value": value }))
                })
                .collect();
            let ids = leaving.submit(&requests).await?;
            leaving.close().await?;

            // Every task finishes; the database says so.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            loop {
                let tasks = task::by_request_ids(&pool, &ids).await?;
                let finished = tasks.iter().filter(|task| task.state.is_terminal()).count();
                if tasks.len() == ids.len() && finished == ids.len() {
                    for task in &tasks {
                        ensure!(task.state == TaskState::Complete, "{task:?}");
                    }
                    return anyhow::Ok(());
                }
                ensure!(
                    tokio::time::Instant::now() < deadline,
                    "{finished} of {} tasks finished after their requester left",
                    ids.len()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        .await;
        let stopped = engines.shutdown().await;
        outcome.context("the tasks of a requester that left")?;
        stopped
    })
    .await
}
