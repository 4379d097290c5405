//! The scripting and inspection API of [`Sim`]: what tests, the VOPR and Rust scenarios call
//! between steps. Controls act at the current virtual time and go through the same paths as
//! scheduled events.

use super::{Sim, SimError};
use crate::config::{Groups, SimConfig};
use crate::metrics::Metrics;
use crate::mining::hash_shares;
use crate::net;
use crate::tables::{Tables, TablesView};
use crate::trace::TraceEv;
use rantai_core::{BlockHash, Chain, ItemId, Millis, Peer};
use std::collections::BTreeMap;

impl Sim {
    /// Current virtual time.
    pub fn now(&self) -> Millis {
        self.clock.as_millis()
    }

    /// The configuration this simulation runs.
    pub fn config(&self) -> &SimConfig {
        &self.w.cfg
    }

    /// Number of peers (online or not).
    pub fn peer_count(&self) -> u32 {
        self.nodes.len() as u32
    }

    /// The protocol configuration every peer starts from (each adds its own listen address).
    pub fn peer_config(&self) -> &rantai_core::Config {
        &self.w.core
    }

    /// The links as `(dialer, acceptor)` pairs: the topology's first, then (with discovery)
    /// those added as peers dialled addresses they learned, in the order they were added.
    pub fn edges(&self) -> &[(u32, u32)] {
        self.w.net.links.edges()
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
        self.w.mining.mined()
    }

    /// Events processed so far.
    pub fn events(&self) -> u64 {
        self.metrics.events
    }

    /// Online peers.
    pub fn online(&self) -> u32 {
        self.w.online
    }

    /// Whether every online peer has the same best tip.
    pub fn converged(&self) -> bool {
        self.checker.converged()
    }

    /// Distinct best tips of online peers with how many peers hold each, sorted by hash.
    pub fn tips(&self) -> BTreeMap<BlockHash, u32> {
        self.checker.tips().clone()
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
        self.w.trace_lines = true;
    }

    /// First error writing the trace, if any.
    pub fn trace_error(&self) -> Option<&str> {
        self.trace.error()
    }

    /// Hash of the event trace so far.
    pub fn trace_hash(&self) -> String {
        self.trace
            .hash_hex(self.nodes.iter().map(|n| n.trace.value()))
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

    /// A scripted partition's id: past the configured ones, unique within the run.
    fn start_partition(&mut self, groups: Groups, oneway: bool) -> u32 {
        let id =
            self.w.cfg.partitions.len() as u32 + 1_000_000 + self.metrics.faults.partitions as u32;
        self.start_partition_with_id(id, groups, oneway);
        id
    }

    /// Heals every active partition now.
    pub fn heal(&mut self) {
        for id in self.w.net.partitions.ids() {
            self.end_partition(id);
        }
    }

    /// Crashes peer `i` now. With `keep_chain` its chain survives for [`Sim::restart`].
    pub fn crash(&mut self, i: u32, keep_chain: bool) -> Result<(), SimError> {
        match self.nodes.get(i as usize) {
            None => Err(SimError::NoSuchPeer(i)),
            Some(n) if !n.is_up() => Err(SimError::PeerDown(i)),
            Some(_) => {
                self.flush();
                self.do_crash(i, keep_chain);
                self.settle();
                Ok(())
            }
        }
    }

    /// Restarts a crashed peer now (with its kept chain, if any) and re-dials its links.
    pub fn restart(&mut self, i: u32) -> Result<(), SimError> {
        match self.nodes.get(i as usize) {
            None => Err(SimError::NoSuchPeer(i)),
            Some(n) if n.is_up() => Err(SimError::PeerUp(i)),
            Some(_) => {
                self.flush();
                self.do_restart(i);
                self.settle();
                Ok(())
            }
        }
    }

    /// Submits a data item at peer `i` now.
    pub fn submit(&mut self, i: u32, text: &str) -> Result<ItemId, SimError> {
        let node = self.nodes.get(i as usize).ok_or(SimError::NoSuchPeer(i))?;
        if !node.is_up() {
            return Err(SimError::PeerDown(i));
        }
        let now = self.clock;
        let r = self.with_ctx(i, |c| {
            let r = c
                .node(i)
                .peer
                .as_mut()
                .map(|p| p.submit(now.to_peer(), text.to_string()));
            let ok = matches!(r, Some(Ok(_)));
            c.rec(i, TraceEv::Submit { node: i, ok });
            c.after_call(i);
            r
        });
        self.settle();
        let id = r.ok_or(SimError::PeerDown(i))??;
        self.metrics.items_submitted.push(id);
        Ok(id)
    }

    /// Makes peer `i` mine a block on its tip now (outside the Poisson schedule).
    pub fn mine(&mut self, i: u32) -> Result<BlockHash, SimError> {
        if i as usize >= self.nodes.len() {
            return Err(SimError::NoSuchPeer(i));
        }
        let hash = self.with_ctx(i, |c| c.mine_block(i, false));
        self.settle();
        hash.ok_or(SimError::PeerDown(i))
    }

    /// Final best tip held by the most online peers (ties: greater height, then smaller hash),
    /// and one online peer holding it.
    pub fn majority_tip(&self) -> Option<(BlockHash, u32)> {
        let holder = |h: &BlockHash| self.nodes.iter().position(|n| n.is_up() && n.tip == *h);
        let mut best: Option<(u32, u64, BlockHash)> = None;
        for (h, &c) in self.checker.tips() {
            let node = holder(h)?;
            let height = self.nodes[node]
                .peer
                .as_ref()
                .map_or(0, |p| p.chain().height());
            if best.is_none_or(|(bc, bh, _)| (c, height) > (bc, bh)) {
                best = Some((c, height, *h));
            }
        }
        let (_, _, h) = best?;
        Some((h, holder(&h)? as u32))
    }

    /// Whether the online peers form one connected graph over the topology's links.
    pub fn online_connected(&self) -> bool {
        let alive: Vec<bool> = self.nodes.iter().map(|n| n.is_up()).collect();
        net::connected(self.nodes.len(), self.w.net.links.edges(), &alive)
    }

    /// Partitions currently in force.
    pub fn active_partitions(&self) -> usize {
        self.w.net.partitions.len()
    }

    /// Number of links currently open.
    pub fn open_links(&self) -> usize {
        let links = &self.w.net.links;
        self.nodes
            .iter()
            .enumerate()
            .flat_map(|(i, n)| n.ends.iter().map(move |e| (i as u32, e)))
            .filter(|(i, e)| e.open && links.ends(e.link).0 == *i)
            .count()
    }

    /// Turns the liveness phase's mining on or off. When on, once the block target is reached
    /// a miner still mines (at its usual rate, when only background traffic is in flight and
    /// no neighbour claims a heavier chain) while its pending pool holds items, and tie breaks
    /// are not capped: every item submitted must end up mined, and a tie that only a new block
    /// can break must be broken. Miners whose clocks stopped are restarted.
    pub fn set_liveness_mining(&mut self, on: bool) {
        if self.w.mining.set_liveness(on) {
            for i in 0..self.nodes.len() as u32 {
                self.with_ctx(i, |c| c.refresh_mining(i));
            }
            self.settle();
        }
    }

    /// How far into the future peer `i`'s upload link is already booked (zero when idle or
    /// unlimited): messages of 1 kB or more it sends now wait that long before they start.
    pub fn upload_backlog(&self, i: u32) -> Millis {
        let now = self.clock;
        self.nodes
            .get(i as usize)
            .map_or(Millis::ZERO, |n| n.port.upload_backlog(now))
    }

    /// How far into the future peer `i`'s download link is already booked (zero when idle or
    /// unlimited): a message of 1 kB or more sent to it now finishes no earlier than that.
    pub fn download_backlog(&self, i: u32) -> Millis {
        let now = self.clock;
        self.nodes
            .get(i as usize)
            .map_or(Millis::ZERO, |n| n.port.download_backlog(now))
    }

    /// Peer `i`'s upload rate in bits per second (`None`: unlimited).
    pub fn upload_bps(&self, i: u32) -> Option<u64> {
        self.nodes.get(i as usize).and_then(|n| n.port.up_bps())
    }

    /// Scheduled faults and submissions that have not fired yet.
    pub fn scheduled_pending(&self) -> u64 {
        self.faults.pending()
    }

    /// Messages in flight (sent, not yet delivered or dropped), background traffic included.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.all()
    }

    /// Makes [`Sim::run`] stop at the next event once `flag` is set (by a Ctrl-C handler, say):
    /// the report then covers what ran, with outcome `interrupted`, and skips the end-of-run
    /// checks.
    pub fn set_stop_flag(&mut self, flag: std::sync::Arc<std::sync::atomic::AtomicBool>) {
        self.stop = Some(flag);
    }

    /// Peers without any link in the topology: they can neither hear nor spread a block.
    pub fn isolated_peers(&self) -> Vec<u32> {
        let mut linked = vec![false; self.nodes.len()];
        for &(a, b) in self.w.net.links.edges() {
            for x in [a, b] {
                if let Some(l) = linked.get_mut(x as usize) {
                    *l = true;
                }
            }
        }
        (0..self.nodes.len() as u32)
            .filter(|&i| !linked[i as usize])
            .collect()
    }

    /// Keeps every (block, peer) arrival time and the neighbour that delivered it from now on,
    /// so [`Sim::tables`] can give each peer's median and p90 and the web view can replay a
    /// block (8 bytes per pair; off by default). Call before running; the run is unchanged.
    pub fn record_peer_delays(&mut self) {
        self.metrics.record_peer_delays = true;
    }

    /// The per-block, per-peer and per-miner tables of the run so far (`blocks.csv`,
    /// `peers.csv`, `miners.csv`). Peers' delay columns are empty unless
    /// [`Sim::record_peer_delays`] was called before the run.
    pub fn tables(&self) -> Tables {
        let best = self.majority_tip().and_then(|(_, node)| self.chain(node));
        Tables::build(&TablesView {
            metrics: &self.metrics,
            best_chain: best,
            regions: &self.w.net.regions,
            has_regions: self.w.cfg.preset.is_some(),
            edges: self.w.net.links.edges(),
            rates: self
                .nodes
                .iter()
                .map(|n| (n.port.up_bps(), n.port.down_bps()))
                .collect(),
            hash_shares: hash_shares(&self.w.cfg),
        })
    }

    /// Times and peers of the scheduled submissions that ran.
    pub fn submissions(&self) -> &[(Millis, u32)] {
        &self.submissions
    }
}
