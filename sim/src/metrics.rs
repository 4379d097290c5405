//! Counters and per-block propagation records collected while the simulation runs.

use crate::charts::record::ChartRecord;
use crate::net::KIND_NAMES;
use rantai_core::{BlockError, BlockHash, DisconnectReason, ItemId, Message, Millis};
use std::collections::{BTreeMap, HashMap};

/// Most invariant violations kept verbatim (all are counted).
pub const MAX_VIOLATIONS_KEPT: usize = 100;

/// What happened to one mined block.
#[derive(Debug, Clone)]
pub struct BlockRec {
    pub hash: BlockHash,
    pub miner: u32,
    pub height: u64,
    pub mined_at: Millis,
    /// Bytes of the whole block as relayed: its encoding plus the simulated payload.
    pub size: u64,
    /// Online peers when it was mined: the 100% mark.
    pub online_at_mine: u32,
    /// Distinct peers that accepted it so far (the miner included).
    pub reached: u32,
    /// Delay until 50%, 90% and 100% of `online_at_mine` peers had it.
    pub t50: Option<u64>,
    pub t90: Option<u64>,
    pub t100: Option<u64>,
    /// Which peers have accepted it (freed once every peer has).
    seen: Vec<u64>,
    /// Per peer, the delay until it accepted the block (only with
    /// [`Metrics::record_arrivals`]; empty otherwise).
    pub arrivals: Vec<Option<u64>>,
    /// Per peer, milliseconds from mining to its acceptance ([`NEVER`]: not accepted). Only
    /// with [`Metrics::record_peer_delays`] (empty otherwise): the web view's and `peers.csv`'s
    /// source, 4 bytes per (block, peer).
    pub arrival_ms: Vec<u32>,
    /// Per peer, the neighbour whose message made it accept the block ([`NO_PEER`]: its miner,
    /// or an acceptance no delivery caused). Recorded with `arrival_ms`.
    pub via: Vec<u32>,
}

/// [`BlockRec::arrival_ms`] of a peer that never accepted the block.
pub const NEVER: u32 = u32::MAX;
/// [`BlockRec::via`] of a peer that accepted the block from no neighbour (its miner).
pub const NO_PEER: u32 = u32::MAX;

/// Injected faults and connection churn, all counted so a fault that silently does nothing shows.
/// Serialized as the report's `faults.*` keys.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct FaultCounts {
    pub lost: u64,
    pub duplicated: u64,
    pub delayed: u64,
    pub partition_drops: u64,
    /// Messages that arrived after their connection had closed.
    pub closed_drops: u64,
    pub partitions: u64,
    pub heals: u64,
    pub crashes: u64,
    pub restarts: u64,
    pub dials_ok: u64,
    pub dials_failed: u64,
    pub disconnects: BTreeMap<String, u64>,
}

/// All run-time measurements of a simulation.
#[derive(Debug, Default)]
pub struct Metrics {
    pub blocks: Vec<BlockRec>,
    /// Mined blocks by [`block_key`], pointing into `blocks`.
    pub index: HashMap<u64, u32, BuildKeyHasher>,
    pub msgs: [u64; KIND_NAMES.len()],
    pub bytes: [u64; KIND_NAMES.len()],
    /// Full blocks delivered to a peer that had already accepted them.
    pub dup_block_deliveries: u64,
    /// Compact blocks by outcome, and payload gaps drawn.
    pub compact: CompactCounts,
    /// Announced hashes of blocks the receiving peer had already accepted.
    pub redundant_inv_hashes: u64,
    pub reorgs: u64,
    pub deepest_reorg: u64,
    pub tip_changes: u64,
    pub last_tip_change: Millis,
    pub faults: FaultCounts,
    pub rejected_blocks: BTreeMap<String, u64>,
    pub items_submitted: Vec<ItemId>,
    pub items_refused: u64,
    pub violations: Vec<String>,
    pub violation_count: u64,
    pub events: u64,
    /// Delay from mining to acceptance for every (block, peer other than its miner) pair.
    pub delays: DelayHistogram,
    /// Popped events that a newer generation had cancelled (lazy timer cancellation).
    pub cancelled_events: u64,
    /// Rounds of `lookahead` the events fell into (see [`crate::report::EngineReport`]).
    pub rounds: u64,
    /// Keep every (block, peer) delay in [`BlockRec::arrivals`] (calibration runs, which are
    /// small), not only the histogram.
    pub record_arrivals: bool,
    /// Per line of a calibration schedule so far, the block it mined (`None`: its peer was
    /// down).
    pub scheduled: Vec<Option<BlockHash>>,
    /// Keep every block's per-peer arrival times and senders ([`BlockRec::arrival_ms`],
    /// [`BlockRec::via`]): 8 bytes per (block, peer) pair, for `peers.csv` and the web view.
    pub record_peer_delays: bool,
    /// What only the charts need (delays by region, tips over time, fault times).
    pub charts: ChartRecord,
}

impl Metrics {
    /// Records a violated invariant (kept verbatim up to [`MAX_VIOLATIONS_KEPT`]).
    pub fn violation(&mut self, now: Millis, what: String) {
        self.violation_count += 1;
        if self.violations.len() < MAX_VIOLATIONS_KEPT {
            self.violations.push(format!("at {}ms: {what}", now.0));
        }
    }

    /// Registers a freshly mined block of `size` bytes.
    #[allow(clippy::too_many_arguments)]
    pub fn on_mined(
        &mut self,
        hash: BlockHash,
        miner: u32,
        height: u64,
        size: u64,
        now: Millis,
        online: u32,
        peers: u32,
    ) {
        let idx = self.blocks.len() as u32;
        self.index.insert(block_key(&hash), idx);
        self.blocks.push(BlockRec {
            hash,
            miner,
            height,
            mined_at: now,
            size,
            online_at_mine: online.max(1),
            reached: 0,
            t50: None,
            t90: None,
            t100: None,
            seen: vec![0; (peers as usize).div_ceil(64)],
            arrivals: if self.record_arrivals {
                vec![None; peers as usize]
            } else {
                Vec::new()
            },
            arrival_ms: if self.record_peer_delays {
                vec![NEVER; peers as usize]
            } else {
                Vec::new()
            },
            via: if self.record_peer_delays {
                vec![NO_PEER; peers as usize]
            } else {
                Vec::new()
            },
        });
    }

    /// A peer accepted a block, on a message from `via` (`None`: no delivery caused it);
    /// returns false if the block was never mined here (invalid).
    pub fn on_accepted(
        &mut self,
        hash: &BlockHash,
        node: u32,
        via: Option<u32>,
        now: Millis,
        peers: u32,
    ) -> bool {
        let Some(idx) = self.lookup(hash) else {
            return false;
        };
        let r = &mut self.blocks[idx as usize];
        let (w, bit) = (node as usize / 64, 1u64 << (node % 64));
        if r.seen.is_empty() || r.seen[w] & bit != 0 {
            return true;
        }
        r.seen[w] |= bit;
        r.reached += 1;
        let d = now.since(r.mined_at).0;
        if let Some(a) = r.arrivals.get_mut(node as usize) {
            *a = Some(d);
        }
        if let Some(a) = r.arrival_ms.get_mut(node as usize) {
            // NEVER stays free to mean "not accepted" (49 days of simulated delay).
            *a = u32::try_from(d).unwrap_or(NEVER - 1).min(NEVER - 1);
        }
        if let Some(v) = r.via.get_mut(node as usize) {
            *v = via.unwrap_or(NO_PEER);
        }
        if r.miner != node {
            self.delays.record(d);
            self.charts.delay(node, d);
        }
        let n = u64::from(r.online_at_mine);
        let got = u64::from(r.reached);
        if r.t50.is_none() && got * 2 >= n {
            r.t50 = Some(d);
        }
        if r.t90.is_none() && got * 10 >= n * 9 {
            r.t90 = Some(d);
        }
        if r.t100.is_none() && got >= n {
            r.t100 = Some(d);
        }
        if r.reached >= peers {
            r.seen = Vec::new();
        }
        true
    }

    /// Per peer, the delays (ms) of the blocks it accepted that others mined, in mining order
    /// (empty without [`Metrics::record_peer_delays`]): `peers.csv`'s median and p90.
    pub fn peer_delays(&self, peers: usize) -> Vec<Vec<u32>> {
        let mut out = vec![Vec::new(); peers];
        for b in &self.blocks {
            for (node, &ms) in b.arrival_ms.iter().enumerate().take(peers) {
                if ms != NEVER && node != b.miner as usize {
                    out[node].push(ms);
                }
            }
        }
        out
    }

    fn lookup(&self, hash: &BlockHash) -> Option<u32> {
        let &idx = self.index.get(&block_key(hash))?;
        (self.blocks[idx as usize].hash == *hash).then_some(idx)
    }

    /// Whether `node` has already accepted the mined block `hash` (`None`: never mined here).
    /// Reads our own bitset, not the peer's chain, so measuring costs no peer-side lookup.
    pub fn has_accepted(&self, hash: &BlockHash, node: u32) -> Option<bool> {
        let r = &self.blocks[self.lookup(hash)? as usize];
        if r.seen.is_empty() {
            // Freed once every peer had it.
            return Some(true);
        }
        Some(r.seen[node as usize / 64] & (1u64 << (node % 64)) != 0)
    }

    /// Counts what a message delivered to `node` brings that `node` already has: a full block
    /// it accepted, or announced hashes of blocks it accepted. Judged from our own acceptance
    /// bitsets, independent of how the peer indexes its chain.
    #[inline]
    pub fn count_redundant(&mut self, msg: &Message, node: u32) {
        match msg {
            Message::Block { block } if self.has_accepted(&block.hash(), node) == Some(true) => {
                self.dup_block_deliveries += 1;
            }
            Message::Inv { hashes } => {
                let known = hashes
                    .iter()
                    .filter(|h| self.has_accepted(h, node) == Some(true))
                    .count();
                self.redundant_inv_hashes += known as u64;
            }
            _ => {}
        }
    }

    /// Counts one disconnect by a short reason label.
    pub fn on_disconnect(&mut self, reason: &DisconnectReason) {
        *self
            .faults
            .disconnects
            .entry(reason_label(reason).to_string())
            .or_default() += 1;
    }

    /// Counts one block rejection by error kind.
    pub fn on_rejected(&mut self, err: &BlockError) {
        *self.rejected_blocks.entry(err.kind()).or_default() += 1;
    }
}

/// Every (block, peer) delay, exactly: a count per millisecond (delays are whole
/// milliseconds), grown as larger delays come, up to [`DENSE_MAX_MS`]; the rare delays past
/// that are kept one by one. Quantiles are exact order statistics (nearest rank), at any
/// scale, in memory bounded by the largest delay rather than the number of samples.
#[derive(Debug, Clone, Default)]
pub struct DelayHistogram {
    /// `counts[ms]`: delays of exactly `ms` milliseconds.
    counts: Vec<u64>,
    /// Delays of [`DENSE_MAX_MS`] or more, unsorted.
    beyond: Vec<u64>,
    count: u64,
    sum_ms: u128,
    max_ms: u64,
}

/// Width of the steps of [`DelayHistogram::cdf`], the charts' resolution, in milliseconds.
pub const BUCKET_MS: u64 = 10;
/// Delays below this many milliseconds (about 70 minutes) are counted per millisecond (at
/// most 32 MiB); longer ones are kept one by one.
pub const DENSE_MAX_MS: u64 = 1 << 22;

impl DelayHistogram {
    /// Records one delay.
    pub fn record(&mut self, ms: u64) {
        if ms < DENSE_MAX_MS {
            let i = ms as usize;
            if i >= self.counts.len() {
                // Doubling keeps regrowth rare; the cap bounds it.
                let len = (i + 1)
                    .next_power_of_two()
                    .max(1024)
                    .min(DENSE_MAX_MS as usize);
                self.counts.resize(len, 0);
            }
            self.counts[i] += 1;
        } else {
            self.beyond.push(ms);
        }
        self.count += 1;
        self.sum_ms += u128::from(ms);
        self.max_ms = self.max_ms.max(ms);
    }

    /// Number of recorded delays.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Mean delay in ms.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum_ms as f64 / self.count as f64)
    }

    /// Largest delay in ms.
    pub fn max(&self) -> Option<u64> {
        (self.count > 0).then_some(self.max_ms)
    }

    /// The exact `q`-quantile (nearest rank: the smallest delay with at least `q` of the
    /// delays at or below it).
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut acc = 0;
        for (ms, &c) in self.counts.iter().enumerate() {
            acc += c;
            if acc >= rank {
                return Some(ms as u64);
            }
        }
        let mut beyond = self.beyond.clone();
        beyond.sort_unstable();
        let i = (rank - acc - 1) as usize;
        beyond.get(i).copied().or(Some(self.max_ms))
    }

    /// Cumulative fractions for charts, in [`BUCKET_MS`] steps: `(delay_ms, fraction of
    /// delays <= delay_ms)` at the end of every step holding a delay (the last at the largest
    /// delay).
    pub fn cdf(&self) -> Vec<(u64, f64)> {
        let mut steps: std::collections::BTreeMap<u64, u64> = std::collections::BTreeMap::new();
        for (ms, &c) in self.counts.iter().enumerate() {
            if c > 0 {
                *steps.entry(ms as u64 / BUCKET_MS).or_default() += c;
            }
        }
        for &ms in &self.beyond {
            *steps.entry(ms / BUCKET_MS).or_default() += 1;
        }
        let mut acc = 0;
        steps
            .into_iter()
            .map(|(step, c)| {
                acc += c;
                (
                    ((step + 1) * BUCKET_MS).min(self.max_ms),
                    acc as f64 / self.count as f64,
                )
            })
            .collect()
    }
}

/// A 64-bit key of a block hash: its four words folded (every byte counts, so neither
/// proof-of-work zeros nor any one region of the hash dominates).
pub fn block_key(h: &BlockHash) -> u64 {
    let w = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&h.0[i * 8..i * 8 + 8]);
        u64::from_le_bytes(b)
    };
    w(0) ^ w(1).rotate_left(16) ^ w(2).rotate_left(32) ^ w(3).rotate_left(48)
}

/// Hasher for maps keyed by [`block_key`]: one multiply, since the key is already uniform.
#[derive(Default, Clone, Copy)]
pub struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0 ^ v).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// Build-hasher for [`KeyHasher`].
pub type BuildKeyHasher = std::hash::BuildHasherDefault<KeyHasher>;

/// Stable short label of a disconnect reason (no numbers or hashes).
pub fn reason_label(r: &DisconnectReason) -> &'static str {
    r.label()
}

/// The `q`-quantile (0..=1) of sorted values, nearest-rank.
pub fn quantile(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles() {
        let v = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        assert_eq!(quantile(&v, 0.5), Some(5));
        assert_eq!(quantile(&v, 0.9), Some(9));
        assert_eq!(quantile(&v, 1.0), Some(10));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn propagation_marks() {
        let mut m = Metrics::default();
        let h = BlockHash::ZERO;
        m.on_mined(h, 0, 1, 0, Millis(100), 10, 10);
        for i in 0..10 {
            assert!(m.on_accepted(&h, i, None, Millis(100 + 10 * u64::from(i)), 10));
            assert!(m.on_accepted(&h, i, None, Millis(1000), 10) || i == 9);
        }
        let r = &m.blocks[0];
        assert_eq!((r.t50, r.t90, r.t100), (Some(40), Some(80), Some(90)));
        // The miner's own acceptance (delay 0) is not a propagation delay.
        assert_eq!(m.delays.count(), 9);
        assert_eq!(m.delays.quantile(0.5), Some(50));
        assert_eq!(m.delays.max(), Some(90));
        assert_eq!(m.delays.mean(), Some(50.0));
        assert!(!m.on_accepted(&rantai_core::types::sha256(b"x"), 0, None, Millis(0), 10));
    }

    #[test]
    fn delay_quantiles_are_exact_at_any_scale() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let mut h = DelayHistogram::default();
        // Small delays (2 ms links), ordinary ones, and a few past the dense range.
        let mut all: Vec<u64> = (0..20_000)
            .map(|i| match i % 100 {
                0 => DENSE_MAX_MS + rng.gen_range(0..10_000_000),
                1..=49 => rng.gen_range(0..20),
                _ => rng.gen_range(0..5_000),
            })
            .collect();
        for &d in &all {
            h.record(d);
        }
        all.sort_unstable();
        for q in [0.0, 0.001, 0.25, 0.5, 0.9, 0.99, 0.995, 0.999, 1.0] {
            assert_eq!(h.quantile(q), quantile(&all, q), "q {q}");
        }
        assert_eq!(h.max(), all.last().copied());
        assert_eq!(h.count(), all.len() as u64);
        let cdf = h.cdf();
        assert_eq!(cdf.last().map(|c| c.1), Some(1.0));
        assert!(cdf.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1));
        // The old 10 ms buckets said 10 for 2..=12 ms delays whose median is 7.
        let mut small = DelayHistogram::default();
        for d in 2..=12 {
            small.record(d);
        }
        assert_eq!(small.quantile(0.5), Some(7));
    }
}

/// Compact blocks received, by how they ended, and the payload gaps the model drew
/// (`compact.*` in the report; absent when no compact block was sent).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CompactCounts {
    /// Rebuilt from the pending pool at once.
    pub rebuilt: u64,
    /// Rebuilt after one `get_block_items` round trip.
    pub round_trip: u64,
    /// Replaced by the whole block.
    pub whole_block: u64,
    /// Deliveries at which the payload model said the receiver's mempool lacked part of the
    /// block (each forces a round trip).
    pub payload_gaps: u64,
}

impl CompactCounts {
    /// Counts one finished compact block.
    pub fn count(&mut self, outcome: rantai_core::CompactOutcome) {
        use rantai_core::CompactOutcome as O;
        match outcome {
            O::Rebuilt => self.rebuilt += 1,
            O::RoundTrip => self.round_trip += 1,
            O::WholeBlock => self.whole_block += 1,
        }
    }

    /// No compact block in the run.
    pub fn is_empty(&self) -> bool {
        *self == CompactCounts::default()
    }
}
