//! Property tests: random DAGs validate and their topological order respects every edge;
//! an injected cycle is rejected with a correct cycle path; the loader never panics.

use std::fmt::Write as _;

use proptest::prelude::*;
use tasker_models::template::{Rule, Strictness, TemplateError, ValidatedTemplate};

/// A random DAG: step `i` may depend only on steps `< i`, so any choice is acyclic.
fn dag() -> impl Strategy<Value = Vec<Vec<usize>>> {
    (1_usize..40).prop_flat_map(|count| {
        (0..count)
            .map(|step| proptest::collection::btree_set(0..step.max(1), 0..=step.min(4)))
            .collect::<Vec<_>>()
            .prop_map(|sets| {
                sets.into_iter()
                    .enumerate()
                    .map(|(step, set)| set.into_iter().filter(|&parent| parent < step).collect())
                    .collect()
            })
    })
}

/// YAML for a DAG, with steps declared in a shuffled order.
fn yaml(parents: &[Vec<usize>], order: &[usize]) -> String {
    let mut text = String::from("name: random\nnamespace_name: prop\nversion: 1.0.0\nsteps:\n");
    for &step in order {
        let _ = writeln!(text, "  - name: s{step}\n    handler: {{callable: H}}");
        let deps: Vec<String> = parents[step]
            .iter()
            .map(|parent| format!("s{parent}"))
            .collect();
        let _ = writeln!(text, "    dependencies: [{}]", deps.join(", "));
    }
    text
}

fn shuffled(count: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..count).collect();
    let mut state = seed | 1;
    for index in (1..count).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let other = usize::try_from(state % (index as u64 + 1)).unwrap_or(0);
        order.swap(index, other);
    }
    order
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn random_dags_validate_and_sort(parents in dag(), seed in any::<u64>()) {
        let order = shuffled(parents.len(), seed);
        let loaded = ValidatedTemplate::from_yaml_str(&yaml(&parents, &order), Strictness::Strict)
            .map_err(|error| TestCaseError::fail(format!("{error}: {:?}", error.problems())))?;
        let template = loaded.template;
        let graph = template.graph();
        let topo = graph.topological_order();
        prop_assert_eq!(topo.len(), parents.len());
        let mut position = vec![usize::MAX; topo.len()];
        for (rank, &index) in topo.iter().enumerate() {
            position[index] = rank;
        }
        for step in template.steps() {
            let child = template.step_index(step.name.as_str()).expect("indexed");
            for dependency in &step.dependencies {
                let parent = template.step_index(dependency.as_str()).expect("indexed");
                prop_assert!(position[parent] < position[child], "{} before {}", dependency, step.name);
                prop_assert!(graph.depth(parent) < graph.depth(child));
            }
        }
        prop_assert_eq!(graph.width_per_level().iter().sum::<usize>(), parents.len());
        prop_assert!(graph.roots().iter().all(|&root| graph.parents(root).is_empty()));
        prop_assert!(graph.leaves().iter().all(|&leaf| graph.children(leaf).is_empty()));
        prop_assert_eq!(graph.initial_steps().len(), parents.len(), "only standard steps");
    }

    #[test]
    fn injected_cycles_are_reported_as_paths(parents in dag(), seed in any::<u64>(), pick in any::<prop::sample::Index>()) {
        // Close a cycle: pick a step with a dependency chain and make its root depend on it.
        let mut parents = parents;
        let candidates: Vec<usize> = (0..parents.len()).filter(|&step| !parents[step].is_empty()).collect();
        prop_assume!(!candidates.is_empty());
        let tail = candidates[pick.index(candidates.len())];
        let mut head = tail;
        while let Some(&parent) = parents[head].first() {
            head = parent;
        }
        parents[head].push(tail);
        let order = shuffled(parents.len(), seed);
        let error = ValidatedTemplate::from_yaml_str(&yaml(&parents, &order), Strictness::Strict)
            .expect_err("cyclic templates are rejected");
        let TemplateError::Invalid { problems } = &error else {
            return Err(TestCaseError::fail(format!("unexpected error {error}")));
        };
        let cycles: Vec<_> = problems.iter().filter(|problem| problem.rule == Rule::Cycle).collect();
        prop_assert!(!cycles.is_empty(), "a cycle is reported: {problems}");
        for cycle in cycles {
            let path = cycle.value.as_deref().expect("the cycle path is the value");
            let names: Vec<usize> = path
                .split(" → ")
                .map(|name| name.trim_start_matches('s').parse().expect("step name"))
                .collect();
            prop_assert!(names.len() >= 3, "at least two steps and the return: {path}");
            prop_assert_eq!(names.first(), names.last());
            for pair in names.windows(2) {
                prop_assert!(parents[pair[0]].contains(&pair[1]), "{} depends on {} in {path}", pair[0], pair[1]);
            }
        }
    }

    #[test]
    fn loader_never_panics_on_arbitrary_text(text in "\\PC{0,400}") {
        let _ = ValidatedTemplate::from_yaml_str(&text, Strictness::Strict);
        let _ = ValidatedTemplate::from_yaml_str(&text, Strictness::Lenient);
    }

    #[test]
    fn loader_never_panics_on_yaml_like_text(
        lines in proptest::collection::vec(
            prop_oneof![
                Just("name: x".to_owned()),
                Just("namespace_name: ns".to_owned()),
                Just("version: 1.0.0".to_owned()),
                Just("steps:".to_owned()),
                Just("  - name: a".to_owned()),
                Just("    handler: {callable: A}".to_owned()),
                Just("    dependencies: [a, b]".to_owned()),
                Just("    type: decision".to_owned()),
                Just("    retry: {max_attempts: 0, backoff_base_ms: 9, max_backoff_ms: 1}".to_owned()),
                Just("    batch_config: {worker_template: a}".to_owned()),
                Just("environments: {test: {steps: [{name: ALL, retry: {limit: 2}}]}}".to_owned()),
                Just("input_schema: {type: object, properties: {a: {type: nope}}}".to_owned()),
                Just("  - &x {name: b, handler: {callable: B}, dependencies: [a]}".to_owned()),
                Just("  - *x".to_owned()),
                Just("  - <<: *x".to_owned()),
                "[ -~]{0,30}",
            ],
            0..25,
        )
    ) {
        let text = lines.join("\n");
        let _ = ValidatedTemplate::from_yaml_str(&text, Strictness::Strict);
        let _ = ValidatedTemplate::from_yaml_str(&text, Strictness::Lenient);
    }
}
