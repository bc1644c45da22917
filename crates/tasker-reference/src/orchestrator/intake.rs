//! The orchestration commands that arrive on queues: task requests (validated against their
//! template and created as tasks) and finalization requests (the finalizer gives up on a task
//! blocked by a permanent failure: `blocked_by_failures → error`).

use std::sync::Arc;

use anyhow::Context as _;
use tasker_shared::database::error::DbError;
use tasker_shared::database::task::{
    CreateTaskError, TaskTransition, TaskTransitionError, create_from_request, transition,
};
use tasker_shared::messaging::consumer::{Consumer, Delivery, Outcome};
use tasker_shared::messaging::messages::{TaskFinalizationMessage, TaskRequestMessage};
use tasker_shared::messaging::queue_name::{task_finalizations_queue, task_requests_queue};
use tasker_shared::models::ids::TaskId;
use tasker_shared::models::request::{JsonLimits, TaskRequest};
use tasker_shared::state_machine::{TaskEvent, TaskState};

use super::{Orchestrator, TaskInfo};
use crate::tracker::{Shutdown, Submission};

impl Orchestrator {
    /// Consumes task requests until shutdown.
    pub(crate) async fn run_requests(
        self: Arc<Self>,
        mut shutdown: Shutdown,
    ) -> anyhow::Result<()> {
        let consumer = Consumer::new(
            Arc::clone(&self.messaging.queue),
            task_requests_queue(),
            self.settings.messaging.clone(),
        );
        let this = Arc::clone(&self);
        consumer
            .run(
                move |message: TaskRequestMessage, _delivery: Delivery| {
                    let this = Arc::clone(&this);
                    async move { this.create_task(message).await }
                },
                async move { shutdown.wait().await },
            )
            .await
            .context("consuming task requests")
    }

    /// Creates the task a request asks for; refuses (dead-letters) a request that cannot be.
    async fn create_task(&self, message: TaskRequestMessage) -> Outcome {
        let request_id = message.request_id;
        let reject = |reason: String| {
            tracing::warn!(%request_id, %reason, "refusing a task request");
            self.tracker.submitted(
                request_id,
                Submission::Rejected {
                    reason: reason.clone(),
                },
            );
            Outcome::Reject { reason }
        };
        let request: TaskRequest = match serde_json::from_value(message.request) {
            Ok(request) => request,
            Err(error) => return reject(format!("the request is not a task request: {error}")),
        };
        let Some(entry) = self.catalog.by_key(&request.routing_key()) else {
            return reject(format!(
                "template {} is not registered",
                request.routing_key()
            ));
        };
        let validated = match request.validate_for(&entry.template, &JsonLimits::default()) {
            Ok(validated) => validated,
            Err(error) => return reject(format!("invalid task request: {error}")),
        };
        let mut conn = match self.pool.acquire().await {
            Ok(conn) => conn,
            Err(error) => {
                tracing::warn!(%request_id, error = %error, "no database connection for a task request; retrying");
                return Outcome::Retry;
            }
        };
        match create_from_request(
            &mut conn,
            &entry.template,
            &entry.registered,
            &validated,
            Some(self.processor_id),
        )
        .await
        {
            Ok(creation) => {
                if !creation.is_existing() {
                    self.tasks.remember(TaskInfo {
                        task_id: creation.task_id(),
                        named_task_id: entry.registered.named_task_id,
                        namespace: validated.namespace.as_str().to_owned(),
                        template: entry.key(),
                        correlation_id: validated.correlation_id,
                        context: validated.context.clone(),
                    });
                }
                self.tracker.submitted(
                    request_id,
                    Submission::Created {
                        task_id: creation.task_id(),
                        existing: creation.is_existing(),
                    },
                );
                self.wake_claimer();
                Outcome::Done
            }
            Err(CreateTaskError::Database(error)) if transient(&error) => {
                tracing::warn!(%request_id, error = %error, "creating a task failed; retrying");
                Outcome::Retry
            }
            Err(CreateTaskError::IdentityRace { .. }) => Outcome::Retry,
            Err(error) => reject(format!("the task cannot be created: {error}")),
        }
    }

    /// Consumes finalization requests until shutdown.
    pub(crate) async fn run_finalizer(
        self: Arc<Self>,
        mut shutdown: Shutdown,
    ) -> anyhow::Result<()> {
        let consumer = Consumer::new(
            Arc::clone(&self.messaging.queue),
            task_finalizations_queue(),
            self.settings.messaging.clone(),
        );
        let this = Arc::clone(&self);
        consumer
            .run(
                move |message: TaskFinalizationMessage, _delivery: Delivery| {
                    let this = Arc::clone(&this);
                    async move { this.give_up(TaskId::from_uuid(message.task_uuid)).await }
                },
                async move { shutdown.wait().await },
            )
            .await
            .context("consuming finalization requests")
    }

    /// Gives up on a task blocked by failures: the reference workflow has no operator to
    /// resolve it by hand.
    async fn give_up(&self, task_id: TaskId) -> Outcome {
        let mut conn = match self.pool.acquire().await {
            Ok(conn) => conn,
            Err(error) => {
                tracing::warn!(%task_id, error = %error, "no database connection to finalize a task; retrying");
                return Outcome::Retry;
            }
        };
        let metadata = serde_json::json!({
            "reason": "the reference workflow gives up on tasks blocked by permanent failures"
        });
        let applied = transition(
            &mut conn,
            TaskTransition {
                task_id,
                expected: TaskState::BlockedByFailures,
                event: TaskEvent::GiveUp,
                processor_id: Some(self.processor_id),
                metadata: Some(&metadata),
            },
        )
        .await;
        match applied {
            Ok(applied) => {
                self.finished(task_id, applied.to);
                Outcome::Done
            }
            // Already finalized, or resolved otherwise: nothing to do.
            Err(TaskTransitionError::Conflict { .. } | TaskTransitionError::NotFound { .. }) => {
                Outcome::Done
            }
            Err(TaskTransitionError::Database(error)) if transient(&error) => Outcome::Retry,
            Err(error) => {
                tracing::warn!(%task_id, error = %error, "finalizing a task failed; retrying");
                Outcome::Retry
            }
        }
    }
}

fn transient(error: &DbError) -> bool {
    error.is_transient() || matches!(error, DbError::Other(_))
}
