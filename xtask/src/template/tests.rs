//! Tests for `cargo xtask template validate`.

use super::*;

fn fixtures(dir: &str) -> PathBuf {
    crate::workspace_root()
        .join("crates/tasker-models/tests/fixtures")
        .join(dir)
}

/// The predecessor's templates, beside the repository (`../shared/fixtures/reference/templates`).
fn reference_templates() -> PathBuf {
    crate::workspace_root().join("../shared/fixtures/reference/templates")
}

#[test]
fn reference_templates_pass_leniently_except_the_duplicate_registration() {
    let summary = validate(&[reference_templates()], Strictness::Lenient);
    assert_eq!(summary.files, 36);
    // Two files register payments/credit_card_payment:1.0.0.
    assert_eq!((summary.failed, summary.errors), (1, 1));
    assert!(summary.warnings > 0);
}

#[test]
fn invalid_templates_fail_with_every_problem_counted() {
    let summary = validate(&[fixtures("invalid")], Strictness::Strict);
    assert_eq!(summary.files, 28);
    assert!(summary.failed >= 24, "{summary:?}");
    assert!(
        summary.errors > summary.failed,
        "files report several errors each"
    );
    let result = run(TemplateCmd::Validate {
        lenient: false,
        paths: vec![fixtures("invalid")],
    });
    assert!(result.is_err());
}

#[test]
fn a_valid_file_passes_and_a_missing_one_fails() {
    let good = reference_templates().join("rust/diamond_pattern.yaml");
    let summary = validate(std::slice::from_ref(&good), Strictness::Lenient);
    assert_eq!(
        summary,
        Summary {
            files: 1,
            failed: 0,
            errors: 0,
            warnings: 1
        }
    );
    assert!(
        run(TemplateCmd::Validate {
            lenient: true,
            paths: vec![good]
        })
        .is_ok()
    );
    let missing = validate(&[fixtures("does-not-exist.yaml")], Strictness::Strict);
    assert_eq!((missing.files, missing.failed, missing.errors), (1, 1, 1));
}
