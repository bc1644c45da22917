//! Checks that a transition history is gap-free: sort keys 1, 2, 3, ... without holes, the
//! first row the initial `pending` without a from-state, every row leaving the state the
//! previous one entered, exactly one `most_recent` row (the last), ending in the current state.

use std::fmt::Display;

use anyhow::ensure;
use tasker_shared::database::step::StepTransitionRow;
use tasker_shared::database::task::TaskTransitionRow;
use tasker_shared::state_machine::{StepState, TaskState};

/// One row of either history.
struct Row<S> {
    sort_key: i32,
    most_recent: bool,
    from: Option<S>,
    to: S,
}

fn check<S: Copy + PartialEq + Display>(
    rows: &[Row<S>],
    initial: S,
    current: S,
) -> anyhow::Result<()> {
    ensure!(!rows.is_empty(), "the history is empty");
    for (index, row) in rows.iter().enumerate() {
        let expected_key = i32::try_from(index + 1)?;
        ensure!(
            row.sort_key == expected_key,
            "row {index} has sort key {} instead of {expected_key}",
            row.sort_key
        );
        ensure!(
            row.most_recent == (index + 1 == rows.len()),
            "row {} (sort key {}) has most_recent = {}",
            index,
            row.sort_key,
            row.most_recent
        );
        match index {
            0 => ensure!(
                row.from.is_none() && row.to == initial,
                "the first row is not the initial `{initial}`"
            ),
            _ => {
                let previous = rows[index - 1].to;
                ensure!(
                    row.from == Some(previous),
                    "sort key {} leaves {} but the previous row entered `{previous}`",
                    row.sort_key,
                    row.from
                        .map_or("nothing".to_owned(), |from| format!("`{from}`"))
                );
            }
        }
    }
    let last = rows[rows.len() - 1].to;
    ensure!(
        last == current,
        "the history ends in `{last}` but the row is `{current}`"
    );
    Ok(())
}

/// Checks a task's history against its current state.
pub(super) fn check_task_history(
    rows: &[TaskTransitionRow],
    current: TaskState,
) -> anyhow::Result<()> {
    let rows: Vec<Row<TaskState>> = rows
        .iter()
        .map(|row| Row {
            sort_key: row.sort_key,
            most_recent: row.most_recent,
            from: row.from_state,
            to: row.to_state,
        })
        .collect();
    check(&rows, TaskState::Pending, current)
}

/// Checks a step's history against its current state.
pub(super) fn check_step_history(
    rows: &[StepTransitionRow],
    current: StepState,
) -> anyhow::Result<()> {
    let rows: Vec<Row<StepState>> = rows
        .iter()
        .map(|row| Row {
            sort_key: row.sort_key,
            most_recent: row.most_recent,
            from: row.from_state,
            to: row.to_state,
        })
        .collect();
    check(&rows, StepState::Pending, current)
}
