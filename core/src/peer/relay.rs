//! Passing blocks and items on: once per neighbour not known to have them (never back to the
//! sender), as batched announcements or whole pushed blocks, plus item gossip and the re-send
//! of items that stay pending, so a lost `items` message never loses an item.

use super::outbox::item_batches;
use super::{penalty, Peer, RelayPolicy};
use crate::block::{Block, Item};
use crate::message::{Hashes, Message, MAX_HASHES, MAX_ITEMS_MSG_BYTES, MAX_ITEMS_PER_MSG};
use crate::types::{ConnId, Millis};
use smallvec::SmallVec;
use std::sync::Arc;

impl Peer {
    pub(super) fn relay_block(&mut self, block: &Arc<Block>, from: Option<ConnId>, may_push: bool) {
        let h = block.hash();
        let push = may_push && self.config.relay == RelayPolicy::Push;
        // High-bandwidth compact pushes go out for relayed blocks and for a new tip reached
        // by catch-up or a reorg; the blocks below such a tip are announced (pushed, they
        // could sit far below the receiver's tip and cost their sender points).
        let is_tip = self.chain.tip().hash() == h;
        let mut pushes = Vec::new();
        let mut compacts = SmallVec::<[ConnId; 3]>::new();
        for (&id, c) in self.conns.iter_mut() {
            if Some(id) == from || !c.is_ready() || c.known.contains(&h) {
                continue;
            }
            c.known.insert(&h);
            if c.cmpct_hb && (may_push || is_tip) {
                // It asked for new blocks compactly at once, whatever our own policy.
                compacts.push(id);
            } else if push {
                pushes.push(id);
            } else {
                self.flush.announce(id, &mut c.batch, h);
            }
        }
        for id in compacts {
            self.send_compact(id, block);
        }
        for id in pushes {
            self.send(
                id,
                Message::Block {
                    block: block.clone(),
                },
            );
        }
    }

    pub(super) fn relay_item(&mut self, item: &Item, from: Option<ConnId>) {
        let id = item.id();
        for (&pid, c) in self.conns.iter_mut() {
            if Some(pid) == from || !c.is_ready() || c.known_items.contains(&id) {
                continue;
            }
            c.known_items.insert(&id);
            self.flush.item(pid, &mut c.batch, item.clone());
        }
    }

    pub(super) fn on_items(&mut self, peer: ConnId, items: Vec<Item>) {
        if !self.config.relay_items {
            // This node does not pool others' items; they could only crowd out ours.
            return;
        }
        for item in items {
            self.on_item(peer, item);
        }
    }

    fn on_item(&mut self, peer: ConnId, item: Item) {
        if item.encoded_len() + 4 > self.config.params.block_data_limit() {
            return self.misbehaved(peer, penalty::OVERSIZED_ITEM);
        }
        let id = item.id();
        if let Some(c) = self.conns.get_mut(&peer) {
            c.known_items.insert(&id);
        }
        if self.chain.contains_item(&id) || self.pool.contains(&id) {
            return;
        }
        let (max_items, max_bytes) = (self.config.max_pending_items, self.config.max_pending_bytes);
        if self.pool.remote_share_full(&item, max_items, max_bytes) {
            return;
        }
        self.pool.insert(item.clone(), false, self.now);
        if self.config.relay_items {
            self.relay_item(&item, Some(peer));
        }
    }

    /// Re-sends pending items older than `age` to `id`, one message's worth per call, resuming
    /// where the last call stopped: an `items` message lost on the way must not lose an item.
    pub(super) fn resend_stale_items(&mut self, id: ConnId, age: Millis) {
        if !self.config.relay_items || self.pool.is_empty() {
            return;
        }
        let now = self.now;
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let mut items = Vec::new();
        let mut bytes = 0;
        let mut last = c.item_cursor;
        let stale = self
            .pool
            .wrapping_after(c.item_cursor)
            .filter(|(_, p)| now.since(p.since) >= age);
        for (seq, p) in stale {
            if items.len() >= MAX_ITEMS_PER_MSG
                || bytes + p.item.encoded_len() > MAX_ITEMS_MSG_BYTES
            {
                break;
            }
            bytes += p.item.encoded_len();
            c.known_items.insert(&p.item.id());
            items.push(p.item.clone());
            last = seq;
        }
        c.item_cursor = last;
        if !items.is_empty() {
            self.send(id, Message::Items { items });
        }
    }

    /// Sends every batch queued during this call, in the order connections were first queued.
    pub(super) fn flush_batches(&mut self) {
        let queued = self.flush.take();
        for &id in &queued {
            let Some(c) = self.conns.get_mut(&id) else {
                continue;
            };
            for chunk in c.batch.announce.chunks(MAX_HASHES) {
                let msg = Message::Inv {
                    hashes: Hashes::from_slice(chunk),
                };
                self.out.push_back(super::Output::Send { to: id, msg });
            }
            c.batch.announce.clear();
            for items in item_batches(&c.batch.items) {
                let msg = Message::Items { items };
                self.out.push_back(super::Output::Send { to: id, msg });
            }
            c.batch.items.clear();
        }
        self.flush.restore(queued);
    }
}
