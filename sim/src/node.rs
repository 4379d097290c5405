//! A simulated peer's life: its `Peer` state machine while it runs, the chain it keeps while
//! crashed, its timer, its mining race, its network port and its current tip.
//!
//! Contract: a crashed node has no `Peer`; crashing cancels its timer and mining race (by
//! generation) and empties its port's queues; a restart builds a new `Peer` with a fresh
//! seed per incarnation, on the kept chain or from genesis. The timer is re-armed only when
//! the peer's `poll_timeout()` moved, and older timer events are stale by generation.

use crate::mining::Miner;
use crate::net::model::Port;
use crate::rng::derive_seed;
use crate::time::SimTime;
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
    /// The links this peer is an end of.
    pub links: Vec<u32>,
    /// The peer's best tip (the last one it reported while running).
    pub tip: BlockHash,
}

impl Node {
    /// A running node.
    pub(crate) fn new(peer: Peer, port: Port, miner: Miner, tip: BlockHash) -> Node {
        Node {
            peer: Some(peer),
            kept: None,
            incarnation: 0,
            port,
            timer_at: None,
            timer_gen: 0,
            miner,
            links: Vec::new(),
            tip,
        }
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

/// Mutable access to two different nodes at once (a message's sender and receiver).
#[inline]
pub(crate) fn two_mut(nodes: &mut [Node], a: u32, b: u32) -> (&mut Node, &mut Node) {
    let (a, b) = (a as usize, b as usize);
    assert_ne!(a, b, "a link joins two different peers");
    if a < b {
        let (lo, hi) = nodes.split_at_mut(b);
        (&mut lo[a], &mut hi[0])
    } else {
        let (lo, hi) = nodes.split_at_mut(a);
        (&mut hi[0], &mut lo[b])
    }
}
