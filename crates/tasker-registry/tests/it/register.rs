//! Registration: directories, idempotence, changed templates, forcing, invalid files and
//! concurrent registrations.

use std::collections::HashMap;

use tasker_models::template::{Strictness, ValidatedTemplate};
use tasker_registry::registry::{
    Change, DifferenceKind, RegisterError, RegisterOptions, TemplateKey, TemplateRegistry,
};

use crate::harness::{self, Scratch, template};
use crate::templates::fixtures;

fn key(namespace: &str, name: &str, version: &str) -> anyhow::Result<TemplateKey> {
    Ok(TemplateKey {
        namespace: namespace.parse()?,
        name: name.parse()?,
        version: version.parse()?,
    })
}

#[tokio::test]
async fn registers_every_template_under_a_directory() -> anyhow::Result<()> {
    harness::run(|pool| async move {
        let registry = TemplateRegistry::new(pool);
        let report = registry
            .register_directory(&fixtures(), RegisterOptions::default())
            .await?;
        let registered: Vec<(String, &str, Option<String>)> = report
            .templates
            .iter()
            .map(|outcome| {
                let source = outcome.source.as_ref().and_then(|path| {
                    path.strip_prefix(fixtures())
                        .ok()
                        .map(|path| path.display().to_string())
                });
                (outcome.key.to_string(), outcome.change.label(), source)
            })
            .collect();
        assert_eq!(
            registered,
            [
                (
                    "registry_it/diamond_math:1.0.0".to_owned(),
                    "created",
                    Some("diamond.yml".to_owned())
                ),
                (
                    "registry_it/linear_math:1.0.0".to_owned(),
                    "created",
                    Some("linear.yaml".to_owned())
                ),
                (
                    "registry_it_other/tree_math:2.1.0".to_owned(),
                    "created",
                    Some("nested/tree.yaml".to_owned())
                ),
            ]
        );
        assert_eq!(
            report.to_string(),
            "3 template(s): 3 created, 0 unchanged, 0 replaced"
        );

        // Every template reads back equal to its file.
        for outcome in &report.templates {
            let source = outcome.source.as_deref().expect("registered from a file");
            let file = ValidatedTemplate::from_path(source, Strictness::Strict)?.template;
            let stored = registry
                .get(
                    &outcome.key.namespace,
                    &outcome.key.name,
                    Some(&outcome.key.version),
                )
                .await?;
            assert_eq!(stored.template, file, "{}", outcome.key);
            assert_eq!(stored.named_task_id, outcome.named_task_id);
            assert_eq!(stored.key, outcome.key);
        }
        Ok(())
    })
    .await
}

#[tokio::test]
async fn registering_unchanged_templates_again_writes_nothing() -> anyhow::Result<()> {
    harness::run(|pool| async move {
        let registry = TemplateRegistry::new(pool);
        let first = registry
            .register_directory(&fixtures(), RegisterOptions::default())
            .await?;
        let linear = key("registry_it", "linear_math", "1.0.0")?;
        let before = registry
            .get(&linear.namespace, &linear.name, Some(&linear.version))
            .await?;

        for options in [RegisterOptions::default(), RegisterOptions::forced()] {
            let again = registry.register_directory(&fixtures(), options).await?;
            assert_eq!(again.unchanged(), 3, "{again}");
            for (old, new) in first.templates.iter().zip(&again.templates) {
                assert_eq!(old.key, new.key);
                assert_eq!(old.named_task_id, new.named_task_id, "ids are kept");
                assert_eq!(new.change, Change::Unchanged);
            }
        }
        // Nothing was written: the row's update time did not move.
        let after = registry
            .get(&linear.namespace, &linear.name, Some(&linear.version))
            .await?;
        assert_eq!(after.updated_at, before.updated_at);
        assert_eq!(after.registered_at, before.registered_at);
        Ok(())
    })
    .await
}

#[tokio::test]
async fn a_changed_template_with_the_same_version_is_rejected_with_its_differences()
-> anyhow::Result<()> {
    harness::run(|pool| async move {
        let registry = TemplateRegistry::new(pool);
        let scratch = Scratch::new()?;
        scratch.write(
            "orders.yaml",
            &template("orders", "1.0.0", "{callable: Scratch::Second}"),
        )?;
        scratch.write(
            "invoices.yaml",
            &template("invoices", "1.0.0", "{callable: Scratch::Second}"),
        )?;
        registry
            .register_directory(scratch.path(), RegisterOptions::default())
            .await?;

        // Change both templates without a new version, and add a third template.
        scratch.write(
            "orders.yaml",
            &template(
                "orders",
                "1.0.0",
                "{callable: Scratch::SecondV2, initialization: {batch: 10}}",
            ),
        )?;
        scratch.write(
            "invoices.yaml",
            &format!(
                "{}  - name: third\n    handler: {{callable: Scratch::Third}}\n",
                template("invoices", "1.0.0", "{callable: Scratch::Second}")
            ),
        )?;
        scratch.write(
            "refunds.yaml",
            &template("refunds", "1.0.0", "{callable: Scratch::Second}"),
        )?;
        let error = registry
            .register_directory(scratch.path(), RegisterOptions::default())
            .await
            .expect_err("changed templates must be rejected");
        let RegisterError::Changed { conflicts } = &error else {
            panic!("expected a conflict, got {error}");
        };
        let keys: Vec<String> = conflicts.iter().map(|c| c.key.to_string()).collect();
        assert_eq!(keys, ["scratch/invoices:1.0.0", "scratch/orders:1.0.0"]);
        let orders: Vec<&str> = conflicts[1]
            .differences
            .iter()
            .map(|difference| difference.path.as_str())
            .collect();
        assert_eq!(
            orders,
            [
                "steps[second].handler.callable",
                "steps[second].handler.initialization.batch",
            ]
        );
        insta::assert_snapshot!(scratch.redact(&error.to_string()));

        // All or nothing: the new template was not registered either, and the stored ones
        // kept their content.
        let refunds = key("scratch", "refunds", "1.0.0")?;
        assert!(
            registry
                .get(&refunds.namespace, &refunds.name, None)
                .await
                .is_err()
        );
        let orders = key("scratch", "orders", "1.0.0")?;
        let stored = registry
            .get(&orders.namespace, &orders.name, Some(&orders.version))
            .await?;
        let second = stored.template.step_by_name("second").expect("a step");
        assert_eq!(second.handler.callable, "Scratch::Second");
        Ok(())
    })
    .await
}

#[tokio::test]
async fn a_forced_registration_replaces_changed_templates() -> anyhow::Result<()> {
    harness::run(|pool| async move {
        let registry = TemplateRegistry::new(pool);
        let scratch = Scratch::new()?;
        scratch.write(
            "orders.yaml",
            &template("orders", "1.0.0", "{callable: Scratch::Second}"),
        )?;
        scratch.write(
            "invoices.yaml",
            &template("invoices", "1.0.0", "{callable: Scratch::Second}"),
        )?;
        let first = registry
            .register_directory(scratch.path(), RegisterOptions::default())
            .await?;
        scratch.write(
            "orders.yaml",
            &template("orders", "1.0.0", "{callable: Scratch::SecondV2}"),
        )?;

        let report = registry
            .register_directory(scratch.path(), RegisterOptions::forced())
            .await?;
        assert_eq!(
            report.to_string(),
            "2 template(s): 0 created, 1 unchanged, 1 replaced"
        );
        let orders = key("scratch", "orders", "1.0.0")?;
        let outcome = report.get(&orders).expect("orders was registered");
        let Change::Replaced { differences } = &outcome.change else {
            panic!("expected a replacement, got {:?}", outcome.change);
        };
        assert_eq!(differences.len(), 1);
        assert_eq!(differences[0].path, "steps[second].handler.callable");
        assert_eq!(
            differences[0].kind,
            DifferenceKind::Changed {
                stored: "Scratch::Second".into(),
                new: "Scratch::SecondV2".into(),
            }
        );
        // The row is updated in place: same id, new content.
        let before = first.get(&orders).expect("registered before");
        assert_eq!(outcome.named_task_id, before.named_task_id);
        let stored = registry
            .get(&orders.namespace, &orders.name, Some(&orders.version))
            .await?;
        let second = stored.template.step_by_name("second").expect("a step");
        assert_eq!(second.handler.callable, "Scratch::SecondV2");
        assert!(stored.updated_at > stored.registered_at);
        Ok(())
    })
    .await
}

#[tokio::test]
async fn invalid_files_are_all_reported_and_nothing_is_registered() -> anyhow::Result<()> {
    harness::run(|pool| async move {
        let registry = TemplateRegistry::new(pool);
        let scratch = Scratch::new()?;
        scratch.write(
            "good.yaml",
            &template("good", "1.0.0", "{callable: Scratch::Second}"),
        )?;
        scratch.write(
            "copy/good.yaml",
            &template("good", "1.0.0", "{callable: Scratch::Other}"),
        )?;
        scratch.write(
            "bad.yaml",
            "name: bad\nnamespace_name: scratch\nversion: one\nsteps:\n  - name: a\n    \
             handler: {callable: A}\n    dependencies: [missing]\n",
        )?;
        scratch.write("broken.yml", "name: [unclosed\n")?;
        let error = registry
            .register_directory(scratch.path(), RegisterOptions::default())
            .await
            .expect_err("invalid files");
        let RegisterError::Invalid {
            failures,
            duplicates,
        } = &error
        else {
            panic!("expected invalid files, got {error}");
        };
        assert_eq!(failures.len(), 2);
        assert_eq!(duplicates.len(), 1);
        insta::assert_snapshot!(scratch.redact(&error.to_string()));

        let good = key("scratch", "good", "1.0.0")?;
        assert!(
            registry
                .get(&good.namespace, &good.name, None)
                .await
                .is_err()
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn paths_without_templates_are_an_error() -> anyhow::Result<()> {
    harness::run(|pool| async move {
        let registry = TemplateRegistry::new(pool);
        let scratch = Scratch::new()?;
        scratch.write("notes.txt", "no templates here")?;
        let error = registry
            .register_directory(scratch.path(), RegisterOptions::default())
            .await
            .expect_err("no templates");
        assert!(
            matches!(error, RegisterError::NoTemplates { .. }),
            "{error}"
        );
        assert_eq!(
            scratch.redact(&error.to_string()),
            "no template files (*.yml, *.yaml) found under <scratch>"
        );

        let missing = scratch.path().join("missing");
        let error = registry
            .register_directory(&missing, RegisterOptions::default())
            .await
            .expect_err("a missing directory");
        assert!(matches!(error, RegisterError::Invalid { .. }), "{error}");
        Ok(())
    })
    .await
}

#[tokio::test]
async fn files_and_directories_are_registered_together() -> anyhow::Result<()> {
    harness::run(|pool| async move {
        let registry = TemplateRegistry::new(pool);
        let scratch = Scratch::new()?;
        let file = scratch.write(
            "extra.yaml",
            &template("extra", "0.1.0", "{callable: Scratch::Second}"),
        )?;
        // The same file given twice (directly and through its directory) is read once.
        let report = registry
            .register_paths(
                &[fixtures(), file.clone(), scratch.path().to_owned()],
                RegisterOptions::default(),
            )
            .await?;
        assert_eq!(report.created(), 4, "{report}");
        Ok(())
    })
    .await
}

#[tokio::test]
async fn templates_in_memory_are_registered_once_per_identity() -> anyhow::Result<()> {
    harness::run(|pool| async move {
        let registry = TemplateRegistry::new(pool);
        let load = |text: &str| {
            ValidatedTemplate::from_yaml_str(text, Strictness::Strict).map(|loaded| loaded.template)
        };
        let one = load(&template("one", "1.0.0", "{callable: A}"))?;
        let other = load(&template("one", "1.0.0", "{callable: B}"))?;
        let report = registry
            .register_templates(&[one.clone(), one.clone()], false)
            .await?;
        assert_eq!(report.created(), 1);

        let error = registry
            .register_templates(&[one, other], false)
            .await
            .expect_err("two contents for one identity");
        assert_eq!(
            error.to_string(),
            "1 problem(s) with the template files; nothing was registered\n  - \
             scratch/one:1.0.0 is defined by both (template #1) and (template #2)"
        );
        Ok(())
    })
    .await
}

/// Eight registrations of the same directory race; each template is created exactly once and
/// every other registration finds it unchanged.
#[tokio::test]
async fn concurrent_registrations_of_one_directory_converge() -> anyhow::Result<()> {
    harness::run(|pool| async move {
        const RACERS: usize = 8;
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(RACERS));
        let mut racers = tokio::task::JoinSet::new();
        for _ in 0..RACERS {
            let registry = TemplateRegistry::new(pool.clone());
            let start = std::sync::Arc::clone(&start);
            racers.spawn(async move {
                start.wait().await;
                registry
                    .register_directory(&fixtures(), RegisterOptions::default())
                    .await
            });
        }
        let mut changes: HashMap<String, Vec<&'static str>> = HashMap::new();
        let mut ids: HashMap<String, Vec<_>> = HashMap::new();
        while let Some(joined) = racers.join_next().await {
            let report = joined??;
            for outcome in report.templates {
                changes
                    .entry(outcome.key.to_string())
                    .or_default()
                    .push(outcome.change.label());
                ids.entry(outcome.key.to_string())
                    .or_default()
                    .push(outcome.named_task_id);
            }
        }
        assert_eq!(changes.len(), 3);
        for (template, mut labels) in changes {
            labels.sort_unstable();
            let mut expected = vec!["unchanged"; RACERS - 1];
            expected.insert(0, "created");
            assert_eq!(labels, expected, "{template}");
        }
        for (template, named_task_ids) in ids {
            assert!(
                named_task_ids.windows(2).all(|pair| pair[0] == pair[1]),
                "{template} has one row"
            );
        }
        Ok(())
    })
    .await
}
