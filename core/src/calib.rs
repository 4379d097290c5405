//! The calibration formats both drivers read and write, so one scenario runs on real nodes
//! (`rantai-node testbed`) and in the simulator (`rantai-sim compare`), and their results
//! line up key for key.
//!
//! - A **links file**: the network. `node I up RATE down RATE` lines give a node's access
//!   rates (optional; unlimited otherwise); `A B LATENCY` lines give a link (node A dials node
//!   B) and its one-way latency. Nodes are `0..n`, `n` one more than the largest mentioned.
//! - A **schedule file**: `TIME NODE BYTES` lines; at `TIME` after the start, `NODE` mines a
//!   block carrying one item of `BYTES` bytes of data.
//! - A [`CalibReport`]: per block, when each node accepted it; per message kind, frames and
//!   bytes sent.
//!
//! Units are spelled out: latencies and times `250ms` or `2s`, rates `500kbit`, `20Mbit` or
//! `1Gbit` (bits per second), sizes in bytes. `#` starts a comment.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Most nodes a calibration network may have: the testbed gives each a namespace and a
/// process, the simulator records every (block, node) arrival.
pub const MAX_NODES: u32 = 1_000;
/// Most scheduled blocks.
pub const MAX_BLOCKS: usize = 10_000;
/// Longest one-way latency a links file may give (a minute).
pub const MAX_LATENCY_MS: u64 = 60_000;
/// Latest time a schedule may mine at (a week).
pub const MAX_SCHEDULE_MS: u64 = 7 * 24 * 3600 * 1000;

/// A line of a links or schedule file that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {why}: `{text}`")]
pub struct CalibError {
    /// 1-based line number (0: the file as a whole).
    pub line: usize,
    /// What is wrong.
    pub why: String,
    /// The line as written.
    pub text: String,
}

/// One link of the network: `a` dials `b`; each direction takes `latency_ms` one way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkSpec {
    /// The dialling node.
    pub a: u32,
    /// The accepting node.
    pub b: u32,
    /// One-way latency, each direction.
    pub latency_ms: u64,
}

/// A node's access rates in bits per second (`None`: unlimited).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    /// Upload rate.
    pub up_bps: Option<u64>,
    /// Download rate.
    pub down_bps: Option<u64>,
}

/// A parsed links file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Links {
    /// Number of nodes (one more than the largest node mentioned).
    pub nodes: u32,
    /// Access rates per node.
    pub access: Vec<Access>,
    /// The links, in file order; no self-links, no pair twice.
    pub links: Vec<LinkSpec>,
}

impl Links {
    /// Parses a links file.
    pub fn parse(text: &str) -> Result<Links, CalibError> {
        let mut access: BTreeMap<u32, Access> = BTreeMap::new();
        let mut links = Vec::new();
        let mut pairs = std::collections::BTreeSet::new();
        let mut max_node = None;
        for (n, raw) in text.lines().enumerate() {
            let err = |why: &str| CalibError {
                line: n + 1,
                why: why.to_string(),
                text: raw.trim().to_string(),
            };
            let words: Vec<&str> = strip(raw).split_whitespace().collect();
            match words.as_slice() {
                [] => continue,
                ["node", id, rest @ ..] => {
                    let id = node(id).ok_or_else(|| err("expected a node number"))?;
                    let mut a = Access::default();
                    for kv in rest.chunks(2) {
                        let [k, v] = kv else {
                            return Err(err("expected `up RATE` and/or `down RATE`"));
                        };
                        let r = parse_rate(v).ok_or_else(|| {
                            err("expected a rate such as 500kbit, 20Mbit or 1Gbit")
                        })?;
                        match *k {
                            "up" => a.up_bps = Some(r),
                            "down" => a.down_bps = Some(r),
                            _ => return Err(err("expected `up RATE` and/or `down RATE`")),
                        }
                    }
                    if access.insert(id, a).is_some() {
                        return Err(err("node given twice"));
                    }
                    max_node = max_node.max(Some(id));
                }
                [a, b, lat] => {
                    let (a, b) = match (node(a), node(b)) {
                        (Some(a), Some(b)) => (a, b),
                        _ => return Err(err("expected `A B LATENCY` with node numbers")),
                    };
                    let latency_ms = parse_ms(lat)
                        .filter(|&l| l <= MAX_LATENCY_MS)
                        .ok_or_else(|| err("expected a latency such as 35ms or 1s, at most 60s"))?;
                    if a == b {
                        return Err(err("a node cannot link to itself"));
                    }
                    if !pairs.insert((a.min(b), a.max(b))) {
                        return Err(err("this pair of nodes is linked twice"));
                    }
                    links.push(LinkSpec { a, b, latency_ms });
                    max_node = max_node.max(Some(a.max(b)));
                }
                _ => return Err(err("expected `A B LATENCY` or `node I up RATE down RATE`")),
            }
        }
        let nodes = max_node.map_or(0, |m| m + 1);
        if nodes > MAX_NODES {
            return Err(CalibError {
                line: 0,
                why: format!("{nodes} nodes, more than {MAX_NODES}"),
                text: String::new(),
            });
        }
        let access = (0..nodes)
            .map(|i| access.get(&i).copied().unwrap_or_default())
            .collect();
        Ok(Links {
            nodes,
            access,
            links,
        })
    }

    /// The one-way latency between `a` and `b`, if they are linked.
    pub fn latency(&self, a: u32, b: u32) -> Option<u64> {
        self.links
            .iter()
            .find(|l| (l.a, l.b) == (a, b) || (l.a, l.b) == (b, a))
            .map(|l| l.latency_ms)
    }
}

/// One scheduled block: at `at_ms` after the start, `node` mines a block carrying one item of
/// `bytes` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scheduled {
    /// Milliseconds after the start.
    pub at_ms: u64,
    /// The mining node.
    pub node: u32,
    /// Bytes of the block's one item.
    pub bytes: u64,
}

/// Parses a schedule file; entries come back sorted by time (file order among equal times).
pub fn parse_schedule(text: &str, nodes: u32) -> Result<Vec<Scheduled>, CalibError> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let err = |why: &str| CalibError {
            line: n + 1,
            why: why.to_string(),
            text: raw.trim().to_string(),
        };
        let words: Vec<&str> = strip(raw).split_whitespace().collect();
        match words.as_slice() {
            [] => continue,
            [t, i, b] => {
                let at_ms = parse_ms(t)
                    .filter(|&t| t <= MAX_SCHEDULE_MS)
                    .ok_or_else(|| err("expected a time such as 500ms or 2s, at most a week"))?;
                let node = node(i).ok_or_else(|| err("expected a node number"))?;
                if node >= nodes {
                    return Err(err(&format!("node {node} is not in the links file")));
                }
                let bytes: u64 = b.parse().map_err(|_| err("expected a size in bytes"))?;
                if bytes == 0 || bytes > MAX_ITEM_TEXT_BYTES {
                    return Err(err(&format!(
                        "size must be 1 to {MAX_ITEM_TEXT_BYTES} bytes"
                    )));
                }
                out.push(Scheduled { at_ms, node, bytes });
            }
            _ => return Err(err("expected `TIME NODE BYTES`")),
        }
        if out.len() > MAX_BLOCKS {
            return Err(err(&format!("more than {MAX_BLOCKS} blocks")));
        }
    }
    out.sort_by_key(|s| s.at_ms);
    Ok(out)
}

/// Most data one scheduled block's item may carry: the block data limit less the block's and
/// the item's framing.
pub const MAX_ITEM_TEXT_BYTES: u64 = 1_000_000;

/// The data of scheduled block `k`: `bytes` bytes, distinct per block so no two are the same
/// item.
pub fn block_text(k: usize, bytes: u64) -> String {
    let tag = format!("calibration block {k} ");
    let mut s = String::with_capacity(bytes as usize);
    s.push_str(&tag[..tag.len().min(bytes as usize)]);
    while s.len() < bytes as usize {
        s.push('x');
    }
    s
}

/// What a calibration run measured, in either world.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CalibReport {
    /// `testbed` or `sim`.
    pub source: String,
    /// Nodes in the network.
    pub nodes: u32,
    /// The relay policy (`announce`, `push` or `compact`).
    pub relay: String,
    /// One entry per scheduled block, in schedule order.
    pub blocks: Vec<CalibBlock>,
    /// Frames and bytes sent, summed over nodes, by message kind.
    pub messages: BTreeMap<String, KindCount>,
    /// Blocks accepted somewhere that did not end in the miner's best chain.
    pub stale: u64,
}

/// One scheduled block's propagation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CalibBlock {
    /// The node that mined it.
    pub miner: u32,
    /// Bytes of its item.
    pub bytes: u64,
    /// Its hash (hex); differs between the worlds, whose genesis blocks differ.
    pub hash: String,
    /// Per node, milliseconds from the miner's acceptance to this node's (`None`: never).
    pub arrival_ms: Vec<Option<u64>>,
    /// Delay until 50%, 90% and 100% of the nodes (the miner included) had it.
    pub t50: Option<u64>,
    /// See `t50`.
    pub t90: Option<u64>,
    /// See `t50`.
    pub t100: Option<u64>,
}

impl CalibBlock {
    /// Fills `t50`, `t90` and `t100` from `arrival_ms`, with the simulator's definition.
    pub fn with_marks(mut self) -> CalibBlock {
        let mut d: Vec<u64> = self.arrival_ms.iter().flatten().copied().collect();
        d.sort_unstable();
        let n = self.arrival_ms.len() as u64;
        let mark = |num: u64, den: u64| {
            // The first count c with c * den >= n * num, as the simulator tracks it.
            let need = (n * num).div_ceil(den).max(1) as usize;
            d.get(need - 1).copied()
        };
        self.t50 = mark(1, 2);
        self.t90 = mark(9, 10);
        self.t100 = mark(1, 1);
        self
    }
}

/// Frames and bytes of one message kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindCount {
    /// Frames.
    pub count: u64,
    /// Bytes, whole frames.
    pub bytes: u64,
}

fn strip(line: &str) -> &str {
    line.split('#').next().unwrap_or("")
}

fn node(s: &str) -> Option<u32> {
    s.parse().ok()
}

/// `250ms`, `2s` or `1.5s`, in milliseconds.
pub fn parse_ms(s: &str) -> Option<u64> {
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1000.0)
    } else {
        return None;
    };
    let v: f64 = num.parse().ok()?;
    let ms = (v * scale).round();
    // Far past any sensible time, and so past any overflow when added to an instant.
    (v.is_finite() && v >= 0.0 && ms <= 1e15).then_some(ms as u64)
}

/// `500kbit`, `20Mbit`, `1Gbit` (also `bit`), in bits per second.
pub fn parse_rate(s: &str) -> Option<u64> {
    let (num, scale) = [("Gbit", 1e9), ("Mbit", 1e6), ("kbit", 1e3), ("bit", 1.0)]
        .into_iter()
        .find_map(|(suf, k)| s.strip_suffix(suf).map(|n| (n, k)))?;
    let v: f64 = num.parse().ok()?;
    let bps = (v * scale).round();
    (v.is_finite() && bps >= 1.0).then_some(bps as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_parse_with_rates_comments_and_refusals() {
        let l = Links::parse(
            "# a triangle\nnode 0 up 20Mbit down 50Mbit\n0 1 35ms\n1 2 1.5s # slow\n2 0 20ms\n",
        )
        .expect("parses");
        assert_eq!(l.nodes, 3);
        assert_eq!(l.access[0].up_bps, Some(20_000_000));
        assert_eq!(l.access[0].down_bps, Some(50_000_000));
        assert_eq!(l.access[1], Access::default());
        assert_eq!(l.latency(2, 1), Some(1500));
        assert_eq!(l.latency(0, 2), Some(20));
        for bad in [
            "0 0 10ms",
            "0 1 10",
            "0 1 10ms\n1 0 5ms",
            "node 0 up 20MBps",
            "node 0 sideways 1Mbit",
            "0 x 10ms",
            "0 1",
            "0 1 61s",
        ] {
            assert!(Links::parse(bad).is_err(), "refused: {bad}");
        }
        let e = Links::parse("0 1 10ms\n0 2 fast").unwrap_err();
        assert_eq!(e.line, 2);
    }

    #[test]
    fn schedule_parses_sorted_and_checks_nodes_and_sizes() {
        let s = parse_schedule("2s 1 500000\n500ms 0 1000\n", 2).expect("parses");
        assert_eq!(
            s,
            vec![
                Scheduled {
                    at_ms: 500,
                    node: 0,
                    bytes: 1000
                },
                Scheduled {
                    at_ms: 2000,
                    node: 1,
                    bytes: 500_000
                }
            ]
        );
        assert!(
            parse_schedule("1s 2 10", 2).is_err(),
            "node outside the network"
        );
        assert!(parse_schedule("1s 0 0", 2).is_err(), "empty block");
        assert!(parse_schedule("1s 0 2000000", 2).is_err(), "over the limit");
        assert!(parse_schedule("1 0 10", 2).is_err(), "time needs a unit");
        assert!(
            parse_schedule("1e30s 0 10", 2).is_err(),
            "no overflowing times"
        );
    }

    #[test]
    fn marks_count_the_miner_like_the_simulator() {
        // Ten nodes: the miner at 0, the others at 10..90 ms; node 9 never.
        let mut arrival: Vec<Option<u64>> = (0..9).map(|i| Some(i * 10)).collect();
        arrival.push(None);
        let b = CalibBlock {
            arrival_ms: arrival,
            ..CalibBlock::default()
        }
        .with_marks();
        assert_eq!((b.t50, b.t90, b.t100), (Some(40), Some(80), None));
    }

    #[test]
    fn block_text_has_the_size_asked_and_differs_per_block() {
        assert_eq!(block_text(3, 1000).len(), 1000);
        assert_eq!(block_text(3, 5).len(), 5);
        assert_ne!(block_text(1, 100), block_text(2, 100));
    }
}
