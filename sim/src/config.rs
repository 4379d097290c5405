//! Scenario configuration: one typed [`SimConfig`], set key by key from a TOML scenario file
//! and then from command-line flags (flags override the file), or from Rust via the builder.
//!
//! Every key has the same name in both places (`block_interval` in TOML, `--block-interval` on
//! the command line) and is parsed by [`SimConfig::apply`], so an error always names the key.

use crate::presets::{self, Preset};
use crate::units::{parse_duration, parse_probability, parse_rate, parse_size, Rate};
use rantai_core::{Millis, RelayPolicy};
use std::path::{Path, PathBuf};

/// Why a configuration value or file was refused. Always names the offending key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A key that no setting has.
    #[error("unknown key `{key}` (known keys: {known})")]
    UnknownKey { key: String, known: String },
    /// A known key with a value that does not parse or is out of range.
    #[error("invalid value for `{key}`: {msg}")]
    Invalid { key: String, msg: String },
    /// The scenario file could not be read.
    #[error("cannot read {path}: {msg}")]
    Io { path: String, msg: String },
    /// The scenario file is not valid TOML.
    #[error("{path}: invalid TOML: {msg}")]
    Toml { path: String, msg: String },
}

fn invalid(key: &str, msg: impl ToString) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        msg: msg.to_string(),
    }
}

/// Scalar keys accepted by [`SimConfig::apply`] (and `[[partition]]`, `[[crash]]`, `hashpower`
/// tables/arrays in TOML).
pub const KEYS: &[&str] = &[
    "seed",
    "peers",
    "blocks",
    "block_interval",
    "block_size",
    "miners",
    "hashpower",
    "topology",
    "latency",
    "bandwidth",
    "preset",
    "loss",
    "duplicate",
    "reorder",
    "reorder_delay",
    "relay",
    "partition",
    "crash",
    "items",
    "item_size",
    "settle",
    "ping_interval",
    "request_timeout",
    "redial_delay",
    "max_inbound",
];

/// How peers are linked.
#[derive(Debug, Clone, PartialEq)]
pub enum Topology {
    /// Each peer dials `k` random others (Bitcoin-style); `None` draws each peer's outbound
    /// count from the preset's measured distribution (8 without a preset).
    Random {
        k: Option<u32>,
    },
    /// Every pair linked (refused above 2,000 peers: peers squared links).
    Mesh,
    Ring,
    Line,
    /// Peer 0 linked to every other.
    Star,
    /// Watts-Strogatz: ring lattice with `k` neighbours per peer, each rewired with probability `p`.
    SmallWorld {
        k: u32,
        p: f64,
    },
    /// Explicit undirected edges (the first id dials), e.g. loaded from an edge-list file.
    Edges {
        source: String,
        edges: Vec<(u32, u32)>,
    },
}

/// How one message's one-way latency is drawn.
#[derive(Debug, Clone, PartialEq)]
pub enum Latency {
    Const(Millis),
    /// Uniform in `[lo, hi]`.
    Uniform(Millis, Millis),
    /// Normal with mean and standard deviation (clamped at 1 ms).
    Normal {
        mean: Millis,
        sd: Millis,
    },
    /// Log-normal with the given median and sigma (heavy right tail).
    LogNormal {
        median: Millis,
        sigma: f64,
    },
    /// Per-region-pair Pareto around the preset's measured mean (SimBlock's model).
    Region,
}

/// Per-peer access bandwidth.
#[derive(Debug, Clone, PartialEq)]
pub enum Bandwidth {
    /// The same rates for every peer (`None` = unlimited).
    Uniform { download: Rate, upload: Rate },
    /// The preset's per-region rates.
    Region,
}

/// Which peers a partition separates.
#[derive(Debug, Clone, PartialEq)]
pub enum Groups {
    /// A seeded random `fraction` of the peers against the rest.
    Fraction(f64),
    /// Explicit groups of peer indices; peers not listed form one more group.
    Explicit(Vec<Vec<u32>>),
}

/// A network split at `at`, healed at `heal` (never if `None`).
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionSpec {
    pub at: Millis,
    pub heal: Option<Millis>,
    pub groups: Groups,
    /// One-way: only messages from the first group to the others are dropped.
    pub oneway: bool,
}

/// A peer crash at `at`, restarted at `restart` (never if `None`).
#[derive(Debug, Clone, PartialEq)]
pub struct CrashSpec {
    pub peer: u32,
    pub at: Millis,
    pub restart: Option<Millis>,
    /// Restart with the chain it had (a node with a data directory) or from genesis.
    pub keep_chain: bool,
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
    pub relay: RelayPolicy,
    pub partitions: Vec<PartitionSpec>,
    pub crashes: Vec<CrashSpec>,
    /// Data items submitted at random online peers during the first half of the mining phase.
    pub items: u32,
    pub item_size_bytes: u32,
    /// Longest time to keep running after the last block (and the last fault) for the network
    /// to settle.
    pub settle: Millis,
    /// Keepalive period of the peers (default: 30 s when any fault is configured, else off:
    /// pings cost events and only matter when something can go wrong).
    pub ping_interval: Option<Option<Millis>>,
    pub request_timeout: Millis,
    /// Delay before a dialer re-dials a closed link (doubles per failure, capped at 8x).
    pub redial_delay: Millis,
    /// Cap on inbound links per peer for `random` topologies (`None`: unlimited).
    pub max_inbound: Option<u32>,
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
            relay: RelayPolicy::Announce,
            partitions: Vec::new(),
            crashes: Vec::new(),
            items: 0,
            item_size_bytes: 64,
            settle: Millis::from_secs(600),
            ping_interval: None,
            request_timeout: Millis::from_secs(60),
            redial_delay: Millis::from_secs(5),
            max_inbound: None,
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

    /// Virtual block size after applying preset defaults.
    pub fn block_size_bytes(&self) -> u64 {
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
        self.ping_interval.unwrap_or(if self.has_faults() {
            Some(Millis::from_secs(30))
        } else {
            None
        })
    }

    /// Sets one key from its textual value, as given on the command line or in a scenario file.
    /// `base` resolves relative file paths (the scenario file's directory).
    pub fn apply(
        &mut self,
        key: &str,
        value: &str,
        base: Option<&Path>,
    ) -> Result<(), ConfigError> {
        let key_norm = key.trim_start_matches("--").replace('-', "_");
        let k = key_norm.as_str();
        let e = |m: String| invalid(k, m);
        let v = value.trim();
        match k {
            "seed" => {
                self.seed = v
                    .parse()
                    .map_err(|_| e(format!("expected an unsigned integer, got {v:?}")))?
            }
            "peers" => {
                let n: u32 = v
                    .parse()
                    .map_err(|_| e(format!("expected a number of peers, got {v:?}")))?;
                if !(1..=1_000_000).contains(&n) {
                    return Err(e(format!("must be between 1 and 1000000, got {n}")));
                }
                self.peers = n;
            }
            "blocks" => {
                self.blocks = v
                    .parse()
                    .map_err(|_| e(format!("expected a number of blocks, got {v:?}")))?
            }
            "block_interval" => {
                let d = parse_duration(v, 1000.0).map_err(|x| e(x.to_string()))?;
                if d.0 == 0 {
                    return Err(e("must be positive".into()));
                }
                self.block_interval = Some(d);
            }
            "block_size" => {
                self.block_size_bytes = Some(parse_size(v).map_err(|x| e(x.to_string()))?)
            }
            "miners" => {
                let n: u32 = v
                    .parse()
                    .map_err(|_| e(format!("expected a number of miners, got {v:?}")))?;
                if n == 0 {
                    return Err(e("need at least one miner".into()));
                }
                self.miners = Some(n);
            }
            "hashpower" => {
                let shares: Result<Vec<f64>, _> =
                    v.split(',').map(|s| s.trim().parse::<f64>()).collect();
                let shares =
                    shares.map_err(|_| e(format!("expected comma-separated shares, got {v:?}")))?;
                if shares.is_empty()
                    || shares.iter().any(|s| !s.is_finite() || *s < 0.0)
                    || shares.iter().sum::<f64>() <= 0.0
                {
                    return Err(e("shares must be non-negative with a positive sum".into()));
                }
                self.hashpower = Some(shares);
            }
            "topology" => self.topology = parse_topology(v, base).map_err(e)?,
            "latency" => self.latency = Some(parse_latency(v).map_err(e)?),
            "bandwidth" => self.bandwidth = Some(parse_bandwidth(v).map_err(e)?),
            "preset" => {
                self.preset = if v == "none" {
                    None
                } else {
                    Some(presets::by_name(v).ok_or_else(|| {
                        let names: Vec<&str> = presets::PRESETS.iter().map(|p| p.name).collect();
                        e(format!(
                            "unknown preset {v:?} (known: {}, none)",
                            names.join(", ")
                        ))
                    })?)
                }
            }
            "loss" => self.loss = parse_probability(v).map_err(|x| e(x.to_string()))?,
            "duplicate" => self.duplicate = parse_probability(v).map_err(|x| e(x.to_string()))?,
            "reorder" => self.reorder = parse_probability(v).map_err(|x| e(x.to_string()))?,
            "reorder_delay" => {
                self.reorder_delay = parse_duration(v, 1.0).map_err(|x| e(x.to_string()))?
            }
            "relay" => {
                self.relay = match v {
                    "announce" => RelayPolicy::Announce,
                    "push" => RelayPolicy::Push,
                    _ => return Err(e(format!("expected `announce` or `push`, got {v:?}"))),
                }
            }
            "partition" => self.partitions.push(parse_partition(v).map_err(e)?),
            "crash" => self.crashes.push(parse_crash(v).map_err(e)?),
            "items" => {
                self.items = v
                    .parse()
                    .map_err(|_| e(format!("expected a number of items, got {v:?}")))?
            }
            "item_size" => {
                let n = parse_size(v).map_err(|x| e(x.to_string()))?;
                if n > 60_000 {
                    return Err(e("at most 60000 bytes".into()));
                }
                self.item_size_bytes = n as u32;
            }
            "settle" => self.settle = parse_duration(v, 1000.0).map_err(|x| e(x.to_string()))?,
            "ping_interval" => {
                self.ping_interval = Some(if v == "off" || v == "none" {
                    None
                } else {
                    let d = parse_duration(v, 1000.0).map_err(|x| e(x.to_string()))?;
                    if d.0 == 0 {
                        return Err(e("must be positive (or `off`)".into()));
                    }
                    Some(d)
                })
            }
            "request_timeout" => {
                self.request_timeout = parse_duration(v, 1000.0).map_err(|x| e(x.to_string()))?
            }
            "redial_delay" => {
                self.redial_delay = parse_duration(v, 1000.0).map_err(|x| e(x.to_string()))?
            }
            "max_inbound" => {
                self.max_inbound =
                    if v == "unlimited" {
                        None
                    } else {
                        Some(v.parse().map_err(|_| {
                            e(format!("expected a number or `unlimited`, got {v:?}"))
                        })?)
                    }
            }
            _ => {
                return Err(ConfigError::UnknownKey {
                    key: key.to_string(),
                    known: KEYS.join(", "),
                })
            }
        }
        Ok(())
    }

    /// Applies a scenario file's TOML text. `path` is used in messages and to resolve
    /// relative paths inside it.
    pub fn apply_toml(&mut self, text: &str, path: &Path) -> Result<(), ConfigError> {
        let shown = path.display().to_string();
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Toml {
                path: shown.clone(),
                msg: e.to_string().trim().to_string(),
            })?;
        let base = path.parent();
        for (key, value) in &table {
            match (key.as_str(), value) {
                ("partition", toml::Value::Array(list)) => {
                    for (i, entry) in list.iter().enumerate() {
                        let ctx = format!("partition[{i}]");
                        self.partitions.push(partition_from_toml(entry, &ctx)?);
                    }
                }
                ("crash", toml::Value::Array(list)) => {
                    for (i, entry) in list.iter().enumerate() {
                        let ctx = format!("crash[{i}]");
                        self.crashes.push(crash_from_toml(entry, &ctx)?);
                    }
                }
                ("hashpower", toml::Value::Array(list)) => {
                    let parts: Result<Vec<String>, ConfigError> = list
                        .iter()
                        .map(|v| {
                            scalar(v)
                                .ok_or_else(|| invalid("hashpower", "expected an array of numbers"))
                        })
                        .collect();
                    self.apply("hashpower", &parts?.join(","), base)?;
                }
                (k, v) => {
                    let s = scalar(v)
                        .ok_or_else(|| invalid(k, "expected a string, number or boolean"))?;
                    if !KEYS.contains(&k) {
                        return Err(ConfigError::UnknownKey {
                            key: k.to_string(),
                            known: KEYS.join(", "),
                        });
                    }
                    self.apply(k, &s, base)?;
                }
            }
        }
        Ok(())
    }

    /// Reads and applies a scenario file.
    pub fn apply_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
            path: path.display().to_string(),
            msg: e.to_string(),
        })?;
        self.apply_toml(&text, path)
    }

    /// Cross-field checks that single keys cannot make.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(h) = &self.hashpower {
            if h.len() as u32 != self.miners() {
                return Err(invalid(
                    "hashpower",
                    format!("{} shares given for {} miners", h.len(), self.miners()),
                ));
            }
        }
        if matches!(self.latency(), Latency::Region) && self.preset.is_none() {
            return Err(invalid(
                "latency",
                "the `region` model needs a preset (e.g. --preset bitcoin-2019)",
            ));
        }
        if matches!(self.bandwidth(), Bandwidth::Region) && self.preset.is_none() {
            return Err(invalid("bandwidth", "the `region` model needs a preset"));
        }
        if self.topology == Topology::Mesh && self.peers > 2000 {
            return Err(invalid(
                "topology",
                "mesh is limited to 2000 peers (links grow with peers squared)",
            ));
        }
        if let Topology::Edges { edges, .. } = &self.topology {
            if let Some(&(a, b)) = edges
                .iter()
                .find(|&&(a, b)| a >= self.peers || b >= self.peers)
            {
                return Err(invalid(
                    "topology",
                    format!("edge {a}-{b} names a peer >= peers ({})", self.peers),
                ));
            }
        }
        for (i, c) in self.crashes.iter().enumerate() {
            if c.peer >= self.peers {
                return Err(invalid(
                    "crash",
                    format!("crash[{i}]: peer {} >= peers ({})", c.peer, self.peers),
                ));
            }
            if c.restart.is_some_and(|r| r < c.at) {
                return Err(invalid(
                    "crash",
                    format!("crash[{i}]: restart before crash"),
                ));
            }
        }
        for (i, p) in self.partitions.iter().enumerate() {
            if p.heal.is_some_and(|h| h < p.at) {
                return Err(invalid(
                    "partition",
                    format!("partition[{i}]: heal before split"),
                ));
            }
            if let Groups::Explicit(g) = &p.groups {
                if let Some(x) = g.iter().flatten().find(|&&x| x >= self.peers) {
                    return Err(invalid(
                        "partition",
                        format!("partition[{i}]: peer {x} >= peers ({})", self.peers),
                    ));
                }
            }
        }
        Ok(())
    }

    /// A command line that replays this configuration exactly (printed on invariant violations).
    pub fn command_line(&self) -> String {
        let mut a = vec!["cargo run --release -p rantai-sim --".to_string()];
        a.push(format!("--seed {}", self.seed));
        a.push(format!("--peers {}", self.peers));
        a.push(format!("--blocks {}", self.blocks));
        a.push(format!(
            "--preset {}",
            self.preset.map_or("none", |p| p.name)
        ));
        a.push(format!("--block-interval {}ms", self.block_interval().0));
        a.push(format!("--block-size {}", self.block_size_bytes()));
        a.push(format!("--miners {}", self.miners()));
        if let Some(h) = &self.hashpower {
            let s: Vec<String> = h.iter().map(|x| x.to_string()).collect();
            a.push(format!("--hashpower {}", s.join(",")));
        }
        a.push(format!("--topology {}", topology_str(&self.topology)));
        if let Some(m) = self.max_inbound {
            a.push(format!("--max-inbound {m}"));
        }
        a.push(format!("--latency {}", latency_str(&self.latency())));
        a.push(format!("--bandwidth {}", bandwidth_str(&self.bandwidth())));
        a.push(format!(
            "--relay {}",
            if self.relay == RelayPolicy::Push {
                "push"
            } else {
                "announce"
            }
        ));
        for (k, v) in [
            ("loss", self.loss),
            ("duplicate", self.duplicate),
            ("reorder", self.reorder),
        ] {
            if v > 0.0 {
                a.push(format!("--{k} {v}"));
            }
        }
        if self.reorder > 0.0 {
            a.push(format!("--reorder-delay {}ms", self.reorder_delay.0));
        }
        for p in &self.partitions {
            a.push(format!("--partition '{}'", partition_str(p)));
        }
        for c in &self.crashes {
            let end = c.restart.map_or(String::new(), |r| format!("{}ms", r.0));
            let wipe = if c.keep_chain { "" } else { ":wipe" };
            a.push(format!("--crash {}@{}ms..{end}{wipe}", c.peer, c.at.0));
        }
        if self.items > 0 {
            a.push(format!(
                "--items {} --item-size {}",
                self.items, self.item_size_bytes
            ));
        }
        a.push(format!("--settle {}ms", self.settle.0));
        match self.ping_interval() {
            Some(p) => a.push(format!("--ping-interval {}ms", p.0)),
            None => a.push("--ping-interval off".into()),
        }
        a.push(format!("--request-timeout {}ms", self.request_timeout.0));
        a.push(format!("--redial-delay {}ms", self.redial_delay.0));
        a.join(" ")
    }
}

fn scalar(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

fn get_duration(t: &toml::Table, key: &str, ctx: &str) -> Result<Option<Millis>, ConfigError> {
    match t.get(key) {
        None => Ok(None),
        Some(v) => {
            let s =
                scalar(v).ok_or_else(|| invalid(&format!("{ctx}.{key}"), "expected a duration"))?;
            parse_duration(&s, 1000.0)
                .map(Some)
                .map_err(|e| invalid(&format!("{ctx}.{key}"), e))
        }
    }
}

fn check_keys(t: &toml::Table, allowed: &[&str], ctx: &str) -> Result<(), ConfigError> {
    for k in t.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(ConfigError::UnknownKey {
                key: format!("{ctx}.{k}"),
                known: allowed.join(", "),
            });
        }
    }
    Ok(())
}

fn partition_from_toml(v: &toml::Value, ctx: &str) -> Result<PartitionSpec, ConfigError> {
    let t = v
        .as_table()
        .ok_or_else(|| invalid(ctx, "expected a table"))?;
    check_keys(t, &["at", "heal", "fraction", "groups", "oneway"], ctx)?;
    let at = get_duration(t, "at", ctx)?.ok_or_else(|| invalid(&format!("{ctx}.at"), "missing"))?;
    let heal = get_duration(t, "heal", ctx)?;
    let oneway = match t.get("oneway") {
        None => false,
        Some(toml::Value::Boolean(b)) => *b,
        Some(_) => return Err(invalid(&format!("{ctx}.oneway"), "expected true or false")),
    };
    let groups = match (t.get("fraction"), t.get("groups")) {
        (Some(_), Some(_)) => {
            return Err(invalid(ctx, "give either `fraction` or `groups`, not both"))
        }
        (Some(f), None) => {
            let s = scalar(f)
                .ok_or_else(|| invalid(&format!("{ctx}.fraction"), "expected a number"))?;
            let x = parse_probability(&s).map_err(|e| invalid(&format!("{ctx}.fraction"), e))?;
            Groups::Fraction(x)
        }
        (None, Some(toml::Value::Array(gs))) => {
            let mut out = Vec::new();
            for g in gs {
                let arr = g.as_array().ok_or_else(|| {
                    invalid(
                        &format!("{ctx}.groups"),
                        "expected an array of arrays of peer indices",
                    )
                })?;
                let mut grp = Vec::new();
                for x in arr {
                    let i = x
                        .as_integer()
                        .filter(|i| *i >= 0 && *i <= u32::MAX as i64)
                        .ok_or_else(|| {
                            invalid(
                                &format!("{ctx}.groups"),
                                "peer indices must be non-negative integers",
                            )
                        })?;
                    grp.push(i as u32);
                }
                out.push(grp);
            }
            Groups::Explicit(out)
        }
        (None, Some(_)) => {
            return Err(invalid(
                &format!("{ctx}.groups"),
                "expected an array of arrays",
            ))
        }
        (None, None) => Groups::Fraction(0.5),
    };
    Ok(PartitionSpec {
        at,
        heal,
        groups,
        oneway,
    })
}

fn crash_from_toml(v: &toml::Value, ctx: &str) -> Result<CrashSpec, ConfigError> {
    let t = v
        .as_table()
        .ok_or_else(|| invalid(ctx, "expected a table"))?;
    check_keys(t, &["peer", "at", "restart", "keep_chain"], ctx)?;
    let peer = t
        .get("peer")
        .and_then(|p| p.as_integer())
        .filter(|i| *i >= 0 && *i <= u32::MAX as i64)
        .ok_or_else(|| invalid(&format!("{ctx}.peer"), "expected a peer index"))?
        as u32;
    let at = get_duration(t, "at", ctx)?.ok_or_else(|| invalid(&format!("{ctx}.at"), "missing"))?;
    let restart = get_duration(t, "restart", ctx)?;
    let keep_chain = match t.get("keep_chain") {
        None => true,
        Some(toml::Value::Boolean(b)) => *b,
        Some(_) => {
            return Err(invalid(
                &format!("{ctx}.keep_chain"),
                "expected true or false",
            ))
        }
    };
    Ok(CrashSpec {
        peer,
        at,
        restart,
        keep_chain,
    })
}

/// Parses `random`, `random:K`, `mesh`, `ring`, `line`, `star`, `small-world:K:P`, `file:PATH`.
pub fn parse_topology(v: &str, base: Option<&Path>) -> Result<Topology, String> {
    let parts: Vec<&str> = v.split(':').collect();
    let bad = || {
        format!("unknown topology {v:?}: expected random[:K], mesh, ring, line, star, small-world:K:P or file:PATH")
    };
    Ok(match parts.as_slice() {
        ["random"] => Topology::Random { k: None },
        ["random", k] => {
            let k: u32 = k
                .parse()
                .map_err(|_| format!("random:K needs an integer K, got {k:?}"))?;
            if k == 0 {
                return Err("random:K needs K >= 1".into());
            }
            Topology::Random { k: Some(k) }
        }
        ["mesh"] => Topology::Mesh,
        ["ring"] => Topology::Ring,
        ["line"] => Topology::Line,
        ["star"] => Topology::Star,
        ["small-world", k, p] | ["small_world", k, p] => {
            let k: u32 = k
                .parse()
                .map_err(|_| format!("small-world:K:P needs an integer K, got {k:?}"))?;
            let p: f64 = p
                .parse()
                .map_err(|_| format!("small-world:K:P needs a probability P, got {p:?}"))?;
            if k < 2 || !(0.0..=1.0).contains(&p) {
                return Err("small-world:K:P needs K >= 2 and 0 <= P <= 1".into());
            }
            Topology::SmallWorld { k, p }
        }
        ["file", ..] => {
            let rel = &v["file:".len()..];
            let path: PathBuf = match base {
                Some(b) if Path::new(rel).is_relative() => b.join(rel),
                _ => PathBuf::from(rel),
            };
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            Topology::Edges {
                source: v.to_string(),
                edges: parse_edges(&text)?,
            }
        }
        _ => return Err(bad()),
    })
}

/// Parses an edge list: one `A B` pair of peer indices per line; `#` starts a comment.
pub fn parse_edges(text: &str) -> Result<Vec<(u32, u32)>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let ids: Vec<&str> = line
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|s| !s.is_empty())
            .collect();
        let parse = |s: &str| {
            s.parse::<u32>()
                .map_err(|_| format!("line {}: bad peer index {s:?}", n + 1))
        };
        match ids.as_slice() {
            [a, b] => {
                let (a, b) = (parse(a)?, parse(b)?);
                if a == b {
                    return Err(format!("line {}: self-loop {a}-{b}", n + 1));
                }
                out.push((a, b));
            }
            _ => return Err(format!("line {}: expected two peer indices", n + 1)),
        }
    }
    Ok(out)
}

/// Parses `const:50ms` (or just `50ms`), `uniform:10ms..200ms`, `normal:100ms:20ms`,
/// `lognormal:80ms:0.6`, `region`.
pub fn parse_latency(v: &str) -> Result<Latency, String> {
    let d = |s: &str| parse_duration(s, 1.0).map_err(|e| e.to_string());
    let parts: Vec<&str> = v.splitn(3, ':').collect();
    Ok(match parts.as_slice() {
        ["region"] => Latency::Region,
        ["const", x] => Latency::Const(d(x)?),
        ["uniform", r] => {
            let (lo, hi) = r.split_once("..").ok_or("uniform needs LO..HI, e.g. uniform:10ms..200ms")?;
            let (lo, hi) = (d(lo)?, d(hi)?);
            if lo > hi {
                return Err("uniform: LO must not exceed HI".into());
            }
            Latency::Uniform(lo, hi)
        }
        ["normal", m, s] => Latency::Normal { mean: d(m)?, sd: d(s)? },
        ["lognormal", m, s] => {
            let sigma: f64 = s.parse().map_err(|_| format!("lognormal sigma must be a number, got {s:?}"))?;
            if !(0.0..=5.0).contains(&sigma) {
                return Err("lognormal sigma must be between 0 and 5".into());
            }
            Latency::LogNormal { median: d(m)?, sigma }
        }
        [x] => Latency::Const(d(x).map_err(|_| {
            format!("unknown latency model {v:?}: expected const:D, uniform:LO..HI, normal:MEAN:SD, lognormal:MEDIAN:SIGMA or region")
        })?),
        _ => {
            return Err(format!(
                "unknown latency model {v:?}: expected const:D, uniform:LO..HI, normal:MEAN:SD, lognormal:MEDIAN:SIGMA or region"
            ))
        }
    })
}

/// Parses `region`, `RATE` (both directions) or `DOWN/UP` (like an ISP plan: `50Mbps/10Mbps`).
pub fn parse_bandwidth(v: &str) -> Result<Bandwidth, String> {
    if v == "region" {
        return Ok(Bandwidth::Region);
    }
    let r = |s: &str| parse_rate(s).map_err(|e| e.to_string());
    Ok(match v.split_once('/') {
        Some((d, u)) => Bandwidth::Uniform {
            download: r(d)?,
            upload: r(u)?,
        },
        None => {
            let x = r(v)?;
            Bandwidth::Uniform {
                download: x,
                upload: x,
            }
        }
    })
}

/// Parses `START..END[:FRACTION][:oneway]`, e.g. `10m..30m`, `10m..30m:0.3:oneway`; an empty
/// END never heals.
pub fn parse_partition(v: &str) -> Result<PartitionSpec, String> {
    let mut parts = v.split(':');
    let range = parts.next().unwrap_or("");
    let (a, b) = range
        .split_once("..")
        .ok_or_else(|| format!("expected START..END[:FRACTION][:oneway], got {v:?}"))?;
    let at = parse_duration(a, 1000.0).map_err(|e| e.to_string())?;
    let heal = if b.trim().is_empty() {
        None
    } else {
        Some(parse_duration(b, 1000.0).map_err(|e| e.to_string())?)
    };
    let mut fraction = 0.5;
    let mut oneway = false;
    for p in parts {
        if p == "oneway" {
            oneway = true;
        } else {
            fraction = parse_probability(p).map_err(|e| e.to_string())?;
        }
    }
    Ok(PartitionSpec {
        at,
        heal,
        groups: Groups::Fraction(fraction),
        oneway,
    })
}

/// Parses `PEER@START[..END][:wipe]`, e.g. `3@10m..20m` (restart keeping the chain) or
/// `3@10m..20m:wipe` (restart from genesis).
pub fn parse_crash(v: &str) -> Result<CrashSpec, String> {
    let (body, keep_chain) = match v.strip_suffix(":wipe") {
        Some(b) => (b, false),
        None => (v.strip_suffix(":keep").unwrap_or(v), true),
    };
    let (peer, range) = body
        .split_once('@')
        .ok_or_else(|| format!("expected PEER@START[..END][:wipe], got {v:?}"))?;
    let peer: u32 = peer
        .trim()
        .parse()
        .map_err(|_| format!("bad peer index {peer:?}"))?;
    let (a, b) = match range.split_once("..") {
        Some((a, b)) => (a, Some(b)),
        None => (range, None),
    };
    let at = parse_duration(a, 1000.0).map_err(|e| e.to_string())?;
    let restart = match b {
        Some(b) if !b.trim().is_empty() => {
            Some(parse_duration(b, 1000.0).map_err(|e| e.to_string())?)
        }
        _ => None,
    };
    Ok(CrashSpec {
        peer,
        at,
        restart,
        keep_chain,
    })
}

/// Canonical text of a topology (as accepted by `--topology`).
pub fn topology_str(t: &Topology) -> String {
    match t {
        Topology::Random { k: None } => "random".into(),
        Topology::Random { k: Some(k) } => format!("random:{k}"),
        Topology::Mesh => "mesh".into(),
        Topology::Ring => "ring".into(),
        Topology::Line => "line".into(),
        Topology::Star => "star".into(),
        Topology::SmallWorld { k, p } => format!("small-world:{k}:{p}"),
        Topology::Edges { source, .. } => source.clone(),
    }
}

/// Canonical text of a latency model (as accepted by `--latency`).
pub fn latency_str(l: &Latency) -> String {
    match l {
        Latency::Const(m) => format!("const:{}ms", m.0),
        Latency::Uniform(a, b) => format!("uniform:{}ms..{}ms", a.0, b.0),
        Latency::Normal { mean, sd } => format!("normal:{}ms:{}ms", mean.0, sd.0),
        Latency::LogNormal { median, sigma } => format!("lognormal:{}ms:{sigma}", median.0),
        Latency::Region => "region".into(),
    }
}

/// Canonical text of a bandwidth model (as accepted by `--bandwidth`).
pub fn bandwidth_str(b: &Bandwidth) -> String {
    let r = |x: &Rate| x.map_or("unlimited".to_string(), |v| format!("{v}bps"));
    match b {
        Bandwidth::Region => "region".into(),
        Bandwidth::Uniform { download, upload } => format!("{}/{}", r(download), r(upload)),
    }
}

/// Canonical text of a partition (as accepted by `--partition`, when its groups are a fraction).
pub fn partition_str(p: &PartitionSpec) -> String {
    let heal = p.heal.map_or(String::new(), |h| format!("{}ms", h.0));
    let groups = match &p.groups {
        Groups::Fraction(f) => format!(":{f}"),
        Groups::Explicit(g) => format!(":groups{g:?}"),
    };
    let ow = if p.oneway { ":oneway" } else { "" };
    format!("{}ms..{heal}{groups}{ow}", p.at.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_errors() {
        let mut c = SimConfig::default();
        c.apply("--block-interval", "2s", None).unwrap();
        assert_eq!(c.block_interval(), Millis(2000));
        c.apply("block_size", "535kB", None).unwrap();
        assert_eq!(c.block_size_bytes(), 535_000);
        let e = c.apply("blocks", "many", None).unwrap_err();
        assert!(e.to_string().contains("`blocks`"), "{e}");
        let e = c.apply("colour", "red", None).unwrap_err();
        assert!(matches!(e, ConfigError::UnknownKey { .. }));
        c.apply("partition", "10m..20m:0.3:oneway", None).unwrap();
        assert_eq!(c.partitions[0].heal, Some(Millis(1_200_000)));
        assert!(c.partitions[0].oneway);
        c.apply("crash", "3@1m..2m:wipe", None).unwrap();
        assert!(!c.crashes[0].keep_chain);
    }

    #[test]
    fn replay_command_reproduces_the_config() {
        let mut c = SimConfig::default();
        for (k, v) in [
            ("seed", "99"),
            ("peers", "321"),
            ("blocks", "17"),
            ("block_interval", "7s"),
            ("block_size", "12kB"),
            ("miners", "3"),
            ("hashpower", "1,2,3"),
            ("topology", "small-world:4:0.25"),
            ("latency", "lognormal:70ms:0.4"),
            ("bandwidth", "50Mbps/10Mbps"),
            ("loss", "0.05"),
            ("duplicate", "1%"),
            ("reorder", "0.02"),
            ("reorder_delay", "700ms"),
            ("relay", "push"),
            ("partition", "1m..2m:0.3:oneway"),
            ("crash", "4@30s..90s:wipe"),
            ("items", "5"),
            ("settle", "2m"),
            ("max_inbound", "40"),
        ] {
            c.apply(k, v, None).unwrap();
        }
        let cmd = c.command_line();
        let args = cmd.split_once(" -- ").unwrap().1.replace('\'', "");
        let toks: Vec<&str> = args.split_whitespace().collect();
        let mut back = SimConfig::default();
        for pair in toks.chunks(2) {
            back.apply(pair[0], pair[1], None).unwrap();
        }
        // The replayed config resolves every default explicitly; compare resolved values.
        assert_eq!(back.command_line(), cmd);
        assert_eq!(back.partitions, c.partitions);
        assert_eq!(back.crashes, c.crashes);
        assert_eq!(back.topology, c.topology);
        assert_eq!(back.latency(), c.latency());
        assert_eq!(back.bandwidth(), c.bandwidth());
        assert_eq!(
            (back.loss, back.duplicate, back.reorder),
            (c.loss, c.duplicate, c.reorder)
        );
    }

    #[test]
    fn toml_file() {
        let mut c = SimConfig::default();
        let text = r#"
            peers = 50
            block_interval = 5
            latency = "uniform:10ms..50ms"
            [[partition]]
            at = "1m"
            heal = "2m"
            groups = [[0, 1, 2]]
            [[crash]]
            peer = 4
            at = "30s"
            restart = "90s"
            keep_chain = false
        "#;
        c.apply_toml(text, Path::new("x.toml")).unwrap();
        assert_eq!(c.peers, 50);
        assert_eq!(c.block_interval(), Millis(5000));
        assert_eq!(c.partitions.len(), 1);
        assert_eq!(c.crashes[0].restart, Some(Millis(90_000)));
        let e = c
            .apply_toml("bogus_key = 1", Path::new("x.toml"))
            .unwrap_err();
        assert!(e.to_string().contains("bogus_key"), "{e}");
        let e = c
            .apply_toml("[[crash]]\npeer = 1\nwhen = 3", Path::new("x.toml"))
            .unwrap_err();
        assert!(e.to_string().contains("crash[0].when"), "{e}");
    }
}
