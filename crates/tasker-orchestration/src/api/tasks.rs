//! `/v1/tasks`: create (idempotent), read with steps and execution status, list with a
//! keyset cursor, cancel, and the audit trail.

use std::collections::HashMap;
use std::str::FromStr as _;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Datelike as _, Utc};
use tasker_db::task::{
    CreateTaskError, RequestToCreate, TaskCreation, TaskCursor, TaskRecord, TaskScope,
    TaskTransition, TaskTransitionError,
};
use tasker_models::ids::TaskId;
use tasker_models::names::{NamespaceName, TaskName, TemplateVersion};
use tasker_models::request::{RequestError, TaskRequest};
use tasker_state::{TaskEvent, TaskState};
use tasker_web::problem::{FieldProblem, Problem, ProblemKind};
use uuid::Uuid;

use super::ApiState;
use super::error::{bad_parameter, dependency, not_found};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::model::{
    ExecutionStatusBody, ProblemBody, StepBody, StepTransitionsBody, TaskCancelled, TaskCreated,
    TaskDetail, TaskListQuery, TaskPage, TaskRequestBody, TaskSummary, TransitionBody,
    TransitionsBody,
};
use crate::templates::Missing;

/// Tasks per page when the query names no limit, and the most it may name.
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 200;

/// The path of a task's routes.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct TaskPath {
    task_uuid: String,
}

impl TaskPath {
    fn task_id(&self) -> Result<TaskId, Problem> {
        Uuid::parse_str(&self.task_uuid)
            .map(TaskId::from_uuid)
            .map_err(|_| bad_parameter("task_uuid", "is not a UUID"))
    }
}

/// Creates a task from a task request; a request with the identity of an existing task
/// returns that task.
#[utoipa::path(
    post,
    path = "/v1/tasks",
    tag = "tasks",
    request_body(content = TaskRequestBody, content_type = "application/json"),
    responses(
        (status = 201, description = "The task was created", body = TaskCreated),
        (status = 200, description = "A task with the same identity exists; nothing was created", body = TaskCreated),
        (status = 400, description = "The body is not JSON", body = ProblemBody, content_type = "application/problem+json"),
        (status = 415, description = "The body is not `application/json`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "The request is invalid: every problem with its JSON pointer", body = ProblemBody, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["tasks:create"]), ("api_key" = ["tasks:create"]))
)]
pub(crate) async fn create(
    State(state): State<ApiState>,
    ApiJson(request): ApiJson<TaskRequest>,
) -> Result<(StatusCode, Json<TaskCreated>), Problem> {
    let limits = &state.settings.json_limits;
    request.validate(limits).map_err(invalid_request)?;
    let entry = match state.templates.for_request(&request).await {
        Ok(entry) => entry,
        Err(Missing::Refused(reason)) => {
            return Err(Problem::new(
                ProblemKind::Validation,
                "The request names no registered template.",
            )
            .with_errors(vec![FieldProblem {
                pointer: "/name".to_owned(),
                detail: reason,
            }]));
        }
        Err(Missing::Failed(error)) => return Err(dependency(&error)),
    };
    let validated = request
        .validate_for(&entry.template, limits)
        .map_err(invalid_request)?;
    let mut tx = state.pool.begin().await.map_err(|e| dependency(&e))?;
    let one = RequestToCreate {
        template: &entry.template,
        registered: &entry.registered,
        request: &validated,
        origin: None,
    };
    let mut outcomes = tasker_db::task::create_many_from_requests(
        &mut tx,
        std::slice::from_ref(&one),
        Some(state.settings.process_id),
    )
    .await
    .map_err(|e| dependency(&e))?;
    let creation = match outcomes.pop() {
        Some(Ok(creation)) => creation,
        Some(Err(error)) => return Err(creation_problem(error)),
        None => {
            return Err(Problem::internal(&std::io::Error::other(
                "task creation returned no outcome",
            )));
        }
    };
    tx.commit().await.map_err(|e| dependency(&e))?;
    Ok(match creation {
        TaskCreation::Created { task_id, .. } => {
            if let Some(waker) = &state.waker {
                waker.wake();
            }
            (
                StatusCode::CREATED,
                Json(TaskCreated {
                    task_uuid: task_id.into_uuid(),
                    state: TaskState::Pending.as_str().to_owned(),
                    existing: false,
                }),
            )
        }
        TaskCreation::Existing { task_id, state } => (
            StatusCode::OK,
            Json(TaskCreated {
                task_uuid: task_id.into_uuid(),
                state: state.as_str().to_owned(),
                existing: true,
            }),
        ),
    })
}

/// A task request's violations, as a 422.
fn invalid_request(error: RequestError) -> Problem {
    let errors = error
        .violations
        .into_iter()
        .map(|violation| FieldProblem {
            pointer: violation.pointer,
            detail: violation.message,
        })
        .collect();
    Problem::new(ProblemKind::Validation, "The task request is invalid.").with_errors(errors)
}

/// A request that passed validation but cannot become a task.
fn creation_problem(error: CreateTaskError) -> Problem {
    match error {
        CreateTaskError::Database(error) => dependency(&error),
        CreateTaskError::IdentityRace { .. } => Problem::new(
            ProblemKind::Conflict,
            "A task with the same identity was being created concurrently; send the request again.",
        ),
        other => Problem::new(
            ProblemKind::Validation,
            format!("The task cannot be created: {other}"),
        ),
    }
}

/// A task with its steps, their states, attempts and results, and its execution status.
#[utoipa::path(
    get,
    path = "/v1/tasks/{task_uuid}",
    tag = "tasks",
    params(("task_uuid" = Uuid, Path, description = "The task")),
    responses(
        (status = 200, body = TaskDetail),
        (status = 400, description = "`task_uuid` is not a UUID", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such task", body = ProblemBody, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["tasks:read"]), ("api_key" = ["tasks:read"]))
)]
pub(crate) async fn get(
    State(state): State<ApiState>,
    ApiPath(path): ApiPath<TaskPath>,
) -> Result<Json<TaskDetail>, Problem> {
    let task_id = path.task_id()?;
    let mut conn = state.pool.acquire().await.map_err(|e| dependency(&e))?;
    let Some(task) = tasker_db::task::get(&mut *conn, task_id)
        .await
        .map_err(|e| dependency(&e))?
    else {
        return Err(not_found(format!("Task {task_id} does not exist.")));
    };
    let backoff = state.settings.backoff;
    let mut steps = tasker_db::step::for_tasks(&mut *conn, &[task_id])
        .await
        .map_err(|e| dependency(&e))?;
    let readiness: HashMap<_, _> =
        tasker_db::readiness::for_task(&mut *conn, task_id, backoff, None)
            .await
            .map_err(|e| dependency(&e))?
            .into_iter()
            .map(|row| (row.step_id, row))
            .collect();
    let execution = tasker_db::context::for_task(&mut *conn, task_id, backoff, None)
        .await
        .map_err(|e| dependency(&e))?
        .map(|context| ExecutionStatusBody {
            status: context.execution_status.as_str().to_owned(),
            recommended_action: context.execution_status.recommended_action().to_owned(),
            total_steps: context.total_steps,
            completed_steps: context.completed_steps,
            failed_steps: context.failed_steps,
            ready_steps: context.ready_steps,
            completion_percentage: context.completion_percentage,
        });
    let steps = steps
        .remove(&task_id)
        .unwrap_or_default()
        .into_iter()
        .map(|step| {
            let ready = readiness.get(&step.step_id);
            StepBody {
                step_uuid: step.step_id.into_uuid(),
                name: step.name,
                instance: step.instance,
                state: step.state.as_str().to_owned(),
                attempts: step.attempts,
                max_attempts: step.max_attempts,
                retryable: step.retryable,
                dependencies_satisfied: ready.map(|r| r.dependencies_satisfied),
                ready_for_execution: ready.map(|r| r.ready_for_execution),
                next_retry_at: ready.and_then(|r| r.next_retry_at),
                last_attempted_at: step.last_attempted_at,
                completed_at: step.completed_at,
                results: step.results,
            }
        })
        .collect();
    let context = task.context.clone();
    Ok(Json(TaskDetail {
        task: summary(task),
        context,
        execution,
        steps,
    }))
}

/// Tasks, newest first, filtered; a page at a time with a cursor that is stable under
/// concurrent inserts.
#[utoipa::path(
    get,
    path = "/v1/tasks",
    tag = "tasks",
    params(TaskListQuery),
    responses(
        (status = 200, body = TaskPage),
        (status = 400, description = "A filter or the cursor is invalid", body = ProblemBody, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["tasks:list"]), ("api_key" = ["tasks:list"]))
)]
pub(crate) async fn list(
    State(state): State<ApiState>,
    ApiQuery(query): ApiQuery<TaskListQuery>,
) -> Result<Json<TaskPage>, Problem> {
    let limit = page_size(query.limit)?;
    let mut scope = TaskScope::new();
    if let Some(namespace) = &query.namespace {
        NamespaceName::new(namespace.as_str())
            .map_err(|e| bad_parameter("namespace", e.reason().to_string()))?;
        scope = scope.in_namespace(namespace.as_str());
    }
    if let Some(name) = &query.name {
        TaskName::new(name.as_str()).map_err(|e| bad_parameter("name", e.reason().to_string()))?;
        scope = scope.with_task_name(name.as_str());
    }
    if let Some(version) = &query.version {
        TemplateVersion::new(version.as_str())
            .map_err(|e| bad_parameter("version", e.to_string()))?;
        scope = scope.with_version(version.as_str());
    }
    if let Some(states) = &query.state {
        for state in states.split(',') {
            let state = TaskState::from_str(state.trim()).map_err(|_| {
                bad_parameter(
                    "state",
                    format!(
                        "`{}` is not a task state (one of {})",
                        state.trim(),
                        TaskState::ALL.map(TaskState::as_str).join(", ")
                    ),
                )
            })?;
            scope = scope.in_state(state);
        }
    }
    if let Some(since) = query.created_since {
        scope = scope.created_since(storable(since, "created_since")?);
    }
    if let Some(before) = query.created_before {
        scope = scope.created_before(storable(before, "created_before")?);
    }
    if let Some(cursor) = &query.cursor {
        scope = scope.after(decode_cursor(cursor)?);
    }
    let mut tasks = scope
        .limit(i64::from(limit) + 1)
        .all(&state.pool)
        .await
        .map_err(|e| dependency(&e))?;
    let more = tasks.len() > limit as usize;
    tasks.truncate(limit as usize);
    let next_cursor = more
        .then(|| tasks.last().map(|task| encode_cursor(TaskCursor::of(task))))
        .flatten();
    Ok(Json(TaskPage {
        tasks: tasks.into_iter().map(summary).collect(),
        next_cursor,
    }))
}

/// Cancels a task that has not finished.
#[utoipa::path(
    delete,
    path = "/v1/tasks/{task_uuid}",
    tag = "tasks",
    params(("task_uuid" = Uuid, Path, description = "The task")),
    responses(
        (status = 200, description = "The task is cancelled", body = TaskCancelled),
        (status = 404, description = "No such task", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "The task has finished already", body = ProblemBody, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["tasks:cancel"]), ("api_key" = ["tasks:cancel"]))
)]
pub(crate) async fn cancel(
    State(state): State<ApiState>,
    ApiPath(path): ApiPath<TaskPath>,
) -> Result<Json<TaskCancelled>, Problem> {
    let task_id = path.task_id()?;
    let metadata = serde_json::json!({ "reason": "cancelled through the HTTP API" });
    // Another actor may move the task between the read and the compare-and-set: read again.
    for _ in 0..5 {
        let mut tx = state.pool.begin().await.map_err(|e| dependency(&e))?;
        let Some(task) = tasker_db::task::get(&mut *tx, task_id)
            .await
            .map_err(|e| dependency(&e))?
        else {
            return Err(not_found(format!("Task {task_id} does not exist.")));
        };
        if task.state.is_terminal() {
            return Err(already_final(task_id, task.state));
        }
        let applied = tasker_db::task::transition(
            &mut tx,
            TaskTransition {
                task_id,
                expected: task.state,
                event: TaskEvent::Cancel,
                processor_id: Some(state.settings.process_id),
                metadata: Some(&metadata),
            },
        )
        .await;
        match applied {
            Ok(applied) => {
                tx.commit().await.map_err(|e| dependency(&e))?;
                return Ok(Json(TaskCancelled {
                    task_uuid: task_id.into_uuid(),
                    state: applied.to.as_str().to_owned(),
                }));
            }
            Err(TaskTransitionError::Conflict { .. }) => continue,
            Err(TaskTransitionError::NotFound { .. }) => {
                return Err(not_found(format!("Task {task_id} does not exist.")));
            }
            Err(TaskTransitionError::Invalid { .. }) => {
                return Err(already_final(task_id, task.state));
            }
            Err(error) => return Err(dependency(&error)),
        }
    }
    Err(Problem::new(
        ProblemKind::Conflict,
        "The task keeps changing state; send the request again.",
    ))
}

fn already_final(task_id: TaskId, state: TaskState) -> Problem {
    Problem::new(
        ProblemKind::Conflict,
        format!("Task {task_id} is `{state}` and can no longer be cancelled."),
    )
}

/// The task's transitions and each step's, oldest first.
#[utoipa::path(
    get,
    path = "/v1/tasks/{task_uuid}/transitions",
    tag = "tasks",
    params(("task_uuid" = Uuid, Path, description = "The task")),
    responses(
        (status = 200, body = TransitionsBody),
        (status = 404, description = "No such task", body = ProblemBody, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["tasks:read"]), ("api_key" = ["tasks:read"]))
)]
pub(crate) async fn transitions(
    State(state): State<ApiState>,
    ApiPath(path): ApiPath<TaskPath>,
) -> Result<Json<TransitionsBody>, Problem> {
    let task_id = path.task_id()?;
    let mut conn = state.pool.acquire().await.map_err(|e| dependency(&e))?;
    let history = tasker_db::task::history(&mut *conn, task_id)
        .await
        .map_err(|e| dependency(&e))?;
    if history.is_empty() {
        return Err(not_found(format!("Task {task_id} does not exist.")));
    }
    let mut steps = Vec::new();
    let records = tasker_db::step::for_tasks(&mut *conn, &[task_id])
        .await
        .map_err(|e| dependency(&e))?
        .remove(&task_id)
        .unwrap_or_default();
    for step in records {
        let rows = tasker_db::step::history(&mut *conn, step.step_id)
            .await
            .map_err(|e| dependency(&e))?;
        steps.push(StepTransitionsBody {
            step_uuid: step.step_id.into_uuid(),
            name: step.name,
            transitions: rows
                .into_iter()
                .map(|row| TransitionBody {
                    sort_key: row.sort_key,
                    from_state: row.from_state.map(|s| s.as_str().to_owned()),
                    to_state: row.to_state.as_str().to_owned(),
                    event: row.event,
                    processor_uuid: row.processor_uuid,
                    metadata: row.metadata,
                    created_at: row.created_at,
                })
                .collect(),
        });
    }
    Ok(Json(TransitionsBody {
        task_uuid: task_id.into_uuid(),
        transitions: history
            .into_iter()
            .map(|row| TransitionBody {
                sort_key: row.sort_key,
                from_state: row.from_state.map(|s| s.as_str().to_owned()),
                to_state: row.to_state.as_str().to_owned(),
                event: row.event,
                processor_uuid: row.processor_uuid,
                metadata: row.metadata,
                created_at: row.created_at,
            })
            .collect(),
        steps,
    }))
}

pub(crate) fn summary(task: TaskRecord) -> TaskSummary {
    TaskSummary {
        task_uuid: task.task_id.into_uuid(),
        namespace: task.namespace_name,
        name: task.task_name,
        version: task.task_version,
        state: task.state.as_str().to_owned(),
        state_entered_at: task.state_entered_at,
        priority: task.priority,
        correlation_id: task.correlation_id.into_uuid(),
        initiator: task.initiator,
        source_system: task.source_system,
        reason: task.reason,
        tags: task.tags,
        created_at: task.created_at,
        completed_at: task.completed_at,
    }
}

/// The page size a query asks for, within bounds.
pub(crate) fn page_size(limit: Option<u32>) -> Result<u32, Problem> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(limit) if (1..=MAX_PAGE).contains(&limit) => Ok(limit),
        Some(limit) => Err(bad_parameter(
            "limit",
            format!("is {limit}; it must be between 1 and {MAX_PAGE}"),
        )),
    }
}

/// A time PostgreSQL can compare with (years 1 to 9999).
fn storable(time: DateTime<Utc>, name: &str) -> Result<DateTime<Utc>, Problem> {
    if (1..=9999).contains(&time.year()) {
        Ok(time)
    } else {
        Err(bad_parameter(name, "must be between the years 1 and 9999"))
    }
}

/// The opaque cursor: hex of `<created_at in microseconds>:<task uuid>`.
fn encode_cursor(cursor: TaskCursor) -> String {
    hex::encode(format!(
        "{}:{}",
        cursor.created_at.timestamp_micros(),
        cursor.task_id.into_uuid()
    ))
}

fn decode_cursor(text: &str) -> Result<TaskCursor, Problem> {
    let invalid = || bad_parameter("cursor", "is not a cursor this API returned");
    let bytes = hex::decode(text).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (micros, uuid) = text.split_once(':').ok_or_else(invalid)?;
    let created_at = micros
        .parse::<i64>()
        .ok()
        .and_then(DateTime::from_timestamp_micros)
        .ok_or_else(invalid)?;
    let task_id = Uuid::parse_str(uuid).map_err(|_| invalid())?;
    Ok(TaskCursor {
        created_at: storable(created_at, "cursor")?,
        task_id: TaskId::from_uuid(task_id),
    })
}
