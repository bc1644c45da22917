//! Dependency graphs: the one acyclicity check of the workspace, pure and linear.
//!
//! Template validation (`template::ValidatedTemplate`), task creation (`tasker_db::task`) and
//! steps added to a task later (`tasker_db::step::add_to_task`) all order their steps with
//! [`sort`], so they accept and refuse the same graphs and name a cycle the same way.
//!
//! Nodes are indices `0..n`. A graph is given as the parents of each node ([`Adjacency`]): an
//! edge `p → c` means "`c` depends on `p`", the direction of `workflow_step_edges`.

use std::fmt;

/// One list of node indices per node, stored flat (one allocation for all of them rather than
/// one per node). As a graph: the parents of each node.
///
/// Every index in a list names a node: a graph has [`Adjacency::len`] nodes, the number of
/// lists or one more than the largest index listed, whichever is larger (a node without a list
/// has no parents). So no list can name a node that does not exist, and [`sort`] is total.
/// Callers check indices that come from outside first: a graph of `n` nodes takes O(n) memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adjacency {
    /// `targets[starts[node]..starts[node + 1]]` is the list of `node`.
    starts: Vec<usize>,
    targets: Vec<usize>,
    /// Number of nodes: at least the number of lists, and above every target.
    nodes: usize,
}

impl Adjacency {
    /// Room for `lists` lists holding `targets` entries in all.
    #[must_use]
    pub fn with_capacity(lists: usize, targets: usize) -> Self {
        let mut starts = Vec::with_capacity(lists + 1);
        starts.push(0);
        Self {
            starts,
            targets: Vec::with_capacity(targets),
            nodes: 0,
        }
    }

    /// The parents of each of `nodes` nodes, from edges `(parent, child)`; each list keeps the
    /// edges' order. A node beyond `nodes` named by an edge is a node too (see the type's docs).
    #[must_use]
    pub fn from_edges(nodes: usize, edges: &[(usize, usize)]) -> Self {
        let nodes = edges
            .iter()
            .map(|&(parent, child)| parent.max(child).saturating_add(1))
            .max()
            .map_or(nodes, |needed| needed.max(nodes));
        // A counting sort by child, stable in the edges' order.
        let mut starts = vec![0_usize; nodes + 1];
        for &(_, child) in edges {
            starts[child + 1] += 1;
        }
        for node in 0..nodes {
            starts[node + 1] += starts[node];
        }
        let mut cursor = starts.clone();
        let mut targets = vec![0_usize; edges.len()];
        for &(parent, child) in edges {
            targets[cursor[child]] = parent;
            cursor[child] += 1;
        }
        Self {
            starts,
            targets,
            nodes,
        }
    }

    /// Adds an entry to the list being built (the one after the last finished list).
    pub fn push(&mut self, target: usize) {
        self.nodes = self.nodes.max(target.saturating_add(1));
        self.targets.push(target);
    }

    /// The entries of the list being built.
    #[must_use]
    pub fn current(&self) -> &[usize] {
        &self.targets[self.starts[self.starts.len() - 1]..]
    }

    /// Ends the list being built.
    pub fn finish_list(&mut self) {
        self.starts.push(self.targets.len());
        self.nodes = self.nodes.max(self.starts.len() - 1);
    }

    /// Number of nodes (see the type's docs).
    #[must_use]
    pub fn len(&self) -> usize {
        self.nodes
    }

    /// Whether the graph has no nodes.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.nodes == 0
    }

    /// The list of `node`; empty for a node without one.
    #[must_use]
    pub fn get(&self, node: usize) -> &[usize] {
        match (self.starts.get(node), self.starts.get(node + 1)) {
            (Some(&start), Some(&end)) => &self.targets[start..end],
            _ => &[],
        }
    }

    /// The list of every node, in order.
    pub fn lists(&self) -> impl ExactSizeIterator<Item = &[usize]> + '_ {
        (0..self.nodes).map(|node| self.get(node))
    }

    /// The reversed relation: for each node, the nodes whose lists name it, in order (the
    /// children of each node, when the lists are parents).
    #[must_use]
    pub fn reversed(&self) -> Self {
        let count = self.nodes;
        let mut starts = vec![0_usize; count + 1];
        for &target in &self.targets {
            starts[target + 1] += 1;
        }
        for node in 0..count {
            starts[node + 1] += starts[node];
        }
        let mut cursor = starts.clone();
        let mut targets = vec![0_usize; self.targets.len()];
        for (list, entries) in self.lists().enumerate() {
            for &target in entries {
                targets[cursor[target]] = list;
                cursor[target] += 1;
            }
        }
        Self {
            starts,
            targets,
            nodes: count,
        }
    }
}

/// An acyclic graph's nodes with their depth, from [`sort`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sorted {
    children: Adjacency,
    depth: Vec<usize>,
    order: Vec<usize>,
}

impl Sorted {
    /// The children of each node (the reversed parents), in order.
    #[must_use]
    pub fn children(&self) -> &Adjacency {
        &self.children
    }

    /// The length of the longest dependency chain above each node (roots have depth 0), so
    /// every parent has a lower depth than its children.
    #[must_use]
    pub fn depths(&self) -> &[usize] {
        &self.depth
    }

    /// Every node, each after all of its parents.
    #[must_use]
    pub fn order(&self) -> &[usize] {
        &self.order
    }

    /// The children and the depths, taking them apart.
    #[must_use]
    pub fn into_parts(self) -> (Adjacency, Vec<usize>) {
        (self.children, self.depth)
    }
}

/// A dependency cycle: nodes each of which depends on the next, the last on the first. It
/// starts at its lowest node, so the same cycle is always written the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle(Vec<usize>);

impl Cycle {
    /// The nodes of the cycle, each depending on the next (and the last on the first).
    #[must_use]
    pub fn nodes(&self) -> &[usize] {
        &self.0
    }

    /// The cycle as `a → b → c → a`, each node written by `name`.
    pub fn render<D: fmt::Display>(&self, name: impl Fn(usize) -> D) -> String {
        let mut rendered = String::new();
        for &node in self.0.iter().chain(self.0.first()) {
            if !rendered.is_empty() {
                rendered.push_str(" → ");
            }
            rendered.push_str(&name(node).to_string());
        }
        rendered
    }
}

/// A graph that is not acyclic. At least one cycle is reported for every group of nodes that
/// cannot be ordered, in the order of their lowest nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CycleError {
    first: Cycle,
    more: Vec<Cycle>,
}

impl CycleError {
    /// The first cycle (the one through the lowest node).
    #[must_use]
    pub fn first(&self) -> &Cycle {
        &self.first
    }

    /// Every cycle found, the first one first.
    pub fn cycles(&self) -> impl Iterator<Item = &Cycle> + '_ {
        std::iter::once(&self.first).chain(&self.more)
    }
}

impl fmt::Display for CycleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "dependency cycle: {} (each node depends on the next)",
            self.first.render(|node| node)
        )?;
        match self.more.len() {
            0 => Ok(()),
            1 => f.write_str("; and 1 more cycle"),
            more => write!(f, "; and {more} more cycles"),
        }
    }
}

impl std::error::Error for CycleError {}

/// Orders a graph given as each node's parents, or names its cycles. Linear in nodes and
/// edges (Kahn's algorithm; the cycle search walks only what could not be ordered).
///
/// A node listing the same parent twice is fine; a node listing itself is a cycle of one.
///
/// # Errors
/// [`CycleError`] if the graph has a cycle.
pub fn sort(parents: &Adjacency) -> Result<Sorted, CycleError> {
    let count = parents.len();
    let children = parents.reversed();
    let mut pending: Vec<usize> = parents.lists().map(<[usize]>::len).collect();
    let mut depth = vec![0_usize; count];
    let mut order: Vec<usize> = (0..count).filter(|&node| pending[node] == 0).collect();
    let mut head = 0;
    while let Some(&node) = order.get(head) {
        head += 1;
        for &child in children.get(node) {
            depth[child] = depth[child].max(depth[node] + 1);
            pending[child] -= 1;
            if pending[child] == 0 {
                order.push(child);
            }
        }
    }
    if order.len() < count {
        let mut cycles = find_cycles(parents, &pending).into_iter();
        // A node that could not be ordered has a parent that could not be ordered either, so
        // the walk from the lowest such node comes back to itself: there is a first cycle.
        let first = cycles.next().unwrap_or_else(|| Cycle(Vec::new()));
        return Err(CycleError {
            first,
            more: cycles.collect(),
        });
    }
    Ok(Sorted {
        children,
        depth,
        order,
    })
}

/// Finds cycles among the nodes Kahn's algorithm could not order (`pending > 0`). Each such
/// node has a pending parent, so walking pending parents must come back to a visited node.
fn find_cycles(parents: &Adjacency, pending: &[usize]) -> Vec<Cycle> {
    const UNSEEN: usize = usize::MAX;
    // The walk that first visited each node, or UNSEEN.
    let mut walk_of = vec![UNSEEN; parents.len()];
    let mut cycles = Vec::new();
    for start in 0..parents.len() {
        if pending[start] == 0 || walk_of[start] != UNSEEN {
            continue;
        }
        let mut path = Vec::new();
        let mut node = start;
        loop {
            if walk_of[node] == start {
                // Back on this walk: the cycle is the path from the first visit of `node`.
                let from = path.iter().position(|&n| n == node).unwrap_or(0);
                let mut cycle: Vec<usize> = path[from..].to_vec();
                let lowest = cycle
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, n)| **n)
                    .map_or(0, |(i, _)| i);
                cycle.rotate_left(lowest);
                cycles.push(Cycle(cycle));
                break;
            }
            if walk_of[node] != UNSEEN {
                // Reached a part of the graph an earlier walk already explained.
                break;
            }
            walk_of[node] = start;
            path.push(node);
            match parents
                .get(node)
                .iter()
                .find(|&&parent| pending[parent] > 0)
            {
                Some(&parent) => node = parent,
                None => break,
            }
        }
    }
    cycles
}

#[cfg(test)]
mod tests;
