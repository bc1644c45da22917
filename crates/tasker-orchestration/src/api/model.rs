//! The API's request and response bodies, with their OpenAPI schemas.
//!
//! Task requests are tasker-models' `TaskRequest` on the wire; [`TaskRequestBody`] is its
//! schema for the document only (a unit test holds the two to the same fields).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// A request to start a task (tasker-models' `TaskRequest`; unknown fields are refused).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(as = TaskRequest)]
pub(crate) struct TaskRequestBody {
    /// Template name.
    pub(crate) name: String,
    /// Template namespace.
    pub(crate) namespace: String,
    /// Template version (semantic version).
    pub(crate) version: String,
    /// The task's input: a JSON object (default `{}`), checked against the template's
    /// `input_schema`.
    #[schema(value_type = Object)]
    pub(crate) context: Option<serde_json::Value>,
    /// Who asks (default `system`).
    pub(crate) initiator: Option<String>,
    /// Which system asks (default `tasker`).
    pub(crate) source_system: Option<String>,
    /// Why (default `task requested`).
    pub(crate) reason: Option<String>,
    /// Free-form tags (at most 64).
    pub(crate) tags: Option<Vec<String>>,
    /// Higher runs first, -100..=100 (default 0).
    #[schema(minimum = -100, maximum = 100)]
    pub(crate) priority: Option<i32>,
    /// Correlates everything the task causes (generated when absent).
    pub(crate) correlation_id: Option<Uuid>,
    /// The correlation id of the task that caused this one.
    pub(crate) parent_correlation_id: Option<Uuid>,
    /// Identifies the request for deduplication; overrides the template's identity strategy.
    pub(crate) idempotency_key: Option<String>,
    /// Execution options: a JSON object.
    #[schema(value_type = Option<Object>)]
    pub(crate) options: Option<serde_json::Value>,
    /// When the request was made (default: when it arrived).
    pub(crate) requested_at: Option<DateTime<Utc>>,
}

/// The task a `POST /v1/tasks` created (201) or found with the same identity (200).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct TaskCreated {
    /// The task.
    pub(crate) task_uuid: Uuid,
    /// Its state.
    pub(crate) state: String,
    /// Whether a task with the same identity existed already (then nothing was created).
    pub(crate) existing: bool,
}

/// A task that `DELETE /v1/tasks/{task_uuid}` cancelled.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct TaskCancelled {
    /// The task.
    pub(crate) task_uuid: Uuid,
    /// Its state: `cancelled`.
    pub(crate) state: String,
}

/// A task without its steps.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct TaskSummary {
    /// The task.
    pub(crate) task_uuid: Uuid,
    /// Its template's namespace.
    pub(crate) namespace: String,
    /// Its template's name.
    pub(crate) name: String,
    /// Its template's version.
    pub(crate) version: String,
    /// Its state.
    pub(crate) state: String,
    /// When it entered that state.
    pub(crate) state_entered_at: DateTime<Utc>,
    /// Its priority.
    pub(crate) priority: i32,
    /// Its correlation id.
    pub(crate) correlation_id: Uuid,
    /// Who asked for it.
    pub(crate) initiator: Option<String>,
    /// Which system asked for it.
    pub(crate) source_system: Option<String>,
    /// Why.
    pub(crate) reason: Option<String>,
    /// Its tags.
    #[schema(value_type = Vec<String>)]
    pub(crate) tags: serde_json::Value,
    /// When it was created.
    pub(crate) created_at: DateTime<Utc>,
    /// When it completed.
    pub(crate) completed_at: Option<DateTime<Utc>>,
}

/// A task with its context, its steps and its execution status.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct TaskDetail {
    /// The task.
    pub(crate) task: TaskSummary,
    /// Its input.
    #[schema(value_type = Object)]
    pub(crate) context: serde_json::Value,
    /// What its steps add up to (absent for a task whose template is gone).
    pub(crate) execution: Option<ExecutionStatusBody>,
    /// Its steps, ordered by id.
    pub(crate) steps: Vec<StepBody>,
}

/// What a task's steps add up to.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct ExecutionStatusBody {
    /// `has_ready_steps`, `processing`, `waiting_for_retry`, `blocked_by_failures`,
    /// `all_complete` or `waiting_for_dependencies`.
    pub(crate) status: String,
    /// What an orchestrator does about it.
    pub(crate) recommended_action: String,
    /// Steps in total.
    pub(crate) total_steps: i32,
    /// Steps complete or resolved manually.
    pub(crate) completed_steps: i32,
    /// Steps in `error`.
    pub(crate) failed_steps: i32,
    /// Steps ready now.
    pub(crate) ready_steps: i32,
    /// Completed steps as a percentage.
    pub(crate) completion_percentage: f64,
}

/// One step of a task.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct StepBody {
    /// The step.
    pub(crate) step_uuid: Uuid,
    /// Its name in the template.
    pub(crate) name: String,
    /// 0, or a batch worker's number.
    pub(crate) instance: i32,
    /// Its state.
    pub(crate) state: String,
    /// Attempts made.
    pub(crate) attempts: i32,
    /// Attempts allowed.
    pub(crate) max_attempts: i32,
    /// Whether its failures may be retried.
    pub(crate) retryable: bool,
    /// Whether its parents are complete.
    pub(crate) dependencies_satisfied: Option<bool>,
    /// Whether it can be enqueued now.
    pub(crate) ready_for_execution: Option<bool>,
    /// When its next attempt may start.
    pub(crate) next_retry_at: Option<DateTime<Utc>>,
    /// When its last attempt started.
    pub(crate) last_attempted_at: Option<DateTime<Utc>>,
    /// When it completed.
    pub(crate) completed_at: Option<DateTime<Utc>>,
    /// Its stored result.
    #[schema(value_type = Option<Object>)]
    pub(crate) results: Option<serde_json::Value>,
}

/// A page of tasks.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct TaskPage {
    /// The tasks, newest first.
    pub(crate) tasks: Vec<TaskSummary>,
    /// Pass it as `cursor` for the next page; absent on the last page.
    pub(crate) next_cursor: Option<String>,
}

/// The filters and page of `GET /v1/tasks`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct TaskListQuery {
    /// Tasks of templates in this namespace.
    pub(crate) namespace: Option<String>,
    /// Tasks of the template with this name.
    pub(crate) name: Option<String>,
    /// Tasks of this template version.
    pub(crate) version: Option<String>,
    /// Tasks in these states, comma-separated (`pending,complete`).
    pub(crate) state: Option<String>,
    /// Tasks created at or after this time (RFC 3339).
    pub(crate) created_since: Option<DateTime<Utc>>,
    /// Tasks created before this time (RFC 3339).
    pub(crate) created_before: Option<DateTime<Utc>>,
    /// Tasks per page, 1..=200 (default 50).
    pub(crate) limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub(crate) cursor: Option<String>,
}

/// A task's audit trail.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct TransitionsBody {
    /// The task.
    pub(crate) task_uuid: Uuid,
    /// The task's transitions, oldest first.
    pub(crate) transitions: Vec<TransitionBody>,
    /// Each step's transitions, oldest first.
    pub(crate) steps: Vec<StepTransitionsBody>,
}

/// A step's audit trail.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct StepTransitionsBody {
    /// The step.
    pub(crate) step_uuid: Uuid,
    /// Its name.
    pub(crate) name: String,
    /// Its transitions, oldest first.
    pub(crate) transitions: Vec<TransitionBody>,
}

/// One transition.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct TransitionBody {
    /// Its position in the history (1 is the initial `pending`).
    pub(crate) sort_key: i32,
    /// The state left (absent for the first).
    pub(crate) from_state: Option<String>,
    /// The state entered.
    pub(crate) to_state: String,
    /// The event, as JSON.
    #[schema(value_type = Option<Object>)]
    pub(crate) event: Option<serde_json::Value>,
    /// The process that applied it.
    pub(crate) processor_uuid: Option<Uuid>,
    /// Extra context.
    #[schema(value_type = Object)]
    pub(crate) metadata: serde_json::Value,
    /// When it happened.
    pub(crate) created_at: DateTime<Utc>,
}

/// A registered template version.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct TemplateSummary {
    /// Its namespace.
    pub(crate) namespace: String,
    /// Its name.
    pub(crate) name: String,
    /// Its version.
    pub(crate) version: String,
    /// What it does.
    pub(crate) description: Option<String>,
    /// When it was first registered.
    pub(crate) created_at: DateTime<Utc>,
    /// When it was last written.
    pub(crate) updated_at: DateTime<Utc>,
}

/// A registered template version with its definition.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct TemplateDetail {
    /// The version.
    pub(crate) template: TemplateSummary,
    /// The whole template as registered.
    #[schema(value_type = Object)]
    pub(crate) definition: serde_json::Value,
}

/// A page of templates.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct TemplatePage {
    /// The templates, by namespace, name and version.
    pub(crate) templates: Vec<TemplateSummary>,
    /// Pass it as `cursor` for the next page; absent on the last page.
    pub(crate) next_cursor: Option<String>,
}

/// The filters and page of `GET /v1/templates`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct TemplateListQuery {
    /// Templates in this namespace.
    pub(crate) namespace: Option<String>,
    /// Templates per page, 1..=200 (default 50).
    pub(crate) limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub(crate) cursor: Option<String>,
}

/// Options of `POST /v1/templates`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegisterQuery {
    /// Replace a registered template of the same version whose content differs (otherwise
    /// that is a 409).
    pub(crate) force: Option<bool>,
}

/// What registering a template did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct TemplateRegistered {
    /// Its namespace.
    pub(crate) namespace: String,
    /// Its name.
    pub(crate) name: String,
    /// Its version.
    pub(crate) version: String,
    /// `created`, `unchanged` or `replaced`.
    pub(crate) change: String,
}

/// The health of the process and its dependencies.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct HealthBody {
    /// `ok` (when not ready, the answer is a 503 problem listing what is unavailable).
    pub(crate) status: String,
    /// Each dependency checked.
    pub(crate) checks: Vec<HealthCheck>,
}

/// One dependency's health.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct HealthCheck {
    /// `database`, `messaging`, or `breaker:<component>`.
    pub(crate) name: String,
    /// `ok`, `degraded` or `unavailable`.
    pub(crate) status: String,
    /// Why, when not `ok`.
    pub(crate) detail: Option<String>,
}

/// An RFC 9457 problem document (`application/problem+json`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct ProblemBody {
    /// `urn:tasker:problem:<kind>`.
    #[serde(rename = "type")]
    pub(crate) type_uri: String,
    /// The kind's title.
    pub(crate) title: String,
    /// The status.
    pub(crate) status: u16,
    /// What happened.
    pub(crate) detail: String,
    /// The request id (also in `x-request-id`).
    pub(crate) request_id: Option<String>,
    /// A machine-readable reason (authentication failures).
    pub(crate) reason: Option<String>,
    /// Every problem of a 422, located by JSON pointer (or parameter name).
    pub(crate) errors: Option<Vec<FieldProblemBody>>,
}

/// One located problem.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct FieldProblemBody {
    /// JSON pointer into the body, or the parameter's name.
    pub(crate) pointer: String,
    /// What is wrong.
    pub(crate) detail: String,
}
