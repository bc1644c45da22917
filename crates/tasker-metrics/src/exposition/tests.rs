//! Unit tests of the name, label and value rules.

use super::{escape_label, gauge_name, render_f64, sanitize_label, sanitize_name, with_unit};

#[test]
fn names_are_sanitized_and_runs_collapse() {
    assert_eq!(
        sanitize_name("db.client.operation.duration"),
        "db_client_operation_duration"
    );
    assert_eq!(sanitize_name("a..b-c:d"), "a_b_c:d");
    assert_eq!(sanitize_name("1st"), "_1st");
    assert_eq!(sanitize_label("tasker.namespace"), "tasker_namespace");
    assert_eq!(sanitize_label("a:b"), "a_b");
}

#[test]
fn units_become_suffixes_once() {
    assert_eq!(with_unit("x_duration", "s", false), "x_duration_seconds");
    assert_eq!(with_unit("x_seconds", "s", false), "x_seconds");
    assert_eq!(with_unit("x", "{message}", false), "x");
    assert_eq!(with_unit("x", "By", false), "x_bytes");
    assert_eq!(with_unit("x", "1", true), "x_ratio");
    assert_eq!(with_unit("x", "1", false), "x");
}

#[test]
fn gauges_avoid_reserved_suffixes() {
    assert_eq!(
        gauge_name("db_client_connection_count", "{connection}"),
        "db_client_connection_count_value"
    );
    assert_eq!(
        gauge_name("tasker_queue_depth", "{message}"),
        "tasker_queue_depth"
    );
}

#[test]
fn label_values_and_floats_are_escaped() {
    assert_eq!(escape_label("a\"b\\c\nd"), r#"a\"b\\c\nd"#);
    assert_eq!(render_f64(0.005), "0.005");
    assert_eq!(render_f64(1.0), "1");
    assert_eq!(render_f64(f64::INFINITY), "+Inf");
    assert_eq!(render_f64(f64::NAN), "NaN");
}
