//! Template registration: upserts a namespace, a named task (one template version) and its
//! named steps in one statement.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use tasker_models::identity::IdentityStrategy;
use tasker_models::ids::{NamedStepId, NamedTaskId, NamespaceId};
use tasker_models::template::ValidatedTemplate;
use uuid::Uuid;

use crate::error::DbError;

/// Lifecycle limits a template may set; `None` means "use the configured default".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LifecycleLimits {
    /// The longest a task of this template may live before it is considered stale.
    pub max_duration_minutes: Option<i32>,
    /// The longest a task may wait for dependencies.
    pub max_waiting_for_dependencies_minutes: Option<i32>,
    /// The longest a task may wait for a retry.
    pub max_waiting_for_retry_minutes: Option<i32>,
    /// The longest a task may have steps in process.
    pub max_steps_in_process_minutes: Option<i32>,
}

/// A template version to register.
#[derive(Debug, Clone)]
pub struct TemplateRegistration<'a> {
    /// The namespace's name (tasker-models' namespace rule, which the database checks too).
    pub namespace: &'a str,
    /// The template's name.
    pub name: &'a str,
    /// The template's version.
    pub version: &'a str,
    /// What the template does.
    pub description: Option<&'a str>,
    /// How its tasks are deduplicated.
    pub identity_strategy: IdentityStrategy,
    /// The whole validated template as a JSON object.
    pub configuration: &'a serde_json::Value,
    /// Its lifecycle limits.
    pub lifecycle: LifecycleLimits,
    /// Its steps.
    pub steps: &'a [StepRegistration<'a>],
}

/// A step of a template to register.
#[derive(Debug, Clone)]
pub struct StepRegistration<'a> {
    /// The step's name, unique within the template.
    pub name: &'a str,
    /// What it does.
    pub description: Option<&'a str>,
    /// Its definition from the template, as a JSON object.
    pub definition: &'a serde_json::Value,
}

/// The rows a registration created or updated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredTemplate {
    /// The namespace.
    pub namespace_id: NamespaceId,
    /// The named task (this template version).
    pub named_task_id: NamedTaskId,
    /// Whether the named task was new (false: an existing version was updated).
    pub created: bool,
    /// Every registered step with its id, in the order given.
    pub steps: Vec<(String, NamedStepId)>,
}

/// Why a registration failed.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// Two steps of the registration share a name.
    #[error("template {namespace}/{name}:{version} lists step `{step}` twice")]
    DuplicateStep {
        /// The namespace.
        namespace: String,
        /// The template's name.
        name: String,
        /// The template's version.
        version: String,
        /// The repeated step name.
        step: String,
    },
    /// The database rejected the registration (for example a namespace name that breaks the
    /// identifier rule: `task_namespaces_name_format`).
    #[error("failed to register a template")]
    Database(#[from] DbError),
}

/// Registers a validated template from tasker-models: its identity, description, identity
/// strategy, lifecycle limits, the whole template as JSON and every step's definition.
pub async fn register_validated<'c>(
    executor: impl PgExecutor<'c>,
    validated: &ValidatedTemplate,
) -> Result<RegisteredTemplate, RegisterError> {
    let template = validated.template();
    let configuration = validated.to_json();
    let definitions: Vec<serde_json::Value> = template
        .steps
        .iter()
        .map(|step| serde_json::to_value(step).unwrap_or_else(|_| serde_json::json!({})))
        .collect();
    let steps: Vec<StepRegistration<'_>> = template
        .steps
        .iter()
        .zip(&definitions)
        .map(|(step, definition)| StepRegistration {
            name: step.name.as_str(),
            description: step.description.as_deref(),
            definition,
        })
        .collect();
    let minutes = |value: Option<u32>| value.map(|m| i32::try_from(m).unwrap_or(i32::MAX));
    let lifecycle = template
        .lifecycle
        .as_ref()
        .map(|lifecycle| LifecycleLimits {
            max_duration_minutes: minutes(lifecycle.max_duration_minutes),
            max_waiting_for_dependencies_minutes: minutes(
                lifecycle.max_waiting_for_dependencies_minutes,
            ),
            max_waiting_for_retry_minutes: minutes(lifecycle.max_waiting_for_retry_minutes),
            max_steps_in_process_minutes: minutes(lifecycle.max_steps_in_process_minutes),
        })
        .unwrap_or_default();
    register(
        executor,
        &TemplateRegistration {
            namespace: template.namespace_name.as_str(),
            name: template.name.as_str(),
            version: template.version.as_str(),
            description: template.description.as_deref(),
            identity_strategy: template.identity_strategy,
            configuration: &configuration,
            lifecycle,
            steps: &steps,
        },
    )
    .await
}

/// Registers a template version: creates or updates its namespace, named task and named steps.
///
/// Idempotent: registering the same version again updates description, configuration,
/// identity strategy, lifecycle and step definitions in place and keeps every id. Steps that a
/// new registration no longer lists are kept, because existing tasks reference them.
pub async fn register<'c>(
    executor: impl PgExecutor<'c>,
    template: &TemplateRegistration<'_>,
) -> Result<RegisteredTemplate, RegisterError> {
    let mut seen = std::collections::HashSet::new();
    if let Some(step) = template.steps.iter().find(|step| !seen.insert(step.name)) {
        return Err(RegisterError::DuplicateStep {
            namespace: template.namespace.to_owned(),
            name: template.name.to_owned(),
            version: template.version.to_owned(),
            step: step.name.to_owned(),
        });
    }
    let step_ids: Vec<Uuid> = template.steps.iter().map(|_| Uuid::now_v7()).collect();
    let step_names: Vec<&str> = template.steps.iter().map(|s| s.name).collect();
    let step_descriptions: Vec<Option<&str>> =
        template.steps.iter().map(|s| s.description).collect();
    let step_definitions: Vec<&serde_json::Value> =
        template.steps.iter().map(|s| s.definition).collect();

    let row: (Uuid, Uuid, bool, Vec<String>, Vec<Uuid>) = sqlx::query_as(
        "WITH ns AS ( \
             INSERT INTO tasker.task_namespaces (task_namespace_uuid, name) \
             VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET updated_at = tasker.task_namespaces.updated_at \
             RETURNING task_namespace_uuid \
         ), nt AS ( \
             INSERT INTO tasker.named_tasks ( \
                 named_task_uuid, task_namespace_uuid, name, version, description, \
                 identity_strategy, configuration, max_duration_minutes, \
                 max_waiting_for_dependencies_minutes, max_waiting_for_retry_minutes, \
                 max_steps_in_process_minutes) \
             SELECT $3, ns.task_namespace_uuid, $4, $5, $6, $7::tasker.identity_strategy, $8, $9, \
                    $10, $11, $12 FROM ns \
             ON CONFLICT (task_namespace_uuid, name, version) DO UPDATE SET \
                 description = EXCLUDED.description, \
                 identity_strategy = EXCLUDED.identity_strategy, \
                 configuration = EXCLUDED.configuration, \
                 max_duration_minutes = EXCLUDED.max_duration_minutes, \
                 max_waiting_for_dependencies_minutes = EXCLUDED.max_waiting_for_dependencies_minutes, \
                 max_waiting_for_retry_minutes = EXCLUDED.max_waiting_for_retry_minutes, \
                 max_steps_in_process_minutes = EXCLUDED.max_steps_in_process_minutes, \
                 updated_at = now() \
             RETURNING named_task_uuid, (xmax = 0) AS created \
         ), steps AS ( \
             INSERT INTO tasker.named_steps (named_step_uuid, named_task_uuid, name, description, definition) \
             SELECT s.id, nt.named_task_uuid, s.name, s.description, s.definition \
             FROM nt, unnest($13::uuid[], $14::text[], $15::text[], $16::jsonb[]) \
                 WITH ORDINALITY AS s (id, name, description, definition, ord) \
             ON CONFLICT (named_task_uuid, name) DO UPDATE SET \
                 description = EXCLUDED.description, \
                 definition = EXCLUDED.definition, \
                 updated_at = now() \
             RETURNING named_step_uuid, name \
         ) \
         SELECT (SELECT task_namespace_uuid FROM ns), nt.named_task_uuid, nt.created, \
                coalesce((SELECT array_agg(s.name ORDER BY s.name) FROM steps s), '{}'), \
                coalesce((SELECT array_agg(s.named_step_uuid ORDER BY s.name) FROM steps s), '{}') \
         FROM nt",
    )
    .bind(Uuid::now_v7())
    .bind(template.namespace)
    .bind(Uuid::now_v7())
    .bind(template.name)
    .bind(template.version)
    .bind(template.description)
    .bind(template.identity_strategy.as_str())
    .bind(template.configuration)
    .bind(template.lifecycle.max_duration_minutes)
    .bind(template.lifecycle.max_waiting_for_dependencies_minutes)
    .bind(template.lifecycle.max_waiting_for_retry_minutes)
    .bind(template.lifecycle.max_steps_in_process_minutes)
    .bind(&step_ids)
    .bind(&step_names)
    .bind(&step_descriptions)
    .bind(&step_definitions)
    .fetch_one(executor)
    .await
    .map_err(DbError::from)?;
    let (namespace_id, named_task_id, created, names, ids) = row;
    let by_name: std::collections::HashMap<String, Uuid> = names.into_iter().zip(ids).collect();
    let steps = template
        .steps
        .iter()
        .filter_map(|step| {
            by_name
                .get(step.name)
                .map(|id| (step.name.to_owned(), NamedStepId::from_uuid(*id)))
        })
        .collect();
    Ok(RegisteredTemplate {
        namespace_id: NamespaceId::from_uuid(namespace_id),
        named_task_id: NamedTaskId::from_uuid(named_task_id),
        created,
        steps,
    })
}

/// The rows of the registered template version `named_task_id`: its namespace, the named task
/// and every named step with its id (ordered by name; `created` is false), as task creation
/// needs them; `None` if there is no such version.
pub async fn registered<'c>(
    executor: impl PgExecutor<'c>,
    named_task_id: NamedTaskId,
) -> Result<Option<RegisteredTemplate>, DbError> {
    let row: Option<(Uuid, Vec<String>, Vec<Uuid>)> = sqlx::query_as(
        "SELECT nt.task_namespace_uuid, \
                coalesce(array_agg(s.name ORDER BY s.name) \
                             FILTER (WHERE s.named_step_uuid IS NOT NULL), '{}'), \
                coalesce(array_agg(s.named_step_uuid ORDER BY s.name) \
                             FILTER (WHERE s.named_step_uuid IS NOT NULL), '{}') \
         FROM tasker.named_tasks nt \
         LEFT JOIN tasker.named_steps s ON s.named_task_uuid = nt.named_task_uuid \
         WHERE nt.named_task_uuid = $1 \
         GROUP BY nt.task_namespace_uuid",
    )
    .bind(named_task_id.into_uuid())
    .fetch_optional(executor)
    .await?;
    Ok(row.map(|(namespace_id, names, ids)| RegisteredTemplate {
        namespace_id: NamespaceId::from_uuid(namespace_id),
        named_task_id,
        created: false,
        steps: names
            .into_iter()
            .zip(ids)
            .map(|(name, id)| (name, NamedStepId::from_uuid(id)))
            .collect(),
    }))
}

/// A registered template version.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct TemplateRecord {
    /// Its namespace.
    #[sqlx(rename = "task_namespace_uuid", try_from = "Uuid")]
    pub namespace_id: NamespaceId,
    /// The named task (this template version).
    #[sqlx(rename = "named_task_uuid", try_from = "Uuid")]
    pub named_task_id: NamedTaskId,
    /// The namespace's name.
    pub namespace_name: String,
    /// The template's name.
    pub name: String,
    /// The template's version.
    pub version: String,
    /// What the template does.
    pub description: Option<String>,
    /// The whole template as registered (a JSON object).
    pub configuration: serde_json::Value,
    /// When the version was first registered.
    pub created_at: DateTime<Utc>,
    /// When it was last written.
    pub updated_at: DateTime<Utc>,
}

/// The registered template `namespace/name:version`, if there is one.
pub async fn get<'c>(
    executor: impl PgExecutor<'c>,
    namespace: &str,
    name: &str,
    version: &str,
) -> Result<Option<TemplateRecord>, DbError> {
    Ok(sqlx::query_as::<_, TemplateRecord>(
        "SELECT ns.task_namespace_uuid, nt.named_task_uuid, ns.name AS namespace_name, nt.name, \
                nt.version, nt.description, nt.configuration, nt.created_at, nt.updated_at \
         FROM tasker.named_tasks nt \
         JOIN tasker.task_namespaces ns ON ns.task_namespace_uuid = nt.task_namespace_uuid \
         WHERE ns.name = $1 AND nt.name = $2 AND nt.version = $3",
    )
    .bind(namespace)
    .bind(name)
    .bind(version)
    .fetch_optional(executor)
    .await?)
}

/// Registered template versions, ordered by namespace, name and version text; only those of
/// `namespace` when given. At most `limit`, after the `(namespace, name, version)` of `after`
/// when given (keyset pagination).
pub async fn list<'c>(
    executor: impl PgExecutor<'c>,
    namespace: Option<&str>,
    after: Option<(&str, &str, &str)>,
    limit: i64,
) -> Result<Vec<TemplateRecord>, DbError> {
    let (after_namespace, after_name, after_version) = match after {
        Some((namespace, name, version)) => (Some(namespace), Some(name), Some(version)),
        None => (None, None, None),
    };
    Ok(sqlx::query_as::<_, TemplateRecord>(
        "SELECT ns.task_namespace_uuid, nt.named_task_uuid, ns.name AS namespace_name, nt.name, \
                nt.version, nt.description, nt.configuration, nt.created_at, nt.updated_at \
         FROM tasker.named_tasks nt \
         JOIN tasker.task_namespaces ns ON ns.task_namespace_uuid = nt.task_namespace_uuid \
         WHERE ($1::text IS NULL OR ns.name = $1) \
           AND ($2::text IS NULL OR (ns.name, nt.name, nt.version) > ($2, $3, $4)) \
         ORDER BY ns.name, nt.name, nt.version \
         LIMIT $5",
    )
    .bind(namespace)
    .bind(after_namespace)
    .bind(after_name)
    .bind(after_version)
    .bind(limit)
    .fetch_all(executor)
    .await?)
}

/// Every registered version of `namespace/name`, oldest registration first. Versions are
/// returned as stored; callers order them by semantic-version precedence.
pub async fn versions<'c>(
    executor: impl PgExecutor<'c>,
    namespace: &str,
    name: &str,
) -> Result<Vec<String>, DbError> {
    Ok(sqlx::query_scalar::<_, String>(
        "SELECT nt.version \
         FROM tasker.named_tasks nt \
         JOIN tasker.task_namespaces ns ON ns.task_namespace_uuid = nt.task_namespace_uuid \
         WHERE ns.name = $1 AND nt.name = $2 \
         ORDER BY nt.created_at, nt.version",
    )
    .bind(namespace)
    .bind(name)
    .fetch_all(executor)
    .await?)
}

/// Takes a transaction-scoped advisory lock on the identity `namespace/name:version`: other
/// transactions locking the same identity wait until this one commits or rolls back. Lets a
/// caller compare the stored template with a new one and write it atomically. Outside a
/// transaction the lock is released at once: call it inside one.
pub async fn lock_identity(
    connection: &mut PgConnection,
    namespace: &str,
    name: &str,
    version: &str,
) -> Result<(), DbError> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!("tasker.named_task:{namespace}/{name}:{version}"))
        .execute(connection)
        .await?;
    Ok(())
}

/// What a step row takes from its template step: its retry policy and, as its handler input,
/// the handler's `initialization`. Shared by task creation and steps added later.
pub(crate) struct StepDefaults {
    pub(crate) retryable: bool,
    pub(crate) max_attempts: i32,
    pub(crate) inputs: serde_json::Value,
}

impl StepDefaults {
    pub(crate) fn of(definition: &tasker_models::template::StepDefinition) -> Self {
        Self {
            retryable: definition.retry.retryable,
            max_attempts: i32::try_from(definition.retry.max_attempts).unwrap_or(i32::MAX),
            inputs: serde_json::Value::Object(definition.handler.initialization.clone()),
        }
    }
}
