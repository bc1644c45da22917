//! Tests for the acyclicity check: adjacency lists, orders, depths and named cycles.

use proptest::prelude::*;

use super::*;

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

#[test]
fn adjacency_lists_and_their_reverse() {
    let lists = adjacency(&[&[1, 2], &[], &[0], &[0, 1, 2]]);
    assert_eq!(lists.len(), 4);
    assert_eq!(
        lists.lists().collect::<Vec<_>>(),
        [&[1, 2][..], &[], &[0], &[0, 1, 2]]
    );
    assert_eq!(lists.get(4), [0_usize; 0]);
    let reversed = lists.reversed();
    assert_eq!(
        reversed.lists().collect::<Vec<_>>(),
        [&[2, 3][..], &[0, 3], &[0, 3], &[]]
    );
}

#[test]
fn edges_become_parent_lists_and_every_named_node_exists() {
    // (parent, child): 1 and 2 depend on 0, 3 on 2 then 1.
    let parents = Adjacency::from_edges(4, &[(0, 1), (2, 3), (0, 2), (1, 3)]);
    assert_eq!(
        parents.lists().collect::<Vec<_>>(),
        [&[][..], &[0], &[0], &[2, 1]]
    );
    // A node named by an edge beyond the count is a node: no list names a missing node.
    let parents = Adjacency::from_edges(1, &[(0, 5)]);
    assert_eq!(parents.len(), 6);
    assert_eq!(parents.get(5), [0]);
    let mut built = adjacency(&[&[7]]);
    assert_eq!(built.len(), 8);
    built.finish_list();
    assert_eq!(built.len(), 8);
    assert!(sort(&built).is_ok());
    assert!(Adjacency::with_capacity(0, 0).is_empty());
}

#[test]
fn sorting_orders_parents_first_and_measures_depth() {
    // 0 → (1, 2) → 3, declared out of order on purpose: 3 first.
    let sorted = sort(&adjacency(&[&[1, 2], &[3], &[3], &[]])).expect("acyclic");
    assert_eq!(sorted.order(), [3, 1, 2, 0]);
    assert_eq!(sorted.depths(), [2, 1, 1, 0]);
    assert_eq!(sorted.children().get(3), [1, 2]);
    // The longest chain counts: 0 → 1 → 2 and 0 → 2 put 2 at depth 2.
    let sorted = sort(&adjacency(&[&[], &[0], &[0, 1]])).expect("acyclic");
    assert_eq!(sorted.depths(), [0, 1, 2]);
    // A repeated parent is one dependency.
    assert!(sort(&adjacency(&[&[], &[0, 0]])).is_ok());
    assert!(sort(&adjacency(&[])).expect("empty").order().is_empty());
}

#[test]
fn cycles_are_reported_with_their_path() {
    // 0 depends on 2, 1 on 0, 2 on 1: the cycle 0 → 2 → 1 → 0 in "depends on" direction.
    let error = sort(&adjacency(&[&[2], &[0], &[1], &[2]])).expect_err("cyclic");
    let cycles: Vec<&[usize]> = error.cycles().map(Cycle::nodes).collect();
    assert_eq!(cycles, [&[0, 2, 1][..]]);
    assert_eq!(
        error.to_string(),
        "dependency cycle: 0 → 2 → 1 → 0 (each node depends on the next)"
    );
    assert_eq!(
        error.first().render(|node| ["a", "b", "c", "d"][node]),
        "a → c → b → a"
    );
    // Two separate cycles and a step downstream of both.
    let error = sort(&adjacency(&[&[1], &[0], &[3], &[2], &[0, 2]])).expect_err("cyclic");
    let cycles: Vec<&[usize]> = error.cycles().map(Cycle::nodes).collect();
    assert_eq!(cycles, [&[0, 1][..], &[2, 3]]);
    assert_eq!(
        error.to_string(),
        "dependency cycle: 0 → 1 → 0 (each node depends on the next); and 1 more cycle"
    );
    // A node that depends on itself is a cycle of one.
    let error = sort(&adjacency(&[&[], &[1]])).expect_err("cyclic");
    assert_eq!(error.first().nodes(), [1]);
    assert_eq!(error.first().render(|node| node), "1 → 1");
}

/// Whether `parents` has a cycle, by brute force: some node reaches itself.
fn has_cycle(parents: &[Vec<usize>]) -> bool {
    (0..parents.len()).any(|start| {
        let mut seen = vec![false; parents.len()];
        let mut stack = parents[start].clone();
        while let Some(node) = stack.pop() {
            if node == start {
                return true;
            }
            if !std::mem::replace(&mut seen[node], true) {
                stack.extend(&parents[node]);
            }
        }
        false
    })
}

fn graphs() -> impl Strategy<Value = Vec<Vec<usize>>> {
    (1_usize..12).prop_flat_map(|nodes| {
        proptest::collection::vec(proptest::collection::vec(0..nodes, 0..4), nodes)
    })
}

proptest! {
    /// A graph is sorted exactly when it has no cycle; the order puts every parent first and
    /// the depths grow along every edge; every reported cycle is one.
    #[test]
    fn sort_accepts_exactly_the_acyclic_graphs(parents in graphs()) {
        let lists: Vec<&[usize]> = parents.iter().map(Vec::as_slice).collect();
        match sort(&adjacency(&lists)) {
            Ok(sorted) => {
                prop_assert!(!has_cycle(&parents));
                let mut position = vec![0; parents.len()];
                for (index, &node) in sorted.order().iter().enumerate() {
                    position[node] = index;
                }
                prop_assert_eq!(sorted.order().len(), parents.len());
                for (child, list) in parents.iter().enumerate() {
                    for &parent in list {
                        prop_assert!(position[parent] < position[child]);
                        prop_assert!(sorted.depths()[parent] < sorted.depths()[child]);
                    }
                }
            }
            Err(error) => {
                prop_assert!(has_cycle(&parents));
                for cycle in error.cycles() {
                    let nodes = cycle.nodes();
                    prop_assert!(!nodes.is_empty());
                    prop_assert_eq!(Some(&nodes[0]), nodes.iter().min());
                    for (index, &node) in nodes.iter().enumerate() {
                        let next = nodes[(index + 1) % nodes.len()];
                        prop_assert!(parents[node].contains(&next), "{node} depends on {next}");
                    }
                }
            }
        }
    }
}
