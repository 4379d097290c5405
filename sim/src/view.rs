//! The web view of a run (`view.html` under `--out`): one self-contained HTML file, its data
//! embedded as JSON, that draws the peers on a world map and replays how a chosen block
//! spread (sim/README.md, "Watching a block spread").
//!
//! Contract: [`ViewData`] is a pure read of a finished run (or of a testbed's
//! [`CalibReport`]); its JSON (`format` [`FORMAT`]) is documented in the README and is the same
//! bytes for the same seed. Every block carries its summary; only the blocks a
//! [`ViewBlocks`] choice picks carry per-peer arrival times, which keeps the file small.

use crate::metrics::{NEVER, NO_PEER};
use crate::presets::REGIONS;
use crate::{Report, Sim};
use rantai_core::calib::CalibReport;
use serde::Serialize;
use std::collections::BTreeSet;

/// Version tag of the embedded data, checked by the page.
pub const FORMAT: &str = "rantai-view/1";

/// (block, peer) arrival times [`ViewBlocks::Auto`] embeds at most: about 11 MB of JSON.
pub const AUTO_PAIRS: usize = 1_000_000;

/// The page: markup, styles and script, with [`DATA_MARK`] where the data goes.
const PAGE: &str = include_str!("view/page.html");
/// Stands for the data's JSON in [`PAGE`].
const DATA_MARK: &str = "__RANTAI_VIEW_DATA__";

/// Which blocks carry per-peer arrival times (`--view-blocks`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ViewBlocks {
    /// Stale blocks and their rivals, then an even sample of the others, up to
    /// [`AUTO_PAIRS`] / peers blocks in all.
    #[default]
    Auto,
    /// Every block.
    All,
    /// Like `Auto`, with at most this many blocks.
    Count(usize),
    /// Every block at these heights.
    Heights(BTreeSet<u64>),
}

/// Why a testbed report cannot be drawn: its parts disagree (it is read from a file, so
/// nothing in it is trusted, least of all a node count that would size the page).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViewError {
    #[error("the report names {0} nodes; a testbed has at most {max}", max = rantai_core::calib::MAX_NODES)]
    TooManyNodes(u32),
    #[error("block {block} has {got} arrival times for {nodes} nodes")]
    Arrivals {
        block: usize,
        got: usize,
        nodes: u32,
    },
    #[error("block {block}'s miner {miner} is not one of the {nodes} nodes")]
    Miner {
        block: usize,
        miner: u32,
        nodes: u32,
    },
}

/// A `--view-blocks` value that is none of `auto`, `all`, `N` or `heights=H,H,..`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected auto, all, a number of blocks, or heights=H,H,..; got `{0}`")]
pub struct ViewBlocksError(String);

impl std::str::FromStr for ViewBlocks {
    type Err = ViewBlocksError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ViewBlocksError(s.to_string());
        match s.trim() {
            "auto" => Ok(ViewBlocks::Auto),
            "all" => Ok(ViewBlocks::All),
            t => {
                if let Some(list) = t.strip_prefix("heights=") {
                    let hs = list
                        .split(',')
                        .map(|h| h.trim().parse::<u64>().map_err(|_| bad()))
                        .collect::<Result<BTreeSet<u64>, _>>()?;
                    Ok(ViewBlocks::Heights(hs))
                } else {
                    t.parse::<usize>().map(ViewBlocks::Count).map_err(|_| bad())
                }
            }
        }
    }
}

/// One block's summary, and for a chosen block its per-peer arrivals.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ViewBlock {
    /// Its height (a testbed's: its place in the schedule, from 1).
    pub height: u64,
    /// The first 16 hex digits of its hash.
    pub hash: String,
    /// The peer that mined it.
    pub miner: u32,
    /// When it was mined, ms from the start of the run.
    pub mined_at_ms: u64,
    /// Not in the final best chain.
    pub stale: bool,
    /// Delay until 50% of the peers online at mining time had it (`None`: never).
    pub t50_ms: Option<u64>,
    /// The same for 90%.
    pub t90_ms: Option<u64>,
    /// The same for 100%.
    pub t100_ms: Option<u64>,
    /// Distinct peers that accepted it, its miner included.
    pub reached: u32,
    /// Per peer, ms from mining to its acceptance, -1 for never (chosen blocks only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ms: Option<Vec<i64>>,
    /// Per peer, the neighbour that delivered it, -1 for none (its miner); absent where the
    /// source does not know senders (a testbed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<Vec<i64>>,
}

/// Everything the page shows, as embedded in it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ViewData {
    /// [`FORMAT`].
    pub format: &'static str,
    /// `sim` or `testbed`.
    pub source: &'static str,
    /// Region names; a peer's region is an index into them (one `none` without a preset).
    pub regions: Vec<String>,
    /// Region index per peer.
    pub peers: Vec<u8>,
    /// The run's settings, shown as they are (the report's `scenario`).
    pub scenario: serde_json::Value,
    /// The run's outcome, shown as it is (the report's `blocks`, `propagation_ms`, `reorgs`).
    pub summary: serde_json::Value,
    /// Every block, as mined.
    pub blocks: Vec<ViewBlock>,
}

impl ViewData {
    /// Reads the view off a finished run recorded with [`Sim::record_peer_delays`] (without
    /// it no block carries arrivals).
    pub fn from_sim(sim: &Sim, report: &Report, choice: &ViewBlocks) -> ViewData {
        let tables = sim.tables();
        let metrics = sim.metrics();
        let peers = sim.peer_count() as usize;
        let has_regions = sim.config().preset.is_some();
        let regions: Vec<String> = if has_regions {
            REGIONS.iter().map(|r| r.to_string()).collect()
        } else {
            vec!["none".to_string()]
        };
        let peer_regions: Vec<u8> = tables
            .peers
            .iter()
            .map(|p| {
                regions
                    .iter()
                    .position(|r| *r == p.region)
                    .unwrap_or(0)
                    .min(255) as u8
            })
            .collect();
        let mut blocks: Vec<ViewBlock> = tables
            .blocks
            .iter()
            .map(|b| ViewBlock {
                height: b.height,
                hash: b.hash.chars().take(16).collect(),
                miner: b.miner,
                mined_at_ms: b.mined_at_ms,
                stale: b.status == "stale",
                t50_ms: b.t50_ms,
                t90_ms: b.t90_ms,
                t100_ms: b.t100_ms,
                reached: b.peers_reached,
                ms: None,
                via: None,
            })
            .collect();
        let per_pair = |v: &[u32], none: u32| -> Vec<i64> {
            v.iter()
                .map(|&x| if x == none { -1 } else { i64::from(x) })
                .collect()
        };
        for i in chosen(&blocks, peers, choice) {
            let rec = &metrics.blocks[i];
            if rec.arrival_ms.is_empty() {
                continue;
            }
            blocks[i].ms = Some(per_pair(&rec.arrival_ms, NEVER));
            blocks[i].via = Some(per_pair(&rec.via, NO_PEER));
        }
        let summary = serde_json::json!({
            "blocks": report.blocks,
            "propagation_ms": report.propagation_ms,
            "reorgs": report.reorgs,
        });
        ViewData {
            format: FORMAT,
            source: "sim",
            regions,
            peers: peer_regions,
            scenario: serde_json::to_value(&report.scenario).unwrap_or_default(),
            summary,
            blocks,
        }
    }

    /// The view of a testbed's report of real nodes: every block carries its arrivals (a
    /// testbed is small), senders are unknown, and nodes have no region.
    pub fn from_calib(tb: &CalibReport) -> Result<ViewData, ViewError> {
        let nodes = tb.nodes;
        if nodes > rantai_core::calib::MAX_NODES {
            return Err(ViewError::TooManyNodes(nodes));
        }
        for (block, b) in tb.blocks.iter().enumerate() {
            if b.arrival_ms.len() != nodes as usize {
                let got = b.arrival_ms.len();
                return Err(ViewError::Arrivals { block, got, nodes });
            }
            if b.miner >= nodes {
                let miner = b.miner;
                return Err(ViewError::Miner {
                    block,
                    miner,
                    nodes,
                });
            }
        }
        let blocks = tb
            .blocks
            .iter()
            .enumerate()
            .map(|(i, b)| ViewBlock {
                height: i as u64 + 1,
                hash: b.hash.chars().take(16).collect(),
                miner: b.miner,
                mined_at_ms: 0,
                stale: false,
                t50_ms: b.t50,
                t90_ms: b.t90,
                t100_ms: b.t100,
                reached: b.arrival_ms.iter().flatten().count() as u32,
                ms: Some(
                    b.arrival_ms
                        .iter()
                        .map(|a| a.map_or(-1, |x| i64::try_from(x).unwrap_or(i64::MAX)))
                        .collect(),
                ),
                via: None,
            })
            .collect();
        Ok(ViewData {
            format: FORMAT,
            source: "testbed",
            regions: vec!["none".to_string()],
            peers: vec![0; tb.nodes as usize],
            scenario: serde_json::json!({
                "source": tb.source,
                "nodes": tb.nodes,
                "relay": tb.relay,
                "blocks": tb.blocks.len(),
            }),
            summary: serde_json::json!({ "stale": tb.stale }),
            blocks,
        })
    }

    /// The self-contained page with this data embedded.
    pub fn html(&self) -> String {
        // Text from outside (a links file's path, a testbed report's fields) must not end the
        // script element (`</script`) or open an HTML comment in it (`<!--<script`): every
        // `<`, `>` and `&` is written as a JSON escape, which parses to the same string. They
        // only ever occur inside strings, so the JSON is unchanged otherwise.
        let json = serde_json::to_string(self)
            .unwrap_or_else(|_| "null".to_string())
            .replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026");
        PAGE.replacen(DATA_MARK, &json, 1)
    }
}

/// Indexes of the blocks that carry arrivals, ascending.
fn chosen(blocks: &[ViewBlock], peers: usize, choice: &ViewBlocks) -> Vec<usize> {
    let cap = match choice {
        ViewBlocks::All => return (0..blocks.len()).collect(),
        ViewBlocks::Heights(hs) => {
            return (0..blocks.len())
                .filter(|&i| hs.contains(&blocks[i].height))
                .collect()
        }
        ViewBlocks::Count(n) => *n,
        ViewBlocks::Auto => (AUTO_PAIRS / peers.max(1)).max(1),
    };
    let raced: BTreeSet<u64> = blocks
        .iter()
        .filter(|b| b.stale)
        .map(|b| b.height)
        .collect();
    let mut pick: BTreeSet<usize> = (0..blocks.len())
        .filter(|&i| raced.contains(&blocks[i].height))
        .take(cap)
        .collect();
    let rest: Vec<usize> = (0..blocks.len()).filter(|i| !pick.contains(i)).collect();
    let want = cap.saturating_sub(pick.len()).min(rest.len());
    // Evenly spaced over the others, the first and (for two or more) the last included.
    for k in 0..want {
        let at = if want == 1 {
            0
        } else {
            k * (rest.len() - 1) / (want - 1)
        };
        pick.insert(rest[at]);
    }
    pick.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(height: u64, stale: bool) -> ViewBlock {
        ViewBlock {
            height,
            hash: String::new(),
            miner: 0,
            mined_at_ms: 0,
            stale,
            t50_ms: None,
            t90_ms: None,
            t100_ms: None,
            reached: 0,
            ms: None,
            via: None,
        }
    }

    #[test]
    fn view_blocks_parse() {
        assert_eq!("auto".parse(), Ok(ViewBlocks::Auto));
        assert_eq!("all".parse(), Ok(ViewBlocks::All));
        assert_eq!("12".parse(), Ok(ViewBlocks::Count(12)));
        assert_eq!(
            "heights=3, 5".parse(),
            Ok(ViewBlocks::Heights([3, 5].into()))
        );
        assert!("heights=x".parse::<ViewBlocks>().is_err());
        assert!("some".parse::<ViewBlocks>().is_err());
    }

    #[test]
    fn races_first_then_an_even_sample() {
        // Heights 1..=10, with a race at height 4 (blocks 3 and 4 of the list).
        let mut bs: Vec<ViewBlock> = (1..=10).map(|h| block(h, false)).collect();
        bs.insert(4, block(4, true));
        assert_eq!(chosen(&bs, 10, &ViewBlocks::Count(2)), vec![3, 4]);
        assert_eq!(chosen(&bs, 10, &ViewBlocks::Count(4)), vec![0, 3, 4, 10]);
        assert_eq!(chosen(&bs, 10, &ViewBlocks::All).len(), 11);
        assert_eq!(
            chosen(&bs, 10, &ViewBlocks::Heights([4, 9].into())),
            vec![3, 4, 9]
        );
        // Auto: the pair budget over 10 peers covers every block.
        assert_eq!(chosen(&bs, 10, &ViewBlocks::Auto).len(), 11);
        assert_eq!(chosen(&bs, AUTO_PAIRS, &ViewBlocks::Auto), vec![3]);
    }

    #[test]
    fn a_testbed_report_fits_the_same_format() {
        let tb = CalibReport {
            source: "testbed".into(),
            nodes: 3,
            relay: "compact".into(),
            blocks: vec![rantai_core::calib::CalibBlock {
                miner: 1,
                bytes: 100,
                hash: "ab".repeat(32),
                arrival_ms: vec![Some(40), Some(0), None],
                ..Default::default()
            }
            .with_marks()],
            ..Default::default()
        };
        let v = ViewData::from_calib(&tb).unwrap();
        assert_eq!(v.peers.len(), 3);
        assert_eq!(v.blocks[0].ms, Some(vec![40, 0, -1]));
        assert_eq!(v.blocks[0].reached, 2);
        let page = v.html();
        assert!(page.contains("\"source\":\"testbed\""));
        assert!(!page.contains(DATA_MARK));

        // Outside text cannot close or comment out the data element.
        let mut hostile = tb.clone();
        hostile.source = "x</script><!--<script>&".into();
        let page = ViewData::from_calib(&hostile).unwrap().html();
        assert!(!page.contains("x</script>") && !page.contains("<!--<script>&"));
        assert!(page.contains("x\\u003c/script\\u003e\\u003c!--\\u003cscript\\u003e\\u0026"));
        // A node count the arrays do not bear out is refused, not allocated.
        let mut huge = tb.clone();
        huge.nodes = u32::MAX;
        assert!(matches!(
            ViewData::from_calib(&huge),
            Err(ViewError::TooManyNodes(_))
        ));
        let mut short = tb.clone();
        short.nodes = 4;
        assert!(matches!(
            ViewData::from_calib(&short),
            Err(ViewError::Arrivals { .. })
        ));
        let mut miner = tb;
        miner.blocks[0].miner = 3;
        assert!(matches!(
            ViewData::from_calib(&miner),
            Err(ViewError::Miner { .. })
        ));
    }
}
