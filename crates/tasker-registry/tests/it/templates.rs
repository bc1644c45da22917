//! The fixture templates against a resolver chain, without a database: every step resolves,
//! and running the handlers in topological order, each fed its dependencies' results, computes
//! the expected arithmetic.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};
use tasker_models::ids::{CorrelationId, StepId, TaskId};
use tasker_models::template::{Strictness, ValidatedTemplate, load_directory};
use tasker_registry::handler::{StepContext, StepHandler, StepOutcome};
use tasker_registry::resolver::{FnResolver, Resolution, ResolverChain, TemplateHandlers};

/// The static fixture templates: three templates in two namespaces, one in a subdirectory,
/// next to a file that is not a template.
pub(crate) fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/templates")
}

/// `Math::Seed` returns its `value` input; `Math::Add` adds its `operand` to the sum of its
/// dependencies' results; `Math::Multiply` multiplies that sum by its `operand`; `Math::Sum`
/// adds its dependencies' results; `Math::Report` wraps its only dependency's result.
#[derive(Debug, Clone, Copy)]
enum Math {
    Seed,
    Add,
    Multiply,
    Sum,
    Report,
}

#[async_trait::async_trait]
impl StepHandler for Math {
    async fn call(&self, context: &StepContext) -> StepOutcome {
        let inputs: i64 = context
            .dependency_results
            .values()
            .filter_map(Value::as_i64)
            .sum();
        let operand = || context.input_as::<i64>("operand");
        let result = match self {
            Self::Seed => context.input_as::<i64>("value").map(Value::from),
            Self::Add => operand().map(|operand| json!(inputs + operand)),
            Self::Multiply => operand().map(|operand| json!(inputs * operand)),
            Self::Sum => Ok(json!(inputs)),
            Self::Report => Ok(json!({ "result": inputs, "attempt": context.attempt })),
        };
        match result {
            Ok(result) => StepOutcome::success(result),
            Err(error) => error.into(),
        }
    }
}

fn chain() -> ResolverChain {
    let mut chain = ResolverChain::new();
    chain.register("Math::Sum", Math::Sum);
    chain
        .add_resolver(
            20,
            FnResolver::new("math", |request| {
                let Some(operation) = request.callable().strip_prefix("Math::") else {
                    return Resolution::NotApplicable;
                };
                match operation {
                    "Seed" => Resolution::Found(Arc::new(Math::Seed)),
                    "Add" => Resolution::Found(Arc::new(Math::Add)),
                    "Multiply" => Resolution::Found(Arc::new(Math::Multiply)),
                    _ => Resolution::NotFound,
                }
            }),
        )
        .expect("a unique name");
    chain
        .set_fallback(FnResolver::new("reports", |request| {
            if request.callable() == "Math::Report" {
                Resolution::Found(Arc::new(Math::Report))
            } else {
                Resolution::NotApplicable
            }
        }))
        .expect("a unique name");
    chain
}

fn load(relative: &str) -> ValidatedTemplate {
    let path = fixtures().join(relative);
    match ValidatedTemplate::from_path(&path, Strictness::Strict) {
        Ok(loaded) => loaded.template,
        Err(error) => panic!("{}: {error}: {:?}", path.display(), error.problems()),
    }
}

/// Runs every step in topological order on this thread, each with its dependencies' results.
async fn run(template: &ValidatedTemplate, handlers: &TemplateHandlers) -> BTreeMap<String, Value> {
    let data = template.template();
    let mut results: BTreeMap<String, Value> = BTreeMap::new();
    for step in template.steps_in_order() {
        let dependency_results = step
            .dependencies
            .iter()
            .map(|name| (name.clone(), results[name.as_str()].clone()))
            .collect();
        let context = StepContext {
            task_id: TaskId::new_v7(),
            step_id: StepId::new_v7(),
            correlation_id: CorrelationId::new_v7(),
            namespace: data.namespace_name.clone(),
            task_name: data.name.clone(),
            version: data.version.clone(),
            step_name: step.name.clone(),
            method: step.handler.effective_method().to_owned(),
            attempt: 1,
            max_attempts: step.retry.max_attempts,
            inputs: step.handler.initialization.clone(),
            dependency_results,
            task_context: json!({}),
            events: tasker_registry::handler::StepEvents::none(),
        };
        let handler = handlers.get(step.name.as_str()).expect("resolved up front");
        match handler.handler().call(&context).await {
            StepOutcome::Success { result } => {
                results.insert(step.name.as_str().to_owned(), result);
            }
            failure => panic!("step {} failed: {failure:?}", step.name),
        }
    }
    results
}

#[test]
fn every_fixture_template_resolves() {
    let report = load_directory(&fixtures(), Strictness::Strict).expect("the directory reads");
    assert!(report.is_ok(), "{report:?}");
    let chain = chain();
    let mut resolved = Vec::new();
    for file in &report.files {
        let template = &file.result.as_ref().expect("loads").template;
        let handlers = chain
            .resolve_template(template)
            .unwrap_or_else(|error| panic!("{error}"));
        for (step, handler) in handlers.iter() {
            resolved.push(format!(
                "{} {step}: {} via {}",
                handlers.template(),
                handler.callable(),
                handler.resolver()
            ));
        }
    }
    insta::assert_snapshot!(resolved.join("\n"));
}

#[tokio::test]
async fn handlers_compute_over_their_dependencies_results() {
    let chain = chain();
    let cases = [
        // 2 → +3 = 5 → ×4 = 20 → {result: 20}
        ("linear.yaml", "report", json!({"result": 20, "attempt": 1})),
        // 6 → (6+1, 6×2) → 7 + 12 = 19
        ("diamond.yml", "join", json!(19)),
        // 1 → (1+10, 1+20)
        ("nested/tree.yaml", "branch_b", json!(21)),
    ];
    for (file, step, expected) in cases {
        let template = load(file);
        let handlers = chain
            .resolve_template(&template)
            .unwrap_or_else(|error| panic!("{error}"));
        let results = run(&template, &handlers).await;
        assert_eq!(results[step], expected, "{file}");
    }
}

#[tokio::test]
async fn a_missing_input_is_a_permanent_failure() {
    let template = load("linear.yaml");
    let step = template.step_by_name("add").expect("a step");
    let data = template.template();
    let context = StepContext {
        task_id: TaskId::new_v7(),
        step_id: StepId::new_v7(),
        correlation_id: CorrelationId::new_v7(),
        namespace: data.namespace_name.clone(),
        task_name: data.name.clone(),
        version: data.version.clone(),
        step_name: step.name.clone(),
        method: "call".to_owned(),
        attempt: 1,
        max_attempts: 3,
        inputs: serde_json::Map::new(),
        dependency_results: BTreeMap::new(),
        task_context: json!({}),
        events: tasker_registry::handler::StepEvents::none(),
    };
    let outcome = Math::Add.call(&context).await;
    let StepOutcome::PermanentFailure { error } = outcome else {
        panic!("expected a permanent failure, got {outcome:?}");
    };
    assert_eq!(
        error.to_string(),
        "[invalid_input] input `operand` is missing"
    );
}
