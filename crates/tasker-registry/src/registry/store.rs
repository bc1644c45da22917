//! The registry's only contact with the database: every call into `tasker_db::template`.

use sqlx::{PgConnection, PgExecutor};
use tasker_db::error::DbError;
use tasker_db::template::{self as db, RegisterError, RegisteredTemplate, TemplateRecord};
use tasker_models::ids::NamedTaskId;
use tasker_models::template::ValidatedTemplate;

use super::TemplateKey;

/// Holds registrations of `key` in other transactions back until this transaction ends, so
/// that comparing with the stored template and writing the new one is atomic.
pub(super) async fn lock(connection: &mut PgConnection, key: &TemplateKey) -> Result<(), DbError> {
    db::lock_identity(
        connection,
        key.namespace.as_str(),
        key.name.as_str(),
        key.version.as_str(),
    )
    .await
}

/// The stored template version `key`, if registered.
pub(super) async fn fetch<'c>(
    executor: impl PgExecutor<'c>,
    namespace: &str,
    name: &str,
    version: &str,
) -> Result<Option<TemplateRecord>, DbError> {
    db::get(executor, namespace, name, version).await
}

/// Every registered version of `namespace/name`, as stored (unordered).
pub(super) async fn versions<'c>(
    executor: impl PgExecutor<'c>,
    namespace: &str,
    name: &str,
) -> Result<Vec<String>, DbError> {
    db::versions(executor, namespace, name).await
}

/// Writes a template version: namespace, named task and named steps, in one statement.
pub(super) async fn write(
    connection: &mut PgConnection,
    template: &ValidatedTemplate,
) -> Result<RegisteredTemplate, RegisterError> {
    db::register_validated(connection, template).await
}

/// The rows of a registered version: namespace, named task and named step ids.
pub(super) async fn registered<'c>(
    executor: impl PgExecutor<'c>,
    named_task_id: NamedTaskId,
) -> Result<Option<RegisteredTemplate>, DbError> {
    db::registered(executor, named_task_id).await
}
