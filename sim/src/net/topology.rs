//! Where peers sit and how they are linked: region placement, access rates and the link
//! graph. Each is a pure function of the configuration and its seeded streams (`region`/i,
//! `topology`/i), so adding a peer never reshuffles another's draws.

use crate::config::{Bandwidth, SimConfig, Topology};
use crate::presets::Preset;
use crate::rng::stream;
use rand::Rng;
use std::collections::BTreeSet;

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
    let (up, down) = match (&cfg.links, cfg.bandwidth()) {
        (Some(l), _) => (
            l.links.access.iter().map(|a| a.up_bps).collect(),
            l.links.access.iter().map(|a| a.down_bps).collect(),
        ),
        (None, bw) => match bw {
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
        },
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
    if let Some(l) = &cfg.links {
        // In file order, so link `l` is the file's line `l` (its latency is looked up so).
        for s in &l.links.links {
            add(s.a, s.b, &mut edges);
        }
        return edges;
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
