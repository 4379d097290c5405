//! Per-block, per-peer and per-miner tables of a run (`blocks.csv`, `peers.csv`,
//! `miners.csv` under `--out`), the rows a study loads into a data frame instead of parsing a
//! trace. Columns are documented in sim/README.md ("Tables").
//!
//! Contract: like the report, a table is a pure read of a finished (or stopped) run; rows are
//! in a fixed order (blocks as mined, peers and miners by index), so the files are the same
//! bytes for the same seed.

use crate::metrics::{quantile, Metrics};
use crate::presets::REGIONS;
use rantai_core::Chain;
use serde::Serialize;

/// One mined block (`blocks.csv`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BlockRow {
    pub height: u64,
    pub hash: String,
    pub miner: u32,
    pub miner_region: String,
    pub mined_at_ms: u64,
    /// `best` (in the final best chain of the majority of online peers) or `stale`.
    pub status: &'static str,
    /// Bytes of the whole block as relayed (encoding plus simulated payload).
    pub size_bytes: u64,
    /// Delay until 50%, 90% and 100% of the peers online at mining time had it (empty: never).
    pub t50_ms: Option<u64>,
    pub t90_ms: Option<u64>,
    pub t100_ms: Option<u64>,
    /// Distinct peers that accepted it, its miner included.
    pub peers_reached: u32,
}

/// One peer (`peers.csv`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeerRow {
    pub node: u32,
    pub region: String,
    /// Links it dialled and links it accepted (the topology's, plus learned ones).
    pub out_degree: u32,
    pub in_degree: u32,
    /// Access rates in bits per second (empty: unlimited).
    pub up_bps: Option<u64>,
    pub down_bps: Option<u64>,
    /// Blocks mined by others that it accepted, and the median and p90 of their delays
    /// (all three empty unless per-peer delays were recorded).
    pub blocks_received: Option<u64>,
    pub median_delay_ms: Option<u64>,
    pub p90_delay_ms: Option<u64>,
    pub blocks_mined: u64,
    pub stale_mined: u64,
}

/// One miner: a peer with hash power, or one that mined a block (`miners.csv`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MinerRow {
    pub node: u32,
    pub region: String,
    /// Share of the network's hash power (0 to 1).
    pub hash_share: f64,
    pub blocks_mined: u64,
    pub in_best_chain: u64,
    pub stale: u64,
    /// Its blocks' share of the mined blocks in the best chain: the revenue share a mining
    /// study compares with `hash_share`.
    pub best_chain_share: f64,
}

/// The three tables of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Tables {
    pub blocks: Vec<BlockRow>,
    pub peers: Vec<PeerRow>,
    pub miners: Vec<MinerRow>,
}

/// What the tables read of a run: [`crate::Sim::tables`] fills it in.
pub struct TablesView<'a> {
    pub metrics: &'a Metrics,
    /// The final best chain of the majority tip's holder, if any peer is online.
    pub best_chain: Option<&'a Chain>,
    /// Region index per peer (all 0 without a preset).
    pub regions: &'a [u8],
    /// Whether regions are a preset's (else they are all `none`).
    pub has_regions: bool,
    /// Links as `(dialer, acceptor)`.
    pub edges: &'a [(u32, u32)],
    /// Per peer, `(up, down)` rates in bits per second.
    pub rates: Vec<(Option<u64>, Option<u64>)>,
    /// Per peer, its share of the hash power.
    pub hash_shares: Vec<f64>,
}

impl Tables {
    /// Reads the tables off a run.
    pub fn build(v: &TablesView<'_>) -> Tables {
        let n = v.regions.len();
        let region = |i: u32| -> String {
            if v.has_regions {
                let r = v.regions.get(i as usize).copied().unwrap_or(0) as usize;
                REGIONS.get(r).copied().unwrap_or("unknown").to_string()
            } else {
                "none".to_string()
            }
        };
        let in_best = |h| v.best_chain.is_some_and(|c| c.in_best_chain(h));
        let m = v.metrics;
        let blocks: Vec<BlockRow> = m
            .blocks
            .iter()
            .map(|b| BlockRow {
                height: b.height,
                hash: b.hash.to_string(),
                miner: b.miner,
                miner_region: region(b.miner),
                mined_at_ms: b.mined_at.0,
                status: if in_best(&b.hash) { "best" } else { "stale" },
                size_bytes: b.size,
                t50_ms: b.t50,
                t90_ms: b.t90,
                t100_ms: b.t100,
                peers_reached: b.reached,
            })
            .collect();

        let mut mined = vec![0u64; n];
        let mut stale = vec![0u64; n];
        for b in &blocks {
            if let Some(c) = mined.get_mut(b.miner as usize) {
                *c += 1;
            }
            if b.status == "stale" {
                if let Some(c) = stale.get_mut(b.miner as usize) {
                    *c += 1;
                }
            }
        }
        let mut degree = vec![(0u32, 0u32); n];
        for &(a, b) in v.edges {
            if let Some(d) = degree.get_mut(a as usize) {
                d.0 += 1;
            }
            if let Some(d) = degree.get_mut(b as usize) {
                d.1 += 1;
            }
        }
        let peer_delays = m.peer_delays(n);
        let peers = (0..n as u32)
            .map(|i| {
                let mut delays: Vec<u64> = peer_delays[i as usize]
                    .iter()
                    .map(|&x| u64::from(x))
                    .collect();
                delays.sort_unstable();
                let (up, down) = v.rates.get(i as usize).copied().unwrap_or((None, None));
                PeerRow {
                    node: i,
                    region: region(i),
                    out_degree: degree[i as usize].0,
                    in_degree: degree[i as usize].1,
                    up_bps: up,
                    down_bps: down,
                    blocks_received: m.record_peer_delays.then_some(delays.len() as u64),
                    median_delay_ms: quantile(&delays, 0.5),
                    p90_delay_ms: quantile(&delays, 0.9),
                    blocks_mined: mined[i as usize],
                    stale_mined: stale[i as usize],
                }
            })
            .collect();

        let best_total: u64 = (0..n).map(|i| mined[i] - stale[i]).sum();
        let miners = (0..n)
            .filter(|&i| v.hash_shares.get(i).is_some_and(|&s| s > 0.0) || mined[i] > 0)
            .map(|i| {
                let best = mined[i] - stale[i];
                MinerRow {
                    node: i as u32,
                    region: region(i as u32),
                    hash_share: v.hash_shares.get(i).copied().unwrap_or(0.0),
                    blocks_mined: mined[i],
                    in_best_chain: best,
                    stale: stale[i],
                    best_chain_share: if best_total > 0 {
                        best as f64 / best_total as f64
                    } else {
                        0.0
                    },
                }
            })
            .collect();
        Tables {
            blocks,
            peers,
            miners,
        }
    }

    /// The three files: `(name, CSV text)`, header line first.
    pub fn csv_files(&self) -> Result<Vec<(&'static str, String)>, csv::Error> {
        Ok(vec![
            ("blocks.csv", to_csv(BLOCK_COLUMNS, &self.blocks)?),
            ("peers.csv", to_csv(PEER_COLUMNS, &self.peers)?),
            ("miners.csv", to_csv(MINER_COLUMNS, &self.miners)?),
        ])
    }
}

/// Columns of `blocks.csv`, as [`BlockRow`]'s fields.
pub const BLOCK_COLUMNS: &[&str] = &[
    "height",
    "hash",
    "miner",
    "miner_region",
    "mined_at_ms",
    "status",
    "size_bytes",
    "t50_ms",
    "t90_ms",
    "t100_ms",
    "peers_reached",
];
/// Columns of `peers.csv`, as [`PeerRow`]'s fields.
pub const PEER_COLUMNS: &[&str] = &[
    "node",
    "region",
    "out_degree",
    "in_degree",
    "up_bps",
    "down_bps",
    "blocks_received",
    "median_delay_ms",
    "p90_delay_ms",
    "blocks_mined",
    "stale_mined",
];
/// Columns of `miners.csv`, as [`MinerRow`]'s fields.
pub const MINER_COLUMNS: &[&str] = &[
    "node",
    "region",
    "hash_share",
    "blocks_mined",
    "in_best_chain",
    "stale",
    "best_chain_share",
];

/// Rows as CSV under a header line (written even without rows: a table of no miners is
/// still a table).
fn to_csv<T: Serialize>(columns: &[&str], rows: &[T]) -> Result<String, csv::Error> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    w.write_record(columns)?;
    for r in rows {
        w.serialize(r)?;
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_fields_for_missing_marks_and_unlimited_rates() {
        let rows = [PeerRow {
            node: 3,
            region: "europe".into(),
            out_degree: 2,
            in_degree: 1,
            up_bps: None,
            down_bps: Some(1_000_000),
            blocks_received: Some(0),
            median_delay_ms: None,
            p90_delay_ms: None,
            blocks_mined: 0,
            stale_mined: 0,
        }];
        let text = to_csv(PEER_COLUMNS, &rows).unwrap();
        assert_eq!(
            text,
            "node,region,out_degree,in_degree,up_bps,down_bps,blocks_received,median_delay_ms,\
             p90_delay_ms,blocks_mined,stale_mined\n3,europe,2,1,,1000000,0,,,0,0\n"
        );
        assert_eq!(
            to_csv(MINER_COLUMNS, &[] as &[MinerRow])
                .unwrap()
                .lines()
                .count(),
            1
        );
    }

    /// The header constants name the rows' fields in order (serde's own header says so).
    #[test]
    fn headers_match_the_rows() {
        fn header<T: Serialize>(row: &T) -> String {
            let mut w = csv::Writer::from_writer(Vec::new());
            w.serialize(row).unwrap();
            let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
            text.lines().next().unwrap().to_string()
        }
        let b = BlockRow {
            height: 1,
            hash: String::new(),
            miner: 0,
            miner_region: String::new(),
            mined_at_ms: 0,
            status: "best",
            size_bytes: 0,
            t50_ms: None,
            t90_ms: None,
            t100_ms: None,
            peers_reached: 0,
        };
        assert_eq!(header(&b), BLOCK_COLUMNS.join(","));
        let p = PeerRow {
            node: 0,
            region: String::new(),
            out_degree: 0,
            in_degree: 0,
            up_bps: None,
            down_bps: None,
            blocks_received: None,
            median_delay_ms: None,
            p90_delay_ms: None,
            blocks_mined: 0,
            stale_mined: 0,
        };
        assert_eq!(header(&p), PEER_COLUMNS.join(","));
        let m = MinerRow {
            node: 0,
            region: String::new(),
            hash_share: 0.5,
            blocks_mined: 0,
            in_best_chain: 0,
            stale: 0,
            best_chain_share: 0.0,
        };
        assert_eq!(header(&m), MINER_COLUMNS.join(","));
    }
}
