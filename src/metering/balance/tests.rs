//! The tree math with numbers worked by hand.

use std::collections::BTreeMap;

use super::*;

fn node(id: i64, parent: Option<i64>, f1: i128, f2: i128) -> NodeInput {
    NodeInput {
        id: DeviceId(id),
        name: format!("meter {id}"),
        parent: parent.map(DeviceId),
        is_virtual: false,
        energy: BTreeMap::from([("F1".to_owned(), f1), ("F2".to_owned(), f2)]),
        missing_intervals: 0,
        pending_intervals: 0,
    }
}

fn bands() -> Vec<String> {
    vec!["F1".to_owned(), "F2".to_owned()]
}

/// Main 1 feeds 2 and 3; 2 feeds 4. Energies in mWh (read the numbers below
/// in thousands: 100_000 mWh is "100").
fn site() -> Vec<NodeInput> {
    vec![
        node(3, Some(1), 30_000, 28_000),
        node(1, None, 100_000, 50_000),
        node(4, Some(2), 60_000, 10_000),
        node(2, Some(1), 60_000, 20_000),
    ]
}

#[test]
fn each_parent_is_set_against_the_sum_of_its_children() {
    let tree = balance(&site(), &bands(), 5.0);
    // Depth first from the root, children by id.
    let order: Vec<(i64, usize)> = tree.iter().map(|n| (n.id.0, n.depth)).collect();
    assert_eq!(order, vec![(1, 0), (2, 1), (4, 2), (3, 1)]);

    let main = &tree[0];
    assert_eq!(main.children, vec![DeviceId(2), DeviceId(3)]);
    // F1: 100 − (60 + 30) = 10, 10 % of 100: over 5 %.
    assert_eq!(main.bands[0].children_sum, Some(90_000));
    assert_eq!(main.bands[0].remainder, Some(10_000));
    assert_eq!(main.bands[0].remainder_percent, Some(10.0));
    assert!(main.bands[0].over_threshold);
    // F2: 50 − (20 + 28) = 2, 4 %: under.
    assert_eq!(main.bands[1].remainder, Some(2_000));
    assert_eq!(main.bands[1].remainder_percent, Some(4.0));
    assert!(!main.bands[1].over_threshold);
    // Total: 150 − 138 = 12, 8 %.
    assert_eq!(
        (main.total.energy, main.total.children_sum, main.total.remainder),
        (150_000, Some(138_000), Some(12_000))
    );
    assert_eq!(main.total.remainder_percent, Some(8.0));
    assert!(main.mismatch());

    let feeder = &tree[1];
    // F1: 60 − 60 = 0; F2: 20 − 10 = 10, 50 %.
    assert_eq!(feeder.bands[0].remainder, Some(0));
    assert_eq!(feeder.bands[1].remainder_percent, Some(50.0));

    let leaf = &tree[2];
    assert_eq!(leaf.bands[0].children_sum, None);
    assert_eq!(leaf.total.remainder, None);
    assert!(!leaf.mismatch());
}

#[test]
fn children_over_the_parent_are_a_negative_remainder_and_a_mismatch() {
    let nodes = vec![node(1, None, 10_000, 0), node(2, Some(1), 11_000, 500)];
    let tree = balance(&nodes, &bands(), 5.0);
    assert_eq!(tree[0].bands[0].remainder, Some(-1_000));
    assert_eq!(tree[0].bands[0].remainder_percent, Some(-10.0));
    assert!(tree[0].bands[0].over_threshold);
    // The parent metered nothing in F2 while its child metered 500 mWh.
    assert_eq!(tree[0].bands[1].remainder, Some(-500));
    assert_eq!(tree[0].bands[1].remainder_percent, None);
    assert!(tree[0].bands[1].over_threshold);
}

#[test]
fn a_threshold_is_a_strict_bound_and_missing_data_suppresses_the_mismatch() {
    // 100 − 95 = 5 %: not over 5 %.
    let nodes = vec![node(1, None, 100_000, 0), node(2, Some(1), 95_000, 0)];
    let tree = balance(&nodes, &bands(), 5.0);
    assert_eq!(tree[0].bands[0].remainder_percent, Some(5.0));
    assert!(!tree[0].mismatch());
    let tree = balance(&nodes, &bands(), 4.9);
    assert!(tree[0].mismatch());

    let mut gappy = nodes.clone();
    gappy[1].missing_intervals = 3;
    let tree = balance(&gappy, &bands(), 4.9);
    assert!(tree[0].incomplete);
    assert!(!tree[0].over_threshold().is_empty());
    assert!(!tree[0].mismatch());

    // A child still backfilling its load profile: pending, not missing,
    // and the balance waits for it all the same.
    let mut backfilling = nodes.clone();
    backfilling[1].pending_intervals = 96;
    let tree = balance(&backfilling, &bands(), 4.9);
    assert_eq!((tree[1].missing_intervals, tree[1].pending_intervals), (0, 96));
    assert!(tree[0].incomplete);
    assert!(!tree[0].mismatch());
}

#[test]
fn a_parent_outside_the_nodes_makes_a_root() {
    let nodes = vec![node(5, Some(99), 1, 1), node(6, None, 2, 2)];
    let tree = balance(&nodes, &bands(), 5.0);
    assert_eq!(
        tree.iter().map(|n| (n.id.0, n.depth)).collect::<Vec<_>>(),
        vec![(5, 0), (6, 0)]
    );
}

mod laws {
    use proptest::prelude::*;

    use super::*;

    /// A random forest: node `i` (id `i + 1`) has a parent among the nodes
    /// before it, or none; energies per band in mWh, either sign.
    fn forest() -> impl Strategy<Value = Vec<NodeInput>> {
        prop::collection::vec(
            (
                any::<prop::sample::Index>(),
                any::<bool>(),
                -1_000_000i128..1_000_000,
                -1_000_000i128..1_000_000,
            ),
            1..12,
        )
        .prop_map(|rows| {
            rows.iter()
                .enumerate()
                .map(|(i, (pick, root, f1, f2))| {
                    let parent = (i > 0 && !root).then(|| DeviceId(pick.index(i) as i64 + 1));
                    let mut node = node(i as i64 + 1, None, *f1, *f2);
                    node.parent = parent;
                    node
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn every_node_is_its_energy_less_its_childrens_in_each_band_and_in_total(nodes in forest()) {
            let tree = balance(&nodes, &bands(), 5.0);
            prop_assert_eq!(tree.len(), nodes.len());
            let by_id: BTreeMap<DeviceId, &NodeInput> = nodes.iter().map(|n| (n.id, n)).collect();
            for balanced in &tree {
                let kids: Vec<&NodeInput> = nodes.iter().filter(|n| n.parent == Some(balanced.id)).collect();
                let total: i128 = balanced.bands.iter().map(|b| b.energy).sum();
                prop_assert_eq!(balanced.total.energy, total);
                for (index, band) in bands().iter().enumerate() {
                    let row = &balanced.bands[index];
                    prop_assert_eq!(row.energy, by_id[&balanced.id].energy[band]);
                    if kids.is_empty() {
                        prop_assert_eq!(row.remainder, None);
                    } else {
                        let sum: i128 = kids.iter().map(|k| k.energy[band]).sum();
                        prop_assert_eq!(row.children_sum, Some(sum));
                        prop_assert_eq!(row.remainder, Some(row.energy - sum));
                    }
                }
                if !kids.is_empty() {
                    let bands_remainder: i128 = balanced.bands.iter().filter_map(|b| b.remainder).sum();
                    prop_assert_eq!(balanced.total.remainder, Some(bands_remainder));
                }
                // A child comes after its parent, one level deeper.
                if let Some(parent) = balanced.parent {
                    let at = tree.iter().position(|n| n.id == parent).unwrap();
                    let me = tree.iter().position(|n| n.id == balanced.id).unwrap();
                    prop_assert!(at < me);
                    prop_assert_eq!(tree[at].depth + 1, balanced.depth);
                }
            }
        }
    }
}
