//! The templates task requests name, read from the template registry (whoever registered them:
//! a worker process, a deployment step; cache-aside when a cache is configured) and kept in
//! memory by routing key. An entry kept longer than [`RECHECK`] is checked against the
//! registry again, so a template registered again (same version, changed) is picked up
//! within that time, without reading every request's template.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tasker_db::template::RegisteredTemplate;
use tasker_models::names::{NamespaceName, TaskName, TemplateVersion};
use tasker_models::request::TaskRequest;
use tasker_models::template::ValidatedTemplate;
use tasker_registry::registry::{LookupError, TemplateRegistry};
use tokio::time::Instant;

/// How long an entry is used before it is checked against the registry again.
const RECHECK: Duration = Duration::from_secs(1);

/// A registered template with the rows task creation needs.
#[derive(Debug)]
pub(crate) struct TemplateEntry {
    /// The template.
    pub(crate) template: ValidatedTemplate,
    /// Its rows: the named task and named steps.
    pub(crate) registered: RegisteredTemplate,
    /// When its registration was last written: a change means it was registered again.
    updated_at: DateTime<Utc>,
}

/// An entry and when it was last checked.
#[derive(Debug)]
struct Kept {
    entry: Arc<TemplateEntry>,
    checked_at: Instant,
}

/// Why a request's template could not be had.
#[derive(Debug)]
pub(crate) enum Missing {
    /// It is not registered, or the request names it wrongly: the request is refused.
    Refused(String),
    /// The lookup failed and may succeed later.
    Failed(LookupError),
}

/// The templates requests name, cached by `namespace/name:version`.
#[derive(Debug)]
pub(crate) struct Templates {
    registry: TemplateRegistry,
    by_key: Mutex<HashMap<String, Kept>>,
}

impl Templates {
    pub(crate) fn new(registry: TemplateRegistry) -> Self {
        Self {
            registry,
            by_key: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Kept>> {
        self.by_key.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The template `request` names, from memory or the registry.
    pub(crate) async fn for_request(
        &self,
        request: &TaskRequest,
    ) -> Result<Arc<TemplateEntry>, Missing> {
        let key = request.routing_key();
        let kept = self
            .lock()
            .get(&key)
            .map(|kept| (Arc::clone(&kept.entry), kept.checked_at));
        if let Some((entry, checked_at)) = &kept
            && checked_at.elapsed() < RECHECK
        {
            return Ok(Arc::clone(entry));
        }
        let refuse = |what: &str, error: &dyn std::fmt::Display| {
            Missing::Refused(format!("the request names an invalid {what}: {error}"))
        };
        let namespace =
            NamespaceName::new(request.namespace.as_str()).map_err(|e| refuse("namespace", &e))?;
        let name = TaskName::new(request.name.as_str()).map_err(|e| refuse("template name", &e))?;
        let version =
            TemplateVersion::new(request.version.as_str()).map_err(|e| refuse("version", &e))?;
        let stored = match self.registry.get(&namespace, &name, Some(&version)).await {
            Ok(stored) => stored,
            Err(
                error @ (LookupError::NotRegistered { .. }
                | LookupError::VersionNotRegistered { .. }
                | LookupError::Unreadable { .. }),
            ) => {
                return Err(Missing::Refused(format!(
                    "{error}; register the template (a worker serving its namespace does at \
                     start) before requesting tasks of it"
                )));
            }
            Err(error) => return Err(Missing::Failed(error)),
        };
        if let Some((entry, _)) = kept
            && entry.registered.named_task_id == stored.named_task_id
            && entry.updated_at == stored.updated_at
        {
            // Unchanged since it was read.
            self.lock().insert(
                key,
                Kept {
                    entry: Arc::clone(&entry),
                    checked_at: Instant::now(),
                },
            );
            return Ok(entry);
        }
        let registered = match self.registry.registered(stored.named_task_id).await {
            Ok(Some(registered)) => registered,
            Ok(None) => {
                return Err(Missing::Refused(format!(
                    "template {key} vanished while it was read"
                )));
            }
            Err(error) => return Err(Missing::Failed(error)),
        };
        let entry = Arc::new(TemplateEntry {
            template: stored.template,
            registered,
            updated_at: stored.updated_at,
        });
        self.lock().insert(
            key,
            Kept {
                entry: Arc::clone(&entry),
                checked_at: Instant::now(),
            },
        );
        Ok(entry)
    }
}
