//! Partitions: which pairs of peers cannot reach each other right now.
//!
//! Contract: a partition splits the peers into groups (a seeded random fraction against the
//! rest, or explicit groups with the unlisted peers as one more group); while it is active,
//! messages and dials between different groups fail, except that a one-way partition only
//! blocks what leaves group 0. Several partitions may be active at once.

use crate::config::Groups;
use crate::rng::stream;
use rand::seq::SliceRandom;

struct Active {
    id: u32,
    /// Group of each peer.
    group: Vec<u8>,
    oneway: bool,
}

/// The partitions in force.
#[derive(Default)]
pub(crate) struct Partitions {
    active: Vec<Active>,
}

/// Each of `n` peers' group under `groups`; a fraction is drawn from stream `partition`/`id`.
pub(crate) fn assign_groups(groups: Groups, n: usize, seed: u64, id: u32) -> Vec<u8> {
    match groups {
        Groups::Fraction(f) => {
            let mut idx: Vec<u32> = (0..n as u32).collect();
            idx.shuffle(&mut stream(seed, "partition", u64::from(id)));
            let k = ((f * n as f64).round() as usize).min(n);
            let mut g = vec![1u8; n];
            for &i in &idx[..k] {
                g[i as usize] = 0;
            }
            g
        }
        Groups::Explicit(gs) => {
            let mut g = vec![gs.len().min(255) as u8; n];
            for (gi, members) in gs.iter().enumerate() {
                for &m in members {
                    if let Some(x) = g.get_mut(m as usize) {
                        *x = gi.min(255) as u8;
                    }
                }
            }
            g
        }
    }
}

impl Partitions {
    /// Puts partition `id` in force with each peer's `group`.
    pub(crate) fn start(&mut self, id: u32, group: Vec<u8>, oneway: bool) {
        self.active.push(Active { id, group, oneway });
    }

    /// Lifts partition `id`; false if it was not in force.
    pub(crate) fn end(&mut self, id: u32) -> bool {
        let before = self.active.len();
        self.active.retain(|p| p.id != id);
        self.active.len() < before
    }

    /// Ids of the partitions in force, in the order they started.
    pub(crate) fn ids(&self) -> Vec<u32> {
        self.active.iter().map(|p| p.id).collect()
    }

    /// Whether no partition is in force.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.active.is_empty()
    }

    /// Number of partitions in force.
    pub(crate) fn len(&self) -> usize {
        self.active.len()
    }

    /// Whether a message from `from` to `to` is dropped.
    #[inline]
    pub(crate) fn blocked(&self, from: u32, to: u32) -> bool {
        self.active.iter().any(|p| {
            let (gf, gt) = (p.group[from as usize], p.group[to as usize]);
            gf != gt && (!p.oneway || gf == 0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_oneway_blocks_only_what_leaves_group_zero() {
        let mut p = Partitions::default();
        let g = assign_groups(Groups::Explicit(vec![vec![0, 1]]), 4, 1, 7);
        assert_eq!(g, vec![0, 0, 1, 1]);
        p.start(7, g, true);
        assert!(p.blocked(0, 2) && !p.blocked(2, 0) && !p.blocked(0, 1));
        assert!(p.end(7) && !p.end(7) && p.is_empty());
    }
}
