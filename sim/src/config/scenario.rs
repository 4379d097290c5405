//! [`SimConfig`], the complete scenario: its fields, defaults and the values the defaults
//! resolve to (a preset's block interval, say), and the checks across keys.

use super::error::{ConfigError, ValueError};
use super::model::{Bandwidth, CrashSpec, Groups, Latency, PartitionSpec, Topology};
use crate::presets::{self, Preset};
use rantai_core::{Millis, RelayPolicy};

/// The peers' keepalive setting as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PingInterval {
    /// 30 s when any fault is configured, else off: pings cost events and only matter when
    /// something can go wrong.
    #[default]
    Auto,
    /// No keepalives.
    Off,
    /// A keepalive this often.
    Every(Millis),
}

impl From<Option<Millis>> for PingInterval {
    /// `None` turns pings off (as the builder's `ping_interval(None)` means).
    fn from(p: Option<Millis>) -> PingInterval {
        p.map_or(PingInterval::Off, PingInterval::Every)
    }
}

/// A complete scenario. Defaults are the CLI's default scenario (bitcoin-2019, 1,000 peers,
/// 100 blocks, announce relay).
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    pub seed: u64,
    pub peers: u32,
    /// Stop mining after this many blocks (0: no automatic mining).
    pub blocks: u64,
    /// Mean time between blocks network-wide (default: the preset's, else 10 s).
    pub block_interval: Option<Millis>,
    /// Virtual data size of each mined block: what its transfer costs (default: the preset's, else 0).
    pub block_size_bytes: Option<u64>,
    /// Number of mining peers (spread evenly over the peer indices); default min(peers, 100).
    pub miners: Option<u32>,
    /// Explicit hash-power shares, one per miner (normalised); equal if `None`.
    pub hashpower: Option<Vec<f64>>,
    pub topology: Topology,
    /// Default: the preset's region model, else uniform 20..100 ms.
    pub latency: Option<Latency>,
    /// Default: the preset's region rates, else unlimited.
    pub bandwidth: Option<Bandwidth>,
    pub preset: Option<&'static Preset>,
    pub loss: f64,
    pub duplicate: f64,
    /// Probability that a message is held back by an extra uniform delay up to `reorder_delay`,
    /// letting later messages of the same connection overtake it.
    pub reorder: f64,
    pub reorder_delay: Millis,
    /// Default: the preset's (compact for bitcoin-2019), else announce.
    pub relay: Option<RelayPolicy>,
    /// Probability that a peer's mempool lacks part of a compact block's virtual payload, so
    /// rebuilding it takes one more round trip (see [`crate::net::COMPACT_FAILURE_RATE`]).
    pub compact_failure: f64,
    pub partitions: Vec<PartitionSpec>,
    pub crashes: Vec<CrashSpec>,
    /// Data items submitted at random online peers during the first half of the mining phase.
    pub items: u32,
    pub item_size_bytes: u32,
    /// Longest time to keep running after the last block (and the last fault) for the network
    /// to settle.
    pub settle: Millis,
    /// Keepalive period of the peers; see [`PingInterval`].
    pub ping_interval: PingInterval,
    pub request_timeout: Millis,
    /// Delay before a dialer re-dials a closed link (doubles per failure, capped at 8x).
    pub redial_delay: Millis,
    /// Cap on inbound links per peer for `random` topologies (`None`: unlimited).
    pub max_inbound: Option<u32>,
    /// Peers advertise their address (`sim:<i>`) and dial addresses they learn from
    /// neighbours' `addr` answers, within core's outbound budget: the topology grows from
    /// the configured links as a real network's does. Off: the links are the topology.
    pub discovery: bool,
    /// A calibration links file: the topology, each link's one-way latency and each peer's
    /// access rates, replacing `topology`, `latency` and `bandwidth`.
    pub links: Option<LinksFile>,
    /// A calibration block schedule: these blocks, at these times, replace mining.
    pub schedule: Option<ScheduleFile>,
    /// Model TCP's congestion window (slow start on fresh and idle connections).
    pub tcp_slow_start: bool,
    /// Worker threads (`None`: [`crate::sim::default_threads`]); changes only the wall time.
    pub threads: Option<usize>,
}

/// A links file as given (`source`, the path written) and as read.
#[derive(Debug, Clone, PartialEq)]
pub struct LinksFile {
    pub source: String,
    pub links: std::sync::Arc<rantai_core::calib::Links>,
}

/// A block schedule as given and as read.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleFile {
    pub source: String,
    pub blocks: std::sync::Arc<Vec<rantai_core::calib::Scheduled>>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 1,
            peers: 1000,
            blocks: 100,
            block_interval: None,
            block_size_bytes: None,
            miners: None,
            hashpower: None,
            topology: Topology::Random { k: None },
            latency: None,
            bandwidth: None,
            preset: Some(&presets::BITCOIN_2019),
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Millis(1000),
            relay: None,
            compact_failure: crate::net::COMPACT_FAILURE_RATE,
            partitions: Vec::new(),
            crashes: Vec::new(),
            items: 0,
            item_size_bytes: 64,
            settle: Millis::from_secs(600),
            ping_interval: PingInterval::Auto,
            request_timeout: Millis::from_secs(60),
            redial_delay: Millis::from_secs(5),
            max_inbound: None,
            discovery: false,
            links: None,
            schedule: None,
            tcp_slow_start: false,
            threads: None,
        }
    }
}

impl SimConfig {
    /// A small, fast base for tests and library users: no preset, 20..100 ms latency,
    /// unlimited bandwidth, 10 s blocks carrying only their items.
    pub fn small(peers: u32) -> SimConfig {
        SimConfig {
            peers,
            blocks: 0,
            preset: None,
            topology: Topology::Random { k: Some(4) },
            ..SimConfig::default()
        }
    }

    /// Mean time between blocks after applying preset defaults.
    pub fn block_interval(&self) -> Millis {
        self.block_interval
            .or(self.preset.map(|p| Millis::from_secs(p.block_interval_s)))
            .unwrap_or(Millis::from_secs(10))
    }

    /// Relay policy after applying preset defaults.
    pub fn relay(&self) -> RelayPolicy {
        self.relay
            .or(self.preset.map(|p| p.relay))
            .unwrap_or(RelayPolicy::Announce)
    }

    /// Virtual block size after applying preset defaults.
    pub fn block_size_bytes(&self) -> u64 {
        if self.schedule.is_some() {
            // Scheduled blocks carry their bytes as a real item.
            return 0;
        }
        self.block_size_bytes
            .or(self.preset.map(|p| p.block_size_bytes))
            .unwrap_or(0)
    }

    /// Number of miners after defaults.
    pub fn miners(&self) -> u32 {
        self.miners
            .unwrap_or_else(|| self.hashpower.as_ref().map_or(100, |h| h.len() as u32))
            .min(self.peers)
    }

    /// Latency model after defaults.
    pub fn latency(&self) -> Latency {
        self.latency.clone().unwrap_or(if self.preset.is_some() {
            Latency::Region
        } else {
            Latency::Uniform(Millis(20), Millis(100))
        })
    }

    /// Bandwidth model after defaults.
    pub fn bandwidth(&self) -> Bandwidth {
        self.bandwidth.clone().unwrap_or(if self.preset.is_some() {
            Bandwidth::Region
        } else {
            Bandwidth::Uniform {
                download: None,
                upload: None,
            }
        })
    }

    /// Whether any fault is configured.
    pub fn has_faults(&self) -> bool {
        self.loss > 0.0
            || self.duplicate > 0.0
            || self.reorder > 0.0
            || !self.partitions.is_empty()
            || !self.crashes.is_empty()
    }

    /// Keepalive period after defaults.
    pub fn ping_interval(&self) -> Option<Millis> {
        match self.ping_interval {
            PingInterval::Auto if self.has_faults() => Some(Millis::from_secs(30)),
            PingInterval::Auto | PingInterval::Off => None,
            PingInterval::Every(p) => Some(p),
        }
    }

    /// Cross-field checks that single keys cannot make.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = ConfigError::invalid;
        let peers = self.peers;
        if let Some(h) = &self.hashpower {
            if h.len() as u32 != self.miners() {
                return Err(invalid(
                    "hashpower",
                    ValueError::SharesForMiners {
                        shares: h.len(),
                        miners: self.miners(),
                    },
                ));
            }
        }
        if matches!(self.latency(), Latency::Region) && self.preset.is_none() {
            return Err(invalid("latency", ValueError::RegionLatencyNeedsPreset));
        }
        if matches!(self.bandwidth(), Bandwidth::Region) && self.preset.is_none() {
            return Err(invalid("bandwidth", ValueError::RegionBandwidthNeedsPreset));
        }
        // The engine's rounds are as long as the smallest one-way latency: it must be positive.
        // (The region, normal and log-normal models never draw below 1 ms.)
        let model_floor_zero = match self.latency() {
            Latency::Const(d) => d.0 == 0,
            Latency::Uniform(lo, _) => lo.0 == 0,
            _ => false,
        };
        match &self.links {
            Some(l) if l.links.links.iter().any(|x| x.latency_ms == 0) => {
                return Err(invalid("links", ValueError::ZeroLatencyFloor));
            }
            Some(_) if !(self.discovery && model_floor_zero) => {}
            _ if model_floor_zero => {
                return Err(invalid("latency", ValueError::ZeroLatencyFloor));
            }
            _ => {}
        }
        if self.topology == Topology::Mesh && peers > 2000 {
            return Err(invalid("topology", ValueError::MeshTooLarge));
        }
        if let Topology::Edges { edges, .. } = &self.topology {
            if let Some(&(a, b)) = edges.iter().find(|&&(a, b)| a >= peers || b >= peers) {
                return Err(invalid(
                    "topology",
                    ValueError::EdgeOutOfRange { a, b, peers },
                ));
            }
        }
        if let Some(l) = &self.links {
            if l.links.nodes != peers {
                let e = ValueError::LinksPeers {
                    nodes: l.links.nodes,
                    peers,
                };
                return Err(invalid("links", e));
            }
        }
        if let Some(s) = &self.schedule {
            if self.blocks > 0 {
                return Err(invalid(
                    "schedule",
                    ValueError::ScheduleWithBlocks(self.blocks),
                ));
            }
            if self.links.is_none() {
                return Err(invalid("schedule", ValueError::ScheduleWithoutLinks));
            }
            if self.miners() > 0 || self.items > 0 {
                return Err(invalid("schedule", ValueError::ScheduleWithMining));
            }
            if let Some((index, b)) = s.blocks.iter().enumerate().find(|(_, b)| b.node >= peers) {
                let e = ValueError::SchedulePeer {
                    index,
                    node: b.node,
                    peers,
                };
                return Err(invalid("schedule", e));
            }
        }
        for (index, c) in self.crashes.iter().enumerate() {
            if c.peer >= peers {
                let peer = c.peer;
                let e = ValueError::CrashPeerOutOfRange { index, peer, peers };
                return Err(invalid("crash", e));
            }
            if c.restart.is_some_and(|r| r < c.at) {
                return Err(invalid("crash", ValueError::RestartBeforeCrash { index }));
            }
        }
        for (index, p) in self.partitions.iter().enumerate() {
            if p.heal.is_some_and(|h| h < p.at) {
                return Err(invalid("partition", ValueError::HealBeforeSplit { index }));
            }
            if let Groups::Explicit(g) = &p.groups {
                if let Some(&peer) = g.iter().flatten().find(|&&x| x >= peers) {
                    let e = ValueError::PartitionPeerOutOfRange { index, peer, peers };
                    return Err(invalid("partition", e));
                }
            }
        }
        Ok(())
    }
}
