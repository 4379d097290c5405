//! The network model: topology generation, per-message latency, per-peer bandwidth and
//! message wire sizes. Everything here is a pure function of the configuration and the
//! RNG streams it is handed.

use crate::config::{Bandwidth, Latency, SimConfig, Topology};
use crate::presets::Preset;
use crate::rng::stream;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rantai_core::Message;
use std::collections::BTreeSet;

/// Messages smaller than this cost latency only; larger ones also occupy the sender's upload
/// and the receiver's download for `size / rate`.
pub const BANDWIDTH_THRESHOLD_BYTES: u64 = 1024;

/// Names of the message kinds, indexed by [`kind_index`] (the same strings as `Message::kind`).
pub const KIND_NAMES: [&str; 12] = [
    "hello",
    "ping",
    "pong",
    "inv",
    "get_blocks",
    "block",
    "not_found",
    "get_chain",
    "chain_hashes",
    "items",
    "get_addr",
    "addr",
];

/// Index of a message's kind in [`KIND_NAMES`].
pub fn kind_index(msg: &Message) -> usize {
    match msg {
        Message::Hello(_) => 0,
        Message::Ping { .. } => 1,
        Message::Pong { .. } => 2,
        Message::Inv { .. } => 3,
        Message::GetBlocks { .. } => 4,
        Message::Block { .. } => 5,
        Message::NotFound { .. } => 6,
        Message::GetChain { .. } => 7,
        Message::ChainHashes { .. } => 8,
        Message::Items { .. } => 9,
        Message::GetAddr => 10,
        Message::Addr { .. } => 11,
    }
}

/// Estimated wire size of a message, without serializing it: a 24-byte envelope plus 32 bytes
/// per hash, and for blocks the virtual `block_size_bytes` plus the real header and items.
pub fn wire_size(msg: &Message, block_size_bytes: u64) -> u64 {
    const ENV: u64 = 24;
    const TIP: u64 = 56;
    match msg {
        Message::Hello(h) => ENV + 44 + TIP + h.listen.as_ref().map_or(0, |l| l.len() as u64),
        Message::Ping { .. } | Message::Pong { .. } => ENV + 8 + TIP,
        Message::Inv { hashes } | Message::GetBlocks { hashes } | Message::NotFound { hashes } => {
            ENV + 32 * hashes.len() as u64
        }
        Message::Block { block } => ENV + block.size() as u64 + block_size_bytes,
        Message::GetChain { locator } => ENV + 32 * locator.len() as u64,
        Message::ChainHashes { hashes, .. } => ENV + TIP + 32 * hashes.len() as u64,
        Message::Items { items } => ENV + items.iter().map(|i| i.encoded_len() as u64).sum::<u64>(),
        Message::GetAddr => ENV,
        Message::Addr { addrs } => ENV + addrs.iter().map(|a| a.len() as u64 + 4).sum::<u64>(),
    }
}

/// Per-peer placement and access rates.
#[derive(Debug, Clone)]
pub struct Placement {
    /// Region index per peer (0 without a preset).
    pub region: Vec<u8>,
    /// Upload rate per peer in bits per second (`None` = unlimited).
    pub upload_bps: Vec<Option<u64>>,
    /// Download rate per peer in bits per second (`None` = unlimited).
    pub download_bps: Vec<Option<u64>>,
}

/// Places peers in regions by the preset's shares (one draw per peer from its own stream) and
/// assigns bandwidth.
pub fn place(cfg: &SimConfig) -> Placement {
    let n = cfg.peers as usize;
    let mut region = vec![0u8; n];
    if let Some(p) = cfg.preset {
        for (i, r) in region.iter_mut().enumerate() {
            let mut rng = stream(cfg.seed, "region", i as u64);
            *r = draw_region(p, rng.gen::<f64>());
        }
    }
    let (up, down) = match cfg.bandwidth() {
        Bandwidth::Uniform { download, upload } => (vec![upload; n], vec![download; n]),
        Bandwidth::Region => {
            // validate() guarantees a preset for the region model.
            let p = cfg.preset.unwrap_or(&crate::presets::BITCOIN_2019);
            (
                region
                    .iter()
                    .map(|&r| Some(p.upload_bps[r as usize]))
                    .collect(),
                region
                    .iter()
                    .map(|&r| Some(p.download_bps[r as usize]))
                    .collect(),
            )
        }
    };
    Placement {
        region,
        upload_bps: up,
        download_bps: down,
    }
}

fn draw_region(p: &Preset, u: f64) -> u8 {
    let total: f64 = p.region_share.iter().sum();
    let mut acc = 0.0;
    for (i, s) in p.region_share.iter().enumerate() {
        acc += s / total;
        if u < acc {
            return i as u8;
        }
    }
    (p.region_share.len() - 1) as u8
}

/// Builds the links as `(dialer, acceptor)` pairs: no self-links, no duplicate pairs.
pub fn build_topology(cfg: &SimConfig) -> Vec<(u32, u32)> {
    let n = cfg.peers;
    let mut edges: Vec<(u32, u32)> = Vec::new();
    let mut seen: BTreeSet<(u32, u32)> = BTreeSet::new();
    let mut add = |a: u32, b: u32, edges: &mut Vec<(u32, u32)>| -> bool {
        if a == b || a >= n || b >= n {
            return false;
        }
        if seen.insert((a.min(b), a.max(b))) {
            edges.push((a, b));
            true
        } else {
            false
        }
    };
    match &cfg.topology {
        Topology::Mesh => {
            for a in 0..n {
                for b in a + 1..n {
                    add(a, b, &mut edges);
                }
            }
        }
        Topology::Ring => {
            for a in 0..n {
                add(a, (a + 1) % n, &mut edges);
            }
        }
        Topology::Line => {
            for a in 1..n {
                add(a - 1, a, &mut edges);
            }
        }
        Topology::Star => {
            for a in 1..n {
                add(a, 0, &mut edges);
            }
        }
        Topology::Edges { edges: list, .. } => {
            for &(a, b) in list {
                add(a, b, &mut edges);
            }
        }
        Topology::SmallWorld { k, p } => {
            let half = (*k / 2).max(1);
            for a in 0..n {
                let mut rng = stream(cfg.seed, "topology", a as u64);
                for j in 1..=half {
                    let lattice = (a + j) % n;
                    let mut done = false;
                    if rng.gen::<f64>() < *p {
                        // Rewire to a random peer; keep the lattice edge if every try collides.
                        for _ in 0..32 {
                            if add(a, rng.gen_range(0..n), &mut edges) {
                                done = true;
                                break;
                            }
                        }
                    }
                    if !done {
                        add(a, lattice, &mut edges);
                    }
                }
            }
        }
        Topology::Random { k } => {
            let mut inbound = vec![0u32; n as usize];
            let cap = cfg.max_inbound.unwrap_or(u32::MAX);
            for a in 0..n {
                let mut rng = stream(cfg.seed, "topology", a as u64);
                let want = match (k, cfg.preset) {
                    (Some(k), _) => *k,
                    (None, Some(p)) => draw_degree(p.outbound_degree_cdf, rng.gen::<f64>()),
                    (None, None) => 8,
                };
                let want = want.min(n.saturating_sub(1));
                let mut made = 0;
                let mut tries = 0;
                while made < want && tries < 64 * want.max(1) {
                    tries += 1;
                    let b = rng.gen_range(0..n);
                    if inbound[b as usize] >= cap {
                        continue;
                    }
                    if add(a, b, &mut edges) {
                        inbound[b as usize] += 1;
                        made += 1;
                    }
                }
            }
        }
    }
    edges
}

fn draw_degree(cdf: &[f64], u: f64) -> u32 {
    for (i, &c) in cdf.iter().enumerate() {
        if u <= c {
            return i as u32 + 1;
        }
    }
    cdf.len() as u32
}

/// Whether the undirected graph on the peers with `alive[i]` is connected by `edges`.
pub fn connected(n: usize, edges: &[(u32, u32)], alive: &[bool]) -> bool {
    let mut adj: Vec<Vec<u32>> = vec![Vec::new(); n];
    for &(a, b) in edges {
        if alive[a as usize] && alive[b as usize] {
            adj[a as usize].push(b);
            adj[b as usize].push(a);
        }
    }
    let Some(start) = (0..n).find(|&i| alive[i]) else {
        return true;
    };
    let mut seen = vec![false; n];
    let mut stack = vec![start as u32];
    seen[start] = true;
    while let Some(x) = stack.pop() {
        for &y in &adj[x as usize] {
            if !seen[y as usize] {
                seen[y as usize] = true;
                stack.push(y);
            }
        }
    }
    (0..n).all(|i| !alive[i] || seen[i])
}

/// Draws one message's one-way latency in milliseconds.
pub fn sample_latency(
    model: &Latency,
    preset: Option<&Preset>,
    from_region: u8,
    to_region: u8,
    rng: &mut ChaCha8Rng,
) -> u64 {
    match *model {
        Latency::Const(m) => m.0,
        Latency::Uniform(lo, hi) => {
            if lo == hi {
                lo.0
            } else {
                rng.gen_range(lo.0..=hi.0)
            }
        }
        Latency::Normal { mean, sd } => {
            let z = std_normal(rng);
            (mean.0 as f64 + z * sd.0 as f64).max(1.0).round() as u64
        }
        Latency::LogNormal { median, sigma } => {
            let z = std_normal(rng);
            (median.0 as f64 * (sigma * z).exp())
                .clamp(1.0, 1e9)
                .round() as u64
        }
        Latency::Region => {
            let mean = preset.map_or(100, |p| {
                p.latency_ms[from_region as usize][to_region as usize]
            }) as f64;
            // SimBlock's model: Pareto with shape 0.2 * mean and scale mean - 5, whose mean is
            // the measured mean; clamped so that tiny means stay well defined.
            let shape = (0.2 * mean).max(1.1);
            let scale = (mean - 5.0).max(1.0);
            let u: f64 = 1.0 - rng.gen::<f64>(); // in (0, 1]
            (scale / u.powf(1.0 / shape)).clamp(1.0, 1e7).round() as u64
        }
    }
}

fn std_normal(rng: &mut ChaCha8Rng) -> f64 {
    // Box-Muller.
    let u1: f64 = 1.0 - rng.gen::<f64>();
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Microseconds needed to move `bytes` at `bps` (0 for unlimited).
pub fn transfer_us(bytes: u64, bps: Option<u64>) -> u64 {
    match bps {
        None => 0,
        Some(r) => ((bytes as u128 * 8 * 1_000_000).div_ceil(r.max(1) as u128)) as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn random_topology_has_no_duplicates_and_is_stable() {
        let mut cfg = SimConfig::small(200);
        cfg.topology = Topology::Random { k: Some(8) };
        let a = build_topology(&cfg);
        let b = build_topology(&cfg);
        assert_eq!(a, b);
        assert_eq!(a.len(), 200 * 8);
        let mut pairs: Vec<(u32, u32)> = a.iter().map(|&(x, y)| (x.min(y), x.max(y))).collect();
        pairs.sort();
        pairs.dedup();
        assert_eq!(pairs.len(), a.len());
        assert!(connected(200, &a, &[true; 200]));
    }

    #[test]
    fn fixed_topologies() {
        let n = 30u32;
        let count = |t: Topology| {
            let mut cfg = SimConfig::small(n);
            cfg.topology = t;
            let e = build_topology(&cfg);
            assert!(connected(n as usize, &e, &vec![true; n as usize]));
            e.len()
        };
        assert_eq!(count(Topology::Ring), 30);
        assert_eq!(count(Topology::Line), 29);
        assert_eq!(count(Topology::Star), 29);
        assert_eq!(count(Topology::Mesh), 30 * 29 / 2);
        assert_eq!(count(Topology::SmallWorld { k: 4, p: 0.0 }), 60);
        // A rewired edge can collide with a later lattice edge, which is then dropped.
        assert!((54..=60).contains(&count(Topology::SmallWorld { k: 4, p: 0.3 })));
        let edges = crate::config::parse_edges("# a comment\n0 1\n1 2\n2,0\n").unwrap();
        let mut cfg = SimConfig::small(3);
        cfg.topology = Topology::Edges {
            source: "test".into(),
            edges,
        };
        assert_eq!(build_topology(&cfg), vec![(0, 1), (1, 2), (2, 0)]);
        let mut line = SimConfig::small(5);
        line.topology = Topology::Line;
        let e = build_topology(&line);
        assert!(!connected(5, &e, &[true, true, false, true, true]));
    }

    #[test]
    fn preset_degrees_follow_the_measured_distribution() {
        let cfg = SimConfig {
            peers: 2000,
            ..SimConfig::default()
        };
        let e = build_topology(&cfg);
        let mean = e.len() as f64 / 2000.0;
        // Mean of the measured outbound-degree CDF is about 8.6 links.
        assert!((7.5..9.5).contains(&mean), "mean outbound degree {mean}");
    }

    #[test]
    fn region_latency_mean_is_close_to_measured() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let p = &crate::presets::BITCOIN_2019;
        let n = 20_000;
        let sum: u64 = (0..n)
            .map(|_| sample_latency(&Latency::Region, Some(p), 0, 1, &mut rng))
            .sum();
        let mean = sum as f64 / n as f64;
        assert!((mean - 124.0).abs() < 6.0, "mean {mean}");
    }

    #[test]
    fn transfer_time() {
        assert_eq!(transfer_us(535_000, Some(20_000_000)), 214_000);
        assert_eq!(transfer_us(535_000, None), 0);
    }
}
