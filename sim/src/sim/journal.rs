//! What a peer's work in a round leaves for the whole run: counters, summed between rounds,
//! and journal entries, applied between rounds in `(time, peer, the peer's own order)`,
//! which no sharding can change ([`Sim::settle`]).

use super::Sim;
use crate::checker;
use crate::metrics::{CompactCounts, Metrics};
use crate::net::{InFlight, KIND_NAMES};
use crate::time::SimTime;
use crate::trace::TraceEv;
use rantai_core::{BlockHash, Millis};

/// Counters a shard adds up during a round.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    pub events: u64,
    pub cancelled_events: u64,
    pub msgs: [u64; KIND_NAMES.len()],
    pub bytes: [u64; KIND_NAMES.len()],
    pub lost: u64,
    pub duplicated: u64,
    pub delayed: u64,
    pub partition_drops: u64,
    pub closed_drops: u64,
    pub dials_ok: u64,
    pub dials_failed: u64,
    pub dup_block_deliveries: u64,
    pub redundant_inv_hashes: u64,
    pub compact: CompactCounts,
    pub reorgs: u64,
    pub deepest_reorg: u64,
    pub in_flight: InFlight,
}

impl Counts {
    /// Adds these counters to the run's and clears them.
    pub(crate) fn drain_into(&mut self, m: &mut Metrics, in_flight: &mut InFlight) {
        let c = std::mem::take(self);
        m.events += c.events;
        m.cancelled_events += c.cancelled_events;
        for k in 0..KIND_NAMES.len() {
            m.msgs[k] += c.msgs[k];
            m.bytes[k] += c.bytes[k];
        }
        let f = &mut m.faults;
        f.lost += c.lost;
        f.duplicated += c.duplicated;
        f.delayed += c.delayed;
        f.partition_drops += c.partition_drops;
        f.closed_drops += c.closed_drops;
        f.dials_ok += c.dials_ok;
        f.dials_failed += c.dials_failed;
        m.dup_block_deliveries += c.dup_block_deliveries;
        m.redundant_inv_hashes += c.redundant_inv_hashes;
        m.compact.rebuilt += c.compact.rebuilt;
        m.compact.round_trip += c.compact.round_trip;
        m.compact.whole_block += c.compact.whole_block;
        m.compact.payload_gaps += c.compact.payload_gaps;
        m.reorgs += c.reorgs;
        m.deepest_reorg = m.deepest_reorg.max(c.deepest_reorg);
        let mut flight = c.in_flight;
        in_flight.absorb(&mut flight);
    }
}

/// One journal entry: something a peer did that the whole run must see.
#[derive(Debug)]
pub(crate) enum Entry {
    /// A trace line (only while lines are written; the hash is the peer's own).
    Trace(TraceEv),
    /// The peer mined a block (`raced`: by its race, not on request).
    Mined {
        hash: BlockHash,
        height: u64,
        size: u64,
        raced: bool,
    },
    /// The peer accepted a block, on a message from `via`.
    Accepted {
        hash: BlockHash,
        via: Option<u32>,
        parent_held: bool,
    },
    /// The peer's best tip moved.
    Tip { old: BlockHash, new: BlockHash },
    /// The peer rejected a block (the error's kind).
    Rejected(String),
    /// The peer disconnected a connection (the reason's label).
    Disconnect(&'static str),
    /// An invariant was violated.
    Violation(String),
    /// The peer closed its side of `(link, epoch)`: the other side closes at the barrier.
    Closed { link: u32, epoch: u32 },
    /// The peer dialled `(link, epoch)`: the other side accepts at the barrier.
    Connected { link: u32, epoch: u32 },
    /// The peer (with discovery) wants to dial peer `to`, to which it has no link yet.
    NewLink { to: u32 },
}

impl Entry {
    /// Entries that change links or call into other peers: run after the round's others.
    pub(crate) fn is_structural(&self) -> bool {
        matches!(
            self,
            Entry::Closed { .. } | Entry::Connected { .. } | Entry::NewLink { .. }
        )
    }
}

/// A journal entry with its time and its peer's ordering key ([`crate::sched::origin_key`]).
#[derive(Debug)]
pub(crate) struct Record {
    pub t: u64,
    pub key: u64,
    pub entry: Entry,
}

impl Sim {
    /// Between rounds: adds up the shards' counters, applies their journals in `(time, peer,
    /// order)`, then the other sides of dials and closes, then the block target's policy
    /// change, until nothing is left.
    pub(super) fn settle(&mut self) {
        for s in &mut self.shards {
            s.counts.drain_into(&mut self.metrics, &mut self.in_flight);
        }
        let mut recs = std::mem::take(&mut self.recs);
        let mut later = Vec::new();
        loop {
            recs.clear();
            for s in &mut self.shards {
                recs.append(&mut s.journal);
            }
            if recs.is_empty() {
                if !std::mem::take(&mut self.refresh_all) {
                    break;
                }
                for i in 0..self.nodes.len() as u32 {
                    self.with_ctx(i, |c| c.refresh_mining(i));
                }
                continue;
            }
            recs.sort_unstable_by_key(|r| (r.t, r.key));
            for r in recs.drain(..) {
                if r.entry.is_structural() {
                    later.push(r);
                } else {
                    self.apply(r);
                }
            }
            for r in later.drain(..) {
                let node = (r.key >> 40) as u32;
                match r.entry {
                    Entry::Closed { link, epoch } => {
                        let other = self.w.net.links.other(link, node);
                        self.close_remote(link, epoch, other, node);
                    }
                    Entry::Connected { link, epoch } => self.accept(node, link, epoch),
                    Entry::NewLink { to } => self.new_link(node, to),
                    _ => {}
                }
            }
            for s in &mut self.shards {
                s.counts.drain_into(&mut self.metrics, &mut self.in_flight);
            }
        }
        self.recs = recs;
        for s in &mut self.shards {
            s.counts.drain_into(&mut self.metrics, &mut self.in_flight);
        }
        // Messages sent between rounds are booked at once, in the order they were sent.
        self.flush();
    }

    /// Applies one journal entry to the run's state.
    fn apply(&mut self, r: Record) {
        let node = (r.key >> 40) as u32;
        let t = SimTime::from_millis(Millis(r.t));
        let m = &mut self.metrics;
        match r.entry {
            Entry::Trace(ev) => self.trace.write(t, ev),
            Entry::Mined {
                hash,
                height,
                size,
                raced,
            } => {
                if self.w.mining.record(t, raced) {
                    self.refresh_all = true;
                }
                let (online, peers) = (self.w.online, self.w.peers);
                m.on_mined(hash, node, height, size, Millis(r.t), online, peers);
            }
            Entry::Accepted {
                hash,
                via,
                parent_held,
            } => {
                let mined_here = m.on_accepted(&hash, node, via, Millis(r.t), self.w.peers);
                checker::check_accepted(m, t, node, &hash, mined_here, parent_held);
            }
            Entry::Tip { old, new } => {
                m.tip_changes += 1;
                m.last_tip_change = m.last_tip_change.max(Millis(r.t));
                self.checker.tip_moved(old, new, t);
                let tips = self.checker.tips().len() as u32;
                m.charts.tips.set(r.t, tips);
            }
            Entry::Rejected(kind) => *m.rejected_blocks.entry(kind).or_default() += 1,
            Entry::Disconnect(label) => {
                *m.faults.disconnects.entry(label.to_string()).or_default() += 1;
            }
            Entry::Violation(what) => m.violation(Millis(r.t), what),
            Entry::Closed { .. } | Entry::Connected { .. } | Entry::NewLink { .. } => {}
        }
    }
}
