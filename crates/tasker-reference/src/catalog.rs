//! The templates this run knows: loaded from a directory, their handlers resolved through the
//! resolver chain, and registered through the template registry, before any task runs.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use sqlx::PgPool;
use tasker_shared::database::template::RegisteredTemplate;
use tasker_shared::messaging::queue_name::{Namespace, QueueName, worker_queue};
use tasker_shared::models::ids::NamedTaskId;
use tasker_shared::models::template::{Strictness, ValidatedTemplate, load_directory};
use tasker_shared::registry::registry::{TemplateKey, TemplateRegistry};
use tasker_shared::registry::resolver::{ResolverChain, TemplateHandlers};

/// One registered template with its resolved handlers.
#[derive(Debug)]
pub(crate) struct TemplateEntry {
    /// The template.
    pub(crate) template: ValidatedTemplate,
    /// Its rows: the named task and named steps.
    pub(crate) registered: RegisteredTemplate,
    /// The handler of every step.
    pub(crate) handlers: TemplateHandlers,
    /// The queue its steps are sent to.
    pub(crate) queue: QueueName,
    /// Each step's direct dependencies, by name.
    parents: HashMap<String, Vec<String>>,
}

impl TemplateEntry {
    /// `namespace/name:version`.
    pub(crate) fn key(&self) -> String {
        self.template.routing_key()
    }

    /// The template's name.
    pub(crate) fn name(&self) -> &str {
        self.template.template().name.as_str()
    }

    /// The direct dependencies of `step`.
    pub(crate) fn parents(&self, step: &str) -> &[String] {
        self.parents.get(step).map_or(&[], Vec::as_slice)
    }
}

/// Every template of the run.
#[derive(Debug, Default)]
pub(crate) struct Catalog {
    by_id: HashMap<NamedTaskId, Arc<TemplateEntry>>,
    by_key: BTreeMap<String, NamedTaskId>,
}

impl Catalog {
    /// Loads every template under `dir`, registers them all in one transaction and resolves
    /// every step's handler through `chain`. Every problem is reported at once: templates that
    /// fail to load, and steps whose callable no resolver knows.
    pub(crate) async fn register(
        pool: &PgPool,
        dir: &Path,
        chain: &ResolverChain,
    ) -> anyhow::Result<Catalog> {
        let report = load_directory(dir, Strictness::Strict)
            .with_context(|| format!("reading templates from {}", dir.display()))?;
        let mut problems = String::new();
        let mut templates = Vec::new();
        for file in report.files {
            match file.result {
                Ok(loaded) => templates.push(loaded.template),
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
            match chain.resolve_template(&template) {
                Ok(handlers) => resolved.push((template, handlers)),
                Err(unresolved) => {
                    let _ = writeln!(problems, "{unresolved}");
                }
            }
        }
        if !problems.is_empty() {
            bail!(
                "the templates in {} cannot run:\n{}",
                dir.display(),
                problems.trim_end()
            );
        }
        if resolved.is_empty() {
            bail!(
                "no templates (*.yaml, *.yml) in {}; point --templates at a directory of task templates",
                dir.display()
            );
        }

        // The registry decides: new templates are created, unchanged ones left alone, and a
        // template changed without a new version is refused with its differences.
        let templates: Vec<ValidatedTemplate> = resolved
            .iter()
            .map(|(template, _)| template.clone())
            .collect();
        let registry = TemplateRegistry::new(pool.clone());
        let report = registry
            .register_templates(&templates, false)
            .await
            .with_context(|| format!("registering the templates in {}", dir.display()))?;
        tracing::info!(%report, "registered the templates");

        // Task creation needs the named step rows of each template.
        let mut catalog = Catalog::default();
        for (template, handlers) in resolved {
            let key = TemplateKey::of(&template);
            let named_task_id = report
                .get(&key)
                .with_context(|| format!("the registration reports template {key}"))?
                .named_task_id;
            let registered = registry
                .registered(named_task_id)
                .await
                .with_context(|| format!("reading the rows of template {key}"))?
                .with_context(|| format!("template {key} vanished after its registration"))?;
            let namespace = Namespace::new(template.template().namespace_name.as_str())
                .with_context(|| {
                    format!(
                        "template {} has no valid queue namespace",
                        template.routing_key()
                    )
                })?;
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
    pub(crate) fn get(&self, id: NamedTaskId) -> Option<&Arc<TemplateEntry>> {
        self.by_id.get(&id)
    }

    /// The template `namespace/name:version`.
    pub(crate) fn by_key(&self, key: &str) -> Option<&Arc<TemplateEntry>> {
        self.by_key.get(key).and_then(|id| self.by_id.get(id))
    }

    /// The first template (in key order) named `name`.
    pub(crate) fn by_name(&self, name: &str) -> Option<&Arc<TemplateEntry>> {
        self.entries().find(|entry| entry.name() == name)
    }

    /// Every template, ordered by key.
    pub(crate) fn entries(&self) -> impl Iterator<Item = &Arc<TemplateEntry>> + '_ {
        self.by_key.values().filter_map(|id| self.by_id.get(id))
    }

    /// The worker queues of every namespace, without duplicates.
    pub(crate) fn worker_queues(&self) -> Vec<QueueName> {
        let mut queues: Vec<QueueName> = self.entries().map(|entry| entry.queue.clone()).collect();
        queues.sort();
        queues.dedup();
        queues
    }
}
