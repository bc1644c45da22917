//! Cache-aside template lookups: a registered version's stored row, kept in the configured
//! cache (`tasker_cache`) under the namespace `templates.<namespace>` and the key
//! `<name>:<version>`, for the template TTL. Registering a namespace's templates again
//! invalidates the whole namespace for every process sharing the cache; a cache that is down or
//! whose breaker is open only means the row is read from the database.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tasker_cache::{Cache, Namespace};
use tasker_db::template::TemplateRecord;
use tasker_models::ids::{NamedTaskId, NamespaceId};

use super::outcome::TemplateKey;

/// The cache and how long a template stays in it.
#[derive(Debug, Clone)]
pub(super) struct TemplateCache {
    pub(super) cache: Cache,
    pub(super) ttl: Duration,
}

/// What is cached of a registered version: the stored row, as the database returns it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(super) struct CachedRecord {
    pub(super) namespace_id: NamespaceId,
    pub(super) named_task_id: NamedTaskId,
    pub(super) configuration: serde_json::Value,
    pub(super) created_at: DateTime<Utc>,
    pub(super) updated_at: DateTime<Utc>,
}

impl From<TemplateRecord> for CachedRecord {
    fn from(record: TemplateRecord) -> Self {
        Self {
            namespace_id: record.namespace_id,
            named_task_id: record.named_task_id,
            configuration: record.configuration,
            created_at: record.created_at,
            updated_at: record.updated_at,
        }
    }
}

/// The cache namespace of a template namespace's templates.
pub(super) fn namespace_of(namespace: &str) -> Option<Namespace> {
    // Template namespaces are lowercase letters, digits and `_`, at most 29 characters: always
    // a valid cache namespace. Should that ever change, the lookup goes to the database.
    Namespace::new(format!("templates.{namespace}")).ok()
}

/// The cache key of a version within its namespace.
pub(super) fn key_of(key: &TemplateKey) -> String {
    format!("{}:{}", key.name, key.version)
}

impl TemplateCache {
    /// The cached row of `key`, if any.
    pub(super) async fn get(&self, key: &TemplateKey) -> Option<CachedRecord> {
        let namespace = namespace_of(key.namespace.as_str())?;
        self.cache.get(&namespace, &key_of(key)).await
    }

    /// Keeps the row of `key` for the template TTL.
    pub(super) async fn put(&self, key: &TemplateKey, record: &CachedRecord) {
        if let Some(namespace) = namespace_of(key.namespace.as_str()) {
            self.cache
                .set_with_ttl(&namespace, &key_of(key), record, self.ttl)
                .await;
        }
    }

    /// Forgets every cached template of `namespace`. A failure is logged: the stale rows
    /// stay readable until their TTL ends.
    pub(super) async fn invalidate(&self, namespace: &str) {
        let Some(cache_namespace) = namespace_of(namespace) else {
            return;
        };
        if let Err(error) = self.cache.invalidate(&cache_namespace).await {
            tracing::warn!(
                namespace,
                error = &error as &dyn std::error::Error,
                ttl = ?self.ttl,
                "could not invalidate the cached templates of a namespace; they stay cached until their TTL ends"
            );
        }
    }
}
