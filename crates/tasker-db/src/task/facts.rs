//! What the engines need of a task, none of which changes during its life, and a read-through
//! cache of it: an orchestrator and a worker read each task's facts once, not per message.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use sqlx::PgConnection;
use tasker_models::ids::{CorrelationId, NamedTaskId, TaskId};
use uuid::Uuid;

use super::record::{TaskRecord, get};
use crate::error::DbError;

/// A task's immutable facts.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskFacts {
    /// The task.
    pub task_id: TaskId,
    /// Its template version.
    pub named_task_id: NamedTaskId,
    /// Its template's namespace (which names its worker queue).
    pub namespace: String,
    /// `namespace/name:version` of its template.
    pub template: String,
    /// Correlates everything the task causes.
    pub correlation_id: CorrelationId,
    /// The context it was requested with.
    pub context: serde_json::Value,
    /// The request message it was created from, if it came as one.
    pub request_id: Option<Uuid>,
    /// Where its requester waits for replies, if it does.
    pub reply_to: Option<String>,
}

impl From<TaskRecord> for TaskFacts {
    fn from(task: TaskRecord) -> Self {
        Self {
            task_id: task.task_id,
            named_task_id: task.named_task_id,
            template: format!(
                "{}/{}:{}",
                task.namespace_name, task.task_name, task.task_version
            ),
            namespace: task.namespace_name,
            correlation_id: task.correlation_id,
            context: task.context,
            request_id: task.request_uuid,
            reply_to: task.reply_to,
        }
    }
}

/// A bounded, read-through cache of [`TaskFacts`], shared by a process's loops. Facts never
/// change, so an entry is never stale; it is dropped when its task finishes, and the whole
/// cache is cleared when it reaches its limit.
#[derive(Debug)]
pub struct TaskFactsCache {
    tasks: Mutex<HashMap<TaskId, Arc<TaskFacts>>>,
    limit: usize,
}

impl Default for TaskFactsCache {
    fn default() -> Self {
        Self::with_limit(50_000)
    }
}

impl TaskFactsCache {
    /// A cache holding at most `limit` tasks.
    pub fn with_limit(limit: usize) -> Self {
        Self {
            tasks: Mutex::new(HashMap::new()),
            limit: limit.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<TaskId, Arc<TaskFacts>>> {
        // No critical section panics half-way: a poisoned lock holds consistent data.
        self.tasks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The task's facts, from the cache or the database; `None` if there is no such task.
    pub async fn find(
        &self,
        conn: &mut PgConnection,
        task_id: TaskId,
    ) -> Result<Option<Arc<TaskFacts>>, DbError> {
        if let Some(task) = self.lock().get(&task_id) {
            return Ok(Some(Arc::clone(task)));
        }
        let Some(task) = get(&mut *conn, task_id).await? else {
            return Ok(None);
        };
        Ok(Some(self.remember(task.into())))
    }

    /// Remembers a task's facts (its creator knows them without reading them).
    pub fn remember(&self, task: TaskFacts) -> Arc<TaskFacts> {
        let task = Arc::new(task);
        let mut tasks = self.lock();
        if tasks.len() >= self.limit {
            tasks.clear();
        }
        tasks.insert(task.task_id, Arc::clone(&task));
        task
    }

    /// Forgets a task (it finished, or its creation rolled back).
    pub fn forget(&self, task_id: TaskId) {
        self.lock().remove(&task_id);
    }
}
