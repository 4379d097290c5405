//! Moving blocks between neighbours on request: announcements queue hashes to fetch, requests
//! go out up to the in-flight limit (never for a block already asked of someone else), blocks
//! and `not_found` answer them, requests a lost neighbour never served are re-fetched from
//! another, and `get_blocks` from neighbours is served.

use super::config::{MAX_GET_BLOCKS, STALE_MARGIN_BLOCKS};
use super::conn::Req;
use super::{penalty, LoadPurpose, Output, Peer, RelayPolicy, Violation};
use crate::block::{Block, Header};
use crate::message::{Hashes, Message};
use crate::types::{BlockHash, ConnId, Work};
use std::collections::BTreeSet;
use std::sync::Arc;

impl Peer {
    pub(super) fn on_inv(&mut self, peer: ConnId, hashes: &[BlockHash]) {
        let max_queue = self.config.max_fetch_queue;
        let Some(c) = self.conns.get_mut(&peer) else {
            return;
        };
        let mut overflow = false;
        for &h in hashes {
            c.known.insert(&h);
            // Cheapest and most likely first: while a new block propagates, most
            // announcements name a block already requested from another neighbour.
            if self.requested.contains_key(&h)
                || c.to_fetch.contains(&h)
                || self.chain.knows(&h)
                || self.rejected.contains(&h)
            {
                continue;
            }
            if c.to_fetch.len() >= max_queue {
                overflow = true;
                continue;
            }
            c.to_fetch.push(h);
        }
        // Most announcements are of blocks already here: then there is nothing to request.
        let fetch = !c.to_fetch.is_empty();
        if overflow {
            self.misbehaved(peer, penalty::FETCH_QUEUE_OVERFLOW);
        }
        if fetch {
            self.request_more(peer);
        }
    }

    /// Requests queued hashes from `peer` up to its in-flight limit.
    pub(super) fn request_more(&mut self, peer: ConnId) {
        let deadline = self.now.add(self.config.request_timeout);
        let max = self.config.max_in_flight_per_peer;
        let Some(c) = self.conns.get_mut(&peer) else {
            return;
        };
        let room = max.saturating_sub(c.requests().len());
        let mut batch = Hashes::new();
        let mut taken = 0;
        let seq = c.sent_seq;
        for &hash in &c.to_fetch {
            if batch.len() >= room {
                break;
            }
            taken += 1;
            if self.requested.contains_key(&hash) || self.chain.knows(&hash) {
                continue;
            }
            self.requested.insert(hash, peer);
            batch.push(hash);
        }
        c.to_fetch.drain(..taken);
        if !batch.is_empty() {
            let reqs = batch.iter().map(|&hash| Req {
                hash,
                deadline,
                seq,
                retries: 0,
            });
            c.edit_requests(peer, &mut self.timers, |r| r.extend(reqs));
            c.sent_seq += 1;
            self.arm_probe(peer);
            // Compact relay asks for a single new block compactly (low bandwidth); batches
            // are catch-up, whose blocks' items no pool holds any more.
            let msg = match batch.as_slice() {
                [hash] if self.config.relay == RelayPolicy::Compact => {
                    Message::GetCmpct { hash: *hash }
                }
                _ => Message::GetBlocks { hashes: batch },
            };
            self.send(peer, msg);
        }
    }

    /// Forgets that `hashes` were requested from `peer` (delivered, refused or given up).
    pub(super) fn release_requests(&mut self, peer: ConnId, hashes: &[BlockHash]) {
        for h in hashes {
            if self.requested.get(h) == Some(&peer) {
                self.requested.remove(h);
            }
        }
    }

    /// Re-queues hashes that a lost or stalled peer never delivered with neighbours that have them.
    pub(super) fn refetch(&mut self, hashes: &[BlockHash], exclude: Option<ConnId>) {
        let mut touched = BTreeSet::new();
        for h in hashes {
            if self.chain.knows(h) || self.requested.contains_key(h) {
                continue;
            }
            let holder = self
                .conns
                .iter_mut()
                .find(|(&id, c)| Some(id) != exclude && c.is_ready() && c.known.contains(h));
            if let Some((&id, c)) = holder {
                if c.to_fetch.len() < self.config.max_fetch_queue {
                    c.to_fetch.push(*h);
                    touched.insert(id);
                }
            }
        }
        for id in touched {
            self.request_more(id);
        }
    }

    pub(super) fn on_not_found(&mut self, peer: ConnId, hashes: &[BlockHash]) {
        let Some(c) = self.conns.get_mut(&peer) else {
            return;
        };
        let was_requested = c.edit_requests(peer, &mut self.timers, |reqs| {
            let before = reqs.len();
            reqs.retain(|r| !hashes.contains(&r.hash));
            reqs.len() < before
        });
        self.release_requests(peer, hashes);
        for h in hashes {
            self.compact_done(h, peer);
        }
        let points = if was_requested {
            penalty::NOT_FOUND_REQUESTED
        } else {
            penalty::NOT_FOUND_UNREQUESTED
        };
        self.misbehaved(peer, points);
        self.request_more(peer);
    }

    pub(super) fn on_block(&mut self, peer: ConnId, block: Arc<Block>) {
        let h = block.hash();
        self.compact_done(&h, peer);
        let Some(c) = self.conns.get_mut(&peer) else {
            return;
        };
        let deadline = self.now.add(self.config.request_timeout);
        let solicited = c.edit_requests(peer, &mut self.timers, |reqs| {
            let before = reqs.len();
            reqs.retain(|r| r.hash != h);
            let solicited = reqs.len() < before;
            if solicited {
                // The peer is serving, only slowly (a busy uplink answers in order): the rest
                // of the batch gets a full timeout from now, so a long queue is not taken for
                // a stall and re-requested, which would only lengthen it.
                for r in reqs.iter_mut() {
                    r.deadline = r.deadline.max(deadline);
                }
            }
            solicited
        });
        c.known.insert(&h);
        if solicited {
            c.strikes = 0;
        }
        self.release_requests(peer, &[h]);
        let known = self.chain.knows(&h) || self.rejected.contains(&h);
        if !solicited && known && self.config.relay == RelayPolicy::Announce {
            self.misbehaved(peer, penalty::REDUNDANT_BLOCK);
        } else if !solicited && self.far_below_tip(block.header()) {
            self.misbehaved(peer, penalty::STALE_BLOCK);
        } else if !known {
            // Pushed blocks keep being pushed; fetched ones are announced onwards.
            self.process_block(block, Some(peer), !solicited);
        }
        if self.chain.knows(&h) {
            self.drop_other_requests(h, peer);
        }
        self.request_more(peer);
        self.maybe_sync(peer);
    }

    /// Whether an unrequested block would sit well below our tip's work (a cheap side branch).
    pub(super) fn far_below_tip(&self, header: &Header) -> bool {
        let Some(parent_work) = self.chain.work_of(&header.prev) else {
            return false;
        };
        let unit = Work::of_difficulty(self.config.params.min_difficulty).0;
        let margin = Work(unit.saturating_mul(STALE_MARGIN_BLOCKS));
        parent_work
            .saturating_add(header.work())
            .saturating_add(margin)
            < self.chain.tip_work()
    }

    pub(super) fn on_get_blocks(&mut self, peer: ConnId, mut hashes: Hashes) {
        if hashes.len() > MAX_GET_BLOCKS {
            return self.violation(peer, Violation::GetBlocksOverLimit);
        }
        let n = hashes.len();
        hashes.sort_unstable();
        hashes.dedup();
        if hashes.len() < n {
            return self.misbehaved(peer, penalty::DUPLICATE_REQUEST);
        }
        let mut missing = Hashes::new();
        let mut load = Vec::new();
        for h in hashes {
            match self.chain.get(&h).map(|b| b.body()) {
                Some(Some(b)) => {
                    let block = b.clone();
                    if let Some(c) = self.conns.get_mut(&peer) {
                        c.known.insert(&h);
                    }
                    self.send(peer, Message::Block { block });
                }
                Some(None) => load.push(h),
                None => missing.push(h),
            }
        }
        if !missing.is_empty() {
            self.send(peer, Message::NotFound { hashes: missing });
        }
        if !load.is_empty() {
            self.out.push_back(Output::LoadBlocks {
                hashes: load,
                purpose: LoadPurpose::Serve(peer),
            });
        }
    }

    /// Finishes serving a `get_blocks` whose bodies the driver loaded from its store.
    pub(super) fn serve_loaded(
        &mut self,
        peer: ConnId,
        blocks: Vec<Arc<Block>>,
        mut missing: Vec<BlockHash>,
    ) {
        let Some(c) = self.conns.get_mut(&peer) else {
            return;
        };
        for b in &blocks {
            c.known.insert(&b.hash());
        }
        for block in blocks {
            self.send(peer, Message::Block { block });
        }
        if !missing.is_empty() {
            missing.truncate(MAX_GET_BLOCKS);
            self.send(
                peer,
                Message::NotFound {
                    hashes: missing.into_iter().collect(),
                },
            );
        }
    }
}
