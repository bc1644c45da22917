//! Every instrument appears in the exposition after one recording, with the value recorded;
//! and a snapshot of the whole exposition.

use crate::support::{installed, record_everything};

/// One line per instrument that must appear verbatim after `record_everything`.
const EXPECTED: &[&str] = &[
    r#"db_client_operation_duration_seconds_bucket{db_operation_name="claim_steps",db_system_name="postgresql",le="0.005"} 1"#,
    r#"db_client_operation_duration_seconds_sum{db_operation_name="claim_steps",db_system_name="postgresql"} 0.003"#,
    r#"db_client_connection_count_value{db_client_connection_state="used"} 4"#,
    r#"db_client_connection_count_value{db_client_connection_state="idle"} 6"#,
    r#"db_client_connection_wait_time_seconds_bucket{le="0.001"} 1"#,
    r#"messaging_client_sent_messages_total{messaging_destination_name="orchestration_step_results",messaging_system="pgmq"} 2"#,
    r#"messaging_client_consumed_messages_total{messaging_destination_name="orchestration_step_results",messaging_system="pgmq"} 2"#,
    r#"tasker_messages_acked_total{messaging_destination_name="orchestration_step_results",messaging_system="pgmq"} 1"#,
    r#"tasker_messages_dead_lettered_total{messaging_destination_name="worker_payments_queue",messaging_system="pgmq"} 1"#,
    r#"tasker_queue_depth{messaging_destination_name="worker_payments_queue",messaging_system="pgmq"} 17"#,
    r#"messaging_client_operation_duration_seconds_count{messaging_destination_name="orchestration_step_results",messaging_operation_name="receive",messaging_system="pgmq"} 1"#,
    r#"messaging_client_operation_duration_seconds_count{messaging_destination_name="worker_payments_queue",messaging_operation_name="send",messaging_system="pgmq"} 1"#,
    r#"tasker_tasks_created_total{tasker_namespace="payments"} 1"#,
    r#"tasker_tasks_completed_total{tasker_namespace="payments"} 1"#,
    r#"tasker_tasks_failed_total{tasker_namespace="payments"} 1"#,
    r#"tasker_step_duration_seconds_bucket{tasker_handler="charge_card",le="0.25"} 1"#,
    r#"tasker_step_duration_seconds_bucket{tasker_handler="charge_card",le="0.1"} 0"#,
    r#"tasker_claim_batch_size_bucket{le="10"} 1"#,
    "tasker_claim_batch_size_sum 7",
    r#"tasker_task_duration_seconds_bucket{tasker_namespace="payments",le="+Inf"} 1"#,
    r#"tasker_task_duration_seconds_sum{tasker_namespace="payments"} 42"#,
    r#"tasker_cache_hits_total{tasker_cache_kind="template"} 1"#,
    r#"tasker_cache_misses_total{tasker_cache_kind="template"} 1"#,
    r#"tasker_breaker_state{tasker_component="messaging"} 2"#,
    r#"tasker_breaker_rejections_total{tasker_component="messaging"} 1"#,
    r#"tasker_auth_attempts_total{tasker_auth_method="jwt",tasker_auth_outcome="expired"} 1"#,
    r#"tasker_auth_verification_duration_seconds_bucket{tasker_auth_method="jwt",tasker_auth_outcome="expired",le="0.00005"} 1"#,
    r#"tasker_auth_denials_total{tasker_permission="tasks:create"} 1"#,
    r#"target_info{service_name="tasker-test"} 1"#,
];

#[test]
fn every_instrument_appears_with_its_value() {
    let metrics = installed();
    record_everything(&metrics);
    let text = metrics.render_prometheus();
    let missing: Vec<&str> = EXPECTED
        .iter()
        .copied()
        .filter(|line| !text.lines().any(|l| l == *line))
        .collect();
    assert!(missing.is_empty(), "missing lines {missing:#?} in\n{text}");
    // 22 instruments plus target_info, each with one TYPE line.
    assert_eq!(text.matches("# TYPE ").count(), 23, "{text}");
}

#[test]
fn counters_accumulate_and_clones_share_instruments() {
    let metrics = installed();
    let clone = metrics.clone();
    metrics.orchestration.task_created("payments");
    clone.orchestration.task_created("payments");
    clone.orchestration.task_created("shipping");
    let text = metrics.render_prometheus();
    assert!(text.contains("tasker_tasks_created_total{tasker_namespace=\"payments\"} 2\n"));
    assert!(text.contains("tasker_tasks_created_total{tasker_namespace=\"shipping\"} 1\n"));
}

#[test]
fn label_values_are_escaped() {
    let metrics = installed();
    metrics.orchestration.task_created("a\"b\\c\nd");
    let text = metrics.render_prometheus();
    assert!(
        text.contains(r#"tasker_tasks_created_total{tasker_namespace="a\"b\\c\nd"} 1"#),
        "{text}"
    );
}

#[test]
fn snapshot_of_a_fixed_set_of_recordings() {
    let metrics = installed();
    record_everything(&metrics);
    insta::assert_snapshot!(metrics.render_prometheus());
}
