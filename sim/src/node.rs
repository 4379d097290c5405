//! A simulated peer's life: its `Peer` state machine while it runs, the chain it keeps while
//! crashed, its timer, its mining race, its network port, its sides of its links, its
//! current tip, and what it alone decides in a round: the keys of the events it causes, its
//! share of the trace hash and its compact-payload draws.
//!
//! Contract: a crashed node has no `Peer`; crashing cancels its timer and mining race (by
//! generation) and empties its port's queues; a restart builds a new `Peer` with a fresh
//! seed per incarnation, on the kept chain or from genesis. The timer is re-armed only when
//! the peer's `poll_timeout()` moved, and older timer events are stale by generation.

use crate::mining::Miner;
use crate::net::links::End;
use crate::net::model::Port;
use crate::rng::{derive_seed, TraceHash};
use crate::sched::origin_key;
use crate::time::SimTime;
use rand_chacha::ChaCha8Rng;
use rantai_core::{BlockHash, Chain, Config, Millis, Peer};

/// One simulated peer.
pub(crate) struct Node {
    /// The running state machine, `None` while crashed.
    pub peer: Option<Peer>,
    /// The chain of a crashed peer that keeps its data directory.
    kept: Option<Chain>,
    incarnation: u32,
    pub port: Port,
    timer_at: Option<SimTime>,
    timer_gen: u32,
    pub miner: Miner,
    /// Its sides of the links it is an end of, by link index (ascending).
    pub ends: Vec<End>,
    /// The peer's best tip (the last one it reported while running).
    pub tip: BlockHash,
    /// This peer's index.
    index: u32,
    /// Events and journal entries this peer caused so far: the next one's key.
    seq: u64,
    /// The hash of this peer's own trace events, in its own order.
    pub trace: TraceHash,
    /// Draws of the compact-block payload model (whether its mempool lacks part of a block).
    pub payload_rng: ChaCha8Rng,
}

impl Node {
    /// Running node `index`.
    pub(crate) fn new(
        index: u32,
        peer: Peer,
        port: Port,
        miner: Miner,
        tip: BlockHash,
        payload_rng: ChaCha8Rng,
    ) -> Node {
        Node {
            peer: Some(peer),
            kept: None,
            incarnation: 0,
            port,
            timer_at: None,
            timer_gen: 0,
            miner,
            ends: Vec::new(),
            tip,
            index,
            seq: 0,
            trace: TraceHash::default(),
            payload_rng,
        }
    }

    /// The ordering key of the next event or journal entry this peer causes.
    #[inline]
    pub(crate) fn next_key(&mut self) -> u64 {
        self.seq += 1;
        origin_key(self.index, self.seq)
    }

    /// Its side of `link`, if it is an end of it.
    #[inline]
    pub(crate) fn end(&self, link: u32) -> Option<&End> {
        let i = self.ends.binary_search_by_key(&link, |e| e.link).ok()?;
        Some(&self.ends[i])
    }

    /// Its side of `link`, mutably.
    #[inline]
    pub(crate) fn end_mut(&mut self, link: u32) -> Option<&mut End> {
        let i = self.ends.binary_search_by_key(&link, |e| e.link).ok()?;
        Some(&mut self.ends[i])
    }

    /// Becomes an end of `link` (a new link's index is larger than every other).
    pub(crate) fn add_end(&mut self, link: u32) {
        debug_assert!(self.ends.last().is_none_or(|e| e.link < link));
        self.ends.push(End::new(link));
    }

    /// Its port, for cache hints.
    #[inline]
    pub(crate) fn port_ref(&self) -> &Port {
        &self.port
    }

    /// The links it is an end of.
    pub(crate) fn links(&self) -> impl Iterator<Item = u32> + '_ {
        self.ends.iter().map(|e| e.link)
    }

    /// Whether the peer is running.
    #[inline]
    pub(crate) fn is_up(&self) -> bool {
        self.peer.is_some()
    }

    /// A timer event of generation `gen` fired: whether it is still due (then it is consumed).
    #[inline]
    pub(crate) fn fire_timer(&mut self, gen: u32) -> bool {
        if self.timer_gen != gen || self.peer.is_none() {
            return false;
        }
        self.timer_at = None;
        true
    }

    /// After a call into the peer: if its deadline moved, the new timer event to schedule
    /// (time and generation). A deadline already due fires on the next millisecond, so time
    /// always advances.
    #[inline]
    pub(crate) fn rearm_timer(&mut self, now: SimTime) -> Option<(SimTime, u32)> {
        let peer = self.peer.as_ref()?;
        let t = peer.poll_timeout().map(SimTime::from_peer);
        if t == self.timer_at {
            return None;
        }
        self.timer_at = t;
        self.timer_gen = self.timer_gen.wrapping_add(1);
        let t = t?;
        let at = if t <= now { now.add(Millis(1)) } else { t };
        Some((at, self.timer_gen))
    }

    /// Stops the peer, keeping its chain if `keep_chain`: its last tip, or `None` if it was
    /// not running.
    pub(crate) fn crash(&mut self, keep_chain: bool) -> Option<BlockHash> {
        let peer = self.peer.take()?;
        self.kept = keep_chain.then(|| peer.into_chain());
        self.timer_gen = self.timer_gen.wrapping_add(1);
        self.timer_at = None;
        self.miner.cancel();
        self.port.clear_queues();
        Some(self.tip)
    }

    /// Starts a new incarnation of peer `index` (on the kept chain, if any): its tip.
    pub(crate) fn restart(&mut self, core: &Config, master_seed: u64, index: u32) -> BlockHash {
        self.incarnation += 1;
        let seed = derive_seed(
            master_seed,
            "peer-restart",
            (u64::from(index) << 20) | u64::from(self.incarnation),
        );
        let peer = match self.kept.take() {
            Some(chain) => Peer::with_chain(core.clone(), seed, chain),
            None => Peer::new(core.clone(), seed),
        };
        self.tip = peer.chain().tip().hash();
        self.peer = Some(peer);
        self.tip
    }
}
