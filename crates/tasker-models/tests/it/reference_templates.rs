//! Every template of the predecessor's fixtures (`../shared/fixtures/reference/templates`) loads
//! in lenient mode; the warnings are snapshot so that any change in what is tolerated gets
//! reviewed. In strict mode the same files are rejected for exactly those warnings.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use tasker_models::template::{Severity, Strictness, load_directory};

fn fixtures_dir() -> PathBuf {
    // The shared fixtures sit beside the repository, in CI as on a development machine.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/reference/templates")
}

fn relative(path: &Path) -> String {
    path.strip_prefix(fixtures_dir())
        .unwrap_or(path)
        .display()
        .to_string()
}

#[test]
fn reference_templates_load_in_lenient_mode() {
    let report = load_directory(&fixtures_dir(), Strictness::Lenient)
        .expect("fixture directory is readable");
    assert_eq!(report.files.len(), 36, "every fixture file is found");
    let mut summary = String::new();
    for file in &report.files {
        match &file.result {
            Ok(loaded) => {
                let _ = writeln!(
                    summary,
                    "{}: ok, {} warning(s)",
                    relative(&file.path),
                    loaded.warnings.len()
                );
                for warning in &loaded.warnings {
                    let _ = writeln!(summary, "  {}", warning.to_string().replace('\n', "\n  "));
                }
            }
            Err(error) => panic!(
                "{} failed to load: {error}: {:#?}",
                relative(&file.path),
                error.problems()
            ),
        }
    }
    insta::assert_snapshot!(summary);

    let duplicates: Vec<(String, String, String)> = report
        .duplicates
        .iter()
        .map(|duplicate| {
            (
                duplicate.key.clone(),
                relative(&duplicate.first),
                relative(&duplicate.second),
            )
        })
        .collect();
    assert_eq!(
        duplicates,
        [(
            "payments/credit_card_payment:1.0.0".to_owned(),
            "config-tasks/credit_card_payment.yaml".to_owned(),
            "config-tasks/payments/credit_card_payment/1.0.0.yaml".to_owned(),
        )]
    );
}

#[test]
fn strict_mode_rejects_exactly_what_lenient_mode_warns_about() {
    let lenient = load_directory(&fixtures_dir(), Strictness::Lenient).expect("readable");
    let strict = load_directory(&fixtures_dir(), Strictness::Strict).expect("readable");
    for (lenient, strict) in lenient.files.iter().zip(&strict.files) {
        let warnings = lenient
            .result
            .as_ref()
            .map(|loaded| loaded.warnings.clone())
            .expect("lenient loads");
        let promoted: Vec<String> = warnings
            .iter()
            .filter(|warning| {
                matches!(warning.rule.code(), "unknown-key")
                    || warning.message.contains("is read as 1")
            })
            .map(|warning| warning.path.clone())
            .collect();
        match &strict.result {
            Ok(_) => assert!(
                promoted.is_empty(),
                "{} should fail strictly",
                relative(&strict.path)
            ),
            Err(error) => {
                let errors: Vec<String> = error
                    .problems()
                    .iter()
                    .filter(|problem| problem.severity == Severity::Error)
                    .map(|problem| problem.path.clone())
                    .collect();
                assert_eq!(errors, promoted, "{}", relative(&strict.path));
            }
        }
    }
}
