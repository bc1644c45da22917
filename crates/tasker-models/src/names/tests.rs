//! Tests for validated names.

use super::*;

/// The shared table of namespace names (`tests/fixtures/namespace_names.txt`): each name and
/// whether the namespace rule accepts it.
fn namespace_cases() -> Vec<(String, bool)> {
    include_str!("../../tests/fixtures/namespace_names.txt")
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (sign, name) = line.split_at(2);
            let name: String = serde_json::from_str(name).expect("the name is a JSON string");
            (name, sign == "+ ")
        })
        .collect()
}

/// `NamespaceName` and template validation accept exactly the table's names.
#[test]
fn namespace_rule_follows_the_shared_table() {
    let cases = namespace_cases();
    assert!(cases.len() > 40, "the table is read");
    for (name, accepted) in cases {
        assert_eq!(
            NamespaceName::new(name.as_str()).is_ok(),
            accepted,
            "{name:?}"
        );
        let yaml = format!(
            "name: t\nnamespace_name: {}\nversion: 1.0.0\nsteps:\n  - name: a\n    handler: {{ callable: A }}\n",
            serde_json::to_string(&name).expect("serializes")
        );
        let validated = crate::template::ValidatedTemplate::from_yaml_str(
            &yaml,
            crate::template::Strictness::Strict,
        );
        let namespace_problems: Vec<_> = match &validated {
            Ok(_) => Vec::new(),
            Err(error) => error
                .problems()
                .iter()
                .filter(|problem| problem.path == "namespace_name")
                .collect(),
        };
        assert_eq!(
            namespace_problems.is_empty(),
            accepted,
            "{name:?}: {namespace_problems:?}"
        );
        assert_eq!(
            validated.is_ok(),
            accepted,
            "{name:?}: only the namespace can be wrong"
        );
        if !accepted {
            assert_eq!(
                namespace_problems[0].rule,
                crate::template::Rule::Identifier
            );
        }
    }
}

#[test]
fn namespace_errors_name_the_rule() {
    let cases = [
        ("", "invalid namespace name \"\": must not be empty"),
        (
            "typescript_e2e_checkpoint_yield",
            "invalid namespace name \"typescript_e2e_checkpoint_yield\": is 31 characters long; the limit is 29",
        ),
        (
            "my-namespace",
            "invalid namespace name \"my-namespace\": contains '-' at position 2; only lowercase letters a-z, digits and '_' are allowed",
        ),
        (
            "pay_Ments",
            "invalid namespace name \"pay_Ments\": contains 'M' at position 4; only lowercase letters a-z, digits and '_' are allowed",
        ),
        (
            "Payments2",
            "invalid namespace name \"Payments2\": must start with a lowercase letter a-z, not 'P'",
        ),
        (
            "_private",
            "invalid namespace name \"_private\": must start with a lowercase letter a-z, not '_'",
        ),
        (
            "123namespace",
            "invalid namespace name \"123namespace\": must start with a lowercase letter a-z, not '1'",
        ),
    ];
    for (name, message) in cases {
        let err = NamespaceName::new(name).expect_err(name);
        assert_eq!(err.to_string(), message);
        // The reason is in the message once, not also a source a chain printer repeats.
        assert!(std::error::Error::source(&err).is_none());
    }
    assert!(matches!(
        NamespaceName::new("Payments2")
            .expect_err("upper case")
            .reason(),
        NameError::InvalidStart {
            found: 'P',
            alphabet: Alphabet::Lowercase
        }
    ));
}

#[test]
fn task_and_step_names_keep_the_identifier_alphabet() {
    for name in ["Payments2", "_private", "ProcessPayment", "a"] {
        assert!(TaskName::new(name).is_ok(), "{name:?}");
        assert!(StepName::new(name).is_ok(), "{name:?}");
    }
    assert_eq!(
        StepName::new("1st").expect_err("digit first").to_string(),
        "invalid step name \"1st\": must start with an ASCII letter or '_', not '1'"
    );
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
        NameError::InvalidStart { found: 'é', .. }
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
