//! The templates a worker serves: loaded from a directory, their handlers resolved through
//! the resolver chain, and registered through the template registry (so that orchestrators
//! find them), before the worker takes any step.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use crate::error::CatalogError;
use tasker_db::template::RegisteredTemplate;
use tasker_messaging::queue_name::{Namespace, QueueName, worker_queue};
use tasker_models::ids::NamedTaskId;
use tasker_models::template::{Strictness, ValidatedTemplate, load_directory};
use tasker_registry::handler::DeclaredEvent;
use tasker_registry::registry::{LookupError, TemplateKey, TemplateRegistry};
use tasker_registry::resolver::{ResolverChain, TemplateHandlers};

/// One registered template with its resolved handlers.
#[derive(Debug)]
pub struct TemplateEntry {
    /// The template.
    pub template: ValidatedTemplate,
    /// Its rows: the named task and named steps.
    pub registered: RegisteredTemplate,
    /// The handler of every step.
    pub handlers: TemplateHandlers,
    /// The queue its steps are sent to.
    pub queue: QueueName,
    /// Each step's direct dependencies, by name.
    parents: HashMap<String, Vec<String>>,
    /// The domain events each step declares (`publishes_events`), schemas compiled.
    events: HashMap<String, Arc<[DeclaredEvent]>>,
}

impl TemplateEntry {
    /// `namespace/name:version`.
    pub fn key(&self) -> String {
        self.template.routing_key()
    }

    /// The template's name.
    pub fn name(&self) -> &str {
        self.template.template().name.as_str()
    }

    /// The direct dependencies of `step`.
    pub fn parents(&self, step: &str) -> &[String] {
        self.parents.get(step).map_or(&[], Vec::as_slice)
    }

    /// The domain events `step` declares.
    pub fn declared_events(&self, step: &str) -> Arc<[DeclaredEvent]> {
        self.events
            .get(step)
            .map_or_else(|| Arc::from(Vec::new()), Arc::clone)
    }
}

/// Every template of the run.
#[derive(Debug, Default)]
pub struct Catalog {
    by_id: HashMap<NamedTaskId, Arc<TemplateEntry>>,
    by_key: BTreeMap<String, NamedTaskId>,
}

impl Catalog {
    /// Loads every template under `dir` of the given namespaces (all, when `namespaces` is
    /// empty), resolves every step's handler through `chain` and registers them all in one
    /// transaction. Every problem is reported at once: templates that fail to load, and steps
    /// whose callable no resolver knows.
    pub async fn register(
        registry: &TemplateRegistry,
        dir: &Path,
        namespaces: &[String],
        chain: &ResolverChain,
    ) -> Result<Catalog, CatalogError> {
        for name in namespaces {
            Namespace::new(name.as_str()).map_err(|source| CatalogError::Namespace {
                name: name.clone(),
                source,
            })?;
        }
        let report =
            load_directory(dir, Strictness::Strict).map_err(|source| CatalogError::Read {
                dir: dir.to_owned(),
                source,
            })?;
        let mut problems = String::new();
        let mut templates = Vec::new();
        let served = |template: &ValidatedTemplate| {
            namespaces.is_empty()
                || namespaces
                    .iter()
                    .any(|name| name == template.template().namespace_name.as_str())
        };
        for file in report.files {
            match file.result {
                Ok(loaded) if served(&loaded.template) => templates.push(loaded.template),
                Ok(_) => {}
                Err(error) => {
                    let _ = writeln!(problems, "{}: {error}", file.path.display());
                    for problem in error.problems() {
                        let _ = writeln!(problems, "  {problem}");
                    }
                }
            }
        }
        for duplicate in &report.duplicates {
            let _ = writeln!(
                problems,
                "{} is defined twice: {} and {}",
                duplicate.key,
                duplicate.first.display(),
                duplicate.second.display()
            );
        }
        let mut resolved = Vec::with_capacity(templates.len());
        for template in templates {
            let mut events = HashMap::new();
            for step in template.steps() {
                match DeclaredEvent::compile_all(&step.publishes_events) {
                    Ok(declared) => {
                        events.insert(step.name.as_str().to_owned(), Arc::from(declared));
                    }
                    Err(error) => {
                        let _ = writeln!(
                            problems,
                            "{} step {}: {error}",
                            template.routing_key(),
                            step.name
                        );
                    }
                }
            }
            match chain.resolve_template(&template) {
                Ok(handlers) => resolved.push((template, handlers, events)),
                Err(unresolved) => {
                    let _ = writeln!(problems, "{unresolved}");
                }
            }
        }
        if !problems.is_empty() {
            return Err(CatalogError::Invalid {
                dir: dir.to_owned(),
                problems: problems.trim_end().to_owned(),
            });
        }
        if resolved.is_empty() {
            return Err(CatalogError::Empty {
                dir: dir.to_owned(),
                namespaces: namespaces.to_vec(),
            });
        }

        // The registry decides: new templates are created, unchanged ones left alone, and a
        // template changed without a new version is refused with its differences.
        let templates: Vec<ValidatedTemplate> = resolved
            .iter()
            .map(|(template, _, _)| template.clone())
            .collect();
        let report = registry
            .register_templates(&templates, false)
            .await
            .map_err(|source| CatalogError::Register {
                dir: dir.to_owned(),
                source,
            })?;
        tracing::info!(%report, "registered the templates");

        // Task creation needs the named step rows of each template.
        let mut catalog = Catalog::default();
        for (template, handlers, events) in resolved {
            let key = TemplateKey::of(&template);
            let lookup = |source| CatalogError::Lookup {
                key: key.to_string(),
                source,
            };
            let Some(outcome) = report.get(&key) else {
                return Err(lookup(LookupError::NotRegistered {
                    namespace: key.namespace.to_string(),
                    name: key.name.to_string(),
                }));
            };
            let registered = registry
                .registered(outcome.named_task_id)
                .await
                .map_err(lookup)?
                .ok_or_else(|| {
                    lookup(LookupError::NotRegistered {
                        namespace: key.namespace.to_string(),
                        name: key.name.to_string(),
                    })
                })?;
            // A template's namespace is a queue namespace: one rule for both.
            let namespace = template.template().namespace_name.clone();
            let parents = template
                .steps()
                .iter()
                .map(|step| {
                    (
                        step.name.as_str().to_owned(),
                        step.dependencies
                            .iter()
                            .map(|name| name.as_str().to_owned())
                            .collect(),
                    )
                })
                .collect();
            let entry = TemplateEntry {
                queue: worker_queue(&namespace),
                template,
                registered,
                handlers,
                parents,
                events,
            };
            catalog.insert(entry);
        }
        Ok(catalog)
    }

    fn insert(&mut self, entry: TemplateEntry) {
        let id = entry.registered.named_task_id;
        self.by_key.insert(entry.key(), id);
        self.by_id.insert(id, Arc::new(entry));
    }

    /// The template registered as `id`.
    pub fn get(&self, id: NamedTaskId) -> Option<&Arc<TemplateEntry>> {
        self.by_id.get(&id)
    }

    /// The template `namespace/name:version`.
    pub fn by_key(&self, key: &str) -> Option<&Arc<TemplateEntry>> {
        self.by_key.get(key).and_then(|id| self.by_id.get(id))
    }

    /// The first template (in key order) named `name`.
    pub fn by_name(&self, name: &str) -> Option<&Arc<TemplateEntry>> {
        self.entries().find(|entry| entry.name() == name)
    }

    /// Every template, ordered by key.
    pub fn entries(&self) -> impl Iterator<Item = &Arc<TemplateEntry>> + '_ {
        self.by_key.values().filter_map(|id| self.by_id.get(id))
    }

    /// The worker queues of every namespace, without duplicates.
    pub fn worker_queues(&self) -> Vec<QueueName> {
        let mut queues: Vec<QueueName> = self.entries().map(|entry| entry.queue.clone()).collect();
        queues.sort();
        queues.dedup();
        queues
    }
}
