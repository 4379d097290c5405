//! Invariants and convergence.
//!
//! Continuous checks, as events happen: every block a peer accepts must be one a simulated
//! miner produced (and that passed `Chain::check_block` when mined), and the accepting peer
//! must hold its parent. End-of-run checks (`check_end`, once a run stops): the online
//! peers converge when convergence is expected (no partition left open, the online peers
//! connected), and every submitted item is in the final best chain exactly once. Violations
//! are recorded in [`Metrics`]; the report only reads them.
//!
//! The `Checker` also keeps how many online peers sit on each tip, which answers
//! "converged?" in O(1) after every tip change.

use crate::metrics::Metrics;
use crate::time::SimTime;
use rantai_core::{BlockHash, Chain, ItemId};
use std::collections::BTreeMap;

/// Tip counts and the time of agreement after the last heal.
pub(crate) struct Checker {
    /// Distinct best tips of online peers, with how many peers hold each.
    tips: BTreeMap<BlockHash, u32>,
    last_heal_at: Option<SimTime>,
    /// First moment after the last heal when all online peers shared one tip.
    agreed_after_heal: Option<SimTime>,
}

impl Checker {
    /// `peers` online peers, all on `genesis`.
    pub(crate) fn new(genesis: BlockHash, peers: u32) -> Checker {
        Checker {
            tips: BTreeMap::from([(genesis, peers)]),
            last_heal_at: None,
            agreed_after_heal: None,
        }
    }

    /// Whether every online peer has the same best tip.
    #[inline]
    pub(crate) fn converged(&self) -> bool {
        self.tips.len() <= 1
    }

    /// Distinct tips of online peers with their peer counts, sorted by hash.
    pub(crate) fn tips(&self) -> &BTreeMap<BlockHash, u32> {
        &self.tips
    }

    /// A peer on `tip` went down.
    pub(crate) fn peer_down(&mut self, tip: BlockHash) {
        if let Some(c) = self.tips.get_mut(&tip) {
            *c -= 1;
            if *c == 0 {
                self.tips.remove(&tip);
            }
        }
    }

    /// A peer on `tip` came up.
    pub(crate) fn peer_up(&mut self, tip: BlockHash) {
        *self.tips.entry(tip).or_default() += 1;
    }

    /// An online peer's tip moved from `old` to `new` at `now`.
    pub(crate) fn tip_moved(&mut self, old: BlockHash, new: BlockHash, now: SimTime) {
        self.peer_down(old);
        self.peer_up(new);
        if self.converged() && self.last_heal_at.is_some() && self.agreed_after_heal.is_none() {
            self.agreed_after_heal = Some(now);
        }
    }

    /// A partition healed at `now`: agreement is measured afresh.
    pub(crate) fn healed(&mut self, now: SimTime) {
        self.last_heal_at = Some(now);
        self.agreed_after_heal = None;
    }

    /// When the last partition healed.
    pub(crate) fn last_heal_at(&self) -> Option<SimTime> {
        self.last_heal_at
    }

    /// When the online peers first shared one tip after the last heal.
    pub(crate) fn agreed_after_heal(&self) -> Option<SimTime> {
        self.agreed_after_heal
    }
}

/// A block `node` accepted must have been mined here (`mined_here`), and `node` must hold
/// its parent (`parent_held`).
pub(crate) fn check_accepted(
    m: &mut Metrics,
    now: SimTime,
    node: u32,
    hash: &BlockHash,
    mined_here: bool,
    parent_held: bool,
) {
    if !mined_here {
        m.violation(
            now.as_millis(),
            format!("peer {node} accepted block {hash} that no miner produced"),
        );
    }
    if !parent_held {
        m.violation(
            now.as_millis(),
            format!("peer {node} accepted block {hash} without its parent"),
        );
    }
}

/// How often each submitted item appears in a final best chain.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ItemTally {
    /// Items in the chain at least once.
    pub in_chain: u64,
    /// Items not in the chain.
    pub missing: u64,
    /// Items in the chain more than once.
    pub duplicated: u64,
}

/// Counts each of `submitted` in `best`'s best chain (no chain: all missing).
pub fn tally_items(submitted: &[ItemId], best: Option<&Chain>) -> ItemTally {
    let mut counts: BTreeMap<ItemId, u32> = submitted.iter().map(|id| (*id, 0)).collect();
    if let Some(c) = best {
        for b in c.best_chain() {
            for id in b.item_ids() {
                if let Some(x) = counts.get_mut(&id) {
                    *x += 1;
                }
            }
        }
    }
    ItemTally {
        in_chain: counts.values().filter(|&&c| c > 0).count() as u64,
        missing: counts.values().filter(|&&c| c == 0).count() as u64,
        duplicated: counts.values().filter(|&&c| c > 1).count() as u64,
    }
}

/// The state a finished run is judged on.
#[derive(Debug, Clone, Copy)]
pub struct EndState {
    /// All online peers share one tip.
    pub converged: bool,
    /// Convergence was required: no partition left open and the online peers connected.
    pub expected: bool,
    /// Distinct tips of the online peers.
    pub distinct_tips: usize,
    /// Submitted items in the majority's best chain.
    pub items: ItemTally,
}

/// The end-of-run invariants, recorded as violations at `now`; without `liveness` only the
/// safety ones (convergence and missing items are not judged).
pub(crate) fn check_end(m: &mut Metrics, now: SimTime, end: &EndState, liveness: bool) {
    let now = now.as_millis();
    if liveness && end.expected && !end.converged {
        m.violation(
            now,
            format!(
                "online peers did not converge: {} distinct tips at the end",
                end.distinct_tips
            ),
        );
    }
    if liveness && end.items.missing > 0 {
        m.violation(
            now,
            format!(
                "{} submitted items are missing from the final best chain",
                end.items.missing
            ),
        );
    }
    if end.items.duplicated > 0 {
        m.violation(
            now,
            format!(
                "{} submitted items appear more than once in the final best chain",
                end.items.duplicated
            ),
        );
    }
}
