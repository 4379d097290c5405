//! Compact block relay (BIP 152 style, [`RelayPolicy::Compact`]): choosing up to three
//! neighbours that push new blocks to us compactly at once (those that recently delivered
//! blocks first), sending compact blocks, rebuilding received ones from the pending pool,
//! asking for exactly the items missing, and falling back to the whole block when a rebuild
//! cannot work (equal short ids, a chance collision, a lost answer).
//!
//! A block being rebuilt is a request like any other ([`super::conn::Req`]): if the missing
//! items never come, the loss probes and the request timeout re-request the whole block, so
//! every recovery path of full-block relay covers compact relay too.

use super::conn::Req;
use super::{penalty, CompactOutcome, Event, Peer, RelayPolicy};
use crate::block::{Block, Header};
use crate::chain::BlockError;
use crate::compact::{CompactBlock, Rebuilt};
use crate::message::{Hashes, Message};
use crate::types::{BlockHash, ConnId};
use rand::Rng;
use smallvec::SmallVec;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// Neighbours asked to push compact blocks at once, as Bitcoin Core does.
pub const MAX_HIGH_BANDWIDTH_PEERS: usize = 3;
/// Blocks rebuilt at once, waiting for `block_items`; more fall back to whole blocks.
const MAX_PARTIAL_BLOCKS: usize = 16;
/// Payload gaps remembered ([`super::Input::PayloadMissing`]).
const MAX_PAYLOAD_GAPS: usize = 64;

/// A block rebuilt as far as the pool allowed, waiting for its missing items.
#[derive(Debug)]
struct Partial {
    from: ConnId,
    /// Part of the payload is missing here ([`super::Input::PayloadMissing`]): no other copy
    /// of the compact block can supply it, only `from`'s `block_items`.
    payload_gap: bool,
    header: Header,
    rebuilt: Rebuilt,
}

/// The compact-relay state of one peer.
#[derive(Debug, Default)]
pub(super) struct CompactState {
    /// Neighbours we asked to push compact blocks, least recently first-to-deliver first.
    high_bandwidth: SmallVec<[ConnId; MAX_HIGH_BANDWIDTH_PEERS]>,
    partial: BTreeMap<BlockHash, Partial>,
    /// Blocks whose payload the driver says our mempool lacks part of (simulation).
    gaps: VecDeque<BlockHash>,
}

impl CompactState {
    /// The neighbours currently asked to push compact blocks, oldest first.
    pub(super) fn high_bandwidth(&self) -> &[ConnId] {
        &self.high_bandwidth
    }
}

impl Peer {
    /// The compact form of `block` for neighbour `to`: every item it is not known to have
    /// (all of them without item gossip, since then no pool but the miner's holds them) goes
    /// whole; the rest as short ids. `None` if that would not fit in a frame.
    pub(super) fn compact_for(&mut self, to: ConnId, block: &Block) -> Option<CompactBlock> {
        let salt = self.rng.gen();
        let gossip = self.config.relay_items;
        let c = self.conns.get(&to)?;
        let cb = CompactBlock::new(block.header(), block.items(), salt, |_, it| {
            !gossip || !c.known_items.contains(&it.id())
        });
        let msg_len = 1 + cb.encoded_len();
        (msg_len <= crate::message::MAX_FRAME_BYTES).then_some(cb)
    }

    /// Sends `block` to `to` compactly (or whole, when the compact form would not fit).
    pub(super) fn send_compact(&mut self, to: ConnId, block: &Arc<Block>) {
        let msg = match self.compact_for(to, block) {
            Some(cb) => Message::CmpctBlock(Box::new(cb)),
            None => Message::Block {
                block: block.clone(),
            },
        };
        self.send(to, msg);
    }

    pub(super) fn on_send_cmpct(&mut self, peer: ConnId, high_bandwidth: bool) {
        if let Some(c) = self.conns.get_mut(&peer) {
            c.cmpct_hb = high_bandwidth;
        }
    }

    pub(super) fn on_get_cmpct(&mut self, peer: ConnId, hash: BlockHash) {
        match self.chain.get(&hash).map(|b| b.body().cloned()) {
            Some(Some(block)) => {
                if let Some(c) = self.conns.get_mut(&peer) {
                    c.known.insert(&hash);
                }
                self.send_compact(peer, &block);
            }
            // Evicted from memory: the store read answers with the whole block.
            Some(None) => self.on_get_blocks(peer, [hash].into_iter().collect()),
            None => self.send(
                peer,
                Message::NotFound {
                    hashes: [hash].into_iter().collect(),
                },
            ),
        }
    }

    pub(super) fn on_get_block_items(&mut self, peer: ConnId, hash: BlockHash, indexes: Vec<u32>) {
        let Some(block) = self.chain.body(&hash).cloned() else {
            return self.send(
                peer,
                Message::NotFound {
                    hashes: [hash].into_iter().collect(),
                },
            );
        };
        let items = block.items();
        let in_order = indexes.windows(2).all(|w| w[0] < w[1]);
        if !in_order || indexes.last().is_some_and(|&i| i as usize >= items.len()) {
            return self.misbehaved(peer, penalty::BAD_ITEM_POSITIONS);
        }
        let items = indexes.iter().map(|&i| items[i as usize].clone()).collect();
        self.send(peer, Message::BlockItems { hash, items });
    }

    /// The driver's model of the environment says our mempool lacks part of `block`'s payload
    /// (the bytes a simulated block stands for but does not carry): rebuilding it from a
    /// compact block takes one `get_block_items` round trip even when every real item is here.
    pub(super) fn on_payload_missing(&mut self, block: BlockHash) {
        if self.compact.gaps.len() >= MAX_PAYLOAD_GAPS {
            self.compact.gaps.pop_front();
        }
        self.compact.gaps.push_back(block);
    }

    fn take_gap(&mut self, block: &BlockHash) -> bool {
        let at = self.compact.gaps.iter().position(|h| h == block);
        at.and_then(|i| self.compact.gaps.remove(i)).is_some()
    }

    pub(super) fn on_cmpct_block(&mut self, peer: ConnId, cb: CompactBlock) {
        let h = cb.hash();
        let Some(c) = self.conns.get_mut(&peer) else {
            return;
        };
        c.known.insert(&h);
        let solicited = c.requests().iter().any(|r| r.hash == h);
        if self.chain.knows(&h) || self.rejected.contains(&h) {
            if solicited {
                self.drop_request(peer, h);
            }
            return;
        }
        if let Some(from) = self.compact.partial.get(&h).map(|p| p.from) {
            if !self.rebuild_alive(&h, from) {
                self.compact.partial.remove(&h);
            }
        }
        if let Some((from, gap)) = self
            .compact
            .partial
            .get(&h)
            .map(|p| (p.from, p.payload_gap))
        {
            // Already being rebuilt from `from`: this copy helps only if it completes the
            // block at once (it may prefill what the first lacked); otherwise `from`'s
            // request covers the block and this one needs no answer.
            let whole = cb
                .rebuild(self.pool.items())
                .ok()
                .filter(|r| r.missing().is_empty());
            match whole {
                Some(rebuilt) if from != peer && !gap => {
                    // Taken only if its data checks out: a copy that does not must not end
                    // the first sender's rebuild (nor cost anyone: it may be a collision).
                    let block = rebuilt.fill(Vec::new()).map(|it| Block::new(cb.header, it));
                    match block {
                        Some(b) if b.data_hash_matches() => {
                            self.event(Event::CompactBlock {
                                hash: h,
                                from: peer,
                                outcome: CompactOutcome::Rebuilt,
                            });
                            self.on_block(peer, Arc::new(b));
                        }
                        _ if solicited => self.drop_request(peer, h),
                        _ => {}
                    }
                }
                _ if solicited && from != peer => self.drop_request(peer, h),
                _ => {}
            }
            return;
        }
        if let Err(e) = self.chain.check_header(&cb.header, self.now) {
            self.rejected.insert(h);
            self.drop_request(peer, h);
            return match e {
                BlockError::FromFuture { .. } => self.misbehaved(peer, penalty::FUTURE_BLOCK),
                e => self.disconnect(peer, super::DisconnectReason::InvalidBlock(e)),
            };
        }
        if !solicited && self.far_below_tip(&cb.header) {
            return self.misbehaved(peer, penalty::STALE_BLOCK);
        }
        let Ok(rebuilt) = cb.rebuild(self.pool.items()) else {
            // Equal short ids in one block: only the whole block tells which item is where.
            return self.request_whole(peer, h);
        };
        let gap = self.take_gap(&h);
        let missing = rebuilt.missing();
        if missing.is_empty() && !gap {
            return self.complete(
                peer,
                cb.header,
                rebuilt,
                Vec::new(),
                CompactOutcome::Rebuilt,
            );
        }
        if self.compact.partial.len() >= MAX_PARTIAL_BLOCKS {
            self.purge_dead_rebuilds();
        }
        if self.compact.partial.len() >= MAX_PARTIAL_BLOCKS {
            return self.request_whole(peer, h);
        }
        self.compact.partial.insert(
            h,
            Partial {
                from: peer,
                payload_gap: gap,
                header: cb.header,
                rebuilt,
            },
        );
        self.track_request(peer, h);
        self.send(
            peer,
            Message::GetBlockItems {
                hash: h,
                indexes: missing,
            },
        );
    }

    pub(super) fn on_block_items(
        &mut self,
        peer: ConnId,
        hash: BlockHash,
        items: Vec<crate::block::Item>,
    ) {
        let from_peer = self
            .compact
            .partial
            .get(&hash)
            .is_some_and(|p| p.from == peer);
        if !from_peer {
            // Late for a block that came another way meanwhile: asked for, so no fault.
            if self.chain.knows(&hash) || self.rejected.contains(&hash) {
                return;
            }
            // Its rebuild ended (another neighbour's `not_found` or a stall) while it was
            // still asked: ask it for the whole block instead, at no cost.
            let asked = self
                .conns
                .get(&peer)
                .is_some_and(|c| c.requests().iter().any(|r| r.hash == hash));
            if asked {
                return self.request_whole(peer, hash);
            }
            return self.misbehaved(peer, penalty::UNREQUESTED_BLOCK_ITEMS);
        }
        let Some(p) = self.compact.partial.remove(&hash) else {
            return;
        };
        let wanted = p.rebuilt.missing().len();
        if items.len() != wanted {
            self.misbehaved(peer, penalty::WRONG_BLOCK_ITEMS);
            return self.request_whole(peer, hash);
        }
        self.complete(peer, p.header, p.rebuilt, items, CompactOutcome::RoundTrip)
    }

    /// Fills a rebuilt block and hands it on as if it had arrived whole. Rebuilt data that does
    /// not match the header's data hash is a short-id collision (ours, by chance), not the
    /// sender's fault: the whole block is asked for instead.
    fn complete(
        &mut self,
        peer: ConnId,
        header: Header,
        rebuilt: Rebuilt,
        items: Vec<crate::block::Item>,
        outcome: CompactOutcome,
    ) {
        let h = header.hash();
        let block = rebuilt.fill(items).map(|items| Block::new(header, items));
        match block {
            Some(b) if b.data_hash_matches() => {
                self.event(Event::CompactBlock {
                    hash: h,
                    from: peer,
                    outcome,
                });
                self.on_block(peer, Arc::new(b))
            }
            _ => self.request_whole(peer, h),
        }
    }

    /// Asks `peer` for the whole block `h`, as a tracked request.
    fn request_whole(&mut self, peer: ConnId, h: BlockHash) {
        self.compact.partial.remove(&h);
        self.event(Event::CompactBlock {
            hash: h,
            from: peer,
            outcome: CompactOutcome::WholeBlock,
        });
        if !self.conns.contains_key(&peer) {
            return;
        }
        self.track_request(peer, h);
        self.send(
            peer,
            Message::GetBlocks {
                hashes: Hashes::from_slice(&[h]),
            },
        );
    }

    /// Makes `h` a request of `peer` sent now (a new one, or the one already there renewed),
    /// so loss probes and the request timeout cover what is sent next.
    fn track_request(&mut self, peer: ConnId, h: BlockHash) {
        let deadline = self.now.add(self.config.request_timeout);
        let Some(c) = self.conns.get_mut(&peer) else {
            // Gone (a penalty just closed it): nobody to ask, and no request to record.
            return;
        };
        if self.requested.get(&h).is_none() {
            self.requested.insert(h, peer);
        }
        let seq = c.sent_seq;
        c.edit_requests(peer, &mut self.timers, |reqs| {
            match reqs.iter_mut().find(|r| r.hash == h) {
                Some(r) => {
                    r.seq = seq;
                    r.deadline = r.deadline.max(deadline);
                }
                None => reqs.push(Req {
                    hash: h,
                    deadline,
                    seq,
                    retries: 0,
                }),
            }
        });
        c.sent_seq += 1;
        self.arm_probe(peer);
    }

    /// Forgets a request of `peer` for `h` that needs no answer any more.
    fn drop_request(&mut self, peer: ConnId, h: BlockHash) {
        if let Some(c) = self.conns.get_mut(&peer) {
            c.edit_requests(peer, &mut self.timers, |reqs| reqs.retain(|r| r.hash != h));
        }
        self.release_requests(peer, &[h]);
    }

    /// `peer` delivered a block first: it joins (or moves to the back of) the neighbours asked
    /// to push compact blocks at once, and the one that delivered first least recently leaves
    /// when there are more than [`MAX_HIGH_BANDWIDTH_PEERS`].
    pub(super) fn note_first_delivery(&mut self, peer: ConnId) {
        if self.config.relay != RelayPolicy::Compact {
            return;
        }
        let hb = &mut self.compact.high_bandwidth;
        if let Some(i) = hb.iter().position(|&p| p == peer) {
            let p = hb.remove(i);
            hb.push(p);
            return;
        }
        let evicted = (hb.len() >= MAX_HIGH_BANDWIDTH_PEERS).then(|| hb.remove(0));
        hb.push(peer);
        self.send(
            peer,
            Message::SendCmpct {
                high_bandwidth: true,
            },
        );
        if let Some(q) = evicted {
            self.send(
                q,
                Message::SendCmpct {
                    high_bandwidth: false,
                },
            );
        }
    }

    /// A connection is gone: it no longer pushes to us, and its rebuilds end (their requests
    /// are re-fetched from others like any other).
    pub(super) fn compact_forget(&mut self, peer: ConnId) {
        self.compact.high_bandwidth.retain(|p| *p != peer);
        self.compact.partial.retain(|_, p| p.from != peer);
    }

    /// `peer` sent block `h` whole (or `not_found` for it): its rebuild of `h` ends. A
    /// rebuild from another neighbour stays: only its own sender's answer ends it.
    pub(super) fn compact_done(&mut self, h: &BlockHash, peer: ConnId) {
        if self.compact.partial.get(h).is_some_and(|p| p.from == peer) {
            self.compact.partial.remove(h);
        }
    }

    /// Whether `from` still has the request that keeps its rebuild of `h` alive: a stall or
    /// a copy from elsewhere may have ended it, and a rebuild nobody will answer must not
    /// block the block (or hold one of the slots).
    fn rebuild_alive(&self, h: &BlockHash, from: ConnId) -> bool {
        self.conns
            .get(&from)
            .is_some_and(|c| c.requests().iter().any(|r| r.hash == *h))
    }

    /// Drops rebuilds whose request is gone.
    fn purge_dead_rebuilds(&mut self) {
        let dead: Vec<BlockHash> = self
            .compact
            .partial
            .iter()
            .filter(|(h, p)| !self.rebuild_alive(h, p.from))
            .map(|(h, _)| *h)
            .collect();
        for h in dead {
            self.compact.partial.remove(&h);
        }
    }

    /// Block `h` is here (from `from`): compact relay may have it requested of other
    /// neighbours too (a push rebuilt from one while another was asked), and an answer no
    /// longer needed must not count as a stall if it is lost.
    pub(super) fn drop_other_requests(&mut self, h: BlockHash, from: ConnId) {
        if self.config.relay != RelayPolicy::Compact {
            return;
        }
        let timers = &mut self.timers;
        for (&id, c) in self.conns.iter_mut() {
            if id != from && c.requests().iter().any(|r| r.hash == h) {
                c.edit_requests(id, timers, |reqs| reqs.retain(|r| r.hash != h));
            }
        }
        if self.requested.get(&h).is_some_and(|p| *p != from) {
            self.requested.remove(&h);
        }
    }
}
