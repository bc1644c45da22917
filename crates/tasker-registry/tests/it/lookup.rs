//! Lookup: by version, the latest version by semantic-version precedence, missing templates,
//! and resolving the handlers of a stored template.

use std::sync::Arc;

use tasker_models::names::{NamespaceName, TaskName, TemplateVersion};
use tasker_models::template::{Strictness, ValidatedTemplate};
use tasker_registry::handler::{StepContext, StepHandler, StepOutcome};
use tasker_registry::registry::{LookupError, RegisterOptions, TemplateRegistry};
use tasker_registry::resolver::{FnResolver, Resolution, ResolverChain};

use crate::harness::{self, Scratch, template};
use crate::templates::fixtures;

#[tokio::test]
async fn the_latest_version_is_the_highest_by_semver_precedence() -> anyhow::Result<()> {
    harness::run(|pool| async move {
        let registry = TemplateRegistry::new(pool);
        let scratch = Scratch::new()?;
        // Registered out of order; `1.10.0` sorts above `1.9.3` (numerically, not as text).
        for version in ["1.10.0", "1.2.0", "1.9.3", "0.9.0"] {
            scratch.write(
                &format!("orders/{version}.yaml"),
                &template(
                    "orders",
                    version,
                    &format!("{{callable: Orders::V{}}}", &version[..1]),
                ),
            )?;
        }
        registry
            .register_directory(scratch.path(), RegisterOptions::default())
            .await?;
        let namespace: NamespaceName = "scratch".parse()?;
        let name: TaskName = "orders".parse()?;

        let versions: Vec<String> = registry
            .versions(&namespace, &name)
            .await?
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(versions, ["0.9.0", "1.2.0", "1.9.3", "1.10.0"]);
        let latest = registry.get(&namespace, &name, None).await?;
        assert_eq!(latest.key.version.as_str(), "1.10.0");
        assert_eq!(latest.key.to_string(), "scratch/orders:1.10.0");

        // A pre-release of a higher version is above every lower release.
        let rc = scratch.write(
            "orders/2.0.0-rc.1.yaml",
            &template("orders", "2.0.0-rc.1", "{callable: Orders::V2}"),
        )?;
        registry
            .register_paths(&[rc], RegisterOptions::default())
            .await?;
        let latest = registry.get(&namespace, &name, None).await?;
        assert_eq!(latest.key.version.as_str(), "2.0.0-rc.1");

        // An explicit version is taken as asked.
        let version: TemplateVersion = "1.2.0".parse()?;
        let stored = registry.get(&namespace, &name, Some(&version)).await?;
        assert_eq!(stored.template.template().version, version);
        Ok(())
    })
    .await
}

#[tokio::test]
async fn missing_templates_and_versions_are_typed_errors() -> anyhow::Result<()> {
    harness::run(|pool| async move {
        let registry = TemplateRegistry::new(pool);
        registry
            .register_directory(&fixtures(), RegisterOptions::default())
            .await?;
        let namespace: NamespaceName = "registry_it".parse()?;

        let unknown: TaskName = "unknown".parse()?;
        let error = registry
            .get(&namespace, &unknown, None)
            .await
            .expect_err("not registered");
        assert!(
            matches!(error, LookupError::NotRegistered { .. }),
            "{error}"
        );
        assert_eq!(
            error.to_string(),
            "template registry_it/unknown is not registered (no version of it)"
        );
        let version: TemplateVersion = "1.0.0".parse()?;
        let error = registry
            .get(&namespace, &unknown, Some(&version))
            .await
            .expect_err("not registered");
        assert!(
            matches!(error, LookupError::NotRegistered { .. }),
            "{error}"
        );

        let linear: TaskName = "linear_math".parse()?;
        let version: TemplateVersion = "2.0.0".parse()?;
        let error = registry
            .get(&namespace, &linear, Some(&version))
            .await
            .expect_err("no such version");
        assert_eq!(
            error.to_string(),
            "template registry_it/linear_math is not registered in version 2.0.0; registered \
             versions: 1.0.0"
        );
        assert!(registry.versions(&namespace, &unknown).await?.is_empty());
        Ok(())
    })
    .await
}

/// The rows task creation needs come back for every registered version: the namespace and
/// every named step's id, the ones the registration wrote; an unknown version has none.
#[tokio::test]
async fn registered_versions_report_their_rows() -> anyhow::Result<()> {
    harness::run(|pool| async move {
        let registry = TemplateRegistry::new(pool.clone());
        let report = registry
            .register_directory(&fixtures(), RegisterOptions::default())
            .await?;
        for outcome in &report.templates {
            let rows = registry
                .registered(outcome.named_task_id)
                .await?
                .expect("a registered version");
            let stored = registry
                .get(
                    &outcome.key.namespace,
                    &outcome.key.name,
                    Some(&outcome.key.version),
                )
                .await?;
            assert_eq!(rows.named_task_id, outcome.named_task_id);
            assert_eq!(rows.namespace_id, stored.namespace_id);
            // Writing the same template again keeps every id: the rows are the same.
            let written = tasker_db::template::register_validated(&pool, &stored.template).await?;
            let mut expected = written.steps.clone();
            expected.sort();
            assert_eq!(rows.steps, expected, "{}", outcome.key);
            assert_eq!(rows.steps.len(), stored.template.steps().len());
        }
        assert!(
            registry
                .registered(tasker_models::ids::NamedTaskId::new_v7())
                .await?
                .is_none()
        );
        Ok(())
    })
    .await
}

#[derive(Debug)]
struct Arithmetic;

#[async_trait::async_trait]
impl StepHandler for Arithmetic {
    async fn call(&self, context: &StepContext) -> StepOutcome {
        match context.input_as::<i64>("operand") {
            Ok(operand) => StepOutcome::success(serde_json::json!(operand)),
            Err(error) => error.into(),
        }
    }
}

/// The two halves together: a template read back from the database resolves against a chain,
/// and a template whose callables nobody knows reports every one of them.
#[tokio::test]
async fn a_stored_template_resolves_its_handlers() -> anyhow::Result<()> {
    harness::run(|pool| async move {
        let registry = TemplateRegistry::new(pool);
        registry
            .register_directory(&fixtures(), RegisterOptions::default())
            .await?;
        let stored = registry
            .get(&"registry_it".parse()?, &"diamond_math".parse()?, None)
            .await?;

        let mut chain = ResolverChain::new();
        chain.register("Math::Sum", Arithmetic);
        chain.set_fallback(FnResolver::new("math", |request| {
            if request.callable().starts_with("Math::") {
                Resolution::Found(Arc::new(Arithmetic))
            } else {
                Resolution::NotApplicable
            }
        }))?;
        let handlers = chain
            .resolve_template(&stored.template)
            .map_err(|error| anyhow::anyhow!("{error}"))?;
        assert_eq!(handlers.len(), 4);
        assert_eq!(
            handlers.get("join").map(|h| h.resolver()),
            Some("explicit_mapping")
        );
        assert_eq!(handlers.get("left").map(|h| h.resolver()), Some("math"));

        let bare = ResolverChain::new();
        let error = bare
            .resolve_template(&stored.template)
            .expect_err("nothing is registered");
        assert_eq!(error.errors.len(), 4);

        // The resolved template of an environment is what factories see.
        let tree = registry
            .get(&"registry_it_other".parse()?, &"tree_math".parse()?, None)
            .await?;
        let test_env: ValidatedTemplate = tree.template.resolve_for_environment("test");
        assert_eq!(
            test_env
                .step_by_name("root")
                .and_then(|s| s.timeout_seconds),
            Some(5)
        );
        let file =
            ValidatedTemplate::from_path(&fixtures().join("nested/tree.yaml"), Strictness::Strict)?;
        assert_eq!(tree.template, file.template);
        Ok(())
    })
    .await
}
