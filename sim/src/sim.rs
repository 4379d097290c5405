//! The discrete-event engine: the run loop and the routing of every event and peer output.
//!
//! Contract: after every call into a peer, its outputs are drained and executed, and its timer
//! is re-armed if `poll_timeout()` moved (older timer events are cancelled lazily by a
//! per-peer generation). The clock only jumps to the next event; nothing reads the wall clock
//! except the report's `wall` figures, and all randomness comes from streams derived from the
//! seed (see [`crate::rng`]).
//!
//! The engine owns the run's parts and passes data between them; each part keeps its own
//! invariants: the scheduler (`sched`), the nodes (`node`), the network
//! ([`crate::net`]), mining, scheduled faults, the workload and the checker
//! ([`crate::checker`]). Link and peer churn (dials, closes, crashes, restarts, partitions)
//! is in `lifecycle`, the scripting and inspection API in `script`.

mod lifecycle;
mod script;
use lifecycle::peer_addr;

use crate::checker::{self, Checker, EndState};
use crate::config::{ConfigError, SimConfig};
use crate::event::Ev;
use crate::faults::{self, FaultClock};
use crate::metrics::{reason_label, Metrics};
use crate::mining::{hash_shares, Miner, Mining};
use crate::net::links::{conn_id, split_conn_id, Links};
use crate::net::model::{FaultRates, Model, Port};
use crate::net::{self, is_background, wire_size, DropReason, Network, Transit};
use crate::node::{two_mut, Node};
use crate::prefetch;
use crate::report::{self, Report, RunView};
use crate::rng::{derive_seed, stream};
use crate::sched::Scheduler;
use crate::time::SimTime;
use crate::trace::{Trace, TraceEv};
use crate::workload;
use rand::Rng;
use rantai_core::{
    BlockHash, Chain, Config, ConnId, Event, Input, Message, Millis, MinePolicy, Output, Params,
    Peer, SubmitError,
};

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

/// A running simulation. Build one with [`crate::Builder`] or [`Sim::new`].
pub struct Sim {
    cfg: SimConfig,
    core: Config,
    block_size: u64,
    sched: Scheduler<Ev>,
    nodes: Vec<Node>,
    net: Network,
    mining: Mining,
    faults: FaultClock,
    checker: Checker,
    metrics: Metrics,
    trace: Trace,
    online: u32,
    submissions: Vec<(Millis, u32)>,
    timed_out: bool,
    /// The smallest one-way latency a message can have (ms): a conservative parallel
    /// schedule's round length. Reported with the rounds it would take (`engine.*`).
    lookahead: u64,
    /// End of the current round: the first event at or past it starts the next.
    round_end: u64,
    /// Set from outside (Ctrl-C) to stop the run at the next event ([`Sim::set_stop_flag`]).
    stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// The run was stopped by the flag before its end.
    interrupted: bool,
    /// Draws of the compact-block payload model (which mempools lack part of a block).
    payload_rng: rand_chacha::ChaCha8Rng,
    /// The peer whose message is being handled, while it is (the sender a block's acceptance
    /// is credited to in the metrics); read only by the metrics, never by the run.
    delivering_from: Option<u32>,
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
                Node::new(peer, port, miner, genesis)
            })
            .collect();
        for (l, &(a, b)) in edges.iter().enumerate() {
            nodes[a as usize].links.push(l as u32);
            nodes[b as usize].links.push(l as u32);
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
        let mut sim = Sim {
            lookahead,
            round_end: 0,
            block_size: cfg.block_size_bytes(),
            core,
            sched: Scheduler::new(),
            nodes,
            net: Network::new(Links::new(edges), placement.region, model),
            mining: Mining::new(&cfg),
            faults: FaultClock::default(),
            checker: Checker::new(genesis, n as u32),
            metrics: Metrics::default(),
            trace: Trace::default(),
            online: n as u32,
            submissions: Vec::new(),
            timed_out: false,
            stop: None,
            interrupted: false,
            payload_rng: stream(cfg.seed, "compact-payload", 0),
            delivering_from: None,
            cfg,
        };
        // Each link's dialer keeps it as a configured peer: core dials it (now) and re-dials
        // it after every close, as a node does its `--peer`s.
        for l in 0..sim.net.links.len() as u32 {
            let (a, b) = sim.net.links.ends(l);
            if let Some(p) = sim.nodes[a as usize].peer.as_mut() {
                p.add_peer(Millis::ZERO, peer_addr(b));
            }
            sim.after_call(a);
        }
        for i in 0..n as u32 {
            sim.refresh_mining(i);
        }
        for (at, ev) in faults::plan(&sim.cfg) {
            sim.faults.planned(at, true);
            sim.sched.schedule(at, ev);
        }
        if let Some(l) = &sim.cfg.links {
            sim.net.set_link_latency(l.links.clone());
        }
        sim.metrics.charts.set_regions(&sim.net.regions);
        if sim.cfg.tcp_slow_start {
            sim.net.links.enable_windows();
        }
        if let Some(s) = sim.cfg.schedule.clone() {
            sim.metrics.record_arrivals = true;
            for (k, b) in s.blocks.iter().enumerate() {
                let at = SimTime::from_millis(Millis(b.at_ms));
                sim.faults.planned(at, false);
                sim.sched.schedule(at, Ev::Scheduled(k as u32));
            }
        }
        for s in workload::plan(&sim.cfg) {
            sim.faults.planned(s.at, false);
            let ev = Ev::Submit {
                idx: s.idx,
                node: s.node,
            };
            sim.sched.schedule(s.at, ev);
        }
        Ok(sim)
    }

    // ----- run control -----

    /// Processes the next event; false when nothing is left.
    pub fn step(&mut self) -> bool {
        let Some(ev) = self.sched.pop() else {
            return false;
        };
        prefetch::upcoming_events(&self.sched, &self.nodes, &self.net.links);
        self.metrics.events += 1;
        let t = self.sched.now().as_millis().0;
        if t >= self.round_end {
            // A round covers [t, t + lookahead) from the earliest pending event: idle time
            // between blocks costs no round.
            self.metrics.rounds += 1;
            self.round_end = t.saturating_add(self.lookahead.max(1));
        }
        self.dispatch(ev);
        true
    }

    /// Runs until `cond` holds (checked after every event) or virtual time would pass
    /// `deadline`; returns whether `cond` held. The clock ends at the deadline otherwise.
    pub fn run_until(&mut self, deadline: Millis, mut cond: impl FnMut(&Sim) -> bool) -> bool {
        let deadline = SimTime::from(deadline);
        loop {
            if cond(self) {
                return true;
            }
            match self.sched.next_time() {
                Some(t) if t <= deadline => {
                    self.step();
                }
                _ => {
                    self.sched.advance_to(deadline);
                    return cond(self);
                }
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

    /// [`Sim::run`], calling `progress` every 65,536 events.
    pub fn run_with_progress(&mut self, progress: &mut dyn FnMut(Progress)) -> Report {
        let started = std::time::Instant::now();
        loop {
            if self.metrics.events & 0xffff == 0 {
                progress(Progress {
                    now: self.now(),
                    mined: self.mining.mined(),
                    blocks: self.cfg.blocks,
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
            match self.sched.next_time() {
                Some(t) if t <= deadline => {
                    self.step();
                }
                Some(_) => {
                    self.sched.advance_to(deadline);
                    self.timed_out = !self.quiet();
                    break;
                }
                None => break,
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
            expected: self.net.partitions.is_empty() && self.online_connected(),
            distinct_tips: self.checker.tips().len(),
            items: checker::tally_items(&self.metrics.items_submitted, best),
        };
        // Safety (no item twice in the best chain) is judged always. Liveness (converged,
        // nothing missing) is not judged for a run stopped from outside, nor for one that hit
        // the settle deadline while convergence was expected: that is its own outcome.
        let late = self.timed_out && end.expected;
        let liveness = !self.interrupted && !late;
        checker::check_end(&mut self.metrics, self.sched.now(), &end, liveness);
        let best = self.majority_tip().and_then(|(_, node)| self.chain(node));
        let view = RunView {
            cfg: &self.cfg,
            peer_config: self.core.summary(),
            metrics: &self.metrics,
            best_chain: best,
            end,
            links: self.net.links.configured(),
            learned_links: self.net.links.len() - self.net.links.configured(),
            online: self.online,
            now: self.now(),
            tiebreak_blocks: self.mining.extra_blocks(),
            last_heal_at: self.checker.last_heal_at().map(SimTime::as_millis),
            agreed_after_heal: self.checker.agreed_after_heal().map(SimTime::as_millis),
            trace_hash: self.trace.hash_hex(),
            timed_out: self.timed_out,
            settle_deadline: late,
            lookahead_ms: self.lookahead,
            interrupted: self.interrupted,
        };
        report::build(&view, wall)
    }

    /// Mining is done (the target reached, no race left that may still mine), no scheduled
    /// fault or submission is left, no sync message is in flight and the online peers agree.
    fn quiet(&self) -> bool {
        self.mining.complete()
            && !(self.mining.may_mine() && self.nodes.iter().any(|n| n.miner.is_armed()))
            && self.faults.pending() == 0
            && self.net.in_flight().sync() == 0
            && self.converged()
    }

    /// When a run gives up waiting: `settle` after the last block (mined or scheduled) and the
    /// last fault, or a
    /// generous multiple of the expected mining time if the blocks never come.
    fn hard_deadline(&self) -> SimTime {
        let base = match self.mining.done_at() {
            Some(t) => t,
            None if self.cfg.blocks == 0 => SimTime::ZERO,
            None => {
                let iv = self.cfg.block_interval().0;
                let ms = self.cfg.blocks.saturating_mul(iv).saturating_mul(4);
                SimTime::from_millis(Millis(ms.saturating_add(20 * iv)))
            }
        };
        // A schedule's blocks are the run's mining: the last one starts the settle time too.
        let last_scheduled = self
            .cfg
            .schedule
            .as_ref()
            .and_then(|s| s.blocks.last())
            .map_or(SimTime::ZERO, |b| SimTime::from_millis(Millis(b.at_ms)));
        base.max(self.faults.last_fault_at())
            .max(last_scheduled)
            .add(self.cfg.settle)
    }

    // ----- dispatch -----

    fn dispatch(&mut self, ev: Ev) {
        let now = self.sched.now();
        match ev {
            Ev::Deliver {
                link,
                epoch,
                to,
                msg,
            } => self.deliver(link, epoch, to, msg),
            Ev::Timer { node, gen } => {
                let n = &mut self.nodes[node as usize];
                if !n.fire_timer(gen) {
                    self.metrics.cancelled_events += 1;
                    return;
                }
                self.trace.rec(now, TraceEv::Timer { node });
                if let Some(p) = n.peer.as_mut() {
                    p.handle_timeout(now.to_peer());
                }
                self.after_call(node);
            }
            Ev::Mine { node, gen } => self.race_fired(node, gen),
            Ev::Dial { link, gen } => self.dial(link, gen),
            Ev::Close { link, epoch, node } => {
                if let Some(p) = self.nodes[node as usize].peer.as_mut() {
                    let peer = conn_id(link, epoch);
                    p.handle(now.to_peer(), Input::Disconnected { peer });
                    self.after_call(node);
                }
            }
            Ev::Partition(i) => {
                self.faults.fired_planned();
                let spec = self.cfg.partitions[i as usize].clone();
                self.start_partition_with_id(i, spec.groups, spec.oneway);
            }
            Ev::Heal(i) => {
                self.faults.fired_planned();
                self.end_partition(i);
            }
            Ev::Crash(i) => {
                self.faults.fired_planned();
                let c = self.cfg.crashes[i as usize].clone();
                if self.nodes[c.peer as usize].is_up() {
                    self.do_crash(c.peer, c.keep_chain);
                }
            }
            Ev::Restart(i) => {
                self.faults.fired_planned();
                let c = self.cfg.crashes[i as usize].clone();
                if !self.nodes[c.peer as usize].is_up() {
                    self.do_restart(c.peer);
                }
            }
            Ev::Submit { idx, node } => {
                self.faults.fired_planned();
                self.scheduled_submit(idx, node);
            }
            Ev::Scheduled(k) => {
                self.faults.fired_planned();
                self.scheduled_block(k);
            }
        }
    }

    // ----- mining -----

    /// Gives peer `node` the mining policy of the run's phase and makes sure a race runs
    /// while it has a job.
    pub(super) fn refresh_mining(&mut self, node: u32) {
        let now = self.sched.now();
        let n = &mut self.nodes[node as usize];
        let policy = self.mining.policy(n.miner.has_power());
        let Some(peer) = n.peer.as_mut() else {
            return;
        };
        if peer.mine_policy() != policy {
            peer.set_mine_policy(now.to_peer(), policy);
            self.after_call(node);
        }
        self.arm(node);
    }

    /// Starts peer `node`'s race if it has a job out, may mine and is not racing already.
    fn arm(&mut self, node: u32) {
        if !self.mining.may_mine() {
            return;
        }
        let interval = self.mining.interval();
        let n = &mut self.nodes[node as usize];
        if !n.peer.as_ref().is_some_and(Peer::is_mining) {
            return;
        }
        if let Some((dt, gen)) = n.miner.arm(interval) {
            let at = self.sched.now().add(dt);
            self.sched.schedule(at, Ev::Mine { node, gen });
        }
    }

    fn race_fired(&mut self, node: u32, gen: u32) {
        if !self.nodes[node as usize].miner.fire(gen) {
            self.metrics.cancelled_events += 1;
            return;
        }
        if self.mining.may_mine() {
            self.mine_block(node, true);
        }
        // Mining a block moves the tip and core sends a new job; without a move (the cap
        // reached, say) the job in progress keeps racing.
        self.arm(node);
    }

    fn mine_block(&mut self, node: u32, raced: bool) -> Option<BlockHash> {
        let now = self.sched.now();
        let n = &mut self.nodes[node as usize];
        let peer = n.peer.as_mut()?;
        let template = if raced {
            peer.job_template(now.to_peer())?
        } else {
            peer.block_template(now.to_peer())
        };
        let nonce = n.miner.nonce();
        let block = template.into_block(nonce);
        let checked = peer.chain().check_block(&block, now.to_peer());
        checker::check_mined(&mut self.metrics, now, node, checked);
        let (hash, height) = (block.hash(), block.height());
        let size = block.size() as u64 + self.block_size;
        let reached = self.mining.record(now, raced);
        let (online, peers) = (self.online, self.nodes.len() as u32);
        self.metrics
            .on_mined(hash, node, height, size, now.as_millis(), online, peers);
        self.trace.rec(now, TraceEv::Mined { node, height, hash });
        if let Some(p) = self.nodes[node as usize].peer.as_mut() {
            p.handle(now.to_peer(), Input::Mined(block));
        }
        self.after_call(node);
        if reached {
            for i in 0..self.nodes.len() as u32 {
                self.refresh_mining(i);
            }
        }
        Some(hash)
    }

    // ----- messages -----

    fn deliver(&mut self, link: u32, epoch: u32, to: u32, msg: Message) {
        let now = self.sched.now();
        let current = self.net.arrived(link, epoch, is_background(&msg));
        let from = self.net.links.other(link, to);
        let kind = msg.kind_index();
        if !current {
            self.metrics.faults.closed_drops += 1;
            let why = DropReason::Closed.label();
            self.trace.rec(
                now,
                TraceEv::Drop {
                    from,
                    to,
                    kind,
                    why,
                },
            );
            return;
        }
        let Some(peer) = self.nodes[to as usize].peer.as_mut() else {
            return;
        };
        let bytes = wire_size(&msg, self.block_size);
        self.trace.rec(
            now,
            TraceEv::Deliver {
                from,
                to,
                kind,
                bytes,
            },
        );
        self.metrics.count_redundant(&msg, to);
        let peer_id = conn_id(link, epoch);
        if let Message::CmpctBlock(cb) = &msg {
            // The environment, not the protocol: whether this peer's mempool holds the
            // virtual payload of a block it does not have yet. Core decides what to do.
            let rate = self.cfg.compact_failure;
            let block = cb.hash();
            if self.block_size > 0
                && rate > 0.0
                && !peer.chain().knows(&block)
                && self.payload_rng.gen_bool(rate)
            {
                self.metrics.compact.payload_gaps += 1;
                peer.handle(now.to_peer(), Input::PayloadMissing { block });
            }
        }
        peer.handle(now.to_peer(), Input::Message { peer: peer_id, msg });
        self.delivering_from = Some(from);
        self.after_call(to);
        self.delivering_from = None;
    }

    fn send(&mut self, from: u32, to_conn: ConnId, msg: Message) {
        let Some(conn) = self.net.links.connection(from, to_conn) else {
            return;
        };
        let to = conn.to;
        let kind = msg.kind_index();
        let bytes = wire_size(&msg, self.block_size);
        self.metrics.msgs[kind] += 1;
        self.metrics.bytes[kind] += bytes;
        let now = self.sched.now();
        let (s, r) = two_mut(&mut self.nodes, from, to);
        let ports = (&mut s.port, &mut r.port);
        let d = match self
            .net
            .transmit(from, &conn, bytes, is_background(&msg), now, ports)
        {
            Transit::Sent(d) => d,
            Transit::Dropped(why) => {
                let f = &mut self.metrics.faults;
                match why {
                    DropReason::Partition => f.partition_drops += 1,
                    DropReason::Loss => f.lost += 1,
                    DropReason::Closed => f.closed_drops += 1,
                }
                let why = why.label();
                self.trace.rec(
                    now,
                    TraceEv::Drop {
                        from,
                        to,
                        kind,
                        why,
                    },
                );
                return;
            }
        };
        if d.held_back {
            self.metrics.faults.delayed += 1;
        }
        let (link, epoch) = (conn.link, conn.epoch);
        if let Some(at) = d.duplicate_at {
            self.metrics.faults.duplicated += 1;
            let msg = msg.clone();
            self.sched.schedule(
                at,
                Ev::Deliver {
                    link,
                    epoch,
                    to,
                    msg,
                },
            );
        }
        self.sched.schedule(
            d.at,
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
        if let Some(p) = self.nodes[n as usize].peer.as_ref() {
            prefetch::pending_sends(p, &self.net.links);
        }
        // Outputs are taken and executed one at a time (no intermediate buffer). The one call
        // back into this peer, a dial of an address that names no other peer (discovery),
        // drains the rest of the queue in its own `after_call`, so the order still holds.
        while let Some(out) = self.nodes[n as usize].peer.as_mut().and_then(Peer::poll) {
            self.execute(n, out);
        }
        let now = self.sched.now();
        if let Some((at, gen)) = self.nodes[n as usize].rearm_timer(now) {
            self.sched.schedule(at, Ev::Timer { node: n, gen });
        }
    }

    fn execute(&mut self, n: u32, out: Output) {
        match out {
            Output::Send { to, msg } => self.send(n, to, msg),
            Output::LoadBlocks { .. } => {
                unreachable!("simulated peers keep every body (body_cache_blocks is None)")
            }
            Output::Disconnect { peer, reason } => {
                let (link, epoch) = split_conn_id(peer);
                if self.net.links.is_current(link, epoch) {
                    self.metrics.on_disconnect(&reason);
                    self.close_link(link, n, reason_label(&reason));
                }
            }
            Output::Dial { addr } => self.dial_addr(n, &addr),
            Output::Mine(Some(_)) => self.arm(n),
            Output::Mine(None) => self.nodes[n as usize].miner.cancel(),
            Output::Event(ev) => self.on_event(n, ev),
        }
    }

    fn on_event(&mut self, n: u32, ev: Event) {
        let now = self.sched.now();
        match ev {
            Event::BlockAccepted { block, .. } => {
                let (hash, height) = (block.hash(), block.height());
                self.trace.rec(
                    now,
                    TraceEv::Accepted {
                        node: n,
                        height,
                        hash,
                    },
                );
                let peers = self.nodes.len() as u32;
                let via = self.delivering_from;
                let mined_here = self
                    .metrics
                    .on_accepted(&hash, n, via, now.as_millis(), peers);
                let parent_held = self.nodes[n as usize]
                    .peer
                    .as_ref()
                    .is_some_and(|p| p.chain().contains(&block.prev()));
                checker::check_accepted(&mut self.metrics, now, n, &hash, mined_here, parent_held);
            }
            Event::BlockRejected { reason, .. } => self.metrics.on_rejected(&reason),
            Event::CompactBlock { outcome, .. } => self.metrics.compact.count(outcome),
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
                self.metrics.last_tip_change = now.as_millis();
                let old = std::mem::replace(&mut self.nodes[n as usize].tip, hash);
                self.checker.tip_moved(old, hash, now);
                let tips = self.checker.tips().len() as u32;
                self.metrics.charts.tips.set(now.as_millis().0, tips);
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
}
