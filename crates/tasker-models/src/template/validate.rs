//! Second stage of loading: checks across steps (names, dependencies, cycles, step types,
//! batch wiring, environment overrides), then the typed template and its graph.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use super::graph::{self, StepGraph};
use super::model::{OverrideTarget, TaskTemplate};
use super::problem::{Rule, Severity};
use super::raw::Draft;
use super::raw_step::{DraftStep, check_retry};
use super::reader::{Cx, Path, did_you_mean, quote};
use super::schema::CompiledSchema;
use super::step::{RetryPolicy, StepDefinition, StepType};
use crate::dag::{Adjacency, CycleError};

/// Most unknown names that get a "did you mean" search (each search is linear in the steps).
const SUGGESTION_BUDGET: usize = 100;

/// The result of the cross-step checks.
struct Resolved {
    /// Each step's parents, deduplicated, without itself and unknown names.
    parents: Adjacency,
    /// For every entry of every step's dependency list, in order: the step of that name.
    entries: Vec<Option<usize>>,
}

/// Runs the cross-step checks and, when the template has no errors, builds it.
pub(crate) fn finish(
    cx: &mut Cx,
    mut draft: Draft<'_>,
) -> Option<(TaskTemplate, StepGraph, Option<CompiledSchema>)> {
    resolve_event_schemas(cx, &mut draft);
    let index = index_steps(cx, &draft.steps);
    let resolved = resolve_dependencies(cx, &draft.steps, &index);
    let step_types: Vec<StepType> = draft
        .steps
        .iter()
        .map(|step| step.step_type.unwrap_or_default())
        .collect();
    check_step_types(cx, &draft.steps, &index, &resolved);
    check_overrides(cx, &draft, &index);
    // Cycles are looked for only in a template without other errors.
    if cx.has_errors() {
        return None;
    }
    let graph = match graph::build(resolved.parents, &step_types) {
        Ok(graph) => graph,
        Err(cycles) => {
            report_cycles(cx, &draft.steps, &cycles);
            return None;
        }
    };
    // Each step's dependencies as names, taken from the resolved (deduplicated) parents.
    let mut dependencies = Vec::with_capacity(draft.steps.len());
    for position in 0..draft.steps.len() {
        let parents = graph.parents(position);
        let mut names = Vec::with_capacity(parents.len());
        for &parent in parents {
            names.push(draft.steps[parent].valid_name.clone()?);
        }
        dependencies.push(names);
    }
    let mut steps = Vec::with_capacity(draft.steps.len());
    for (step, dependencies) in draft.steps.into_iter().zip(dependencies) {
        steps.push(StepDefinition {
            name: step.valid_name?,
            description: step.description,
            handler: step.handler?,
            step_type: step.step_type?,
            system_dependency: step.system_dependency,
            dependencies,
            retry: step.retry?,
            timeout_seconds: step.timeout_seconds,
            publishes_events: step.publishes_events,
            batch_config: step.batch_config,
            result_schema: step.result_schema,
            composition: step.composition,
        });
    }
    let environments = draft
        .environments
        .into_iter()
        .map(super::raw::DraftEnvironment::finish)
        .collect::<Option<_>>()?;
    let input_schema = draft.input_schema;
    let template = TaskTemplate {
        name: draft.name?,
        namespace_name: draft.namespace_name?,
        version: draft.version?,
        description: draft.description,
        identity_strategy: draft.identity_strategy,
        metadata: draft.metadata,
        system_dependencies: draft.system_dependencies,
        domain_events: draft.domain_events,
        input_schema: input_schema
            .as_ref()
            .map(|compiled| compiled.schema().clone()),
        steps,
        environments,
        lifecycle: draft.lifecycle,
    };
    Some((template, graph, input_schema))
}

/// Gives each step event written without a `schema` the schema of the template's
/// `domain_events` declaration of the same name; an event with neither is an error.
fn resolve_event_schemas(cx: &mut Cx, draft: &mut Draft<'_>) {
    let declared = &draft.domain_events;
    for step in &mut draft.steps {
        let path = step.path();
        for &(at, index) in &step.events_without_schema {
            let Some(event) = step.publishes_events.get_mut(at) else {
                continue;
            };
            let schema = declared
                .iter()
                .find(|definition| definition.name == event.name)
                .and_then(|definition| definition.schema.clone());
            match schema {
                Some(schema) => event.schema = schema,
                None => {
                    let name = event.name.to_string();
                    cx.push(
                        Severity::Error,
                        Rule::Required,
                        format!("{path}.publishes_events[{index}].schema"),
                        None,
                        format!(
                            "event `{name}` has no `schema`, and the template's `domain_events` declares none for it"
                        ),
                    )
                    .hint(format!(
                        "give the event a `schema`, or declare `{name}` with a `schema` under `domain_events`"
                    ));
                }
            }
        }
    }
}

fn index_steps<'v>(cx: &mut Cx, steps: &[DraftStep<'v>]) -> HashMap<&'v str, usize> {
    let mut index: HashMap<&'v str, usize> = HashMap::with_capacity(steps.len());
    for (position, step) in steps.iter().enumerate() {
        let Some(name) = step.name else { continue };
        let first = match index.entry(name) {
            Entry::Vacant(entry) => {
                entry.insert(position);
                continue;
            }
            Entry::Occupied(entry) => *entry.get(),
        };
        cx.push(
            Severity::Error,
            Rule::DuplicateStep,
            format!("{}.name", step.path()),
            Some(quote(name)),
            format!(
                "step name `{name}` is already used by {}",
                steps[first].path()
            ),
        )
        .hint("step names must be unique within a template: rename one of them");
    }
    index
}

fn resolve_dependencies(
    cx: &mut Cx,
    steps: &[DraftStep<'_>],
    index: &HashMap<&str, usize>,
) -> Resolved {
    let mut suggestions_left = SUGGESTION_BUDGET;
    let edges = steps.iter().map(|step| step.dependencies.len()).sum();
    let mut parents = Adjacency::with_capacity(steps.len(), edges);
    let mut entries = Vec::with_capacity(edges);
    for (position, step) in steps.iter().enumerate() {
        for &(slot, name) in &step.dependencies {
            let found = index.get(name).copied();
            entries.push(found);
            let at = || format!("{}.{}[{slot}]", step.path(), step.dependencies_key);
            if step.name == Some(name) {
                cx.push(
                    Severity::Error,
                    Rule::SelfDependency,
                    at(),
                    Some(quote(name)),
                    format!("step `{name}` depends on itself"),
                )
                .hint("remove it from its own dependencies");
                continue;
            }
            let Some(parent) = found else {
                let suggestion = if suggestions_left > 0 {
                    suggestions_left -= 1;
                    did_you_mean(name, steps.iter().filter_map(|step| step.name))
                } else {
                    None
                };
                let hint = match suggestion {
                    Some(known) => format!("did you mean `{known}`?"),
                    None => "dependencies name other steps of this template".to_owned(),
                };
                let owner = step.label();
                cx.push(
                    Severity::Error,
                    Rule::UnknownDependency,
                    at(),
                    Some(quote(name)),
                    format!(
                        "step `{owner}` depends on `{name}`, which is not a step of this template"
                    ),
                )
                .hint(hint);
                continue;
            };
            if parent == position {
                continue;
            }
            if parents.current().contains(&parent) {
                cx.push(
                    Severity::Warning,
                    Rule::DuplicateDependency,
                    at(),
                    Some(quote(name)),
                    format!("`{name}` is listed twice"),
                )
                .hint("remove the repeated entry");
                continue;
            }
            parents.push(parent);
        }
        parents.finish_list();
    }
    Resolved { parents, entries }
}

fn report_cycles(cx: &mut Cx, steps: &[DraftStep<'_>], cycles: &CycleError) {
    for cycle in cycles.cycles() {
        let name = |step: usize| steps.get(step).and_then(|step| step.name).unwrap_or("?");
        let rendered = cycle.render(name);
        let nodes = cycle.nodes();
        let Some(first) = nodes.first().and_then(|&step| steps.get(step)) else {
            continue;
        };
        let next_name = nodes
            .get(1)
            .map_or_else(|| name(nodes[0]), |&next| name(next));
        let slot = first
            .dependencies
            .iter()
            .find(|(_, name)| *name == next_name)
            .map_or(0, |(slot, _)| *slot);
        cx.push(
            Severity::Error,
            Rule::Cycle,
            format!("{}.{}[{slot}]", first.path(), first.dependencies_key),
            Some(rendered.clone()),
            format!("dependency cycle: {rendered} (each step depends on the next)"),
        )
        .hint("a workflow is a DAG: remove one of these dependencies");
    }
}

fn check_step_types(
    cx: &mut Cx,
    steps: &[DraftStep<'_>],
    index: &HashMap<&str, usize>,
    resolved: &Resolved,
) {
    let mut children_count = vec![0_usize; steps.len()];
    let mut has_worker_child = vec![false; steps.len()];
    for (child, parents) in resolved.parents.lists().enumerate() {
        for &parent in parents {
            children_count[parent] += 1;
            if steps[child].step_type == Some(StepType::BatchWorker) {
                has_worker_child[parent] = true;
            }
        }
    }
    let mut entries = resolved.entries.as_slice();
    for (position, step) in steps.iter().enumerate() {
        // The step's resolved dependency entries, in list order.
        let (step_entries, rest) = entries.split_at(step.dependencies.len());
        entries = rest;
        let name = step.label();
        let deps_path = || format!("{}.{}", step.path(), step.dependencies_key);
        match step.step_type {
            Some(StepType::Decision) => {
                if step.dependencies.is_empty() {
                    cx.push(Severity::Error, Rule::Decision, deps_path(), None, format!("decision step `{name}` must have at least one dependency"))
                        .hint("a decision is made on the results of earlier steps: add the steps it decides on");
                }
                if children_count[position] == 0 {
                    cx.push(Severity::Warning, Rule::Decision, step.path(), Some(quote(&name.to_string())), format!("no step depends on decision step `{name}`, so its outcome can create nothing"))
                        .hint("declare the steps it may create, each with a dependency on it");
                }
            }
            Some(StepType::DeferredConvergence) if step.dependencies.is_empty() => {
                cx.push(
                    Severity::Error,
                    Rule::DeferredConvergence,
                    deps_path(),
                    None,
                    format!(
                        "deferred convergence step `{name}` must declare the steps it may converge"
                    ),
                )
                .hint("list every step whose branch it joins");
            }
            Some(StepType::BatchWorker) => {
                let has_batchable_parent = resolved
                    .parents
                    .get(position)
                    .iter()
                    .any(|&parent| steps[parent].step_type == Some(StepType::Batchable));
                if !has_batchable_parent && step.complete {
                    cx.push(Severity::Error, Rule::Batch, deps_path(), None, format!("batch worker template `{name}` does not depend on a batchable step, so no worker is ever created"))
                        .hint("add the batchable step that splits the work to its dependencies");
                }
            }
            Some(StepType::Batchable) if !has_worker_child[position] => {
                cx.push(
                    Severity::Warning,
                    Rule::Batch,
                    step.path(),
                    Some(quote(&name.to_string())),
                    format!("no batch_worker step depends on batchable step `{name}`"),
                )
                .hint("add a batch_worker step that lists it as a dependency");
            }
            _ => {}
        }
        if step
            .step_type
            .is_some_and(|kind| kind != StepType::DeferredConvergence)
        {
            for (&(slot, parent_name), &found) in step.dependencies.iter().zip(step_entries) {
                let Some(parent) = found else {
                    continue;
                };
                if steps[parent].step_type == Some(StepType::BatchWorker)
                    && step.step_type != Some(StepType::BatchWorker)
                {
                    cx.push(
                        Severity::Error,
                        Rule::Batch,
                        format!("{}[{slot}]", deps_path()),
                        Some(quote(parent_name)),
                        format!("step `{name}` depends on batch worker template `{parent_name}`, which never runs itself"),
                    )
                    .hint("make the step `type: deferred_convergence` so it waits for the workers created from the template");
                }
            }
        }
        check_batch_config(cx, steps, index, step);
    }
}

fn check_batch_config(
    cx: &mut Cx,
    steps: &[DraftStep<'_>],
    index: &HashMap<&str, usize>,
    step: &DraftStep<'_>,
) {
    let name = step.label();
    if step.has_batch_config
        && !matches!(
            step.step_type,
            Some(StepType::Batchable | StepType::BatchWorker) | None
        )
    {
        cx.push(
            Severity::Error,
            Rule::Batch,
            format!("{}.batch_config", step.path()),
            None,
            format!(
                "step `{name}` has batch_config but is a {} step",
                step.step_type.unwrap_or_default()
            ),
        )
        .hint("batch_config belongs on batchable steps and batch_worker templates");
    }
    let Some(config) = &step.batch_config else {
        return;
    };
    let worker = config.worker_template.as_str();
    let at = format!("{}.batch_config.worker_template", step.path());
    match index.get(worker) {
        None => {
            let hint = match did_you_mean(worker, steps.iter().filter_map(|step| step.name)) {
                Some(known) => format!("did you mean `{known}`?"),
                None => "name a step of this template with `type: batch_worker`".to_owned(),
            };
            cx.push(
                Severity::Error,
                Rule::Batch,
                at,
                Some(quote(worker)),
                format!("worker template `{worker}` is not a step of this template"),
            )
            .hint(hint);
        }
        Some(&target) => {
            if let Some(kind) = steps[target].step_type
                && kind != StepType::BatchWorker
            {
                cx.push(
                    Severity::Error,
                    Rule::Batch,
                    at,
                    Some(quote(worker)),
                    format!("worker template `{worker}` is a {kind} step, not a batch_worker"),
                )
                .hint(format!(
                    "set `type: batch_worker` on `{worker}`, or name the batch_worker step here"
                ));
            }
        }
    }
}

fn check_overrides(cx: &mut Cx, draft: &Draft<'_>, index: &HashMap<&str, usize>) {
    for environment in &draft.environments {
        let env_path = environment.path();
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for item in &environment.overrides {
            let at = format!("{env_path}.steps[{}]", item.index);
            let Some(target) = item.target else { continue };
            if let Some(first) = seen.insert(target, item.index) {
                cx.push(
                    Severity::Warning,
                    Rule::Override,
                    format!("{at}.name"),
                    Some(quote(target)),
                    format!("step `{target}` is already overridden at {env_path}.steps[{first}]; the later override wins"),
                )
                .hint("merge the two overrides");
            }
            let targets: Vec<usize> = match &item.value {
                Some(value) => match &value.name {
                    OverrideTarget::All => (0..draft.steps.len()).collect(),
                    OverrideTarget::Step(name) => match index.get(name.as_str()) {
                        Some(&step) => vec![step],
                        None => {
                            report_unknown_target(cx, draft, &at, target);
                            continue;
                        }
                    },
                },
                None => {
                    if target != super::model::ALL_STEPS && !index.contains_key(target) {
                        report_unknown_target(cx, draft, &at, target);
                    }
                    continue;
                }
            };
            let Some(retry) = item.value.as_ref().and_then(|value| value.retry) else {
                continue;
            };
            let path_text = format!("{at}.retry");
            for step in targets {
                let Some(base) = draft.steps[step].retry else {
                    continue;
                };
                let merged = RetryPolicy {
                    retryable: retry.retryable.unwrap_or(base.retryable),
                    max_attempts: retry.max_attempts.unwrap_or(base.max_attempts),
                    backoff: retry.backoff.unwrap_or(base.backoff),
                    backoff_base_ms: retry.backoff_base_ms.or(base.backoff_base_ms),
                    max_backoff_ms: retry.max_backoff_ms.or(base.max_backoff_ms),
                };
                let mut scratch = Cx::new(cx.strictness);
                check_retry(&mut scratch, &Path::Root, &merged, draft.steps[step].name);
                for mut problem in scratch.problems {
                    problem.path = if problem.path.is_empty() {
                        path_text.clone()
                    } else {
                        format!("{path_text}.{}", problem.path)
                    };
                    cx.problems.push(problem);
                }
            }
        }
    }
}

fn report_unknown_target(cx: &mut Cx, draft: &Draft<'_>, at: &str, target: &str) {
    let hint = match did_you_mean(target, draft.steps.iter().filter_map(|step| step.name)) {
        Some(known) => format!("did you mean `{known}`?"),
        None => format!(
            "name a step of this template, or `{}` for every step",
            super::model::ALL_STEPS
        ),
    };
    cx.push(
        Severity::Error,
        Rule::Override,
        format!("{at}.name"),
        Some(quote(target)),
        format!("override targets `{target}`, which is not a step of this template"),
    )
    .hint(hint);
}
