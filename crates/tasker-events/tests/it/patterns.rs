//! The pattern grammar, as a table of (pattern, name, matches) and of refused patterns.

use tasker_events::name::{InvalidPattern, Pattern};

#[test]
fn matching_table() {
    let cases: &[(&str, &str, bool)] = &[
        ("*", "task.completed", true),
        ("*", "payment.refund.failed", true),
        ("task.*", "task.completed", true),
        ("task.*", "task.initialize_requested", true),
        ("task.*", "step.completed", false),
        ("task.*", "taskx.completed", false),
        ("task.*", "task", false),
        ("step.*", "step.enqueue_requested", true),
        ("step.*", "task.failed", false),
        ("step.failed", "step.failed", true),
        ("step.failed", "step.failed_again", false),
        ("step.failed", "task.failed", false),
        ("payment.*", "payment.processed", true),
        ("payment.*", "payment.refund.failed", true),
        ("payment.refund.*", "payment.refund.failed", true),
        ("payment.refund.*", "payment.processed", false),
        ("payment.refund.*", "payment.refund", false),
        ("payment.processed", "payment.processed", true),
        ("payment.processed", "payment.processed.late", false),
    ];
    for (pattern, name, expected) in cases {
        let parsed = Pattern::parse(pattern).unwrap();
        assert_eq!(parsed.matches(name), *expected, "{pattern} vs {name}");
        assert_eq!(parsed.to_string(), *pattern);
    }
}

#[test]
fn refused_patterns() {
    let cases = [
        "",
        "**",
        "*.failed",
        "task.*.x",
        "task*",
        "task.*.*",
        ".*",
        "task..*",
        "Task.*",
        "task.completed.",
        "task",
        "step failed",
    ];
    let rendered: Vec<String> = cases
        .iter()
        .map(|pattern| {
            let error = Pattern::parse(pattern).unwrap_err();
            assert!(
                matches!(
                    error,
                    InvalidPattern::MisplacedWildcard { .. } | InvalidPattern::Name { .. }
                ),
                "{pattern}"
            );
            error.to_string()
        })
        .collect();
    insta::assert_snapshot!(rendered.join("\n"));
}
