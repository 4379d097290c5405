//! The pending-item pool: items waiting to be mined, in arrival order, with the indexes kept
//! in step with it (by id, total bytes, local count), and the ids of items submitted here.
//!
//! Local items (submitted here) and remote ones (gossiped by neighbours) share the pool, but
//! remote items may fill only half of it, so a local submission always fits.

use super::config::{OWN_ITEMS_SWEEP_MIN, OWN_ITEM_DEPTH_BLOCKS};
use crate::block::{Item, ItemId};
use crate::chain::Chain;
use crate::types::Millis;
use std::collections::{BTreeMap, BTreeSet};

/// One pooled item.
#[derive(Debug)]
pub(super) struct Pending {
    pub(super) item: Item,
    local: bool,
    /// When it entered the pool; items pending longer than a ping interval are re-sent.
    pub(super) since: Millis,
}

/// The pending pool. Sequence numbers grow with every insertion, so iteration is arrival order.
#[derive(Debug, Default)]
pub(super) struct Pool {
    by_seq: BTreeMap<u64, Pending>,
    by_id: BTreeMap<ItemId, u64>,
    last_seq: u64,
    bytes: usize,
    local: usize,
    own: OwnItems,
}

impl Pool {
    pub(super) fn len(&self) -> usize {
        self.by_seq.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.by_seq.is_empty()
    }

    /// Encoded bytes of every pooled item.
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Pooled items submitted here.
    pub(super) fn local_len(&self) -> usize {
        self.local
    }

    pub(super) fn contains(&self, id: &ItemId) -> bool {
        self.by_id.contains_key(id)
    }

    pub(super) fn get(&self, id: &ItemId) -> Option<&Item> {
        let seq = self.by_id.get(id)?;
        self.by_seq.get(seq).map(|p| &p.item)
    }

    /// Pooled items in arrival order.
    pub(super) fn items(&self) -> impl Iterator<Item = &Item> + '_ {
        self.by_seq.values().map(|p| &p.item)
    }

    /// Pooled items with their sequence numbers, starting after `cursor` and wrapping around
    /// to the oldest.
    pub(super) fn wrapping_after(&self, cursor: u64) -> impl Iterator<Item = (u64, &Pending)> + '_ {
        let after = self.by_seq.range(cursor + 1..);
        let before = self.by_seq.range(..=cursor);
        after.chain(before).map(|(&seq, p)| (seq, p))
    }

    /// Whether `item` fits under the pool's limits.
    pub(super) fn fits(&self, item: &Item, max_items: usize, max_bytes: usize) -> bool {
        self.len() < max_items && self.bytes + item.encoded_len() <= max_bytes
    }

    /// Whether `item` would overfill the half of the pool open to items that are not ours.
    pub(super) fn remote_share_full(
        &self,
        item: &Item,
        max_items: usize,
        max_bytes: usize,
    ) -> bool {
        let remote = self.len() - self.local;
        remote >= max_items / 2 || self.bytes + item.encoded_len() > max_bytes / 2
    }

    /// Adds an item unless it is already pooled. Limits are the caller's to check.
    pub(super) fn insert(&mut self, item: Item, local: bool, now: Millis) {
        let id = item.id();
        if self.by_id.contains_key(&id) {
            return;
        }
        self.last_seq += 1;
        self.bytes += item.encoded_len();
        if local {
            self.local += 1;
        }
        self.by_id.insert(id, self.last_seq);
        self.by_seq.insert(
            self.last_seq,
            Pending {
                item,
                local,
                since: now,
            },
        );
    }

    /// Removes an item (it joined the best chain).
    pub(super) fn remove(&mut self, id: &ItemId) {
        if let Some(seq) = self.by_id.remove(id) {
            if let Some(p) = self.by_seq.remove(&seq) {
                self.bytes -= p.item.encoded_len();
                if p.local {
                    self.local -= 1;
                }
            }
        }
    }

    /// Remembers `id` as submitted here, so it counts as local if a reorg requeues it.
    pub(super) fn claim(&mut self, id: ItemId, chain: &Chain) {
        self.own.insert(id, chain);
    }

    /// Whether `id` was submitted here (and is not yet buried deep in the best chain).
    pub(super) fn is_own(&self, id: &ItemId) -> bool {
        self.own.ids.contains(id)
    }
}

/// Ids of items submitted here. An item leaves once it is buried [`OWN_ITEM_DEPTH_BLOCKS`]
/// deep in the best chain, so the set holds at most the pool's items plus those of the
/// last blocks of that depth.
#[derive(Debug)]
struct OwnItems {
    ids: BTreeSet<ItemId>,
    /// Size at which the next sweep runs.
    sweep_at: usize,
}

impl Default for OwnItems {
    fn default() -> Self {
        OwnItems {
            ids: BTreeSet::new(),
            sweep_at: OWN_ITEMS_SWEEP_MIN,
        }
    }
}

impl OwnItems {
    fn insert(&mut self, id: ItemId, chain: &Chain) {
        self.ids.insert(id);
        if self.ids.len() >= self.sweep_at {
            let tip = chain.height();
            self.ids.retain(|id| {
                chain
                    .item_height(id)
                    .is_none_or(|h| h.saturating_add(OWN_ITEM_DEPTH_BLOCKS) > tip)
            });
            self.sweep_at = OWN_ITEMS_SWEEP_MIN.max(2 * self.ids.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::Template;
    use crate::params::Params;
    use crate::types::Hash32;
    use std::sync::Arc;

    /// Extends the best chain by one block carrying `items`.
    fn mine(chain: &mut Chain, items: Vec<Item>) {
        let tip = chain.tip().clone();
        let now = Millis(tip.header().timestamp_ms + 1);
        let block = Template::new(tip.header(), tip.hash(), 0, now, items).into_block(0);
        chain.insert(Arc::new(block), now).expect("valid block");
    }

    #[test]
    fn removal_gives_back_the_items_bytes_and_its_local_count() {
        let item = |n: u64, len: usize| Item {
            nonce: n,
            text: "x".repeat(len),
        };
        let (a, b) = (item(1, 100), item(2, 30));
        let mut pool = Pool::default();
        pool.insert(a.clone(), true, Millis(1));
        pool.insert(b.clone(), false, Millis(2));
        pool.insert(a.clone(), false, Millis(3));
        assert_eq!(pool.len(), 2, "a repeated item is pooled once");
        assert_eq!(pool.bytes(), a.encoded_len() + b.encoded_len());
        assert!(pool.contains(&a.id()) && pool.contains(&b.id()));
        pool.remove(&a.id());
        assert!(!pool.contains(&a.id()) && pool.contains(&b.id()));
        assert_eq!(pool.bytes(), b.encoded_len());
        assert_eq!(pool.local_len(), 0);
        // The bytes freed make room again: the byte bound is exact.
        let max = b.encoded_len() + a.encoded_len();
        assert!(pool.fits(&a, 10, max));
        assert!(!pool.fits(&item(3, 101), 10, max));
        pool.remove(&b.id());
        pool.remove(&b.id());
        assert_eq!((pool.len(), pool.bytes()), (0, 0));
    }

    #[test]
    fn own_items_are_forgotten_only_once_buried_deep() {
        let mut chain = Chain::new(Arc::new(Params::dev()));
        let buried = Item {
            nonce: 1,
            text: "buried".into(),
        };
        let recent = Item {
            nonce: 2,
            text: "recent".into(),
        };
        mine(&mut chain, vec![buried.clone()]);
        for _ in 1..OWN_ITEM_DEPTH_BLOCKS {
            mine(&mut chain, Vec::new());
        }
        mine(&mut chain, vec![recent.clone()]);
        let mut pool = Pool::default();
        pool.claim(buried.id(), &chain);
        pool.claim(recent.id(), &chain);
        // Items in no block yet (pending, or awaiting a requeue) are never forgotten.
        for n in 0..OWN_ITEMS_SWEEP_MIN as u64 {
            let mut id = [0u8; 32];
            id[..8].copy_from_slice(&n.to_le_bytes());
            pool.claim(Hash32(id), &chain);
        }
        assert!(
            !pool.is_own(&buried.id()),
            "buried {OWN_ITEM_DEPTH_BLOCKS} deep"
        );
        assert!(pool.is_own(&recent.id()));
        assert_eq!(pool.own.ids.len(), OWN_ITEMS_SWEEP_MIN + 1);
        // The sweep ran at the claim that made the count reach the minimum and left one fewer;
        // the next runs at twice that.
        assert_eq!(pool.own.sweep_at, 2 * (OWN_ITEMS_SWEEP_MIN - 1));
    }
}
