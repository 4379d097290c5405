//! The [`Builder`]: a scenario scripted from Rust, turmoil-style. Each setter changes one
//! [`SimConfig`] field; [`Builder::build`] validates the whole and builds the [`Sim`].

use crate::config::{
    Bandwidth, ConfigError, CrashSpec, Groups, Latency, PartitionSpec, SimConfig, Topology,
};
use crate::sim::Sim;
use rantai_core::{Millis, RelayPolicy};

/// Builds a [`Sim`] step by step, turmoil-style. Starts from [`SimConfig::small`]: no preset,
/// 20..100 ms latency, unlimited bandwidth, `random:4` topology, no automatic mining.
#[derive(Debug, Clone)]
pub struct Builder {
    cfg: SimConfig,
}

impl Builder {
    /// A network of `peers` peers.
    pub fn new(peers: u32) -> Builder {
        Builder {
            cfg: SimConfig::small(peers),
        }
    }

    /// Starts from a complete configuration (e.g. one read from a scenario file).
    pub fn from_config(cfg: SimConfig) -> Builder {
        Builder { cfg }
    }

    /// Master seed of every random stream.
    pub fn seed(mut self, seed: u64) -> Self {
        self.cfg.seed = seed;
        self
    }

    /// Mine `blocks` blocks as a Poisson process with mean `interval` network-wide.
    pub fn mining(mut self, blocks: u64, interval: Millis) -> Self {
        self.cfg.blocks = blocks;
        self.cfg.block_interval = Some(interval);
        self
    }

    /// Number of mining peers (spread evenly over the peer indices).
    pub fn miners(mut self, miners: u32) -> Self {
        self.cfg.miners = Some(miners);
        self
    }

    /// Virtual data size of each mined block (drives transfer time).
    pub fn block_size(mut self, bytes: u64) -> Self {
        self.cfg.block_size_bytes = Some(bytes);
        self
    }

    /// How peers are linked.
    pub fn topology(mut self, t: Topology) -> Self {
        self.cfg.topology = t;
        self
    }

    /// How each message's one-way latency is drawn.
    pub fn latency(mut self, l: Latency) -> Self {
        self.cfg.latency = Some(l);
        self
    }

    /// Per-peer upload and download rates.
    pub fn bandwidth(mut self, b: Bandwidth) -> Self {
        self.cfg.bandwidth = Some(b);
        self
    }

    /// Block relay policy of every peer.
    pub fn relay(mut self, r: RelayPolicy) -> Self {
        self.cfg.relay = Some(r);
        self
    }

    /// Lets peers learn addresses from each other and dial them (see
    /// [`SimConfig::discovery`]).
    pub fn discovery(mut self, on: bool) -> Self {
        self.cfg.discovery = on;
        self
    }

    /// Probability that a message is lost.
    pub fn loss(mut self, p: f64) -> Self {
        self.cfg.loss = p;
        self
    }

    /// Probability that a message is delivered twice.
    pub fn duplicate(mut self, p: f64) -> Self {
        self.cfg.duplicate = p;
        self
    }

    /// Probability that a message is held back by up to `max_delay` (reordering it).
    pub fn reorder(mut self, p: f64, max_delay: Millis) -> Self {
        self.cfg.reorder = p;
        self.cfg.reorder_delay = max_delay;
        self
    }

    /// Splits the network into `groups` at `at`, healing at `heal`.
    pub fn partition(mut self, at: Millis, heal: Option<Millis>, groups: Vec<Vec<u32>>) -> Self {
        self.cfg.partitions.push(PartitionSpec {
            at,
            heal,
            groups: Groups::Explicit(groups),
            oneway: false,
        });
        self
    }

    /// Crashes `peer` at `at`, restarting it at `restart` with or without its chain.
    pub fn crash(
        mut self,
        peer: u32,
        at: Millis,
        restart: Option<Millis>,
        keep_chain: bool,
    ) -> Self {
        self.cfg.crashes.push(CrashSpec {
            peer,
            at,
            restart,
            keep_chain,
        });
        self
    }

    /// Data items submitted at random peers during the first half of the mining phase.
    pub fn items(mut self, n: u32) -> Self {
        self.cfg.items = n;
        self
    }

    /// Peer keepalive period (`None` disables pings).
    pub fn ping_interval(mut self, p: Option<Millis>) -> Self {
        self.cfg.ping_interval = p.into();
        self
    }

    /// How long to keep running after the last block and fault.
    pub fn settle(mut self, d: Millis) -> Self {
        self.cfg.settle = d;
        self
    }

    /// Direct access for settings without a dedicated setter.
    pub fn config_mut(&mut self) -> &mut SimConfig {
        &mut self.cfg
    }

    /// Validates the configuration and builds the simulation.
    pub fn build(self) -> Result<Sim, ConfigError> {
        Sim::new(self.cfg)
    }
}
