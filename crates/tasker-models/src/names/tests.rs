//! Tests for validated names.

use super::*;

#[test]
fn namespace_rule_matches_the_queue_name_limit() {
    let ok = [
        "a",
        "_private",
        "ts_e2e_checkpoint",
        &"a".repeat(29),
        "Payments2",
    ];
    for name in ok {
        assert!(
            NamespaceName::new(name).is_ok(),
            "{name:?} should be accepted"
        );
    }
    let cases = [
        ("", "invalid namespace name \"\": must not be empty"),
        (
            "typescript_e2e_checkpoint_yield",
            "invalid namespace name \"typescript_e2e_checkpoint_yield\": is 31 characters long; the limit is 29",
        ),
        (
            "my-namespace",
            "invalid namespace name \"my-namespace\": contains '-' at position 2; only ASCII letters, digits and '_' are allowed",
        ),
        (
            "my namespace",
            "invalid namespace name \"my namespace\": contains ' ' at position 2; only ASCII letters, digits and '_' are allowed",
        ),
        (
            "my.namespace",
            "invalid namespace name \"my.namespace\": contains '.' at position 2; only ASCII letters, digits and '_' are allowed",
        ),
        (
            "123namespace",
            "invalid namespace name \"123namespace\": must start with an ASCII letter or '_', not '1'",
        ),
    ];
    for (name, message) in cases {
        let err = NamespaceName::new(name).expect_err(name);
        assert_eq!(err.to_string(), message);
        // The reason is in the message once, not also a source a chain printer repeats.
        assert!(std::error::Error::source(&err).is_none());
    }
    assert!(NamespaceName::new("a".repeat(30)).is_err());
}

#[test]
fn step_and_task_names_have_their_own_limits() {
    assert!(StepName::new("s".repeat(STEP_NAME_MAX_LEN)).is_ok());
    assert!(StepName::new("s".repeat(STEP_NAME_MAX_LEN + 1)).is_err());
    assert!(TaskName::new("t".repeat(TASK_NAME_MAX_LEN)).is_ok());
    assert!(matches!(
        TaskName::new("t".repeat(TASK_NAME_MAX_LEN + 1))
            .expect_err("too long")
            .reason(),
        NameError::TooLong { .. }
    ));
    assert!(matches!(
        StepName::new("é").expect_err("non-ascii").reason(),
        NameError::InvalidStart { found: 'é' }
    ));
}

#[test]
fn names_serde_validates() {
    let name: StepName = serde_json::from_str("\"validate_order\"").expect("valid");
    assert_eq!(name.as_str(), "validate_order");
    assert_eq!(
        serde_json::to_string(&name).expect("serializes"),
        "\"validate_order\""
    );
    let err = serde_json::from_str::<StepName>("\"validate order\"").expect_err("invalid");
    assert!(err.to_string().contains("invalid step name"), "{err}");
}

#[test]
fn versions_are_semver_and_keep_their_text() {
    let version = TemplateVersion::new("1.2.3-beta.1+build.5").expect("valid");
    assert_eq!(version.as_str(), "1.2.3-beta.1+build.5");
    assert_eq!(version.semver().major, 1);
    for bad in ["1.0", "v1.0.0", "1.0.0.0", "", "01.0.0"] {
        let err = TemplateVersion::new(bad).expect_err(bad);
        assert!(
            matches!(err, InvalidVersion::NotSemver { .. }),
            "{bad}: {err}"
        );
    }
    let long = format!("1.0.0-{}", "a".repeat(VERSION_MAX_LEN));
    assert!(matches!(
        TemplateVersion::new(long),
        Err(InvalidVersion::TooLong { .. })
    ));
}
