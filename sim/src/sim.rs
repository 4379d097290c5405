//! The discrete-event engine: conservative rounds over shards of peers, and what happens
//! between them.
//!
//! Peers are split into shards (one per thread), each with its own event queue. A round
//! covers `[T, T + lookahead)` from the earliest pending event `T`, where the lookahead is
//! the smallest one-way latency any message can have: nothing one peer does in a round can
//! reach another peer before the round ends, so the shards run their rounds side by side.
//! Within a peer, events run in `(time, key)` order, the key naming the peer that caused
//! the event and that peer's own counter (`sched::origin_key`). What a peer's work
//! means for others waits for the barrier: its messages (the receiver's downlink and FIFO
//! order are booked in send order there, then the delivery is scheduled), the other side of
//! its dials and closes, and its journal (blocks mined and accepted, tips, violations, trace
//! lines), applied in `(time, peer, the peer's own order)`, the dials, closes and new links
//! among its entries last, at the barrier's time. Faults, submissions and scripted
//! calls happen between rounds. So a run's report and trace hash are the same bytes for any
//! number of threads, one included.
//!
//! Contract: after every call into a peer, its outputs are drained and executed, and its timer
//! is re-armed if `poll_timeout()` moved (older timer events are cancelled lazily by a
//! per-peer generation). Nothing reads the wall clock except the report's `wall` figures,
//! and all randomness comes from streams derived from the seed (see [`crate::rng`]).
//!
//! Parts: the peer's work (`ctx`), running a round and booking its messages (`rounds`), the
//! journal and counters and applying them (`journal`), link and peer churn between rounds
//! (`lifecycle`), the scripting and inspection API (`script`).

mod ctx;
mod journal;
mod lifecycle;
mod rounds;
mod script;
use ctx::{Ctx, ShardState};
use journal::Record;
use lifecycle::peer_addr;

use crate::checker::{self, Checker, EndState};
use crate::config::{ConfigError, SimConfig, ValueError};
use crate::event::GlobalEv;
use crate::faults::{self, FaultClock};
use crate::metrics::Metrics;
use crate::mining::{hash_shares, Miner, Mining};
use crate::net::links::Links;
use crate::net::model::{FaultRates, Model, Port};
use crate::net::{self, InFlight, Network};
use crate::node::Node;
use crate::pool::SpinPool;
use crate::report::{self, Report, RunView};
use crate::rng::{derive_seed, stream};
use crate::time::SimTime;
use crate::trace::Trace;
use crate::workload;
use rantai_core::{Chain, Config, Millis, MinePolicy, Params, Peer, SubmitError};
use std::collections::BTreeMap;

pub use crate::mining::MAX_EXTRA_BLOCKS;

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

/// Chains are pre-sized for at most this many blocks (with genesis, 4,096 entries); longer
/// runs grow them as they go.
const MAX_RESERVED_BLOCKS: u64 = 4095;

/// What every shard reads during a round; changed only between rounds.
pub(crate) struct World {
    pub cfg: SimConfig,
    pub core: Config,
    pub block_size: u64,
    pub net: Network,
    pub mining: Mining,
    pub online: u32,
    /// Which peers are running.
    pub up: Vec<bool>,
    pub peers: u32,
    /// The TCP window model is on.
    pub tcp_windows: bool,
    /// Trace lines are being written (peers journal them).
    pub trace_lines: bool,
    /// Peers per shard: peer `i` is in shard `i / chunk`.
    pub chunk: usize,
}

/// How far a round got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Advance {
    /// A round or a global step ran.
    Ran,
    /// The next event is past the deadline.
    Beyond,
    /// Nothing is left.
    Empty,
}

/// A running simulation. Build one with [`crate::Builder`] or [`Sim::new`].
pub struct Sim {
    w: World,
    nodes: Vec<Node>,
    shards: Vec<ShardState>,
    /// Peers per shard (the last may have fewer).
    chunk: usize,
    /// Events of the whole run by `(time, order planned)`.
    global: BTreeMap<(SimTime, u64), GlobalEv>,
    planned: u64,
    /// Virtual time: the last event's, or the barrier's.
    clock: SimTime,
    faults: FaultClock,
    checker: Checker,
    metrics: Metrics,
    trace: Trace,
    in_flight: InFlight,
    submissions: Vec<(Millis, u32)>,
    timed_out: bool,
    /// The smallest one-way latency a message can have (ms): the rounds' length.
    lookahead: u64,
    /// Set from outside (Ctrl-C) to stop the run at the next round ([`Sim::set_stop_flag`]).
    stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// The run was stopped by the flag before its end.
    interrupted: bool,
    /// The block target was reached in the round just run: every miner's policy changes.
    refresh_all: bool,
    threads: usize,
    pool: Option<SpinPool>,
    /// Wall time of the rounds run on the pool, times the threads, and the part of it the
    /// shards spent working (ns): the rest is waiting at barriers. Wall figures only.
    pool_ns: u64,
    busy_ns: u64,
    /// Events of the last round: whether the next one goes to the pool.
    last_round_events: u64,
    /// The journal records being applied (kept for its capacity).
    recs: Vec<Record>,
}

/// The configuration every simulated peer runs, as a miner starts it: `Always` while the run
/// has a block target. The run changes the policy by phase and gives peers without hash power
/// `Off` ([`Mining::policy`]).
fn peer_config(cfg: &SimConfig) -> Config {
    let mut core = Config::new(Params::dev());
    core.relay = cfg.relay();
    core.mining = if cfg.blocks > 0 {
        MinePolicy::Always
    } else {
        MinePolicy::OwnItems
    };
    core.relay_items = true;
    if cfg.schedule.is_some() {
        // A scheduled block's bytes travel in the block alone, as on the testbed: gossiping
        // its item first would send them twice and measure item relay, not block relay.
        core.relay_items = false;
    }
    if cfg.links.is_some() {
        // A links file is the whole network, as on the testbed, whose nodes dial only the
        // links they are given (`--max-outbound 0`): so neither asks inbound peers for
        // addresses it could not use.
        core.max_outbound = 0;
    }
    // The topology decides who connects: no inbound limit (a star's hub has every peer).
    core.max_inbound = usize::MAX;
    // Core re-dials a closed link's dialer side: from `redial_delay`, doubling, at most 8x.
    core.dial_retry_base = cfg.redial_delay;
    core.dial_retry_max = Millis(cfg.redial_delay.0.saturating_mul(8));
    core.ping_interval = cfg.ping_interval();
    core.request_timeout = cfg.request_timeout;
    core
}

/// Peer `i`'s configuration: `core`, and with discovery the address it advertises.
fn peer_core(core: &Config, discovery: bool, i: u32) -> Config {
    let mut c = core.clone();
    if discovery {
        c.listen_addr = Some(peer_addr(i));
    }
    c
}

/// Threads a run uses by default: every core for 2,000 peers or more, else one.
pub fn default_threads(peers: u32) -> usize {
    if peers >= 2000 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        1
    }
}

impl Sim {
    /// Builds the network and schedules everything the configuration asks for.
    pub fn new(cfg: SimConfig) -> Result<Sim, ConfigError> {
        cfg.validate()?;
        let core = peer_config(&cfg);
        let placement = net::place(&cfg);
        let edges = net::build_topology(&cfg);
        let shares = hash_shares(&cfg);
        let n = cfg.peers as usize;
        let genesis = core.params.genesis_hash();
        // Every peer ends up holding about every mined block: sizing the chains up front saves
        // regrowing them, which would cause most of a run's page faults. No margin for stale blocks:
        // it could push a list or the index past a size that growing would not reach. Capped,
        // so a huge --blocks reserves no more than a 4,095-block run would use.
        let expected_blocks = cfg.blocks.min(MAX_RESERVED_BLOCKS) as usize;
        let mut nodes: Vec<Node> = (0..n)
            .map(|i| {
                let mut chain = Chain::with_orphan_limits(core.params.clone(), core.orphan_limits);
                chain.reserve(expected_blocks);
                let seed = derive_seed(cfg.seed, "peer", i as u64);
                let peer = Peer::with_chain(peer_core(&core, cfg.discovery, i as u32), seed, chain);
                let port = Port::new(
                    placement.upload_bps[i],
                    placement.download_bps[i],
                    stream(cfg.seed, "latency", i as u64),
                    stream(cfg.seed, "faults", i as u64),
                );
                let miner = Miner::new(shares[i], stream(cfg.seed, "mining", i as u64));
                let payload = stream(cfg.seed, "compact-payload", i as u64);
                Node::new(i as u32, peer, port, miner, genesis, payload)
            })
            .collect();
        for (l, &(a, b)) in edges.iter().enumerate() {
            nodes[a as usize].add_end(l as u32);
            nodes[b as usize].add_end(l as u32);
        }
        let model_floor =
            net::latency::latency_floor_ms(&cfg.latency(), cfg.preset, &placement.region);
        let lookahead = match &cfg.links {
            Some(l) => {
                let file = l.links.links.iter().map(|x| x.latency_ms).min();
                let file = file.unwrap_or(model_floor);
                if cfg.discovery {
                    file.min(model_floor)
                } else {
                    file
                }
            }
            None => model_floor,
        };
        if lookahead == 0 {
            let key = if model_floor == 0 { "latency" } else { "links" };
            return Err(ConfigError::invalid(key, ValueError::ZeroLatencyFloor));
        }
        let model = Model::new(
            cfg.latency(),
            cfg.preset,
            FaultRates {
                loss: cfg.loss,
                duplicate: cfg.duplicate,
                reorder: cfg.reorder,
                reorder_delay: cfg.reorder_delay,
            },
        );
        let down_bps = placement.download_bps.clone();
        let threads = cfg
            .threads
            .unwrap_or_else(|| default_threads(cfg.peers))
            .max(1);
        // One shard per thread, each a contiguous range of `chunk` peers (the last one may be
        // shorter); never more threads than shards.
        let chunk = n.div_ceil(threads.min(n.max(1))).max(1);
        let shard_count = n.div_ceil(chunk).max(1);
        let threads = shard_count;
        let pool = if threads > 1 {
            let pool = SpinPool::new(threads)
                .map_err(|e| ConfigError::invalid("threads", ValueError::Threads(e.to_string())))?;
            Some(pool)
        } else {
            None
        };
        let mut sim = Sim {
            w: World {
                block_size: cfg.block_size_bytes(),
                core,
                net: Network::new(Links::new(edges), placement.region, down_bps, model),
                mining: Mining::new(&cfg),
                online: n as u32,
                up: vec![true; n],
                peers: n as u32,
                tcp_windows: cfg.tcp_slow_start,
                trace_lines: false,
                chunk,
                cfg,
            },
            nodes,
            shards: (0..shard_count)
                .map(|_| ShardState::new(shard_count))
                .collect(),
            chunk,
            global: BTreeMap::new(),
            planned: 0,
            clock: SimTime::ZERO,
            faults: FaultClock::default(),
            checker: Checker::new(genesis, n as u32),
            metrics: Metrics::default(),
            trace: Trace::default(),
            in_flight: InFlight::default(),
            submissions: Vec::new(),
            timed_out: false,
            lookahead,
            stop: None,
            interrupted: false,
            refresh_all: false,
            threads,
            pool,
            pool_ns: 0,
            busy_ns: 0,
            last_round_events: 0,
            recs: Vec::new(),
        };
        // Each link's dialer keeps it as a configured peer: core dials it (now) and re-dials
        // it after every close, as a node does its `--peer`s.
        for l in 0..sim.w.net.links.len() as u32 {
            let (a, b) = sim.w.net.links.ends(l);
            if let Some(p) = sim.nodes[a as usize].peer.as_mut() {
                p.add_peer(Millis::ZERO, peer_addr(b));
            }
            sim.with_ctx(a, |c| c.after_call(a));
        }
        for i in 0..n as u32 {
            sim.with_ctx(i, |c| c.refresh_mining(i));
        }
        sim.settle();
        let mut planned = Vec::new();
        for (at, ev) in faults::plan(&sim.w.cfg) {
            planned.push((at, ev, true));
        }
        if let Some(l) = &sim.w.cfg.links {
            sim.w.net.set_link_latency(l.links.clone());
        }
        sim.metrics.charts.set_regions(&sim.w.net.regions);
        if let Some(s) = &sim.w.cfg.schedule {
            sim.metrics.record_arrivals = true;
            for (k, b) in s.blocks.iter().enumerate() {
                let at = SimTime::from_millis(Millis(b.at_ms));
                planned.push((at, GlobalEv::Scheduled(k as u32), false));
            }
        }
        for s in workload::plan(&sim.w.cfg) {
            let ev = GlobalEv::Submit {
                idx: s.idx,
                node: s.node,
            };
            planned.push((s.at, ev, false));
        }
        for (at, ev, is_fault) in planned {
            sim.faults.planned(at, is_fault);
            sim.global.insert((at, sim.planned), ev);
            sim.planned += 1;
        }
        Ok(sim)
    }

    /// The shard peer `i` belongs to.
    #[inline]
    fn shard_of(&self, i: u32) -> usize {
        i as usize / self.chunk
    }

    /// Runs `f` in peer `i`'s context at the current time (between rounds). Call
    /// [`Sim::settle`] after.
    fn with_ctx<R>(&mut self, i: u32, f: impl FnOnce(&mut Ctx<'_>) -> R) -> R {
        let s = self.shard_of(i);
        let mut ctx = Ctx {
            w: &self.w,
            nodes: &mut self.nodes,
            base: 0,
            st: &mut self.shards[s],
            now: self.clock,
        };
        f(&mut ctx)
    }

    // ----- run control -----

    /// Runs the next round (or the run's events due next); false when nothing is left.
    pub fn step(&mut self) -> bool {
        self.advance(SimTime::from_millis(Millis(u64::MAX))) == Advance::Ran
    }

    /// Runs the next round, or the run's events due next, unless the next event is past
    /// `deadline`.
    fn advance(&mut self, deadline: SimTime) -> Advance {
        self.flush();
        let local = self
            .shards
            .iter_mut()
            .filter_map(|s| s.sched.next_time())
            .min();
        let global = self.global.keys().next().map(|&(t, _)| t);
        let t = match (local, global) {
            (Some(l), Some(g)) => l.min(g),
            (l, g) => match l.or(g) {
                Some(t) => t,
                None => return Advance::Empty,
            },
        };
        if t > deadline {
            return Advance::Beyond;
        }
        if global == Some(t) {
            // The run's events at `t` come before any peer's.
            self.clock = self.clock.max(t);
            while let Some(entry) = self.global.first_entry() {
                if entry.key().0 != t {
                    break;
                }
                let ev = entry.remove();
                self.metrics.events += 1;
                self.global_event(ev);
                self.settle();
            }
            return Advance::Ran;
        }
        let mut end = t.as_millis().0.saturating_add(self.lookahead);
        if let Some(g) = global {
            end = end.min(g.as_millis().0);
        }
        end = end.min(deadline.as_millis().0.saturating_add(1));
        let end = SimTime::from_millis(Millis(end));
        self.metrics.rounds += 1;
        self.run_shards(end);
        self.clock = self
            .clock
            .max(SimTime::from_millis(Millis(end.as_millis().0 - 1)));
        self.settle();
        Advance::Ran
    }

    /// One of the run's own events.
    fn global_event(&mut self, ev: GlobalEv) {
        self.faults.fired_planned();
        match ev {
            GlobalEv::Partition(i) => {
                let spec = self.w.cfg.partitions[i as usize].clone();
                self.start_partition_with_id(i, spec.groups, spec.oneway);
            }
            GlobalEv::Heal(i) => self.end_partition(i),
            GlobalEv::Crash(i) => {
                let c = self.w.cfg.crashes[i as usize].clone();
                if self.nodes[c.peer as usize].is_up() {
                    self.do_crash(c.peer, c.keep_chain);
                }
            }
            GlobalEv::Restart(i) => {
                let c = self.w.cfg.crashes[i as usize].clone();
                if !self.nodes[c.peer as usize].is_up() {
                    self.do_restart(c.peer);
                }
            }
            GlobalEv::Submit { idx, node } => self.scheduled_submit(idx, node),
            GlobalEv::Scheduled(k) => self.scheduled_block(k),
        }
    }

    /// Runs until `cond` holds (checked between rounds) or virtual time would pass
    /// `deadline`; returns whether `cond` held. The clock ends at the deadline otherwise.
    pub fn run_until(&mut self, deadline: Millis, mut cond: impl FnMut(&Sim) -> bool) -> bool {
        let deadline = SimTime::from(deadline);
        loop {
            if cond(self) {
                return true;
            }
            if self.advance(deadline) != Advance::Ran {
                self.clock = self.clock.max(deadline);
                return cond(self);
            }
        }
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Millis) {
        let deadline = self.now().add(d);
        self.run_until(deadline, |_| false);
    }

    /// Runs the configured scenario to its end: all blocks mined, all faults fired, then until
    /// the network is quiet and converged or `settle` has passed. Returns the report.
    pub fn run(&mut self) -> Report {
        self.run_with_progress(&mut |_| {})
    }

    /// [`Sim::run`], calling `progress` about every 65,536 events.
    pub fn run_with_progress(&mut self, progress: &mut dyn FnMut(Progress)) -> Report {
        let started = std::time::Instant::now();
        let mut reported = u64::MAX;
        loop {
            if self.metrics.events >> 16 != reported {
                reported = self.metrics.events >> 16;
                progress(Progress {
                    now: self.now(),
                    mined: self.w.mining.mined(),
                    blocks: self.w.cfg.blocks,
                    events: self.metrics.events,
                });
            }
            if self.quiet() {
                break;
            }
            if self
                .stop
                .as_ref()
                .is_some_and(|f| f.load(std::sync::atomic::Ordering::Relaxed))
            {
                self.interrupted = true;
                break;
            }
            let deadline = self.hard_deadline();
            match self.advance(deadline) {
                Advance::Ran => {}
                Advance::Beyond => {
                    self.clock = self.clock.max(deadline);
                    self.timed_out = !self.quiet();
                    break;
                }
                Advance::Empty => break,
            }
        }
        self.trace.flush();
        self.finish(started.elapsed())
    }

    /// Runs the end-of-run checks, then reads the report off the finished run.
    fn finish(&mut self, wall: std::time::Duration) -> Report {
        let best = self.majority_tip().and_then(|(_, node)| self.chain(node));
        let end = EndState {
            converged: self.converged(),
            expected: self.w.net.partitions.is_empty() && self.online_connected(),
            distinct_tips: self.checker.tips().len(),
            items: checker::tally_items(&self.metrics.items_submitted, best),
        };
        // Safety (no item twice in the best chain) is judged always. Liveness (converged,
        // nothing missing) is not judged for a run stopped from outside, nor for one that hit
        // the settle deadline while convergence was expected: that is its own outcome.
        let late = self.timed_out && end.expected;
        let liveness = !self.interrupted && !late;
        checker::check_end(&mut self.metrics, self.clock, &end, liveness);
        let best = self.majority_tip().and_then(|(_, node)| self.chain(node));
        let trace_hash = self.trace_hash();
        let view = RunView {
            cfg: &self.w.cfg,
            peer_config: self.w.core.summary(),
            metrics: &self.metrics,
            best_chain: best,
            end,
            links: self.w.net.links.configured(),
            learned_links: self.w.net.links.len() - self.w.net.links.configured(),
            online: self.w.online,
            now: self.now(),
            tiebreak_blocks: self.w.mining.extra_blocks(),
            last_heal_at: self.checker.last_heal_at().map(SimTime::as_millis),
            agreed_after_heal: self.checker.agreed_after_heal().map(SimTime::as_millis),
            trace_hash,
            timed_out: self.timed_out,
            settle_deadline: late,
            lookahead_ms: self.lookahead,
            interrupted: self.interrupted,
            threads: self.threads,
            barrier_wait_share: if self.pool_ns > 0 {
                1.0 - (self.busy_ns as f64 / self.pool_ns as f64).min(1.0)
            } else {
                0.0
            },
        };
        report::build(&view, wall)
    }

    /// Mining is done (the target reached, no race left that may still mine), no scheduled
    /// fault or submission is left, no sync message is in flight and the online peers agree.
    fn quiet(&self) -> bool {
        self.w.mining.complete()
            && !(self.w.mining.may_mine() && self.nodes.iter().any(|n| n.miner.is_armed()))
            && self.faults.pending() == 0
            && self.in_flight.sync() == 0
            && self.converged()
    }

    /// When a run gives up waiting: `settle` after the last block (mined or scheduled) and the
    /// last fault, or a generous multiple of the expected mining time if the blocks never come.
    fn hard_deadline(&self) -> SimTime {
        let cfg = &self.w.cfg;
        let base = match self.w.mining.done_at() {
            Some(t) => t,
            None if cfg.blocks == 0 => SimTime::ZERO,
            None => {
                let iv = cfg.block_interval().0;
                let ms = cfg.blocks.saturating_mul(iv).saturating_mul(4);
                SimTime::from_millis(Millis(ms.saturating_add(20 * iv)))
            }
        };
        // A schedule's blocks are the run's mining: the last one starts the settle time too.
        let last_scheduled = cfg
            .schedule
            .as_ref()
            .and_then(|s| s.blocks.last())
            .map_or(SimTime::ZERO, |b| SimTime::from_millis(Millis(b.at_ms)));
        base.max(self.faults.last_fault_at())
            .max(last_scheduled)
            .add(cfg.settle)
    }
}
