//! The step graph of a validated template and its derived views, computed once in
//! O(steps + edges): topological order, depth levels, roots, leaves, width per level and the
//! initial step set.
//!
//! Steps are identified by their index in [`TaskTemplate::steps`](super::TaskTemplate::steps).
//! An edge `p → c` means "`c` depends on `p`" (the direction of `workflow_step_edges`). The
//! order and the cycles come from [`crate::dag`].

use super::step::StepType;
use crate::dag::{self, Adjacency, CycleError};

/// The dependency graph of a validated template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepGraph {
    parents: Adjacency,
    children: Adjacency,
    /// Topological order: by depth, then declaration order.
    order: Vec<usize>,
    depth: Vec<usize>,
    /// `order[level_starts[d]..level_starts[d + 1]]` is level `d`.
    level_starts: Vec<usize>,
    roots: Vec<usize>,
    leaves: Vec<usize>,
    initial: Vec<usize>,
    is_initial: Vec<bool>,
}

impl StepGraph {
    /// Number of steps.
    #[must_use]
    pub fn len(&self) -> usize {
        self.parents.len()
    }

    /// Whether the template has no steps.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.parents.len() == 0
    }

    /// The steps `step` depends on, in declaration order of its dependency list.
    #[must_use]
    pub fn parents(&self, step: usize) -> &[usize] {
        self.parents.get(step)
    }

    /// The steps that depend on `step`, in declaration order.
    #[must_use]
    pub fn children(&self, step: usize) -> &[usize] {
        self.children.get(step)
    }

    /// Every step, parents before children; within a level, in declaration order.
    #[must_use]
    pub fn topological_order(&self) -> &[usize] {
        &self.order
    }

    /// The length of the longest dependency chain above `step` (roots have depth 0), so every
    /// parent is at a lower level than its children.
    #[must_use]
    pub fn depth(&self, step: usize) -> usize {
        self.depth.get(step).copied().unwrap_or(0)
    }

    /// Number of levels (the depth of the deepest step plus one; 0 without steps).
    #[must_use]
    pub fn level_count(&self) -> usize {
        self.level_starts.len().saturating_sub(1)
    }

    /// The steps at `depth`, in declaration order.
    #[must_use]
    pub fn level(&self, depth: usize) -> &[usize] {
        match (
            self.level_starts.get(depth),
            self.level_starts.get(depth + 1),
        ) {
            (Some(&start), Some(&end)) => &self.order[start..end],
            _ => &[],
        }
    }

    /// Every level, shallowest first.
    pub fn levels(&self) -> impl ExactSizeIterator<Item = &[usize]> + '_ {
        (0..self.level_count()).map(|depth| self.level(depth))
    }

    /// The number of steps per level: how many could run in parallel.
    #[must_use]
    pub fn width_per_level(&self) -> Vec<usize> {
        self.level_starts
            .windows(2)
            .map(|pair| pair[1] - pair[0])
            .collect()
    }

    /// The widest level's width.
    #[must_use]
    pub fn max_width(&self) -> usize {
        self.width_per_level().into_iter().max().unwrap_or(0)
    }

    /// Steps without dependencies, in declaration order.
    #[must_use]
    pub fn roots(&self) -> &[usize] {
        &self.roots
    }

    /// Steps nothing depends on, in declaration order.
    #[must_use]
    pub fn leaves(&self) -> &[usize] {
        &self.leaves
    }

    /// The steps created with the task, in declaration order.
    ///
    /// A step is created at task initialization unless it is a `batch_worker` template or a
    /// `deferred_convergence` step, or it depends (directly or transitively) on a `decision`,
    /// `batch_worker` or `deferred_convergence` step. Those are created later by orchestration
    /// when the decision, batch or branch materializes. Because the set is closed under
    /// dependencies, every edge of an initial step starts at an initial step.
    #[must_use]
    pub fn initial_steps(&self) -> &[usize] {
        &self.initial
    }

    /// Whether `step` is created with the task.
    #[must_use]
    pub fn is_initial(&self, step: usize) -> bool {
        self.is_initial.get(step).copied().unwrap_or(false)
    }

    /// The steps a decision step's outcome may create: everything reachable from its
    /// children, stopping at (and including) other decision steps, in declaration order.
    #[must_use]
    pub fn decision_branch(&self, decision: usize, step_types: &[StepType]) -> Vec<usize> {
        let mut seen = vec![false; self.len()];
        let mut stack: Vec<usize> = self.children(decision).to_vec();
        let mut branch = Vec::new();
        while let Some(step) = stack.pop() {
            if std::mem::replace(&mut seen[step], true) {
                continue;
            }
            branch.push(step);
            if step_types.get(step) != Some(&StepType::Decision) {
                stack.extend_from_slice(self.children(step));
            }
        }
        branch.sort_unstable();
        branch
    }
}

/// Builds the graph from each step's (deduplicated, resolved) parents, or returns its cycles
/// (found by [`dag::sort`], the workspace's one acyclicity check).
pub(crate) fn build(parents: Adjacency, step_types: &[StepType]) -> Result<StepGraph, CycleError> {
    let (children, depth) = dag::sort(&parents)?.into_parts();
    let count = parents.len();
    let roots = (0..count)
        .filter(|&step| parents.get(step).is_empty())
        .collect();

    // Order by (depth, index) with a counting sort.
    let level_count = depth.iter().copied().max().map_or(0, |max| max + 1);
    let mut level_starts = vec![0_usize; level_count + 1];
    for &d in &depth {
        level_starts[d + 1] += 1;
    }
    for d in 0..level_count {
        level_starts[d + 1] += level_starts[d];
    }
    let mut cursor = level_starts.clone();
    let mut order = vec![0_usize; count];
    for (step, &d) in depth.iter().enumerate() {
        order[cursor[d]] = step;
        cursor[d] += 1;
    }

    let leaves = (0..count)
        .filter(|&step| children.get(step).is_empty())
        .collect();
    let mut is_initial = vec![false; count];
    for &step in &order {
        let deferred = matches!(
            step_types.get(step),
            Some(StepType::BatchWorker | StepType::DeferredConvergence)
        );
        is_initial[step] = !deferred
            && parents.get(step).iter().all(|&parent| {
                is_initial[parent] && step_types.get(parent) != Some(&StepType::Decision)
            });
    }
    let initial = (0..count).filter(|&step| is_initial[step]).collect();

    Ok(StepGraph {
        parents,
        children,
        order,
        depth,
        level_starts,
        roots,
        leaves,
        initial,
        is_initial,
    })
}

#[cfg(test)]
mod tests;
