//! Renders `docs/state-machine.md` from the transition tables themselves.
//!
//! The tables that [`crate::TaskStateMachine`] and [`crate::StepStateMachine`] look transitions
//! up in are the only input, so the documentation cannot drift from the behaviour.
//! `cargo xtask codegen` writes the result; `cargo xtask codegen --check` fails when the
//! committed file differs.

use std::{convert::Infallible, fmt::Write as _};

use crate::{
    StepEventKind, StepGuard, StepState, TaskEventKind, TaskState,
    rule::{FromStates, Rule, RuleState},
    step::{STEP_RULES, StepEffectKind},
    task::{TASK_RULES, TaskEffect},
};

/// The full text of `docs/state-machine.md`: for each machine its states, its transition table
/// (who performs each transition, guards, effects, lifecycle event names) and a mermaid
/// `stateDiagram-v2`; then the guards, effects, retry rules and event JSON shapes.
///
/// The text starts with the `# State machines` heading; the caller adds any "generated file"
/// header.
pub fn state_machine_markdown() -> String {
    let mut out = String::new();
    out.push_str("# State machines\n\n");
    out.push_str(
        "Tasks and their workflow steps each move through a state machine defined in the \
         `tasker-state` crate. Every change of state is a transition: a `(from, event)` pair in \
         the tables below. Any pair not in a table is refused with an error naming the state and \
         the event. Applying a transition records the event as JSON, applies the listed effects \
         to the task or step row in the same database transaction, and publishes the lifecycle \
         event name.\n\n",
    );
    out.push_str(
        "Nothing leaves a terminal state, except the operator's `reset` of a task in `error`.\n\n",
    );

    out.push_str("## Task state machine\n\n");
    render_states::<TaskState>(&mut out, "Task");
    out.push_str("### Task transitions\n\n");
    out.push_str(
        "Task transitions have no data guards: the table is the whole rule.\n\n\
         | from | event | to | performed by | when | effects | lifecycle event |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for rule in TASK_RULES {
        render_row(
            &mut out,
            rule,
            None::<fn(&Infallible) -> &'static str>,
            TaskEffect::as_str,
        );
    }
    out.push('\n');
    render_diagram::<TaskState, _, _, _>(&mut out, TASK_RULES, TaskState::Pending);

    out.push_str("## Step state machine\n\n");
    render_states::<StepState>(&mut out, "Step");
    out.push_str("### Step transitions\n\n");
    out.push_str(
        "A guarded transition is applied only when its guard holds (see [Guards](#guards)).\n\n\
         | from | event | to | guard | performed by | when | effects | lifecycle event |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for rule in STEP_RULES {
        render_row(
            &mut out,
            rule,
            Some(|guard: &StepGuard| guard.as_str()),
            |effect| effect.as_str(),
        );
    }
    out.push('\n');
    render_diagram::<StepState, _, _, _>(&mut out, STEP_RULES, StepState::Pending);

    render_guards_and_effects(&mut out);
    render_retry(&mut out);
    render_lifecycle_events(&mut out);
    render_event_json(&mut out);
    out
}

fn render_states<S: RuleState>(out: &mut String, machine: &str) {
    let _ = writeln!(out, "### {machine} states\n");
    out.push_str("| state | terminal | meaning, and what moves it on |\n|---|---|---|\n");
    for state in S::ALL {
        let terminal = if state.is_terminal() { "yes" } else { "no" };
        let _ = writeln!(out, "| `{state}` | {terminal} | {} |", state.description());
    }
    out.push('\n');
}

/// One table row; the guard column is rendered only when `guard_name` is given.
fn render_row<S: RuleState, K: Copy + std::fmt::Display, G, F: Copy>(
    out: &mut String,
    rule: &Rule<S, K, G, F>,
    guard_name: Option<impl Fn(&G) -> &'static str>,
    effect_name: impl Fn(F) -> &'static str,
) {
    let events = join(rule.events.iter().map(|event| format!("`{event}`")));
    let actors = join(rule.actors.iter().map(|actor| actor.as_str().to_owned()));
    let effects = if rule.effects.is_empty() {
        "-".to_owned()
    } else {
        join(
            rule.effects
                .iter()
                .map(|effect| format!("`{}`", effect_name(*effect))),
        )
    };
    let _ = write!(
        out,
        "| {} | {events} | `{}` |",
        from_states(&rule.from, ", "),
        rule.to
    );
    if let Some(guard_name) = guard_name {
        let guard = rule
            .guard
            .as_ref()
            .map(|guard| format!("`{}`", guard_name(guard)));
        let _ = write!(out, " {} |", guard.unwrap_or_else(|| "-".to_owned()));
    }
    let _ = writeln!(
        out,
        " {actors} | {} | {effects} | `{}` |",
        rule.when, rule.lifecycle_event
    );
}

fn from_states<S: RuleState>(from: &FromStates<S>, separator: &str) -> String {
    match from {
        FromStates::Only(states) => states
            .iter()
            .map(|state| format!("`{state}`"))
            .collect::<Vec<_>>()
            .join(separator),
        FromStates::AnyNonTerminal => "any non-terminal".to_owned(),
    }
}

/// A mermaid `stateDiagram-v2` with one edge per `(from, to)` pair, labelled with its events.
fn render_diagram<S: RuleState, K: Copy + Eq + std::fmt::Display, G, F>(
    out: &mut String,
    rules: &'static [Rule<S, K, G, F>],
    initial: S,
) {
    let mut edges: Vec<(S, S, Vec<String>)> = Vec::new();
    for rule in rules {
        for &from in S::ALL.iter().filter(|state| rule.from.contains(**state)) {
            let labels = rule.events.iter().map(ToString::to_string);
            match edges
                .iter_mut()
                .find(|(f, t, _)| *f == from && *t == rule.to)
            {
                Some((_, _, existing)) => existing.extend(labels),
                None => edges.push((from, rule.to, labels.collect())),
            }
        }
    }
    out.push_str("```mermaid\nstateDiagram-v2\n");
    let _ = writeln!(out, "    [*] --> {initial}");
    for (from, to, labels) in edges {
        let _ = writeln!(out, "    {from} --> {to}: {}", labels.join(", "));
    }
    for state in S::ALL.iter().filter(|state| state.is_terminal()) {
        let _ = writeln!(out, "    {state} --> [*]");
    }
    out.push_str("```\n\n");
}

fn render_guards_and_effects(out: &mut String) {
    out.push_str("## Guards\n\n");
    out.push_str(
        "Guards are pure predicates over a `StepGuardContext` the caller fills from the \
         database. `StepStateMachine::apply` checks them; `apply_unguarded` returns the guard \
         for the caller to enforce (for example in the SQL statement that applies the \
         transition). A guard whose input is missing fails.\n\n\
         | guard | requires |\n|---|---|\n",
    );
    for guard in StepGuard::ALL {
        let _ = writeln!(out, "| `{guard}` | {} |", guard.description());
    }
    out.push('\n');
    out.push_str("## Effects\n\n");
    out.push_str(
        "Effects are the changes to the task or step row that go with a transition, applied in \
         the same database transaction. Times are the transition's time. Flags that follow from \
         the state alone (in process, processed) are not effects.\n\n\
         | machine | effect | change |\n|---|---|---|\n",
    );
    for effect in TaskEffect::ALL {
        let _ = writeln!(out, "| task | `{effect}` | {} |", effect.description());
    }
    for effect in StepEffectKind::ALL {
        let _ = writeln!(out, "| step | `{effect}` | {} |", effect.description());
    }
    out.push('\n');
}

fn render_retry(out: &mut String) {
    out.push_str(
        "## Retry and backoff\n\n\
         A failed step waits in `error`. The orchestrator sends `retry` (back to `pending`) once \
         the step is retry-eligible; `tasker_state::is_retry_eligible` decides, from values the \
         caller supplies:\n\n\
         1. A step that never consumed an attempt (`attempts = 0`, for example one whose \
         enqueueing failed) is always allowed its first attempt.\n\
         2. Otherwise it must be retryable (its retry policy allows retries and its last \
         failure did not forbid them) and have `attempts < max_attempts`. With \
         `max_attempts = 1` a failed attempt is never retried automatically.\n\
         3. In every case the backoff must have elapsed: `now >= last_attempted_at + backoff`.\n\n\
         The backoff is the step's requested backoff if its last failure asked for one (for \
         example an HTTP `Retry-After`), else `min(base × multiplier^attempts, max)` from the \
         backoff configuration. With jitter `j`, that delay is moved by \
         `j × delay × (2u − 1)` for a caller-supplied draw `u` in `[0, 1]` and capped at `max` \
         again, so the same inputs always give the same answer. An operator's \
         `reset_for_retry` sets `attempts` back to 0.\n\n",
    );
}

fn render_lifecycle_events(out: &mut String) {
    out.push_str(
        "## Lifecycle events\n\n\
         Every accepted transition names the event published on the events system.\n\n\
         | name | published on |\n|---|---|\n",
    );
    render_lifecycle_rows(out, TASK_RULES);
    render_lifecycle_rows(out, STEP_RULES);
    out.push('\n');
}

fn render_lifecycle_rows<S: RuleState, K: Copy + std::fmt::Display, G, F>(
    out: &mut String,
    rules: &'static [Rule<S, K, G, F>],
) {
    for name in crate::rule::lifecycle_events(rules) {
        let uses: Vec<String> = rules
            .iter()
            .filter(|rule| rule.lifecycle_event == name)
            .map(|rule| {
                let events = join(rule.events.iter().map(|event| format!("`{event}`")));
                format!(
                    "{} → `{}` on {events}",
                    from_states(&rule.from, " / "),
                    rule.to
                )
            })
            .collect();
        let _ = writeln!(out, "| `{name}` | {} |", uses.join("; "));
    }
}

fn render_event_json(out: &mut String) {
    out.push_str(
        "## Event JSON\n\n\
         A transition records its event as a JSON object tagged with `type`. Examples:\n\n\
         | machine | event | JSON |\n|---|---|---|\n",
    );
    for kind in TaskEventKind::ALL {
        let _ = writeln!(
            out,
            "| task | `{kind}` | `{}` |",
            event_json(&kind.example())
        );
    }
    for kind in StepEventKind::ALL {
        let _ = writeln!(
            out,
            "| step | `{kind}` | `{}` |",
            event_json(&kind.example())
        );
    }
}

/// Compact JSON with the `type` tag first, as the event serializes on the wire.
fn event_json(event: &impl serde::Serialize) -> String {
    serde_json::to_string(event).expect("events serialize to JSON (see their `to_json`)")
}

fn join(items: impl Iterator<Item = String>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests;
