//! The pre-scan: limits are named, deep nesting is refused without parsing, real templates pass.

use super::*;
use crate::template::{Strictness, TemplateError, ValidatedTemplate};

fn breach(text: &str) -> Option<TemplateLimit> {
    prescan(text, &TemplateLimits::DEFAULT)
        .err()
        .map(|b| b.limit)
}

#[test]
fn a_hundred_thousand_nested_brackets_are_refused_before_parsing() {
    let text = "[".repeat(100_000);
    let error = ValidatedTemplate::from_yaml_str(&text, Strictness::Strict).expect_err("refused");
    assert!(
        matches!(&error, TemplateError::Limit { breach } if breach.limit == TemplateLimit::FlowDepth),
        "a flow-depth limit error, got {error:?}"
    );
    assert!(error.to_string().contains("max_flow_depth"), "{error}");
}

#[test]
fn nested_braces_and_mixed_flow_collections_count_together() {
    assert_eq!(breach(&"{a: ".repeat(40)), Some(TemplateLimit::FlowDepth));
    assert_eq!(breach(&"[{".repeat(20)), Some(TemplateLimit::FlowDepth));
    assert_eq!(breach(&"[".repeat(32)), None);
}

#[test]
fn brackets_in_quotes_and_comments_do_not_count() {
    let quoted = format!("name: \"{}\"\n", "[".repeat(100));
    assert_eq!(breach(&quoted), None);
    let single = format!("name: '{}'\n", "{".repeat(100));
    assert_eq!(breach(&single), None);
    let comment = format!("name: x # {}\n", "[".repeat(100));
    assert_eq!(breach(&comment), None);
}

#[test]
fn deep_indentation_is_refused() {
    let mut text = String::new();
    for level in 0..100 {
        text.push_str(&" ".repeat(level));
        text.push_str("a:\n");
    }
    assert_eq!(breach(&text), Some(TemplateLimit::IndentDepth));
}

#[test]
fn too_many_steps_and_too_many_bytes_are_refused() {
    let mut text = String::from("steps:\n");
    for index in 0..10_001 {
        text.push_str(&format!("  - name: s{index}\n"));
    }
    assert_eq!(breach(&text), Some(TemplateLimit::Steps));
    let big = "a".repeat(TemplateLimits::DEFAULT.max_bytes + 1);
    assert_eq!(breach(&big), Some(TemplateLimit::Bytes));
}

#[test]
fn the_shipped_style_of_template_passes() {
    let text = "name: linear\nnamespace_name: math\nversion: 1.0.0\nsteps:\n  - name: a\n    handler:\n      callable: x\n      initialization: {k: [1, 2, {z: 3}]}\n  - name: b\n    dependencies: [a]\n";
    assert_eq!(prescan(text, &TemplateLimits::DEFAULT), Ok(()));
}
