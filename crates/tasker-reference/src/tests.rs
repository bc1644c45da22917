//! Tests of the reference workflow: the handlers' arithmetic, the predicted results of every
//! shipped template and the summary here; the end-to-end runs on PostgreSQL with each
//! messaging backend in [`workflow`] and [`redelivery`], the redrive of a lost step
//! message in [`redrive`], and the staleness detector in [`staleness`].

mod domain_events;
mod harness;
mod history;
mod intake;
mod redelivery;
mod redrive;
mod replies;
mod reregistration;
mod staleness;
mod workflow;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, json};
use tasker_shared::models::template::{Strictness, ValidatedTemplate};
use tasker_shared::state_machine::TaskState;

use crate::expected::{StepExpectation, expect};
use crate::handlers::{ComputeError, Operation, compute};
use crate::report::percentiles;

fn inputs(pairs: &[(&str, serde_json::Value)]) -> Map<String, serde_json::Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

#[test]
fn arithmetic() {
    let context = json!({"value": 5});
    type Case = (
        Operation,
        Map<String, serde_json::Value>,
        Vec<i64>,
        Result<i64, ComputeError>,
    );
    let cases: Vec<Case> = vec![
        (Operation::Seed, inputs(&[]), vec![], Ok(5)),
        (
            Operation::Seed,
            inputs(&[("offset", json!(2))]),
            vec![],
            Ok(7),
        ),
        (
            Operation::Add,
            inputs(&[("addend", json!(3))]),
            vec![5],
            Ok(8),
        ),
        (Operation::Add, inputs(&[]), vec![6, 15], Ok(21)),
        (
            Operation::Multiply,
            inputs(&[("factor", json!(2))]),
            vec![8],
            Ok(16),
        ),
        (Operation::Multiply, inputs(&[]), vec![3, 4], Ok(12)),
        (
            Operation::FlakyOnce,
            inputs(&[("addend", json!(100))]),
            vec![5],
            Ok(105),
        ),
        (
            Operation::Add,
            inputs(&[("addend", json!("three"))]),
            vec![5],
            Err(ComputeError::InputNotInteger {
                key: "addend",
                found: "\"three\"".to_owned(),
            }),
        ),
        (
            Operation::Multiply,
            inputs(&[]),
            vec![i64::MAX, 2],
            Err(ComputeError::Overflow {
                operation: "multiplication",
            }),
        ),
        (
            Operation::AlwaysFails,
            inputs(&[("reason", json!("card declined"))]),
            vec![5],
            Err(ComputeError::Declined {
                reason: "card declined".to_owned(),
            }),
        ),
    ];
    for (operation, inputs, parents, expected) in cases {
        assert_eq!(
            compute(operation, &inputs, &parents, &context),
            expected,
            "{operation:?} {inputs:?} {parents:?}"
        );
    }
    assert_eq!(
        compute(Operation::Seed, &Map::new(), &[], &json!({"other": 1})),
        Err(ComputeError::MissingValue)
    );
}

fn shipped(name: &str) -> ValidatedTemplate {
    let path = harness::templates_dir().join(format!("{name}.yaml"));
    ValidatedTemplate::from_path(&path, Strictness::Strict)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        .template
}

fn values(expectation: &crate::expected::TaskExpectation) -> BTreeMap<&str, Option<i64>> {
    expectation
        .steps
        .iter()
        .map(|(name, step)| {
            let value = match step {
                StepExpectation::Value { value, .. } => Some(*value),
                _ => None,
            };
            (name.as_str(), value)
        })
        .collect()
}

/// The numbers in the templates' comments, for value 5, computed by hand.
#[test]
fn shipped_templates_predict_their_documented_results() {
    let context = json!({"value": 5});
    type Case = (
        &'static str,
        &'static [(&'static str, Option<i64>)],
        TaskState,
    );
    let cases: [Case; 6] = [
        (
            "linear",
            &[
                ("seed", Some(5)),
                ("add_three", Some(8)),
                ("double", Some(16)),
                ("subtract_one", Some(15)),
            ],
            TaskState::Complete,
        ),
        (
            "diamond",
            &[
                ("start", Some(5)),
                ("left", Some(6)),
                ("right", Some(15)),
                ("join", Some(21)),
            ],
            TaskState::Complete,
        ),
        (
            "tree",
            &[
                ("root", Some(5)),
                ("branch_left", Some(6)),
                ("branch_right", Some(7)),
                ("leaf_ll", Some(12)),
                ("leaf_lr", Some(18)),
                ("leaf_rl", Some(28)),
                ("leaf_rr", Some(35)),
            ],
            TaskState::Complete,
        ),
        (
            "mixed_dag",
            &[
                ("init", Some(5)),
                ("left", Some(10)),
                ("right", Some(15)),
                ("validate", Some(25)),
                ("transform", Some(30)),
                ("analyze", Some(11)),
                ("aggregate", Some(55)),
                ("finalize", Some(66)),
            ],
            TaskState::Complete,
        ),
        (
            "retry_once",
            &[
                ("fetch", Some(5)),
                ("flaky", Some(105)),
                ("publish", Some(210)),
            ],
            TaskState::Complete,
        ),
        (
            "permanent_failure",
            &[("validate", Some(5)), ("charge", None), ("notify", None)],
            TaskState::Error,
        ),
    ];
    for (name, steps, state) in cases {
        let expectation = expect(&shipped(name), &context).expect("predictable");
        assert_eq!(expectation.state, state, "{name}");
        let expected: BTreeMap<&str, Option<i64>> = steps.iter().copied().collect();
        assert_eq!(values(&expectation), expected, "{name}");
    }
    let retry = expect(&shipped("retry_once"), &context).expect("predictable");
    assert_eq!(retry.steps["flaky"].attempts(), 2);
    let failure = expect(&shipped("permanent_failure"), &context).expect("predictable");
    assert_eq!(failure.steps["charge"], StepExpectation::FailsPermanently);
    assert_eq!(failure.steps["notify"], StepExpectation::NeverRuns);
}

#[test]
fn nearest_rank_percentiles() {
    let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
    let p = percentiles(&samples).expect("samples");
    assert_eq!(
        (p.count, p.p50, p.p95, p.p99, p.max),
        (
            100,
            Duration::from_millis(50),
            Duration::from_millis(95),
            Duration::from_millis(99),
            Duration::from_millis(100)
        )
    );
    let one = percentiles(&[Duration::from_millis(7)]).expect("one sample");
    assert_eq!(
        (one.p50, one.p99),
        (Duration::from_millis(7), Duration::from_millis(7))
    );
    assert!(percentiles(&[]).is_none());
}

/// The summary table of a small run with every kind of outcome.
#[test]
fn summary_table() {
    use tasker_shared::models::ids::TaskId;

    use crate::driver::{RunReport, TaskOutcome};
    use crate::report::{render, summarize};

    let context = json!({"value": 5});
    let outcome = |name: &str, state: Option<TaskState>, latency_ms: u64, attempts: i64| {
        let template = shipped(name);
        TaskOutcome {
            template: template.routing_key(),
            task_id: Some(TaskId::from_uuid(uuid::Uuid::from_u128(u128::from(
                latency_ms,
            )))),
            state,
            rejected: None,
            deduplicated: false,
            latency: Some(Duration::from_millis(latency_ms)),
            expectation: expect(&template, &context).ok(),
            mismatches: Vec::new(),
            attempts,
            retries: 0,
            lost_attempts: 0,
        }
    };
    let mut retried = outcome("retry_once", Some(TaskState::Complete), 31, 4);
    retried.retries = 1;
    let mut wrong = outcome("diamond", Some(TaskState::Complete), 12, 4);
    wrong
        .mismatches
        .push("step join resulted in 20 instead of 21".to_owned());
    let report = RunReport {
        tasks: vec![
            outcome("linear", Some(TaskState::Complete), 10, 4),
            wrong,
            retried,
            outcome("permanent_failure", Some(TaskState::Error), 25, 2),
            TaskOutcome {
                rejected: Some("invalid task request: /context/value: required".to_owned()),
                latency: None,
                task_id: None,
                state: None,
                ..outcome("tree", None, 0, 0)
            },
            // Named a task of an earlier run: counted by state, not in steps or latency.
            TaskOutcome {
                deduplicated: true,
                ..outcome("linear", Some(TaskState::Complete), 1, 4)
            },
        ],
        wall: Duration::from_millis(500),
        longest_pause: Duration::from_millis(40),
        stall: None,
    };
    let summary = summarize(&report);
    assert_eq!(
        (summary.steps_executed, summary.retries, summary.mismatched),
        (14, 1, 1)
    );
    insta::assert_snapshot!(render(&report, &summary, "pgmq"));

    // The benchmark refuses a round with a deduplicated request before anything else.
    let refused = crate::bench::check("round", &report)
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("1 request(s) named tasks that had run before"),
        "{refused}"
    );
    let mut ran = report.clone();
    ran.tasks.retain(|task| !task.deduplicated);
    let refused = crate::bench::check("round", &ran).unwrap_err().to_string();
    assert!(refused.contains("tasks ended wrongly"), "{refused}");
}
