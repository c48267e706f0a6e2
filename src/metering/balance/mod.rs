//! A site's energy balance: each meter of the site's tree against the sum
//! of the meters directly downstream of it, per tariff band and over the
//! period, and the unmetered remainder (losses, unmetered loads, or a
//! meter that is wrong) in energy and as a share of the parent's energy.
//! Pure: the energies come in, the balance goes out (docs/SITES.md).
//!
//! The energy of a node is its net active energy, imported minus exported,
//! as the COUNTIS E43/E44 defines its own "energy balance" (E43/E44 manual
//! §4.6.2: `(+kWh T1) − (−kWh T1) + (+kWh T2) − (−kWh T2)`), here per band
//! of the site's calendar rather than over the meter's two tariffs. A feeder
//! that exports (a generator behind a sub-meter) then lowers its parent's
//! and its own energy alike, and the remainder stays what the wiring loses.
//!
//! Energies are integers in milli-units (mWh), so a sum of children is
//! exact and a remainder of zero is zero.

pub(crate) mod virtual_sum;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use crate::domain::ids::DeviceId;
use crate::metering::tou::{BandSplit, Piece};

/// The split of a site without a tariff calendar: one band, [`ALL`], over
/// the whole period, so that its balance is the period's total alone.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct OneBand;

/// The name of [`OneBand`]'s band.
pub(crate) const ALL: &str = "all";

impl BandSplit for OneBand {
    fn pieces(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Piece> {
        if from >= to {
            return Vec::new();
        }
        vec![Piece {
            band: ALL.to_owned(),
            from,
            to,
        }]
    }

    fn bands(&self) -> Vec<String> {
        vec![ALL.to_owned()]
    }
}

/// One node of the tree as the balance takes it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NodeInput {
    pub id: DeviceId,
    pub name: String,
    /// The device upstream of it; a parent not among the nodes makes it a root.
    pub parent: Option<DeviceId>,
    pub is_virtual: bool,
    /// Net active energy per band, mWh; a band left out is 0.
    pub energy: BTreeMap<String, i128>,
    /// Intervals missing in the period: its energy is then too small, and a
    /// balance it takes part in is not trusted (no event).
    pub missing_intervals: u64,
    /// Intervals a running first backfill of the meter's load profile has
    /// not reached yet (not in `missing_intervals`): its energy is as
    /// incomplete, but nothing is lost.
    pub pending_intervals: u64,
}

/// One band (or the total) of one node.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BandBalance {
    /// The band, or `None` for the period's total.
    pub band: Option<String>,
    /// The node's own energy, mWh.
    pub energy: i128,
    /// Sum of its children's energies, mWh; `None` for a leaf.
    pub children_sum: Option<i128>,
    /// `energy − children_sum`, mWh; `None` for a leaf.
    pub remainder: Option<i128>,
    /// The remainder as a percentage of `energy`; `None` for a leaf or when
    /// the node's energy is 0.
    pub remainder_percent: Option<f64>,
    /// Whether `|remainder_percent|` is over the site's threshold, or the
    /// children metered energy where the parent metered none.
    pub over_threshold: bool,
}

/// One node of the balanced tree.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NodeBalance {
    pub id: DeviceId,
    pub name: String,
    pub parent: Option<DeviceId>,
    pub is_virtual: bool,
    /// 0 for a root, its parent's depth + 1 otherwise.
    pub depth: usize,
    pub children: Vec<DeviceId>,
    /// One entry per band, in the bands' order.
    pub bands: Vec<BandBalance>,
    pub total: BandBalance,
    pub missing_intervals: u64,
    pub pending_intervals: u64,
    /// It or one of its children misses intervals, or waits for them from
    /// a backfill: its remainder may be a gap in the data rather than
    /// energy lost.
    pub incomplete: bool,
}

impl NodeBalance {
    /// The bands, then the total, that are over the threshold.
    pub(crate) fn over_threshold(&self) -> Vec<&BandBalance> {
        self.bands
            .iter()
            .chain(std::iter::once(&self.total))
            .filter(|band| band.over_threshold)
            .collect()
    }

    /// Whether the balance of this node calls for an event: over the
    /// threshold and built from complete data.
    pub(crate) fn mismatch(&self) -> bool {
        !self.incomplete && !self.over_threshold().is_empty()
    }
}

/// The balance of a tree: its nodes depth first, each root followed by its
/// subtree, children by id.
pub(crate) fn balance(nodes: &[NodeInput], bands: &[String], threshold_percent: f64) -> Vec<NodeBalance> {
    let by_id: BTreeMap<DeviceId, &NodeInput> = nodes.iter().map(|node| (node.id, node)).collect();
    let mut children: BTreeMap<DeviceId, Vec<DeviceId>> = BTreeMap::new();
    let mut roots = Vec::new();
    for node in nodes {
        match node
            .parent
            .filter(|parent| by_id.contains_key(parent) && *parent != node.id)
        {
            Some(parent) => children.entry(parent).or_default().push(node.id),
            None => roots.push(node.id),
        }
    }
    for list in children.values_mut() {
        list.sort();
    }
    roots.sort();
    let mut out = Vec::with_capacity(nodes.len());
    let mut seen = BTreeSet::new();
    let mut stack: Vec<(DeviceId, usize)> = roots.iter().rev().map(|id| (*id, 0)).collect();
    while let Some((id, depth)) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        let node = by_id[&id];
        let kids: Vec<&NodeInput> = children
            .get(&id)
            .map(|ids| ids.iter().map(|kid| by_id[kid]).collect())
            .unwrap_or_default();
        out.push(node_balance(node, &kids, depth, bands, threshold_percent));
        for kid in kids.iter().rev() {
            stack.push((kid.id, depth + 1));
        }
    }
    out
}

fn node_balance(
    node: &NodeInput,
    kids: &[&NodeInput],
    depth: usize,
    bands: &[String],
    threshold_percent: f64,
) -> NodeBalance {
    let energy_in = |input: &NodeInput, band: &str| input.energy.get(band).copied().unwrap_or(0);
    let row =
        |band: Option<&String>, own: i128, kids_sum: Option<i128>| band_balance(band, own, kids_sum, threshold_percent);
    let leaf = kids.is_empty();
    let sum_of = |band: &str| (!leaf).then(|| kids.iter().map(|kid| energy_in(kid, band)).sum::<i128>());
    let bands_out: Vec<BandBalance> = bands
        .iter()
        .map(|band| row(Some(band), energy_in(node, band), sum_of(band)))
        .collect();
    let total_own = bands.iter().map(|band| energy_in(node, band)).sum();
    let total_kids = (!leaf).then(|| bands_out.iter().filter_map(|band| band.children_sum).sum());
    NodeBalance {
        id: node.id,
        name: node.name.clone(),
        parent: node.parent,
        is_virtual: node.is_virtual,
        depth,
        children: kids.iter().map(|kid| kid.id).collect(),
        bands: bands_out,
        total: row(None, total_own, total_kids),
        missing_intervals: node.missing_intervals,
        pending_intervals: node.pending_intervals,
        incomplete: [node]
            .iter()
            .chain(kids.iter())
            .any(|n| n.missing_intervals + n.pending_intervals > 0),
    }
}

/// One band of a node against its children's sum.
fn band_balance(
    band: Option<&String>,
    energy: i128,
    children_sum: Option<i128>,
    threshold_percent: f64,
) -> BandBalance {
    let remainder = children_sum.map(|sum| energy - sum);
    let remainder_percent = remainder.filter(|_| energy != 0).map(|rest| percent(rest, energy));
    let over_threshold = match (remainder, remainder_percent) {
        (_, Some(share)) => share.abs() > threshold_percent,
        // The parent metered nothing but its children did.
        (Some(rest), None) => rest != 0,
        (None, None) => false,
    };
    BandBalance {
        band: band.cloned(),
        energy,
        children_sum,
        remainder,
        remainder_percent,
        over_threshold,
    }
}

/// `part / whole × 100`, from integers (display precision only).
#[allow(clippy::cast_precision_loss)]
fn percent(part: i128, whole: i128) -> f64 {
    part as f64 * 100.0 / whole as f64
}

#[cfg(test)]
mod tests;
