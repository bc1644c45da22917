//! Hand-written invalid templates under `tests/fixtures/invalid/`, one or a few rules each,
//! loaded in strict mode. Every outcome is snapshot, and together they must cover every rule.

use std::collections::BTreeSet;
use std::error::Error as _;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use tasker_models::template::{Rule, Strictness, TemplateError, ValidatedTemplate};

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/invalid");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixture directory")
        .map(|entry| entry.expect("entry").path())
        .collect();
    files.sort();
    files
}

fn render(result: &Result<tasker_models::template::LoadedTemplate, TemplateError>) -> String {
    let mut out = String::new();
    match result {
        Ok(loaded) => {
            let _ = writeln!(out, "loaded with {} warning(s)", loaded.warnings.len());
            for warning in &loaded.warnings {
                let _ = writeln!(out, "{warning}");
            }
        }
        Err(TemplateError::Invalid { problems }) => {
            let _ = writeln!(
                out,
                "rejected: {}",
                result
                    .as_ref()
                    .err()
                    .map(ToString::to_string)
                    .unwrap_or_default()
            );
            let _ = writeln!(out, "{problems}");
        }
        Err(error) => {
            let _ = write!(out, "rejected: {error}");
            let mut source = error.source();
            while let Some(cause) = source {
                let _ = write!(out, "\n  caused by: {cause}");
                source = cause.source();
            }
            out.push('\n');
        }
    }
    out
}

#[test]
fn invalid_templates_report_every_problem() {
    let mut covered = BTreeSet::new();
    for path in fixtures() {
        let name = path
            .file_stem()
            .and_then(|stem| stem.to_str())
            .expect("utf-8 name")
            .to_owned();
        let result = ValidatedTemplate::from_path(&path, Strictness::Strict);
        match &result {
            Ok(loaded) => covered.extend(loaded.warnings.iter().map(|problem| problem.rule)),
            Err(error) => covered.extend(error.problems().iter().map(|problem| problem.rule)),
        }
        insta::assert_snapshot!(name, render(&result));
    }
    let all = [
        Rule::Document,
        Rule::Type,
        Rule::Required,
        Rule::UnknownKey,
        Rule::Alias,
        Rule::AliasConflict,
        Rule::Choice,
        Rule::Range,
        Rule::Length,
        Rule::Identifier,
        Rule::Version,
        Rule::Format,
        Rule::DuplicateStep,
        Rule::UnknownDependency,
        Rule::SelfDependency,
        Rule::DuplicateDependency,
        Rule::Cycle,
        Rule::Decision,
        Rule::DeferredConvergence,
        Rule::Batch,
        Rule::Retry,
        Rule::JsonSchema,
        Rule::EventName,
        Rule::Publisher,
        Rule::DuplicateEvent,
        Rule::Override,
        Rule::NoSteps,
    ];
    let missing: Vec<Rule> = all
        .into_iter()
        .filter(|rule| !covered.contains(rule))
        .collect();
    assert!(missing.is_empty(), "rules without a fixture: {missing:?}");
}

#[test]
fn lenient_mode_downgrades_only_unknown_keys_and_legacy_values() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/invalid");
    let unknown = ValidatedTemplate::from_path(&dir.join("unknown_keys.yaml"), Strictness::Lenient)
        .expect("only unknown keys: loads leniently");
    assert_eq!(unknown.warnings.len(), 6);
    assert!(
        unknown
            .warnings
            .iter()
            .all(|warning| warning.rule == Rule::UnknownKey)
    );
    let ranges = ValidatedTemplate::from_path(&dir.join("ranges.yaml"), Strictness::Lenient)
        .expect_err("real range errors stay errors");
    let zero = ranges
        .problems()
        .iter()
        .find(|problem| problem.path == "steps[1].retry.max_attempts");
    assert!(
        zero.is_some_and(|problem| !problem.is_error()),
        "max_attempts: 0 is only a warning"
    );
}
