//! The orphan pool: blocks whose parent is unknown, bounded by count and bytes.
#![forbid(unsafe_code)]

use crate::block::Block;
use crate::types::BlockHash;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// Limits of the orphan pool.
#[derive(Clone, Copy, Debug)]
pub struct OrphanLimits {
    /// Most blocks waiting for their parent.
    pub max_blocks: usize,
    /// Most bytes ([`Block::size`]) of those blocks together.
    pub max_bytes: usize,
}

impl Default for OrphanLimits {
    fn default() -> Self {
        OrphanLimits {
            max_blocks: 1024,
            max_bytes: 32 << 20,
        }
    }
}

/// Blocks with an unknown parent, bounded by count and bytes; the oldest is evicted first.
pub(super) struct Orphans {
    by_parent: BTreeMap<BlockHash, Vec<Arc<Block>>>,
    parent_of: BTreeMap<BlockHash, BlockHash>,
    order: VecDeque<BlockHash>,
    pub(super) bytes: usize,
    limits: OrphanLimits,
}

impl Orphans {
    pub(super) fn new(limits: OrphanLimits) -> Orphans {
        Orphans {
            by_parent: BTreeMap::new(),
            parent_of: BTreeMap::new(),
            order: VecDeque::new(),
            bytes: 0,
            limits,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.parent_of.len()
    }

    pub(super) fn contains(&self, h: &BlockHash) -> bool {
        self.parent_of.contains_key(h)
    }

    pub(super) fn add(&mut self, block: Arc<Block>) {
        let size = block.size();
        if size > self.limits.max_bytes || self.limits.max_blocks == 0 {
            return;
        }
        while self.len() >= self.limits.max_blocks || self.bytes + size > self.limits.max_bytes {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            self.remove(&old);
        }
        self.parent_of.insert(block.hash(), block.prev());
        self.order.push_back(block.hash());
        self.bytes += size;
        self.by_parent.entry(block.prev()).or_default().push(block);
    }

    pub(super) fn remove(&mut self, h: &BlockHash) {
        let Some(parent) = self.parent_of.remove(h) else {
            return;
        };
        if let Some(v) = self.by_parent.get_mut(&parent) {
            if let Some(pos) = v.iter().position(|b| b.hash() == *h) {
                self.bytes -= v[pos].size();
                v.swap_remove(pos);
            }
            if v.is_empty() {
                self.by_parent.remove(&parent);
            }
        }
    }

    pub(super) fn take_children(&mut self, parent: &BlockHash) -> Vec<Arc<Block>> {
        let children = self.by_parent.remove(parent).unwrap_or_default();
        for c in &children {
            self.parent_of.remove(&c.hash());
            self.bytes -= c.size();
        }
        if !children.is_empty() && self.order.len() > 2 * self.limits.max_blocks {
            let parent_of = &self.parent_of;
            self.order.retain(|h| parent_of.contains_key(h));
        }
        children
    }

    pub(super) fn root(&self, h: &BlockHash) -> Option<BlockHash> {
        let mut cur = *self.parent_of.get(h)?;
        // Bounded by the pool size: each step moves to a distinct pooled block.
        for _ in 0..=self.len() {
            match self.parent_of.get(&cur) {
                Some(p) => cur = *p,
                None => return Some(cur),
            }
        }
        Some(cur)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::Header;
    use crate::types::Hash32;

    fn orphan(parent: u8, nonce: u64) -> Arc<Block> {
        let header = Header {
            version: 1,
            difficulty: 0,
            height: 2,
            timestamp_ms: 0,
            prev: Hash32([parent; 32]),
            data_hash: Hash32([0; 32]),
            nonce,
        };
        Arc::new(Block::new(header, vec![]))
    }

    /// Connected orphans leave stale entries in the eviction order; they are swept once there
    /// are more than twice `max_blocks`, also when each connection takes several at once.
    #[test]
    fn the_eviction_order_stays_bounded_as_orphans_connect() {
        let limits = OrphanLimits {
            max_blocks: 4,
            max_bytes: usize::MAX,
        };
        let mut pool = Orphans::new(limits);
        for round in 0..100u64 {
            let parent = (round % 200) as u8;
            for k in 0..3 {
                pool.add(orphan(parent, round * 3 + k));
            }
            assert_eq!(pool.take_children(&Hash32([parent; 32])).len(), 3);
            assert_eq!(pool.len(), 0);
            assert!(
                pool.order.len() <= 2 * limits.max_blocks,
                "{} entries after round {round}",
                pool.order.len()
            );
        }
    }
}
