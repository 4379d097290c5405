//! The discrete-event engine: virtual time, an event queue ordered by (time, insertion
//! sequence), and the real `rantai_core::Peer` state machines connected by simulated links.
//!
//! Contract: after every call into a peer, its outputs are drained and executed, and its timer
//! is re-armed if `poll_timeout()` moved (older timer events are cancelled lazily by a
//! per-peer generation counter). The clock only jumps to the next event; nothing reads the
//! wall clock, and all randomness comes from streams derived from the seed (see [`crate::rng`]).

use crate::config::{ConfigError, Groups, Latency, SimConfig};
use crate::metrics::{reason_label, Metrics};
use crate::net::{self, kind_index, wire_size, BANDWIDTH_THRESHOLD_BYTES};
use crate::presets::Preset;
use crate::queue::EventQueue;
use crate::rng::{derive_seed, stream};
use crate::trace::{Trace, TraceEv};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rantai_core::hint::prefetch;
use rantai_core::{
    BlockHash, Chain, Config, Direction, Event, Input, ItemId, Message, Millis, Output, Params,
    Peer, PeerId, SubmitError,
};
use std::collections::BTreeMap;

/// Most extra blocks mined after the target to break a final tie between equal-work tips.
pub const MAX_TIEBREAK_BLOCKS: u64 = 10;

/// Errors of the scripting API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// The index is not a peer of this simulation.
    #[error("no peer {0}")]
    NoSuchPeer(u32),
    /// The peer is crashed and cannot act.
    #[error("peer {0} is crashed")]
    PeerDown(u32),
    /// The peer is running, so it cannot be restarted.
    #[error("peer {0} is already running")]
    PeerUp(u32),
    /// The peer refused the data item.
    #[error("submission refused: {0}")]
    Submit(#[from] SubmitError),
}

#[derive(Debug)]
enum Ev {
    Deliver {
        link: u32,
        epoch: u32,
        to: u32,
        msg: Message,
    },
    Timer {
        node: u32,
        gen: u32,
    },
    Mine {
        node: u32,
        gen: u32,
    },
    Dial {
        link: u32,
        gen: u32,
    },
    Close {
        link: u32,
        epoch: u32,
        node: u32,
    },
    Partition(u32),
    Heal(u32),
    Crash(u32),
    Restart(u32),
    Submit {
        idx: u32,
        node: u32,
    },
}

struct Node {
    peer: Option<Peer>,
    /// The chain of a crashed peer that keeps its data directory.
    kept: Option<Chain>,
    incarnation: u32,
    up_bps: Option<u64>,
    down_bps: Option<u64>,
    up_free_us: u64,
    down_free_us: u64,
    timer_at: Option<Millis>,
    timer_gen: u32,
    /// Share of the network's hash power (0 for non-miners).
    hash_share: f64,
    mine_gen: u32,
    lat_rng: ChaCha8Rng,
    fault_rng: ChaCha8Rng,
    mine_rng: ChaCha8Rng,
    links: Vec<u32>,
    tip: BlockHash,
}

struct Link {
    /// The dialer.
    a: u32,
    b: u32,
    epoch: u32,
    open: bool,
    /// Arrival time of the last in-order message per direction (connections are FIFO streams).
    fifo_to_b: u64,
    fifo_to_a: u64,
    failures: u32,
    dial_gen: u32,
}

impl Link {
    fn other(&self, n: u32) -> u32 {
        if n == self.a {
            self.b
        } else {
            self.a
        }
    }
}

struct ActivePartition {
    id: u32,
    group: Vec<u8>,
    oneway: bool,
}

/// Background traffic that never ends while peers run: keepalives (and loss probes) and the
/// periodic re-sending of pending items. "Quiet" ignores it.
fn is_background(msg: &Message) -> bool {
    matches!(
        msg,
        Message::Ping { .. } | Message::Pong { .. } | Message::Items { .. }
    )
}

/// Whether a ready neighbour of `p` claims more work than `p`'s tip.
fn neighbour_ahead(p: &Peer) -> bool {
    let ours = p.chain().tip_work();
    p.peers()
        .iter()
        .any(|c| c.ready && c.tip.is_some_and(|t| t.work > ours))
}

/// Queue hint of events that concern no single peer.
const NO_HINT: u32 = u32::MAX;

/// Chains are pre-sized for at most this many blocks (with genesis, 4,096 entries); longer
/// runs grow them as they go.
const MAX_RESERVED_BLOCKS: u64 = 4095;

/// Peers see virtual time offset to the genesis timestamp, so mined blocks carry realistic
/// timestamps after their genesis; the engine, reports and traces use time since the start.
pub const EPOCH_MS: u64 = rantai_core::params::GENESIS_TIMESTAMP_MS;

fn peer_time(t: Millis) -> Millis {
    Millis(t.0 + EPOCH_MS)
}

fn pid(link: u32, epoch: u32) -> PeerId {
    PeerId((u64::from(link) << 32) | u64::from(epoch))
}

fn unpid(p: PeerId) -> (u32, u32) {
    ((p.0 >> 32) as u32, p.0 as u32)
}

/// Progress of a running simulation, for progress bars.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Virtual time.
    pub now: Millis,
    /// Blocks mined so far.
    pub mined: u64,
    /// Blocks to mine.
    pub blocks: u64,
    /// Events processed so far.
    pub events: u64,
}

/// A running simulation. Build one with [`crate::Builder`] or [`Sim::new`].
pub struct Sim {
    cfg: SimConfig,
    core: Config,
    latency: Latency,
    preset: Option<&'static Preset>,
    block_size: u64,
    now: Millis,
    seq: u64,
    /// Event slots by (time, seq); the events themselves sit in `slots`, so the queue moves
    /// 16- to 24-byte entries, never messages.
    queue: EventQueue,
    slots: Vec<Option<Ev>>,
    free: Vec<u32>,
    nodes: Vec<Node>,
    /// Each peer's region, apart from `nodes`: every send reads the receiver's, and a `Node`
    /// is kilobytes, so this keeps a cold node's line off the send path.
    regions: Vec<u8>,
    links: Vec<Link>,
    edges: Vec<(u32, u32)>,
    partitions: Vec<ActivePartition>,
    pub(crate) metrics: Metrics,
    pub(crate) trace: Trace,
    mined: u64,
    pub(crate) tiebreak_blocks: u64,
    pub(crate) mining_done_at: Option<Millis>,
    in_flight: u64,
    /// Of `in_flight`, background messages (ping, pong, items): they never end, so "quiet"
    /// ignores them.
    in_flight_background: u64,
    /// Scheduled faults and submissions not yet fired.
    pending_scheduled: u64,
    pub(crate) last_fault_at: Millis,
    pub(crate) last_heal_at: Option<Millis>,
    /// First moment after the last heal when all online peers shared one tip.
    pub(crate) agreed_after_heal: Option<Millis>,
    tip_counts: BTreeMap<BlockHash, u32>,
    online: u32,
    faults_on: bool,
    submissions: Vec<(Millis, u32)>,
    pub(crate) timed_out: bool,
    /// Upload slots `(start, end)` in µs booked per (link, sender) and not yet finished, so a
    /// closing connection can hand its unsent share of the uplink back.
    /// Indexed by `2 * link + (sender is the acceptor)`; empty (no allocation) when idle.
    uploads: Vec<Vec<(u64, u64)>>,
    /// Liveness phase: after the target, miners keep mining while they hold pending items
    /// or a pure tie needs breaking (see [`Sim::set_liveness_mining`]).
    liveness_mining: bool,
}

impl Sim {
    /// Builds the network and schedules everything the configuration asks for.
    pub fn new(cfg: SimConfig) -> Result<Sim, ConfigError> {
        cfg.validate()?;
        let mut core = Config::new(Params::dev());
        core.relay = cfg.relay;
        core.auto_mine = false;
        core.relay_items = true;
        core.ping_interval = cfg.ping_interval();
        core.request_timeout = cfg.request_timeout;
        let placement = net::place(&cfg);
        let edges = net::build_topology(&cfg);
        let n = cfg.peers as usize;
        let miners = cfg.miners() as usize;
        let mut shares = vec![0.0; n];
        let weights: Vec<f64> = cfg.hashpower.clone().unwrap_or_else(|| vec![1.0; miners]);
        let total: f64 = weights.iter().sum();
        for (j, w) in weights.iter().enumerate().take(miners) {
            // Miners are spread evenly over the peer indices (so regions and partitions mix).
            let idx = j * n / miners.max(1);
            shares[idx] = w / total;
        }
        let genesis = core.params.genesis_hash();
        // Every peer ends up holding about every mined block: sizing the chains up front saves
        // regrowing them, which caused most of a run's page faults. No margin for stale blocks:
        // it could push a list or the index past a size that growing would not reach. Capped,
        // so a huge --blocks reserves no more than a 4,095-block run would use.
        let expected_blocks = cfg.blocks.min(MAX_RESERVED_BLOCKS) as usize;
        let mut nodes = Vec::with_capacity(n);
        #[allow(clippy::needless_range_loop)] // i is the peer's stable entity id
        for i in 0..n {
            let mut chain = Chain::with_orphan_limits(core.params.clone(), core.orphan_limits);
            chain.reserve(expected_blocks);
            let peer =
                Peer::with_chain(core.clone(), derive_seed(cfg.seed, "peer", i as u64), chain);
            nodes.push(Node {
                peer: Some(peer),
                kept: None,
                incarnation: 0,
                up_bps: placement.upload_bps[i],
                down_bps: placement.download_bps[i],
                up_free_us: 0,
                down_free_us: 0,
                timer_at: None,
                timer_gen: 0,
                hash_share: shares[i],
                mine_gen: 0,
                lat_rng: stream(cfg.seed, "latency", i as u64),
                fault_rng: stream(cfg.seed, "faults", i as u64),
                mine_rng: stream(cfg.seed, "mining", i as u64),
                links: Vec::new(),
                tip: genesis,
            });
        }
        let mut links = Vec::with_capacity(edges.len());
        for (l, &(a, b)) in edges.iter().enumerate() {
            nodes[a as usize].links.push(l as u32);
            nodes[b as usize].links.push(l as u32);
            links.push(Link {
                a,
                b,
                epoch: 0,
                open: false,
                fifo_to_b: 0,
                fifo_to_a: 0,
                failures: 0,
                dial_gen: 0,
            });
        }
        let mut tip_counts = BTreeMap::new();
        tip_counts.insert(genesis, n as u32);
        let mut sim = Sim {
            latency: cfg.latency(),
            preset: cfg.preset,
            block_size: cfg.block_size_bytes(),
            faults_on: cfg.loss > 0.0 || cfg.duplicate > 0.0 || cfg.reorder > 0.0,
            core,
            now: Millis::ZERO,
            seq: 0,
            queue: EventQueue::new(),
            slots: Vec::new(),
            free: Vec::new(),
            nodes,
            regions: placement.region,
            links,
            edges,
            partitions: Vec::new(),
            metrics: Metrics::default(),
            trace: Trace::default(),
            mined: 0,
            tiebreak_blocks: 0,
            mining_done_at: None,
            in_flight: 0,
            in_flight_background: 0,
            pending_scheduled: 0,
            last_fault_at: Millis::ZERO,
            last_heal_at: None,
            agreed_after_heal: None,
            tip_counts,
            online: n as u32,
            submissions: Vec::new(),
            timed_out: false,
            liveness_mining: false,
            uploads: Vec::new(),
            cfg,
        };
        for l in 0..sim.links.len() as u32 {
            sim.schedule_dial(l, Millis::ZERO);
        }
        for i in 0..n as u32 {
            sim.schedule_mine(i);
        }
        for (i, p) in sim.cfg.partitions.clone().iter().enumerate() {
            sim.push_scheduled(p.at, Ev::Partition(i as u32));
            sim.last_fault_at = sim.last_fault_at.max(p.at);
            if let Some(h) = p.heal {
                sim.push_scheduled(h, Ev::Heal(i as u32));
                sim.last_fault_at = sim.last_fault_at.max(h);
            }
        }
        for (i, c) in sim.cfg.crashes.clone().iter().enumerate() {
            sim.push_scheduled(c.at, Ev::Crash(i as u32));
            sim.last_fault_at = sim.last_fault_at.max(c.at);
            if let Some(r) = c.restart {
                sim.push_scheduled(r, Ev::Restart(i as u32));
                sim.last_fault_at = sim.last_fault_at.max(r);
            }
        }
        if sim.cfg.items > 0 && n > 0 {
            let mut rng = stream(sim.cfg.seed, "workload", 0);
            let span = (sim.cfg.blocks * sim.cfg.block_interval().0 / 2).max(1);
            for idx in 0..sim.cfg.items {
                let t = Millis(rng.gen_range(0..span));
                let node = rng.gen_range(0..n as u32);
                sim.push_scheduled(t, Ev::Submit { idx, node });
            }
        }
        Ok(sim)
    }

    // ----- scheduling -----

    fn push(&mut self, at: Millis, ev: Ev) {
        let at = at.max(self.now);
        let hint = match ev {
            Ev::Deliver { to, .. } => to,
            Ev::Timer { node, .. } | Ev::Mine { node, .. } | Ev::Close { node, .. } => node,
            _ => NO_HINT,
        };
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = Some(ev);
                s
            }
            None => {
                self.slots.push(Some(ev));
                (self.slots.len() - 1) as u32
            }
        };
        self.seq += 1;
        self.queue.push(at.0, self.seq, slot, hint);
    }

    fn push_scheduled(&mut self, at: Millis, ev: Ev) {
        self.pending_scheduled += 1;
        self.push(at, ev);
    }

    fn schedule_dial(&mut self, link: u32, delay: Millis) {
        let l = &mut self.links[link as usize];
        l.dial_gen = l.dial_gen.wrapping_add(1);
        let gen = l.dial_gen;
        self.push(self.now.add(delay), Ev::Dial { link, gen });
    }

    fn redial_delay(&self, link: u32) -> Millis {
        let f = self.links[link as usize].failures.min(3);
        Millis(self.cfg.redial_delay.0.saturating_mul(1 << f).max(1))
    }

    /// Whether the target is reached but the quiet network sits on several tips.
    fn tiebreak_needed(&self) -> bool {
        self.cfg.blocks > 0
            && self.mined >= self.cfg.blocks
            && (self.tiebreak_blocks < MAX_TIEBREAK_BLOCKS || self.liveness_mining)
            && !self.converged()
            && self.sync_in_flight() == 0
            && self.partitions.is_empty()
            && self.tips_tied()
    }

    /// Whether every distinct tip of the online peers carries the same work (a pure tie,
    /// which only a new block resolves; peers merely behind must catch up on their own).
    fn tips_tied(&self) -> bool {
        let mut work = None;
        for n in &self.nodes {
            if let Some(p) = &n.peer {
                let w = p.chain().tip_work();
                if *work.get_or_insert(w) != w {
                    return false;
                }
            }
        }
        true
    }

    fn schedule_mine(&mut self, node: u32) {
        if self.cfg.blocks == 0
            || (self.tiebreak_blocks >= MAX_TIEBREAK_BLOCKS && !self.liveness_mining)
        {
            return;
        }
        let interval = self.cfg.block_interval().0 as f64;
        let n = &mut self.nodes[node as usize];
        if n.hash_share <= 0.0 || n.peer.is_none() {
            return;
        }
        // Exponential waiting time: mining is memoryless, so a tip change needs no redraw.
        let u: f64 = 1.0 - n.mine_rng.gen::<f64>();
        let dt = (-u.ln() * interval / n.hash_share).round().clamp(1.0, 1e15) as u64;
        n.mine_gen = n.mine_gen.wrapping_add(1);
        let gen = n.mine_gen;
        self.push(self.now.add(Millis(dt)), Ev::Mine { node, gen });
    }

    // ----- public scripting API -----

    /// Current virtual time.
    pub fn now(&self) -> Millis {
        self.now
    }

    /// The configuration this simulation runs.
    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// Number of peers (online or not).
    pub fn peer_count(&self) -> u32 {
        self.nodes.len() as u32
    }

    /// The links as `(dialer, acceptor)` pairs.
    pub fn edges(&self) -> &[(u32, u32)] {
        &self.edges
    }

    /// Peer `i`'s state machine, `None` while it is crashed.
    pub fn peer(&self, i: u32) -> Option<&Peer> {
        self.nodes.get(i as usize)?.peer.as_ref()
    }

    /// Peer `i`'s chain, `None` while it is crashed.
    pub fn chain(&self, i: u32) -> Option<&Chain> {
        self.peer(i).map(Peer::chain)
    }

    /// Blocks mined so far.
    pub fn mined(&self) -> u64 {
        self.mined
    }

    /// Events processed so far.
    pub fn events(&self) -> u64 {
        self.metrics.events
    }

    /// Online peers.
    pub fn online(&self) -> u32 {
        self.online
    }

    /// Whether every online peer has the same best tip.
    pub fn converged(&self) -> bool {
        self.tip_counts.len() <= 1
    }

    /// Distinct best tips of online peers with how many peers hold each, sorted by hash.
    pub fn tips(&self) -> BTreeMap<BlockHash, u32> {
        self.tip_counts.clone()
    }

    /// The measurements collected so far.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Ids of every item submitted so far.
    pub fn submitted_items(&self) -> &[ItemId] {
        &self.metrics.items_submitted
    }

    /// Attaches a JSON-lines trace writer.
    pub fn set_trace_writer(&mut self, w: Box<dyn std::io::Write>) {
        self.trace.set_writer(w);
    }

    /// First error writing the trace, if any.
    pub fn trace_error(&self) -> Option<&str> {
        self.trace.error()
    }

    /// Hash of the event trace so far.
    pub fn trace_hash(&self) -> String {
        self.trace.hash_hex()
    }

    /// Splits the network now: messages between different groups are dropped, and links
    /// across the split cannot be re-dialled. Peers not listed form one more group.
    pub fn partition(&mut self, groups: Vec<Vec<u32>>) -> u32 {
        self.start_partition(Groups::Explicit(groups), false)
    }

    /// One-way split now: messages from `from` to everyone else are dropped, the reverse
    /// direction still flows.
    pub fn partition_oneway(&mut self, from: Vec<u32>) -> u32 {
        self.start_partition(Groups::Explicit(vec![from]), true)
    }

    /// Heals every active partition now.
    pub fn heal(&mut self) {
        let ids: Vec<u32> = self.partitions.iter().map(|p| p.id).collect();
        for id in ids {
            self.end_partition(id);
        }
    }

    /// Crashes peer `i` now. With `keep_chain` its chain survives for [`Sim::restart`].
    pub fn crash(&mut self, i: u32, keep_chain: bool) -> Result<(), SimError> {
        if i as usize >= self.nodes.len() {
            return Err(SimError::NoSuchPeer(i));
        }
        if self.nodes[i as usize].peer.is_none() {
            return Err(SimError::PeerDown(i));
        }
        self.do_crash(i, keep_chain);
        Ok(())
    }

    /// Restarts a crashed peer now (with its kept chain, if any) and re-dials its links.
    pub fn restart(&mut self, i: u32) -> Result<(), SimError> {
        if i as usize >= self.nodes.len() {
            return Err(SimError::NoSuchPeer(i));
        }
        if self.nodes[i as usize].peer.is_some() {
            return Err(SimError::PeerUp(i));
        }
        self.do_restart(i);
        Ok(())
    }

    /// Submits a data item at peer `i` now.
    pub fn submit(&mut self, i: u32, text: &str) -> Result<ItemId, SimError> {
        let now = self.now;
        let node = self
            .nodes
            .get_mut(i as usize)
            .ok_or(SimError::NoSuchPeer(i))?;
        let peer = node.peer.as_mut().ok_or(SimError::PeerDown(i))?;
        let r = peer.submit(peer_time(now), text.to_string());
        self.trace.rec(
            now,
            TraceEv::Submit {
                node: i,
                ok: r.is_ok(),
            },
        );
        self.after_call(i);
        let id = r?;
        self.metrics.items_submitted.push(id);
        Ok(id)
    }

    /// Makes peer `i` mine a block on its tip now (outside the Poisson schedule).
    pub fn mine(&mut self, i: u32) -> Result<BlockHash, SimError> {
        if i as usize >= self.nodes.len() {
            return Err(SimError::NoSuchPeer(i));
        }
        self.mine_block(i).ok_or(SimError::PeerDown(i))
    }

    /// Processes the next event; false when nothing is left.
    pub fn step(&mut self) -> bool {
        let Some((time, slot)) = self.queue.pop() else {
            return false;
        };
        // An event's slot, its peer's state and its link are cold by the time it comes up:
        // start fetching them an event or two ahead, so those loads overlap this event's work
        // instead of stalling the next ones. The event after next: its slot and peer. The next
        // one (whose slot and peer were fetched during the previous step): its link and the
        // receiving connection.
        if let Some((slot, hint)) = self.queue.ahead(1) {
            if let Some(s) = self.slots.get(slot as usize) {
                prefetch(s);
            }
            if let Some(n) = self.nodes.get(hint as usize) {
                prefetch(n);
            }
        }
        if let Some((slot, _)) = self.queue.ahead(0) {
            if let Some(Some(Ev::Deliver {
                link, epoch, to, ..
            })) = self.slots.get(slot as usize)
            {
                if let Some(l) = self.links.get(*link as usize) {
                    prefetch(l);
                }
                if let Some(p) = self.nodes.get(*to as usize).and_then(|n| n.peer.as_ref()) {
                    p.prefetch(pid(*link, *epoch));
                }
            }
        }
        self.now = Millis(time);
        let ev = self.slots[slot as usize].take();
        self.free.push(slot);
        self.metrics.events += 1;
        if let Some(ev) = ev {
            self.dispatch(ev);
        }
        true
    }

    /// Runs until `cond` holds (checked after every event) or virtual time would pass
    /// `deadline`; returns whether `cond` held. The clock ends at the deadline otherwise.
    pub fn run_until(&mut self, deadline: Millis, mut cond: impl FnMut(&Sim) -> bool) -> bool {
        loop {
            if cond(self) {
                return true;
            }
            match self.queue.peek_time() {
                Some(t) if t <= deadline.0 => {
                    self.step();
                }
                _ => {
                    self.now = self.now.max(deadline);
                    return cond(self);
                }
            }
        }
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Millis) {
        let deadline = self.now.add(d);
        self.run_until(deadline, |_| false);
    }

    /// Runs the configured scenario to its end: all blocks mined, all faults fired, then until
    /// the network is quiet and converged or `settle` has passed. Returns the report.
    pub fn run(&mut self) -> crate::report::Report {
        self.run_with_progress(&mut |_| {})
    }

    /// [`Sim::run`], calling `progress` every 65,536 events.
    pub fn run_with_progress(
        &mut self,
        progress: &mut dyn FnMut(Progress),
    ) -> crate::report::Report {
        let started = std::time::Instant::now();
        loop {
            if self.metrics.events & 0xffff == 0 {
                progress(Progress {
                    now: self.now,
                    mined: self.mined,
                    blocks: self.cfg.blocks,
                    events: self.metrics.events,
                });
            }
            if self.finished() {
                break;
            }
            let deadline = self.hard_deadline();
            match self.queue.peek_time() {
                Some(t) if t <= deadline.0 => {
                    self.step();
                }
                Some(_) => {
                    self.now = self.now.max(deadline);
                    self.timed_out = !self.quiet();
                    break;
                }
                None => break,
            }
        }
        self.trace.flush();
        crate::report::build(self, started.elapsed())
    }

    fn quiet(&self) -> bool {
        self.mining_complete()
            && self.pending_scheduled == 0
            && self.sync_in_flight() == 0
            && self.converged()
    }

    /// Messages in flight other than background traffic: with pings on, a network never has none.
    fn sync_in_flight(&self) -> u64 {
        self.in_flight - self.in_flight_background
    }

    fn mining_complete(&self) -> bool {
        self.cfg.blocks == 0 || self.mined >= self.cfg.blocks
    }

    fn finished(&self) -> bool {
        self.quiet()
    }

    /// When a run gives up waiting: `settle` after the last block and the last fault, or a
    /// generous multiple of the expected mining time if the blocks never come.
    fn hard_deadline(&self) -> Millis {
        let base = match self.mining_done_at {
            Some(t) => t,
            None if self.cfg.blocks == 0 => Millis::ZERO,
            None => {
                let iv = self.cfg.block_interval().0;
                Millis(
                    self.cfg
                        .blocks
                        .saturating_mul(iv)
                        .saturating_mul(4)
                        .saturating_add(20 * iv),
                )
            }
        };
        base.max(self.last_fault_at).add(self.cfg.settle)
    }

    // ----- event dispatch -----

    fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::Deliver {
                link,
                epoch,
                to,
                msg,
            } => self.deliver(link, epoch, to, msg),
            Ev::Timer { node, gen } => {
                let n = &mut self.nodes[node as usize];
                if n.timer_gen != gen || n.peer.is_none() {
                    self.metrics.cancelled_events += 1;
                    return;
                }
                n.timer_at = None;
                self.trace.rec(self.now, TraceEv::Timer { node });
                if let Some(p) = self.nodes[node as usize].peer.as_mut() {
                    p.handle_timeout(peer_time(self.now));
                }
                self.after_call(node);
            }
            Ev::Mine { node, gen } => {
                if self.nodes[node as usize].mine_gen != gen {
                    self.metrics.cancelled_events += 1;
                    return;
                }
                // Only while no sync message is in flight, and only by a miner that knows of
                // no heavier chain: mining into a busy network, or on a tip a neighbour has
                // already passed (its pool still holding items mined there), would add forks
                // faster than a slow path can drain them.
                let holds_items = self.liveness_mining
                    && self.sync_in_flight() == 0
                    && self.nodes[node as usize]
                        .peer
                        .as_ref()
                        .is_some_and(|p| p.pending_len() > 0 && !neighbour_ahead(p));
                if self.mined < self.cfg.blocks || holds_items {
                    self.mine_block(node);
                } else if self.tiebreak_needed() {
                    // Equal-work tips after the last block only resolve with another block,
                    // as in Bitcoin: keep mining (bounded) until the network agrees.
                    self.tiebreak_blocks += 1;
                    self.mine_block(node);
                }
                self.schedule_mine(node);
            }
            Ev::Dial { link, gen } => self.dial(link, gen),
            Ev::Close { link, epoch, node } => {
                if let Some(p) = self.nodes[node as usize].peer.as_mut() {
                    p.handle(
                        peer_time(self.now),
                        Input::Disconnected {
                            peer: pid(link, epoch),
                        },
                    );
                    self.after_call(node);
                }
            }
            Ev::Partition(i) => {
                self.pending_scheduled -= 1;
                let spec = self.cfg.partitions[i as usize].clone();
                self.start_partition_with_id(i, spec.groups, spec.oneway);
            }
            Ev::Heal(i) => {
                self.pending_scheduled -= 1;
                self.end_partition(i);
            }
            Ev::Crash(i) => {
                self.pending_scheduled -= 1;
                let c = self.cfg.crashes[i as usize].clone();
                if self.nodes[c.peer as usize].peer.is_some() {
                    self.do_crash(c.peer, c.keep_chain);
                }
            }
            Ev::Restart(i) => {
                self.pending_scheduled -= 1;
                let c = self.cfg.crashes[i as usize].clone();
                if self.nodes[c.peer as usize].peer.is_none() {
                    self.do_restart(c.peer);
                }
            }
            Ev::Submit { idx, node } => {
                self.pending_scheduled -= 1;
                self.scheduled_submit(idx, node);
            }
        }
    }

    fn scheduled_submit(&mut self, idx: u32, node: u32) {
        let n = self.nodes.len() as u32;
        // The drawn peer, or the next online one.
        let Some(target) = (0..n)
            .map(|k| (node + k) % n)
            .find(|&i| self.nodes[i as usize].peer.is_some())
        else {
            return;
        };
        let mut text = format!("item-{idx}-");
        while text.len() < self.cfg.item_size_bytes as usize {
            text.push('x');
        }
        self.submissions.push((self.now, target));
        if self.submit(target, &text).is_err() {
            self.metrics.items_refused += 1;
        }
    }

    fn mine_block(&mut self, node: u32) -> Option<BlockHash> {
        let now = self.now;
        let n = &mut self.nodes[node as usize];
        let peer = n.peer.as_mut()?;
        let nonce: u64 = n.mine_rng.gen();
        let block = peer.block_template(peer_time(now)).into_block(nonce);
        if let Err(e) = peer.chain().check_block(&block, peer_time(now)) {
            self.metrics
                .violation(now, format!("peer {node} mined an invalid block: {e}"));
        }
        let hash = block.hash();
        let height = block.height();
        self.mined += 1;
        if self.mined == self.cfg.blocks {
            self.mining_done_at = Some(now);
        }
        let (online, peers) = (self.online, self.nodes.len() as u32);
        self.metrics
            .on_mined(hash, node, height, now, online, peers);
        self.trace.rec(now, TraceEv::Mined { node, height, hash });
        if let Some(p) = self.nodes[node as usize].peer.as_mut() {
            p.handle(peer_time(now), Input::Mined(block));
        }
        self.after_call(node);
        Some(hash)
    }

    fn dial(&mut self, link: u32, gen: u32) {
        let l = &self.links[link as usize];
        if l.dial_gen != gen || l.open {
            self.metrics.cancelled_events += 1;
            return;
        }
        let (a, b) = (l.a, l.b);
        let up = self.nodes[a as usize].peer.is_some() && self.nodes[b as usize].peer.is_some();
        let ok = up && !self.blocked(a, b) && !self.blocked(b, a);
        self.trace.rec(self.now, TraceEv::Dial { link, a, b, ok });
        if !ok {
            self.metrics.faults.dials_failed += 1;
            self.links[link as usize].failures += 1;
            let d = self.redial_delay(link);
            self.schedule_dial(link, d);
            return;
        }
        self.metrics.faults.dials_ok += 1;
        let now = self.now;
        let l = &mut self.links[link as usize];
        l.epoch = l.epoch.wrapping_add(1);
        l.open = true;
        l.fifo_to_a = now.0;
        l.fifo_to_b = now.0;
        let id = pid(link, l.epoch);
        for (node, direction) in [(a, Direction::Outbound), (b, Direction::Inbound)] {
            if let Some(p) = self.nodes[node as usize].peer.as_mut() {
                let other = if node == a { b } else { a };
                p.handle(
                    peer_time(now),
                    Input::Connected {
                        peer: id,
                        direction,
                        addr: Some(format!("sim:{other}")),
                    },
                );
            }
            self.after_call(node);
        }
    }

    /// Closes a link from `closer`'s side: the other side learns of it now, the dialer re-dials.
    fn close_link(&mut self, link: u32, closer: u32, reason: &'static str) {
        let l = &mut self.links[link as usize];
        if !l.open {
            return;
        }
        l.open = false;
        let (epoch, other) = (l.epoch, l.other(closer));
        let (a, b) = (l.a, l.b);
        // Closing a connection discards what it still had to send, as a TCP close discards the
        // send buffer: that uplink time goes back to the sender's later messages. (Messages of
        // other connections already booked after it keep their times.)
        let now_us = self.now.0 * 1000;
        for from in [a, b] {
            let slot = 2 * link as usize + usize::from(from == b);
            let Some(q) = self.uploads.get_mut(slot).map(std::mem::take) else {
                continue;
            };
            let unsent: u64 = q
                .iter()
                .map(|&(start, end)| end.saturating_sub(start.max(now_us)))
                .sum();
            let n = &mut self.nodes[from as usize];
            n.up_free_us = n.up_free_us.saturating_sub(unsent).max(now_us);
        }
        self.trace.rec(
            self.now,
            TraceEv::Close {
                link,
                node: closer,
                reason,
            },
        );
        self.push(
            self.now,
            Ev::Close {
                link,
                epoch,
                node: other,
            },
        );
        let d = self.redial_delay(link);
        self.schedule_dial(link, d);
    }

    fn do_crash(&mut self, i: u32, keep_chain: bool) {
        self.metrics.faults.crashes += 1;
        self.fault_fired("crash", i);
        let node = &mut self.nodes[i as usize];
        let Some(peer) = node.peer.take() else { return };
        node.kept = keep_chain.then(|| peer.into_chain());
        node.timer_gen = node.timer_gen.wrapping_add(1);
        node.timer_at = None;
        node.mine_gen = node.mine_gen.wrapping_add(1);
        node.up_free_us = 0;
        node.down_free_us = 0;
        let tip = node.tip;
        self.tip_dec(tip);
        self.online -= 1;
        let links = self.nodes[i as usize].links.clone();
        for l in links {
            self.close_link(l, i, "crash");
        }
    }

    fn do_restart(&mut self, i: u32) {
        self.metrics.faults.restarts += 1;
        self.fault_fired("restart", i);
        let node = &mut self.nodes[i as usize];
        node.incarnation += 1;
        let seed = derive_seed(
            self.cfg.seed,
            "peer-restart",
            (u64::from(i) << 20) | u64::from(node.incarnation),
        );
        let peer = match node.kept.take() {
            Some(chain) => Peer::with_chain(self.core.clone(), seed, chain),
            None => Peer::new(self.core.clone(), seed),
        };
        let tip = peer.chain().tip().hash();
        node.tip = tip;
        node.peer = Some(peer);
        *self.tip_counts.entry(tip).or_default() += 1;
        self.online += 1;
        let links = self.nodes[i as usize].links.clone();
        for l in links {
            if !self.links[l as usize].open {
                self.links[l as usize].failures = 0;
                self.schedule_dial(l, Millis::ZERO);
            }
        }
        self.schedule_mine(i);
    }

    fn start_partition(&mut self, groups: Groups, oneway: bool) -> u32 {
        let id =
            self.cfg.partitions.len() as u32 + 1_000_000 + self.metrics.faults.partitions as u32;
        self.start_partition_with_id(id, groups, oneway);
        id
    }

    fn start_partition_with_id(&mut self, id: u32, groups: Groups, oneway: bool) {
        let n = self.nodes.len();
        let group = match groups {
            Groups::Fraction(f) => {
                let mut idx: Vec<u32> = (0..n as u32).collect();
                idx.shuffle(&mut stream(self.cfg.seed, "partition", u64::from(id)));
                let k = ((f * n as f64).round() as usize).min(n);
                let mut g = vec![1u8; n];
                for &i in &idx[..k] {
                    g[i as usize] = 0;
                }
                g
            }
            Groups::Explicit(gs) => {
                let mut g = vec![gs.len().min(255) as u8; n];
                for (gi, members) in gs.iter().enumerate() {
                    for &m in members {
                        if let Some(x) = g.get_mut(m as usize) {
                            *x = gi.min(255) as u8;
                        }
                    }
                }
                g
            }
        };
        self.metrics.faults.partitions += 1;
        self.fault_fired("partition", id);
        self.partitions.push(ActivePartition { id, group, oneway });
    }

    /// A fault took effect now: it moves the settle horizon and goes into the trace.
    fn fault_fired(&mut self, what: &'static str, id: u32) {
        self.last_fault_at = self.last_fault_at.max(self.now);
        self.trace.rec(
            self.now,
            TraceEv::Fault {
                what,
                id: u64::from(id),
            },
        );
    }

    fn end_partition(&mut self, id: u32) {
        let before = self.partitions.len();
        self.partitions.retain(|p| p.id != id);
        if self.partitions.len() < before {
            self.metrics.faults.heals += 1;
            self.last_heal_at = Some(self.now);
            self.agreed_after_heal = None;
            self.fault_fired("heal", id);
        }
    }

    fn blocked(&self, from: u32, to: u32) -> bool {
        self.partitions.iter().any(|p| {
            let (gf, gt) = (p.group[from as usize], p.group[to as usize]);
            gf != gt && (!p.oneway || gf == 0)
        })
    }

    fn tip_dec(&mut self, tip: BlockHash) {
        if let Some(c) = self.tip_counts.get_mut(&tip) {
            *c -= 1;
            if *c == 0 {
                self.tip_counts.remove(&tip);
            }
        }
    }

    // ----- messages -----

    fn deliver(&mut self, link: u32, epoch: u32, to: u32, msg: Message) {
        self.in_flight -= 1;
        let l = &self.links[link as usize];
        let from = l.other(to);
        let kind = kind_index(&msg);
        if is_background(&msg) {
            self.in_flight_background -= 1;
        }
        if !l.open || l.epoch != epoch {
            self.metrics.faults.closed_drops += 1;
            self.trace.rec(
                self.now,
                TraceEv::Drop {
                    from,
                    to,
                    kind,
                    why: "closed",
                },
            );
            return;
        }
        let Some(peer) = self.nodes[to as usize].peer.as_mut() else {
            return;
        };
        let bytes = wire_size(&msg, self.block_size);
        self.trace.rec(
            self.now,
            TraceEv::Deliver {
                from,
                to,
                kind,
                bytes,
            },
        );
        // Redundancy is judged from our own acceptance bitsets, independent of how the peer
        // indexes its chain.
        match &msg {
            Message::Block { block }
                if self.metrics.has_accepted(&block.hash(), to) == Some(true) =>
            {
                self.metrics.dup_block_deliveries += 1;
            }
            Message::Inv { hashes } => {
                let m = &self.metrics;
                let known = hashes
                    .iter()
                    .filter(|h| m.has_accepted(h, to) == Some(true))
                    .count();
                self.metrics.redundant_inv_hashes += known as u64;
            }
            _ => {}
        }
        peer.handle(
            peer_time(self.now),
            Input::Message {
                peer: pid(link, epoch),
                msg,
            },
        );
        self.after_call(to);
    }

    fn send(&mut self, from: u32, to_pid: PeerId, msg: Message) {
        let (link, epoch) = unpid(to_pid);
        let Some(l) = self.links.get(link as usize) else {
            return;
        };
        if !l.open || l.epoch != epoch {
            return;
        }
        let to = l.other(from);
        let to_b = to == l.b;
        let kind = kind_index(&msg);
        let bytes = wire_size(&msg, self.block_size);
        self.metrics.msgs[kind] += 1;
        self.metrics.bytes[kind] += bytes;
        if !self.partitions.is_empty() && self.blocked(from, to) {
            self.metrics.faults.partition_drops += 1;
            self.trace.rec(
                self.now,
                TraceEv::Drop {
                    from,
                    to,
                    kind,
                    why: "partition",
                },
            );
            return;
        }
        let (mut dup, mut delay) = (false, 0u64);
        if self.faults_on {
            let cfg = &self.cfg;
            let r = &mut self.nodes[from as usize].fault_rng;
            if cfg.loss > 0.0 && r.gen::<f64>() < cfg.loss {
                self.metrics.faults.lost += 1;
                self.trace.rec(
                    self.now,
                    TraceEv::Drop {
                        from,
                        to,
                        kind,
                        why: "loss",
                    },
                );
                return;
            }
            dup = cfg.duplicate > 0.0 && r.gen::<f64>() < cfg.duplicate;
            if cfg.reorder > 0.0 && r.gen::<f64>() < cfg.reorder {
                delay = r.gen_range(0..=cfg.reorder_delay.0.max(1));
            }
        }
        let (rf, rt) = (self.regions[from as usize], self.regions[to as usize]);
        let lat = net::sample_latency(
            &self.latency,
            self.preset,
            rf,
            rt,
            &mut self.nodes[from as usize].lat_rng,
        );
        let now_us = self.now.0 * 1000;
        let arrival_us = if bytes >= BANDWIDTH_THRESHOLD_BYTES {
            // Cut-through: the receiver downloads while the sender uploads, so an idle path
            // moves S bytes in latency + S / min(up, down); queued uploads and downloads wait.
            let s = &mut self.nodes[from as usize];
            let up_start = s.up_free_us.max(now_us);
            let up_done = up_start + net::transfer_us(bytes, s.up_bps);
            if s.up_bps.is_some() {
                s.up_free_us = up_done;
                let slot = 2 * link as usize + usize::from(from != self.links[link as usize].a);
                if self.uploads.len() <= slot {
                    self.uploads.resize_with(2 * self.links.len(), Vec::new);
                }
                let q = &mut self.uploads[slot];
                q.retain(|&(_, end)| end > now_us);
                q.push((up_start, up_done));
            }
            let r = &mut self.nodes[to as usize];
            let down_start = r.down_free_us.max(up_start + lat * 1000);
            let down_done =
                (down_start + net::transfer_us(bytes, r.down_bps)).max(up_done + lat * 1000);
            if r.down_bps.is_some() {
                r.down_free_us = down_done;
            }
            down_done
        } else {
            now_us + lat * 1000
        };
        let mut arrival = arrival_us.div_ceil(1000);
        let l = &mut self.links[link as usize];
        if delay > 0 {
            // Held back: later messages of this connection may overtake it.
            arrival += delay;
            self.metrics.faults.delayed += 1;
        } else {
            let fifo = if to_b {
                &mut l.fifo_to_b
            } else {
                &mut l.fifo_to_a
            };
            arrival = arrival.max(*fifo);
            *fifo = arrival;
        }
        if dup {
            self.metrics.faults.duplicated += 1;
            let extra = net::sample_latency(
                &self.latency,
                self.preset,
                rf,
                rt,
                &mut self.nodes[from as usize].lat_rng,
            );
            self.in_flight += 1;
            self.in_flight_background += u64::from(is_background(&msg));
            self.push(
                Millis(arrival + extra),
                Ev::Deliver {
                    link,
                    epoch,
                    to,
                    msg: msg.clone(),
                },
            );
        }
        self.in_flight += 1;
        self.in_flight_background += u64::from(is_background(&msg));
        self.push(
            Millis(arrival),
            Ev::Deliver {
                link,
                epoch,
                to,
                msg,
            },
        );
    }

    /// Drains and executes the outputs of peer `n`, then re-arms its timer if it moved.
    fn after_call(&mut self, n: u32) {
        // Each send reads its link, a likely cache miss: start all of those loads first so
        // they overlap instead of stalling one send after another.
        if let Some(p) = self.nodes[n as usize].peer.as_ref() {
            if p.pending_outputs().len() > 1 {
                for out in p.pending_outputs() {
                    if let Output::Send { to, .. } = out {
                        if let Some(l) = self.links.get(unpid(*to).0 as usize) {
                            prefetch(l);
                        }
                    }
                }
            }
        }
        // Executing an output never calls back into this peer, so outputs can be taken and
        // executed one at a time (no intermediate buffer).
        while let Some(out) = self.nodes[n as usize].peer.as_mut().and_then(Peer::poll) {
            self.execute(n, out);
        }
        let now = self.now;
        let node = &mut self.nodes[n as usize];
        let Some(peer) = node.peer.as_ref() else {
            return;
        };
        let t = peer
            .poll_timeout()
            .map(|t| Millis(t.0.saturating_sub(EPOCH_MS)));
        if t != node.timer_at {
            node.timer_at = t;
            node.timer_gen = node.timer_gen.wrapping_add(1);
            if let Some(t) = t {
                let gen = node.timer_gen;
                // A deadline already due fires on the next millisecond, so time always advances.
                let at = if t <= now { now.add(Millis(1)) } else { t };
                self.push(at, Ev::Timer { node: n, gen });
            }
        }
    }

    fn execute(&mut self, n: u32, out: Output) {
        match out {
            Output::Send { to, msg } => self.send(n, to, msg),
            Output::LoadBlocks { .. } => {
                unreachable!("simulated peers keep every body (body_cache_blocks is None)")
            }
            Output::Disconnect { peer, reason } => {
                let (link, epoch) = unpid(peer);
                let open = self
                    .links
                    .get(link as usize)
                    .is_some_and(|l| l.open && l.epoch == epoch);
                if open {
                    self.metrics.on_disconnect(&reason);
                    self.close_link(link, n, reason_label(&reason));
                }
            }
            Output::Mine(_) => {}
            Output::Event(ev) => self.on_event(n, ev),
        }
    }

    fn on_event(&mut self, n: u32, ev: Event) {
        let now = self.now;
        match ev {
            Event::BlockAccepted { block, .. } => {
                let hash = block.hash();
                self.trace.rec(
                    now,
                    TraceEv::Accepted {
                        node: n,
                        height: block.height(),
                        hash,
                    },
                );
                let peers = self.nodes.len() as u32;
                if !self.metrics.on_accepted(&hash, n, now, peers) {
                    self.metrics.violation(
                        now,
                        format!("peer {n} accepted block {hash} that no miner produced"),
                    );
                }
                let parent_ok = self.nodes[n as usize]
                    .peer
                    .as_ref()
                    .is_some_and(|p| p.chain().contains(&block.prev()));
                if !parent_ok {
                    self.metrics.violation(
                        now,
                        format!("peer {n} accepted block {hash} without its parent"),
                    );
                }
            }
            Event::BlockRejected { reason, .. } => self.metrics.on_rejected(&reason),
            Event::TipChanged { hash, height } => {
                self.trace.rec(
                    now,
                    TraceEv::Tip {
                        node: n,
                        height,
                        hash,
                    },
                );
                self.metrics.tip_changes += 1;
                self.metrics.last_tip_change = now;
                let old = std::mem::replace(&mut self.nodes[n as usize].tip, hash);
                self.tip_dec(old);
                *self.tip_counts.entry(hash).or_default() += 1;
                if self.converged()
                    && self.last_heal_at.is_some()
                    && self.agreed_after_heal.is_none()
                {
                    self.agreed_after_heal = Some(now);
                }
            }
            Event::Reorg { left, .. } => {
                let depth = left.len() as u64;
                self.trace.rec(now, TraceEv::Reorg { node: n, depth });
                self.metrics.reorgs += 1;
                self.metrics.deepest_reorg = self.metrics.deepest_reorg.max(depth);
            }
            _ => {}
        }
    }

    /// Final best tip held by the most online peers (ties: greater height, then smaller hash),
    /// and one online peer holding it.
    pub fn majority_tip(&self) -> Option<(BlockHash, u32)> {
        let mut best: Option<(u32, u64, BlockHash)> = None;
        for (h, &c) in &self.tips() {
            let node = self
                .nodes
                .iter()
                .position(|n| n.peer.is_some() && n.tip == *h)?;
            let height = self.nodes[node]
                .peer
                .as_ref()
                .map_or(0, |p| p.chain().height());
            let better = match best {
                None => true,
                Some((bc, bh, _)) => (c, height) > (bc, bh),
            };
            if better {
                best = Some((c, height, *h));
            }
        }
        let (_, _, h) = best?;
        let node = self
            .nodes
            .iter()
            .position(|n| n.peer.is_some() && n.tip == h)?;
        Some((h, node as u32))
    }

    /// Whether the online peers form one connected graph over the topology's links.
    pub fn online_connected(&self) -> bool {
        let alive: Vec<bool> = self.nodes.iter().map(|n| n.peer.is_some()).collect();
        net::connected(self.nodes.len(), &self.edges, &alive)
    }

    /// Partitions currently in force.
    pub fn active_partitions(&self) -> usize {
        self.partitions.len()
    }

    /// Number of links currently open.
    pub fn open_links(&self) -> usize {
        self.links.iter().filter(|l| l.open).count()
    }

    /// Turns the liveness phase's mining on or off. When on, once the block target is reached
    /// a miner still mines (at its usual rate, when only background traffic is in flight and
    /// no neighbour claims a heavier chain) while its pending pool holds items, and tie breaks
    /// are not capped: every item submitted must end up mined, and a tie that only a new block
    /// can break must be broken. Miners whose clocks stopped are restarted.
    pub fn set_liveness_mining(&mut self, on: bool) {
        let was = self.liveness_mining;
        self.liveness_mining = on;
        if on && !was {
            for i in 0..self.nodes.len() as u32 {
                self.schedule_mine(i);
            }
        }
    }

    /// How far into the future peer `i`'s upload link is already booked (zero when idle or
    /// unlimited): messages of 1 kB or more it sends now wait that long before they start.
    pub fn upload_backlog(&self, i: u32) -> Millis {
        self.nodes.get(i as usize).map_or(Millis::ZERO, |n| {
            Millis((n.up_free_us / 1000).saturating_sub(self.now.0))
        })
    }

    /// Peer `i`'s upload rate in bits per second (`None`: unlimited).
    pub fn upload_bps(&self, i: u32) -> Option<u64> {
        self.nodes.get(i as usize).and_then(|n| n.up_bps)
    }

    /// Scheduled faults and submissions that have not fired yet.
    pub fn scheduled_pending(&self) -> u64 {
        self.pending_scheduled
    }

    /// Messages in flight (sent, not yet delivered or dropped), background traffic included.
    pub fn in_flight(&self) -> u64 {
        self.in_flight
    }

    /// Times and peers of the scheduled submissions that ran.
    pub fn submissions(&self) -> &[(Millis, u32)] {
        &self.submissions
    }
}
