//! What a block does once it arrives (from a neighbour or our own miner): validation outcomes
//! and their penalties, relay of what joined the best chain (and equal-work competitors),
//! events, and items going back to the pool after a reorg.

use super::{penalty, DisconnectReason, Event, Peer, RelayPolicy};
use crate::block::{Block, Item};
use crate::chain::{Accepted, BlockError, Insert, TipChange};
use crate::message::Tip;
use crate::types::{BlockHash, ConnId, Work};
use std::collections::BTreeSet;
use std::sync::Arc;

impl Peer {
    /// Validates, stores, relays and reports one block. `relayed` marks blocks that travelled
    /// by relay (or were mined here) rather than by catch-up, so push relay may forward them whole.
    pub(super) fn process_block(&mut self, block: Arc<Block>, from: Option<ConnId>, relayed: bool) {
        let hash = block.hash();
        match self.chain.insert(block, self.now) {
            Err(reason) => {
                self.event(Event::BlockRejected {
                    hash,
                    from,
                    reason: reason.clone(),
                });
                self.rejected.insert(hash);
                if let Some(p) = from {
                    match reason {
                        BlockError::FromFuture { .. } => self.misbehaved(p, penalty::FUTURE_BLOCK),
                        BlockError::InvalidParent => self.misbehaved(p, penalty::INVALID_PARENT),
                        _ => self.disconnect(p, DisconnectReason::InvalidBlock(reason)),
                    }
                }
            }
            Ok(Insert::Duplicate) => {}
            Ok(Insert::Orphan) => {
                if let Some(p) = from {
                    if let Some(c) = self.conns.get_mut(&p) {
                        c.synced_to = None;
                        if c.tip.is_none_or(|t| t.work <= self.chain.tip_work()) {
                            // It has a chain we lack; make sure catch-up considers it.
                            let work = self.chain.tip_work().saturating_add(Work(1));
                            c.tip = Some(Tip {
                                height: 0,
                                hash,
                                work,
                            });
                        }
                    }
                    self.maybe_sync(p);
                }
            }
            Ok(Insert::Accepted(acc)) => self.on_accepted(acc, from, relayed),
        }
    }

    fn on_accepted(&mut self, acc: Accepted, from: Option<ConnId>, relayed: bool) {
        let first = acc.connected.first().map(|b| b.hash());
        for (hash, reason) in &acc.rejected {
            self.rejected.insert(*hash);
            self.event(Event::BlockRejected {
                hash: *hash,
                from: if Some(*hash) == first { from } else { None },
                reason: reason.clone(),
            });
        }
        if let Some(p) = from {
            self.judge_sender(p, &acc, first);
        }
        let joined: BTreeSet<BlockHash> = acc
            .tip_change
            .iter()
            .flat_map(|c| c.joined.iter().map(|b| b.hash()))
            .collect();
        if let (Some(p), Some(h)) = (from, first) {
            if joined.contains(&h) {
                self.note_first_delivery(p);
            }
            if relayed && !joined.contains(&h) {
                let points = if self.config.relay == RelayPolicy::Announce {
                    penalty::UNREQUESTED_SIDE_BLOCK
                } else {
                    penalty::PUSHED_SIDE_BLOCK
                };
                self.misbehaved(p, points);
            }
        }
        let tip_work = self.chain.tip_work();
        for (i, block) in acc.connected.iter().enumerate() {
            let h = block.hash();
            if self.chain.get(&h).is_none() {
                continue;
            }
            self.event(Event::BlockAccepted {
                block: block.clone(),
                from: if i == 0 { from } else { None },
            });
            // Relay what joined the best chain, plus equal-work competitors (a fork race must
            // reach everyone); lighter side branches stay local.
            let competitor = !joined.contains(&h)
                && self.chain.work_of(&h) == Some(tip_work)
                && self.competitor_relayed_at != Some(block.height());
            if !joined.contains(&h) && self.chain.work_of(&h) == Some(tip_work) {
                self.note_rival(h);
            }
            if competitor {
                // One competitor per height is enough to show the race; more would let a
                // cheap miner flood the network with siblings.
                self.competitor_relayed_at = Some(block.height());
            }
            if joined.contains(&h) || competitor {
                self.relay_block(block, from, relayed && i == 0);
            }
        }
        if let Some(change) = acc.tip_change {
            self.on_tip_change(change);
        }
        if self.config.relay_items {
            self.adopt_side_branch_items(&acc.connected);
        }
    }

    /// The best tip moved: items of blocks that joined leave the pool, those of blocks that
    /// left go back to it, and the driver hears of the move.
    pub(super) fn on_tip_change(&mut self, change: TipChange) {
        {
            let mut left_items = Vec::new();
            let mut load = Vec::new();
            for b in &change.left {
                match b.body() {
                    Some(body) => left_items.extend(body.items().iter().cloned()),
                    None => load.push(b.hash()),
                }
            }
            for b in &change.joined {
                for id in b.item_ids() {
                    self.pool.remove(&id);
                }
            }
            let tip = self.chain.tip().clone();
            if !change.left.is_empty() {
                self.event(Event::Reorg {
                    left: change.left.iter().map(|b| b.hash()).collect(),
                    joined: change.joined.iter().map(|b| b.hash()).collect(),
                });
            }
            self.event(Event::TipChanged {
                hash: tip.hash(),
                height: tip.height(),
            });
            self.requeue(left_items);
            self.load_for_requeue(load);
        }
    }

    /// Scores the sender of a block that connected: its own block may still have failed a rule
    /// that needs the chain (a duplicate item); otherwise it earns credit and a better tip.
    fn judge_sender(&mut self, p: ConnId, acc: &Accepted, first: Option<BlockHash>) {
        match acc.rejected.iter().find(|(h, _)| Some(*h) == first) {
            Some((_, BlockError::InvalidParent)) => self.misbehaved(p, penalty::INVALID_PARENT),
            Some((_, reason)) => {
                let reason = reason.clone();
                self.disconnect(p, DisconnectReason::InvalidBlock(reason));
            }
            None => {
                // The sender has this block's chain: its tip is at least that heavy, which
                // settles ties and catch-up decisions without waiting for the next ping.
                let seen = first.and_then(|h| {
                    let b = self.chain.get(&h)?;
                    Some(Tip {
                        height: b.height(),
                        hash: h,
                        work: self.chain.work_of(&h)?,
                    })
                });
                if let Some(c) = self.conns.get_mut(&p) {
                    c.score = c.score.saturating_sub(penalty::GOOD_BLOCK_CREDIT);
                    if let Some(t) = seen {
                        if c.tip.is_none_or(|old| t.work > old.work) {
                            c.tip = Some(t);
                        }
                    }
                }
            }
        }
    }

    /// Puts items of blocks that left the best chain back in the pending pool, unless the
    /// chain or the pool already has them; reports the count.
    pub(super) fn requeue(&mut self, items: Vec<Item>) {
        let mut requeued = 0;
        for it in items {
            let id = it.id();
            if !self.chain.contains_item(&id) && !self.pool.contains(&id) {
                let local = self.pool.is_own(&id);
                self.pool.insert(it, local, self.now);
                requeued += 1;
            }
        }
        if requeued > 0 {
            self.event(Event::ItemsRequeued { count: requeued });
        }
    }

    /// With item gossip, items of side-branch blocks that neither the best chain nor the pool
    /// holds join the pool (as remote items, within their half of it): the block's miner may
    /// be gone (a wiped restart), and no one else would mine them again.
    fn adopt_side_branch_items(&mut self, blocks: &[Arc<Block>]) {
        let (max_items, max_bytes) = (self.config.max_pending_items, self.config.max_pending_bytes);
        for block in blocks {
            if self.chain.in_best_chain(&block.hash()) {
                continue;
            }
            for it in block.items() {
                let id = it.id();
                if self.chain.contains_item(&id) || self.pool.contains(&id) {
                    continue;
                }
                if self.pool.remote_share_full(it, max_items, max_bytes) {
                    return;
                }
                self.pool.insert(it.clone(), false, self.now);
            }
        }
    }
}
