//! The shape of one row of a transition table, shared by both machines.
//!
//! Each machine keeps a single `&'static [Rule]`. Transitions are looked up in it and the
//! generated documentation is rendered from it, so the two cannot disagree.

use std::fmt;

use crate::{StepState, TaskState};

/// Who performs a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Actor {
    /// An orchestrator: task claiming, step discovery and enqueueing, result processing,
    /// evaluation and finalization, timeout and crash detection.
    Orchestration,
    /// A worker running step handlers.
    Worker,
    /// A person or API client acting on purpose (cancel, reset, resolve or complete manually).
    Operator,
}

impl Actor {
    /// `"orchestration"`, `"worker"` or `"operator"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Actor::Orchestration => "orchestration",
            Actor::Worker => "worker",
            Actor::Operator => "operator",
        }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A state of either machine, as the tables and the docs need it.
pub(crate) trait RuleState: Copy + Eq + fmt::Display + 'static {
    const ALL: &'static [Self];
    fn is_terminal(self) -> bool;
    fn description(self) -> &'static str;
}

impl RuleState for TaskState {
    const ALL: &'static [Self] = &TaskState::ALL;
    fn is_terminal(self) -> bool {
        TaskState::is_terminal(self)
    }
    fn description(self) -> &'static str {
        TaskState::description(self)
    }
}

impl RuleState for StepState {
    const ALL: &'static [Self] = &StepState::ALL;
    fn is_terminal(self) -> bool {
        StepState::is_terminal(self)
    }
    fn description(self) -> &'static str {
        StepState::description(self)
    }
}

/// The states a rule applies in.
#[derive(Debug, Clone, Copy)]
pub(crate) enum FromStates<S: 'static> {
    /// Exactly these states.
    Only(&'static [S]),
    /// Every state that is not terminal.
    AnyNonTerminal,
}

impl<S: RuleState> FromStates<S> {
    pub(crate) fn contains(&self, state: S) -> bool {
        match self {
            FromStates::Only(states) => states.contains(&state),
            FromStates::AnyNonTerminal => !state.is_terminal(),
        }
    }
}

/// One row of a transition table: in these states, these events lead to `to`.
///
/// `G` is the guard type (`Infallible` for the task machine, which has none) and `F` the effect
/// type recorded with the transition.
#[derive(Debug)]
pub(crate) struct Rule<S: 'static, K: 'static, G: 'static, F: 'static> {
    pub(crate) from: FromStates<S>,
    pub(crate) events: &'static [K],
    pub(crate) to: S,
    pub(crate) guard: Option<G>,
    pub(crate) effects: &'static [F],
    pub(crate) actors: &'static [Actor],
    pub(crate) lifecycle_event: &'static str,
    /// When it happens, as a clause completing "This transition happens when ...".
    pub(crate) when: &'static str,
}

impl<S: RuleState, K: Copy + Eq, G, F> Rule<S, K, G, F> {
    pub(crate) fn matches(&self, from: S, event: K) -> bool {
        self.from.contains(from) && self.events.contains(&event)
    }
}

/// The rule for `(from, event)`, if any. Tests check that at most one rule matches any pair.
pub(crate) fn find_rule<S: RuleState, K: Copy + Eq, G, F>(
    rules: &'static [Rule<S, K, G, F>],
    from: S,
    event: K,
) -> Option<&'static Rule<S, K, G, F>> {
    rules.iter().find(|rule| rule.matches(from, event))
}

/// The event kinds accepted in `from`, in the order of `all_events`.
pub(crate) fn accepted_events<S: RuleState, K: Copy + Eq, G, F>(
    rules: &'static [Rule<S, K, G, F>],
    all_events: &[K],
    from: S,
) -> Vec<K> {
    all_events
        .iter()
        .copied()
        .filter(|event| find_rule(rules, from, *event).is_some())
        .collect()
}

/// The distinct lifecycle event names of a table, in table order.
pub(crate) fn lifecycle_events<S, K, G, F>(
    rules: &'static [Rule<S, K, G, F>],
) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    for rule in rules {
        if !names.contains(&rule.lifecycle_event) {
            names.push(rule.lifecycle_event);
        }
    }
    names
}

/// One rule of a transition table as a lifecycle event sees it: the event's name, the states the
/// transition leaves and the state it reaches.
///
/// Several rules may share a name (`task.failed` is reached from more than one place), so a
/// table yields one of these per rule, not per name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleTransition<S> {
    /// The lifecycle event name (`task.completed`, `step.enqueue_requested`).
    pub name: &'static str,
    /// The states the transition leaves, in lifecycle order.
    pub from: Vec<S>,
    /// The state it reaches.
    pub to: S,
}

impl<S: PartialEq> LifecycleTransition<S> {
    /// Whether this rule moves `from` to `to`.
    pub fn connects(&self, from: &S, to: &S) -> bool {
        self.from.contains(from) && self.to == *to
    }
}

/// One [`LifecycleTransition`] per rule of a table, in table order.
pub(crate) fn lifecycle_transitions<S: RuleState, K, G, F>(
    rules: &'static [Rule<S, K, G, F>],
) -> Vec<LifecycleTransition<S>> {
    rules
        .iter()
        .map(|rule| LifecycleTransition {
            name: rule.lifecycle_event,
            from: S::ALL
                .iter()
                .copied()
                .filter(|state| rule.from.contains(*state))
                .collect(),
            to: rule.to,
        })
        .collect()
}

/// `, `-joined backticked names, for error hints.
pub(crate) fn backticked<T: fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(|item| format!("`{item}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
