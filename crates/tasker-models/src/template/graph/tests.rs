//! Tests for the step graph: views, initial step sets and cycles (the search itself is
//! tested in `dag`).

use super::*;

use StepType::{
    BatchWorker as W, Batchable as B, Decision as D, DeferredConvergence as C, Standard as S,
};

fn adjacency(parents: &[&[usize]]) -> Adjacency {
    let mut adjacency = Adjacency::with_capacity(parents.len(), 0);
    for list in parents {
        for &parent in *list {
            adjacency.push(parent);
        }
        adjacency.finish_list();
    }
    adjacency
}

fn graph(parents: &[&[usize]], types: &[StepType]) -> StepGraph {
    build(adjacency(parents), types).expect("acyclic")
}

#[test]
fn diamond_views() {
    // 0 → (1, 2) → 3, declared out of order on purpose: 3 first.
    let g = graph(&[&[1, 2], &[3], &[3], &[]], &[S, S, S, S]);
    assert_eq!(g.topological_order(), [3, 1, 2, 0]);
    assert_eq!(g.roots(), [3]);
    assert_eq!(g.leaves(), [0]);
    assert_eq!(g.level_count(), 3);
    assert_eq!(g.levels().collect::<Vec<_>>(), [&[3][..], &[1, 2], &[0]]);
    assert_eq!(g.width_per_level(), [1, 2, 1]);
    assert_eq!(g.max_width(), 2);
    assert_eq!(g.depth(0), 2);
    assert_eq!(g.children(3), [1, 2]);
    assert_eq!(g.parents(0), [1, 2]);
    assert_eq!(g.initial_steps(), [0, 1, 2, 3]);
}

#[test]
fn depth_is_the_longest_chain() {
    // 0 → 1 → 2 and 0 → 2: step 2 is at depth 2, not 1.
    let g = graph(&[&[], &[0], &[0, 1]], &[S, S, S]);
    assert_eq!((g.depth(0), g.depth(1), g.depth(2)), (0, 1, 2));
}

#[test]
fn empty_graph() {
    let g = graph(&[], &[]);
    assert!(g.is_empty());
    assert_eq!(g.level_count(), 0);
    assert_eq!(g.max_width(), 0);
    assert!(g.level(0).is_empty());
}

/// `(parents of each step, step types, expected initial set)`.
type InitialCase<'a> = (&'a [&'a [usize]], &'a [StepType], &'a [usize]);

#[test]
fn initial_step_sets() {
    // (parents, types, expected initial set), following the predecessor's scenarios P6–P10.
    let cases: &[InitialCase<'_>] = &[
        // upstream → decision → downstream
        (&[&[], &[0], &[1]], &[S, D, S], &[0, 1]),
        // root → decision → (a, b) → merge
        (&[&[], &[0], &[1], &[1], &[2, 3]], &[S, D, S, S, C], &[0, 1]),
        // nested decisions: root → d1 → a → d2 → (a1, a2)
        (
            &[&[], &[0], &[1], &[2], &[3], &[3]],
            &[S, D, S, D, S, S],
            &[0, 1],
        ),
        // batchable → worker → convergence → after
        (&[&[], &[0], &[1], &[2]], &[B, W, C, S], &[0]),
        // a deferred convergence with standard parents is still deferred
        (&[&[], &[], &[0, 1]], &[S, S, C], &[0, 1]),
        // no special steps: everything
        (&[&[], &[0], &[0]], &[S, S, S], &[0, 1, 2]),
    ];
    for (parents, types, expected) in cases {
        assert_eq!(
            graph(parents, types).initial_steps(),
            *expected,
            "{types:?}"
        );
    }
}

#[test]
fn decision_branches_stop_at_other_decisions() {
    // root → d1 → a → d2 → (a1, a2); d1 → b
    let types = [S, D, S, D, S, S, S];
    let g = graph(&[&[], &[0], &[1], &[2], &[3], &[3], &[1]], &types);
    assert_eq!(g.decision_branch(1, &types), [2, 3, 6]);
    assert_eq!(g.decision_branch(3, &types), [4, 5]);
}

#[test]
fn cycles_are_reported_with_their_path() {
    // 0 depends on 2, 1 on 0, 2 on 1: the cycle 0 → 2 → 1 → 0 in "depends on" direction.
    let error = build(adjacency(&[&[2], &[0], &[1], &[2]]), &[S, S, S, S]).expect_err("cyclic");
    let cycles: Vec<&[usize]> = error.cycles().map(crate::dag::Cycle::nodes).collect();
    assert_eq!(cycles, [&[0, 2, 1][..]]);
}
