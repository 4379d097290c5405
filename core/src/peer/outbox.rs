//! Relay batching: announcements and items queued per connection while one input is handled,
//! flushed as few messages as possible when it is done.
//!
//! A connection is listed in [`FlushQueue`] exactly when its [`Batch`] went from empty to
//! non-empty, so a flush visits only connections with something to send.

use crate::block::Item;
use crate::message::{MAX_ITEMS_MSG_BYTES, MAX_ITEMS_PER_MSG};
use crate::types::{BlockHash, ConnId};
use smallvec::SmallVec;

/// One connection's queued announcements and items.
#[derive(Debug, Default)]
pub(super) struct Batch {
    pub(super) announce: SmallVec<[BlockHash; 1]>,
    pub(super) items: Vec<Item>,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.announce.is_empty() && self.items.is_empty()
    }

    /// Heap bytes of a spilled announcement list.
    pub(super) fn spilled_bytes(&self) -> usize {
        spilled_bytes(&self.announce)
    }
}

/// Connections with a non-empty [`Batch`], in the order they were first queued.
#[derive(Debug, Default)]
pub(super) struct FlushQueue {
    ids: Vec<ConnId>,
}

impl FlushQueue {
    /// Queues an announcement of `hash` on connection `id`.
    #[inline]
    pub(super) fn announce(&mut self, id: ConnId, batch: &mut Batch, hash: BlockHash) {
        if batch.is_empty() {
            self.ids.push(id);
        }
        batch.announce.push(hash);
    }

    /// Queues `item` on connection `id`.
    pub(super) fn item(&mut self, id: ConnId, batch: &mut Batch, item: Item) {
        if batch.is_empty() {
            self.ids.push(id);
        }
        batch.items.push(item);
    }

    /// Takes the queued connections; hand the emptied vector back with [`FlushQueue::restore`]
    /// so its buffer is reused.
    pub(super) fn take(&mut self) -> Vec<ConnId> {
        std::mem::take(&mut self.ids)
    }

    /// Returns the buffer taken by [`FlushQueue::take`], emptied.
    pub(super) fn restore(&mut self, mut ids: Vec<ConnId>) {
        ids.clear();
        self.ids = ids;
    }
}

/// Splits items into `items` messages that each fit in a frame: at most
/// [`MAX_ITEMS_PER_MSG`] items and [`MAX_ITEMS_MSG_BYTES`] (one valid item always fits).
pub(super) fn item_batches(items: &[Item]) -> Vec<Vec<Item>> {
    let mut out: Vec<Vec<Item>> = Vec::new();
    let mut bytes = 0;
    for it in items {
        let fits = out.last().is_some_and(|b| {
            b.len() < MAX_ITEMS_PER_MSG && bytes + it.encoded_len() <= MAX_ITEMS_MSG_BYTES
        });
        if !fits {
            out.push(Vec::new());
            bytes = 0;
        }
        bytes += it.encoded_len();
        if let Some(b) = out.last_mut() {
            b.push(it.clone());
        }
    }
    out
}

/// Heap bytes of a `SmallVec` that outgrew its inline storage.
pub(super) fn spilled_bytes<A: smallvec::Array>(v: &SmallVec<A>) -> usize {
    if v.spilled() {
        v.capacity() * std::mem::size_of::<A::Item>()
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(n: u64, encoded_len: usize) -> Item {
        Item {
            nonce: n,
            text: "i".repeat(encoded_len - crate::block::ITEM_OVERHEAD),
        }
    }

    fn lens(batches: &[Vec<Item>]) -> Vec<usize> {
        batches.iter().map(Vec::len).collect()
    }

    #[test]
    fn item_batches_hold_at_most_the_item_count() {
        let items: Vec<Item> = (0..2 * MAX_ITEMS_PER_MSG as u64 + 1)
            .map(|n| item(n, 20))
            .collect();
        let batches = item_batches(&items);
        assert_eq!(
            lens(&batches),
            vec![MAX_ITEMS_PER_MSG, MAX_ITEMS_PER_MSG, 1]
        );
        let flat: Vec<Item> = batches.concat();
        assert_eq!(flat, items, "every item once, in order");
        assert!(item_batches(&[]).is_empty());
    }

    #[test]
    fn item_batches_fill_the_byte_bound_exactly_and_not_one_byte_more() {
        // Four items that add up to the bound exactly share one message.
        let quarter = MAX_ITEMS_MSG_BYTES / 4;
        let last = MAX_ITEMS_MSG_BYTES - 3 * quarter;
        let exact = vec![
            item(1, quarter),
            item(2, quarter),
            item(3, quarter),
            item(4, last),
        ];
        assert_eq!(lens(&item_batches(&exact)), vec![4]);
        // One byte more moves the fourth to a message of its own, and the next joins it.
        let over = vec![
            item(1, quarter),
            item(2, quarter),
            item(3, quarter),
            item(4, last + 1),
            item(5, 20),
        ];
        assert_eq!(lens(&item_batches(&over)), vec![3, 2]);
    }
}
