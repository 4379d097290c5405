//! Catch-up: a neighbour claiming more work than ours, or the same work on another tip (a tie:
//! both sides fetch the other's tip, so that everyone learns of the tie and the rule in
//! `Peer::tie_break_parent` can break it), is asked for the hashes after our locator
//! (`get_chain`), which are then fetched like announcements, batch by batch, until it has
//! nothing new.

use super::timers::Timer;
use super::{penalty, Peer};
use crate::message::{Message, Tip, MAX_HASHES, MAX_LOCATOR};
use crate::types::{BlockHash, ConnId};

impl Peer {
    pub(super) fn on_get_chain(&mut self, peer: ConnId, locator: &[BlockHash]) {
        let fork = self.chain.find_fork(locator);
        let hashes = self
            .chain
            .hashes_after(fork, self.config.sync_batch.min(MAX_HASHES));
        let tip = self.tip();
        self.send(peer, Message::ChainHashes { hashes, tip });
    }

    pub(super) fn on_chain_hashes(&mut self, peer: ConnId, hashes: Vec<BlockHash>, tip: Tip) {
        let max_queue = self.config.max_fetch_queue;
        let Some(c) = self.conns.get_mut(&peer) else {
            return;
        };
        if !c.chain_requested() {
            return self.misbehaved(peer, penalty::UNSOLICITED_CHAIN_HASHES);
        }
        self.timers.set(peer, &mut c.timers, Timer::Chain, None);
        // Strikes are not forgiven here: a peer that answers catch-up but never delivers a
        // block would otherwise stall forever without being dropped. A delivered block resets them.
        c.set_tip(tip);
        let mut fresh = 0;
        for h in &hashes {
            if self.chain.knows(h) || self.rejected.contains(h) || self.requested.contains_key(h) {
                continue;
            }
            if c.to_fetch.len() < max_queue {
                c.to_fetch.push(*h);
                fresh += 1;
            }
        }
        c.sync_cursor = hashes.last().copied();
        // Nothing new to fetch from this peer: caught up with it until its tip changes. If part
        // of its batch is requested from another neighbour, asking again now would return the
        // same batch in a loop; should that request fail, the stall resets every `synced_to`.
        if fresh == 0 {
            c.synced_to = Some(tip.hash);
        }
        self.request_more(peer);
        self.maybe_sync(peer);
    }

    /// Starts or continues catch-up with `peer` if it claims more work than we have, or the
    /// same work on another tip.
    pub(super) fn maybe_sync(&mut self, peer: ConnId) {
        let our_work = self.chain.tip_work();
        let ours = self.chain.tip().hash();
        let timeout = self.now.add(self.config.request_timeout);
        let Some(c) = self.conns.get_mut(&peer) else {
            return;
        };
        let Some(tip) = c.tip else { return };
        let idle = c.is_ready()
            && !c.chain_requested()
            && c.requests().is_empty()
            && c.to_fetch.is_empty();
        let wanted = tip.work > our_work || (tip.work == our_work && tip.hash != ours);
        if !idle || !wanted || c.synced_to == Some(tip.hash) || self.chain.contains(&tip.hash) {
            return;
        }
        self.timers
            .set(peer, &mut c.timers, Timer::Chain, Some(timeout));
        c.chain_seq = c.sent_seq;
        c.chain_retries = 0;
        c.sent_seq += 1;
        let locator = self.sync_locator(peer);
        self.arm_probe(peer);
        self.send(peer, Message::GetChain { locator });
    }

    /// Our locator, led by where `peer`'s last catch-up batch ended if we hold that block.
    pub(super) fn sync_locator(&self, peer: ConnId) -> Vec<BlockHash> {
        let mut locator = Vec::with_capacity(MAX_LOCATOR);
        let cursor = self.conns.get(&peer).and_then(|c| c.sync_cursor);
        if let Some(cursor) = cursor.filter(|h| self.chain.contains(h)) {
            locator.push(cursor);
        }
        locator.extend(self.chain.locator());
        locator.truncate(MAX_LOCATOR);
        locator
    }

    /// After losing a connection or a stalled request: let every neighbour be asked again.
    pub(super) fn sync_all(&mut self) {
        for c in self.conns.values_mut() {
            c.synced_to = None;
        }
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        for id in ids {
            self.maybe_sync(id);
        }
    }
}
