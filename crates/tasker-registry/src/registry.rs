//! The task template registry over PostgreSQL.
//!
//! [`TemplateRegistry::register_directory`] (or [`TemplateRegistry::register_paths`], or
//! [`TemplateRegistry::register_templates`] for templates already in memory) registers every
//! template in one transaction, all or nothing:
//!
//! 1. every file is loaded and validated, and no identity (`namespace/name:version`) may be
//!    defined twice; any problem stops the registration before the database is touched, and
//!    every problem is reported;
//! 2. for each template, in identity order, registrations of the same identity in other
//!    transactions are held back and the stored template is read: a template equal to the
//!    stored one is left alone ([`Change::Unchanged`]), a new one is written
//!    ([`Change::Created`]), and a changed one is a conflict naming every changed field,
//!    unless the registration is forced ([`Change::Replaced`]);
//! 3. if any template conflicts, nothing is written.
//!
//! Registering the same directory from several processes at once therefore converges: the
//! first writes, the others find the templates unchanged.
//!
//! [`TemplateRegistry::get`] looks a template up by namespace, name and version, or the
//! highest version by semantic-version precedence when no version is given.
//!
//! ```no_run
//! use std::path::Path;
//!
//! use tasker_registry::registry::{RegisterOptions, TemplateRegistry};
//! use tasker_registry::resolver::ResolverChain;
//!
//! # async fn example(pool: sqlx::PgPool, chain: ResolverChain)
//! # -> Result<(), Box<dyn std::error::Error>> {
//! let registry = TemplateRegistry::new(pool);
//! let report = registry
//!     .register_directory(Path::new("config/tasks"), RegisterOptions::default())
//!     .await?;
//! tracing::info!(%report, "templates registered"); // 4 template(s): 1 created, 3 unchanged, ...
//!
//! // The latest version of math/linear, its handlers resolved before any task runs.
//! let stored = registry.get(&"math".parse()?, &"linear".parse()?, None).await?;
//! let handlers = chain.resolve_template(&stored.template)?;
//! # let _ = handlers;
//! # Ok(())
//! # }
//! ```

mod cached;
mod diff;
mod error;
mod load;
mod outcome;
mod store;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use std::time::Duration;

use sqlx::PgPool;
use tasker_cache::Cache;
use tasker_db::error::DbError;
use tasker_db::template::RegisteredTemplate;
use tasker_models::ids::NamedTaskId;
use tasker_models::names::{NamespaceName, TaskName, TemplateVersion};
use tasker_models::template::{DuplicateTemplate, Problems, Strictness, ValidatedTemplate};

pub use diff::{Difference, DifferenceKind, differences};
pub use error::{Conflict, LoadFailure, LookupError, RegisterError};
pub use outcome::{
    Change, RegisterOptions, RegistrationReport, StoredTemplate, TemplateKey, TemplateOutcome,
};

use load::{Candidate, load};

/// Task templates in PostgreSQL (see the module docs).
#[derive(Debug, Clone)]
pub struct TemplateRegistry {
    pool: PgPool,
    cache: Option<cached::TemplateCache>,
}

/// What registration does to one template, decided before anything is written.
enum Plan {
    Create,
    Keep(NamedTaskId),
    Replace(Vec<Difference>),
}

impl TemplateRegistry {
    /// A registry over a pool of connections to a migrated database.
    #[must_use]
    pub fn new(pool: PgPool) -> Self {
        Self { pool, cache: None }
    }

    /// The same registry with cache-aside lookups: [`TemplateRegistry::get`] of a given
    /// version reads the cache first and keeps what it read from the database there for
    /// `ttl`; registering templates again invalidates their namespaces for every process
    /// sharing the cache. The cache counts its hits and misses ([`Cache::stats`]).
    #[must_use]
    pub fn with_cache(self, cache: Cache, ttl: Duration) -> Self {
        Self {
            cache: Some(cached::TemplateCache { cache, ttl }),
            ..self
        }
    }

    /// The cache lookups go through, if any.
    pub fn cache(&self) -> Option<&Cache> {
        self.cache.as_ref().map(|cached| &cached.cache)
    }

    /// Registers every template file (`*.yml`, `*.yaml`) under `dir`, recursively.
    ///
    /// # Errors
    /// See [`TemplateRegistry::register_paths`].
    pub async fn register_directory(
        &self,
        dir: &Path,
        options: RegisterOptions,
    ) -> Result<RegistrationReport, RegisterError> {
        self.register_paths(&[dir], options).await
    }

    /// Registers the templates of the given files and directories (searched recursively), all
    /// or nothing (see the module docs). A file reached twice is read once.
    ///
    /// # Errors
    /// [`RegisterError::NoTemplates`] if there is no template file;
    /// [`RegisterError::Invalid`] with every file that fails to load and every identity defined
    /// twice; [`RegisterError::Changed`] with every template that differs from its registered
    /// version (unless forced); [`RegisterError::Database`] or [`RegisterError::Rejected`] if
    /// the database fails. Nothing is written in any of these cases.
    pub async fn register_paths(
        &self,
        paths: &[impl AsRef<Path>],
        options: RegisterOptions,
    ) -> Result<RegistrationReport, RegisterError> {
        let candidates = load(paths, options.strictness)?;
        self.register_candidates(candidates, options.force).await
    }

    /// Registers templates already loaded, all or nothing. The same template given twice is
    /// registered once.
    ///
    /// # Errors
    /// [`RegisterError::Invalid`] if two different templates share an identity; otherwise as
    /// [`TemplateRegistry::register_paths`].
    pub async fn register_templates(
        &self,
        templates: &[ValidatedTemplate],
        force: bool,
    ) -> Result<RegistrationReport, RegisterError> {
        // Identity → (position in `templates`, index in `candidates`).
        let mut by_key: HashMap<TemplateKey, (usize, usize)> = HashMap::new();
        let mut candidates: Vec<Candidate> = Vec::with_capacity(templates.len());
        let mut duplicates = Vec::new();
        for (position, template) in templates.iter().enumerate() {
            let key = TemplateKey::of(template);
            if let Some(&(first, index)) = by_key.get(&key) {
                if candidates[index].template != *template {
                    duplicates.push(DuplicateTemplate {
                        key: key.to_string(),
                        first: PathBuf::from(format!("(template #{})", first + 1)),
                        second: PathBuf::from(format!("(template #{})", position + 1)),
                    });
                }
                continue;
            }
            by_key.insert(key.clone(), (position, candidates.len()));
            candidates.push(Candidate {
                key,
                template: template.clone(),
                source: None,
                warnings: Problems::default(),
            });
        }
        if !duplicates.is_empty() {
            return Err(RegisterError::Invalid {
                failures: Vec::new(),
                duplicates,
            });
        }
        self.register_candidates(candidates, force).await
    }

    /// A registered template: version `version`, or the highest registered version by
    /// semantic-version precedence when `version` is `None` (so a pre-release `2.0.0-rc.1` is
    /// above `1.9.0`, and below `2.0.0`).
    ///
    /// # Errors
    /// [`LookupError::NotRegistered`] if no version is registered,
    /// [`LookupError::VersionNotRegistered`] (listing the registered versions) if that version
    /// is not, [`LookupError::Unreadable`] if the stored template no longer loads, and
    /// [`LookupError::Database`].
    pub async fn get(
        &self,
        namespace: &NamespaceName,
        name: &TaskName,
        version: Option<&TemplateVersion>,
    ) -> Result<StoredTemplate, LookupError> {
        let version = match version {
            Some(version) => version.clone(),
            None => self.versions(namespace, name).await?.pop().ok_or_else(|| {
                LookupError::NotRegistered {
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                }
            })?,
        };
        let key = TemplateKey {
            namespace: namespace.clone(),
            name: name.clone(),
            version: version.clone(),
        };
        let record = match &self.cache {
            Some(cache) => match cache.get(&key).await {
                Some(hit) => Some(hit),
                None => {
                    let fetched = self.fetch(&key).await?;
                    if let Some(record) = &fetched {
                        cache.put(&key, record).await;
                    }
                    fetched
                }
            },
            None => self.fetch(&key).await?,
        };
        let Some(record) = record else {
            let registered: Vec<String> = self
                .versions(namespace, name)
                .await?
                .iter()
                .map(ToString::to_string)
                .collect();
            return Err(if registered.is_empty() {
                LookupError::NotRegistered {
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                }
            } else {
                LookupError::VersionNotRegistered {
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                    version: version.to_string(),
                    registered,
                }
            });
        };
        let loaded = ValidatedTemplate::from_json_value(&record.configuration, Strictness::Lenient)
            .map_err(|source| LookupError::Unreadable {
                key: key.to_string(),
                source,
            })?;
        if !loaded.warnings.is_empty() {
            tracing::debug!(
                template = %key,
                warnings = %loaded.warnings,
                "stored template loaded with warnings"
            );
        }
        Ok(StoredTemplate {
            key,
            namespace_id: record.namespace_id,
            named_task_id: record.named_task_id,
            template: loaded.template,
            registered_at: record.created_at,
            updated_at: record.updated_at,
        })
    }

    /// The rows task creation needs for the registered version `named_task_id` (as a
    /// registration reports it): its namespace and every named step with its id; `None` if no
    /// such version is registered.
    ///
    /// # Errors
    /// [`LookupError::Database`].
    pub async fn registered(
        &self,
        named_task_id: NamedTaskId,
    ) -> Result<Option<RegisteredTemplate>, LookupError> {
        Ok(store::registered(&self.pool, named_task_id).await?)
    }

    /// The registered versions of a template, ascending by semantic-version precedence.
    /// Stored versions this build cannot parse are left out (and logged).
    ///
    /// # Errors
    /// [`LookupError::Database`].
    pub async fn versions(
        &self,
        namespace: &NamespaceName,
        name: &TaskName,
    ) -> Result<Vec<TemplateVersion>, LookupError> {
        let stored = store::versions(&self.pool, namespace.as_str(), name.as_str()).await?;
        let mut versions: Vec<TemplateVersion> = stored
            .into_iter()
            .filter_map(|text| match TemplateVersion::new(text.as_str()) {
                Ok(version) => Some(version),
                Err(error) => {
                    tracing::warn!(
                        %namespace,
                        %name,
                        version = text,
                        %error,
                        "skipping a stored version that does not parse"
                    );
                    None
                }
            })
            .collect();
        versions.sort_by(|a, b| a.semver().cmp(b.semver()));
        Ok(versions)
    }

    /// The stored row of `key` from the database.
    async fn fetch(&self, key: &TemplateKey) -> Result<Option<cached::CachedRecord>, LookupError> {
        let record = store::fetch(
            &self.pool,
            key.namespace.as_str(),
            key.name.as_str(),
            key.version.as_str(),
        )
        .await?;
        Ok(record.map(cached::CachedRecord::from))
    }

    async fn register_candidates(
        &self,
        mut candidates: Vec<Candidate>,
        force: bool,
    ) -> Result<RegistrationReport, RegisterError> {
        // Locks are taken in one global order, so concurrent registrations cannot deadlock.
        candidates.sort_by(|a, b| a.key.sort_key().cmp(&b.key.sort_key()));
        let mut transaction = self.pool.begin().await.map_err(DbError::from)?;
        let mut plans = Vec::with_capacity(candidates.len());
        let mut conflicts = Vec::new();
        for candidate in candidates {
            store::lock(&mut transaction, &candidate.key).await?;
            let stored = store::fetch(
                &mut *transaction,
                candidate.key.namespace.as_str(),
                candidate.key.name.as_str(),
                candidate.key.version.as_str(),
            )
            .await?;
            let configuration = candidate.template.to_json();
            let plan = match stored {
                None => Plan::Create,
                Some(record) => {
                    let differences =
                        differences(&normalize(&record.configuration), &configuration);
                    if differences.is_empty() {
                        Plan::Keep(record.named_task_id)
                    } else if force {
                        Plan::Replace(differences)
                    } else {
                        conflicts.push(Conflict {
                            key: candidate.key.clone(),
                            source: candidate.source.clone(),
                            differences,
                        });
                        continue;
                    }
                }
            };
            plans.push((candidate, plan));
        }
        if !conflicts.is_empty() {
            transaction.rollback().await.map_err(DbError::from)?;
            return Err(RegisterError::Changed { conflicts });
        }

        let mut templates = Vec::with_capacity(plans.len());
        for (candidate, plan) in plans {
            let (named_task_id, change) = match plan {
                Plan::Keep(named_task_id) => (named_task_id, Change::Unchanged),
                Plan::Create | Plan::Replace(_) => {
                    let registered = store::write(&mut transaction, &candidate.template)
                        .await
                        .map_err(|source| RegisterError::Rejected {
                            key: candidate.key.clone(),
                            source: Box::new(source),
                        })?;
                    let change = match plan {
                        Plan::Replace(differences) => Change::Replaced { differences },
                        _ => Change::Created,
                    };
                    (registered.named_task_id, change)
                }
            };
            tracing::info!(
                template = %candidate.key,
                change = change.label(),
                "registered task template"
            );
            templates.push(TemplateOutcome {
                key: candidate.key,
                source: candidate.source,
                named_task_id,
                change,
                warnings: candidate.warnings,
            });
        }
        transaction.commit().await.map_err(DbError::from)?;
        if let Some(cache) = &self.cache {
            let mut changed: Vec<&str> = templates
                .iter()
                .filter(|outcome| !matches!(outcome.change, Change::Unchanged))
                .map(|outcome| outcome.key.namespace.as_str())
                .collect();
            changed.sort_unstable();
            changed.dedup();
            for namespace in changed {
                cache.invalidate(namespace).await;
            }
        }
        Ok(RegistrationReport { templates })
    }
}

/// The stored JSON as this build would write it, so that a change in how templates are
/// serialized (a new defaulted field) is not mistaken for a change of the template.
fn normalize(stored: &serde_json::Value) -> serde_json::Value {
    match ValidatedTemplate::from_json_value(stored, Strictness::Lenient) {
        Ok(loaded) => loaded.template.to_json(),
        Err(_) => stored.clone(),
    }
}
