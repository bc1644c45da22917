//! [`ValidatedTemplate`]: a template that passed every check, with its graph views and
//! compiled input schema. It can only be built by the loader, so holding one proves validity.

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use super::graph::StepGraph;
use super::load::Strictness;
use super::model::TaskTemplate;
use super::schema::CompiledSchema;
use super::step::{RetryPolicy, StepDefinition, StepType};

/// A validated task template (see the module docs).
#[derive(Clone)]
pub struct ValidatedTemplate {
    template: TaskTemplate,
    graph: StepGraph,
    input_schema: Option<CompiledSchema>,
    /// Step name → index, built on first use.
    index: OnceLock<HashMap<String, usize>>,
}

impl ValidatedTemplate {
    pub(crate) fn new(
        template: TaskTemplate,
        graph: StepGraph,
        input_schema: Option<CompiledSchema>,
    ) -> Self {
        Self {
            template,
            graph,
            input_schema,
            index: OnceLock::new(),
        }
    }

    /// The template data.
    #[must_use]
    pub fn template(&self) -> &TaskTemplate {
        &self.template
    }

    /// Gives up the validity proof and returns the data.
    #[must_use]
    pub fn into_template(self) -> TaskTemplate {
        self.template
    }

    /// `namespace/name:version`, the template's registry key.
    #[must_use]
    pub fn routing_key(&self) -> String {
        format!(
            "{}/{}:{}",
            self.template.namespace_name, self.template.name, self.template.version
        )
    }

    /// The steps in declaration order; graph indices refer to this slice.
    #[must_use]
    pub fn steps(&self) -> &[StepDefinition] {
        &self.template.steps
    }

    /// The step at a graph index.
    #[must_use]
    pub fn step(&self, index: usize) -> Option<&StepDefinition> {
        self.template.steps.get(index)
    }

    /// The graph index of a step.
    #[must_use]
    pub fn step_index(&self, name: &str) -> Option<usize> {
        let index = self.index.get_or_init(|| {
            self.template
                .steps
                .iter()
                .enumerate()
                .map(|(position, step)| (step.name.as_str().to_owned(), position))
                .collect()
        });
        index.get(name).copied()
    }

    /// A step by name.
    #[must_use]
    pub fn step_by_name(&self, name: &str) -> Option<&StepDefinition> {
        self.step_index(name).and_then(|index| self.step(index))
    }

    /// The dependency graph and its derived views.
    #[must_use]
    pub fn graph(&self) -> &StepGraph {
        &self.graph
    }

    /// The steps in topological order (parents first).
    pub fn steps_in_order(&self) -> impl ExactSizeIterator<Item = &StepDefinition> + '_ {
        self.graph
            .topological_order()
            .iter()
            .map(|&index| &self.template.steps[index])
    }

    /// The steps created with a task (see [`StepGraph::initial_steps`]).
    pub fn initial_steps(&self) -> impl ExactSizeIterator<Item = &StepDefinition> + '_ {
        self.graph
            .initial_steps()
            .iter()
            .map(|&index| &self.template.steps[index])
    }

    /// The steps a decision step's outcome may create (see [`StepGraph::decision_branch`]);
    /// empty if `decision` is not a decision step.
    #[must_use]
    pub fn decision_branch(&self, decision: &str) -> Vec<&StepDefinition> {
        let Some(index) = self.step_index(decision) else {
            return Vec::new();
        };
        if self.template.steps[index].step_type != StepType::Decision {
            return Vec::new();
        }
        let types: Vec<StepType> = self
            .template
            .steps
            .iter()
            .map(|step| step.step_type)
            .collect();
        self.graph
            .decision_branch(index, &types)
            .into_iter()
            .map(|index| &self.template.steps[index])
            .collect()
    }

    /// The compiled `input_schema`, if the template has one.
    #[must_use]
    pub fn input_schema(&self) -> Option<&CompiledSchema> {
        self.input_schema.as_ref()
    }

    /// The template as JSON, as stored in `named_tasks.configuration`.
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.template).unwrap_or(serde_json::Value::Null)
    }

    /// The template with the overrides of environment `environment` applied, in declaration
    /// order (later overrides win; `ALL` targets every step):
    /// - `handler.initialization` keys are merged, the override's winning;
    /// - `timeout_seconds` is replaced when given;
    /// - only the given `retry` fields are replaced.
    ///
    /// Overrides were validated against the steps when the template loaded, so the result is
    /// valid. An environment without overrides gives the template unchanged.
    #[must_use]
    pub fn resolve_for_environment(&self, environment: &str) -> Self {
        let mut resolved = self.clone();
        let Some(overrides) = self.template.environments.get(environment) else {
            return resolved;
        };
        for step_override in &overrides.steps {
            for step in &mut resolved.template.steps {
                if !step_override.name.matches(&step.name) {
                    continue;
                }
                if let Some(handler) = &step_override.handler {
                    for (key, value) in &handler.initialization {
                        step.handler
                            .initialization
                            .insert(key.clone(), value.clone());
                    }
                }
                if let Some(timeout) = step_override.timeout_seconds {
                    step.timeout_seconds = Some(timeout);
                }
                if let Some(retry) = step_override.retry {
                    step.retry = RetryPolicy {
                        retryable: retry.retryable.unwrap_or(step.retry.retryable),
                        max_attempts: retry.max_attempts.unwrap_or(step.retry.max_attempts),
                        backoff: retry.backoff.unwrap_or(step.retry.backoff),
                        backoff_base_ms: retry.backoff_base_ms.or(step.retry.backoff_base_ms),
                        max_backoff_ms: retry.max_backoff_ms.or(step.retry.max_backoff_ms),
                    };
                }
            }
        }
        resolved
    }
}

impl fmt::Debug for ValidatedTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidatedTemplate")
            .field("template", &self.template)
            .field("graph", &self.graph)
            .finish_non_exhaustive()
    }
}

impl PartialEq for ValidatedTemplate {
    fn eq(&self, other: &Self) -> bool {
        self.template == other.template
    }
}

impl serde::Serialize for ValidatedTemplate {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.template.serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for ValidatedTemplate {
    /// Deserializes from any format and validates in strict mode; the error lists every
    /// problem. Warnings are dropped: stored templates were written by this crate.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_yaml_ng::Value::deserialize(deserializer)?;
        match Self::from_yaml_value(&value, Strictness::Strict) {
            Ok(loaded) => Ok(loaded.template),
            Err(error) => {
                let details = error
                    .problems()
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ");
                Err(serde::de::Error::custom(format!("{error}: {details}")))
            }
        }
    }
}
