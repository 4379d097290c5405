//! What the charts need that the report's keys do not hold, recorded while a run goes: the
//! (block, peer) delays per receiving peer's region, the number of distinct tips over time, and
//! when partitions, heals, crashes and restarts took effect.
//!
//! Contract: recording only reads the run (it draws no random number, schedules nothing and
//! writes no trace line), so it cannot change the event order, the trace hash or any report
//! key. Memory is bounded whatever the run's length: delays go into log-spaced buckets, and the
//! tips series is coalesced into at most [`MAX_TIP_BUCKETS`] time buckets, widening them as
//! the run grows.

/// Most time buckets kept of the distinct-tips series; past it the bucket width doubles.
pub const MAX_TIP_BUCKETS: usize = 2048;
/// The tips series' first bucket width, in milliseconds.
const FIRST_TIP_BUCKET_MS: u64 = 10;

/// Delays in log-spaced buckets: exact below 32 ms, then 16 buckets per doubling (each at
/// most about 6% wide), which is finer than a chart's pixel on a log or a linear axis.
#[derive(Debug, Clone, Default)]
pub struct LogHistogram {
    counts: Vec<u64>,
    count: u64,
    max_ms: u64,
}

/// Sub-buckets per doubling above the exact range.
const SUB_BITS: u32 = 4;
const EXACT: u64 = 32;

fn bucket_of(ms: u64) -> usize {
    if ms < EXACT {
        return ms as usize;
    }
    let e = 63 - ms.leading_zeros(); // >= 5
    let sub = (ms >> (e - SUB_BITS)) & ((1 << SUB_BITS) - 1);
    (EXACT + u64::from(e - 5) * (1 << SUB_BITS) + sub) as usize
}

/// The largest delay that falls in bucket `b`.
fn bucket_top(b: usize) -> u64 {
    let b = b as u64;
    if b < EXACT {
        return b;
    }
    let e = (b - EXACT) / (1 << SUB_BITS) + 5;
    let sub = (b - EXACT) % (1 << SUB_BITS);
    let base = (1u64 << e) + (sub << (e - u64::from(SUB_BITS)));
    base + (1 << (e - u64::from(SUB_BITS))) - 1
}

impl LogHistogram {
    /// Records one delay.
    pub fn record(&mut self, ms: u64) {
        let b = bucket_of(ms);
        if b >= self.counts.len() {
            self.counts.resize(b + 1, 0);
        }
        self.counts[b] += 1;
        self.count += 1;
        self.max_ms = self.max_ms.max(ms);
    }

    /// Number of recorded delays.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// `(delay_ms, fraction of delays <= delay_ms)` at the top of every non-empty bucket (the
    /// last at the largest delay).
    pub fn cdf(&self) -> Vec<(u64, f64)> {
        let mut acc = 0;
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(b, &c)| {
                acc += c;
                (
                    bucket_top(b).min(self.max_ms),
                    acc as f64 / self.count as f64,
                )
            })
            .collect()
    }
}

/// One time bucket of the distinct-tips series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TipBucket {
    /// The bucket's start, in ms.
    pub at_ms: u64,
    /// Most distinct tips at any moment in the bucket.
    pub max: u32,
    /// Distinct tips at the bucket's end (until the next bucket).
    pub last: u32,
}

/// Distinct tips of the online peers over time, coalesced per time bucket.
#[derive(Debug, Clone)]
pub struct TipSeries {
    /// Width of every bucket, in ms.
    pub bucket_ms: u64,
    /// Buckets in which the count changed, in time order.
    pub buckets: Vec<TipBucket>,
    /// The count before the first bucket (all peers start on genesis).
    pub first: u32,
}

impl Default for TipSeries {
    fn default() -> Self {
        TipSeries {
            bucket_ms: FIRST_TIP_BUCKET_MS,
            buckets: Vec::new(),
            first: 1,
        }
    }
}

impl TipSeries {
    /// The count became `tips` at `now_ms` (times never go back).
    pub fn set(&mut self, now_ms: u64, tips: u32) {
        let at = now_ms / self.bucket_ms * self.bucket_ms;
        let before = self.buckets.last().map_or(self.first, |b| b.last);
        match self.buckets.last_mut() {
            Some(b) if b.at_ms == at => {
                b.max = b.max.max(tips);
                b.last = tips;
            }
            // Peers moved between tips but the count stayed: nothing to draw.
            _ if tips == before => {}
            _ => {
                self.buckets.push(TipBucket {
                    at_ms: at,
                    max: before.max(tips),
                    last: tips,
                });
                if self.buckets.len() > MAX_TIP_BUCKETS {
                    self.widen();
                }
            }
        }
    }

    /// Doubles the bucket width, merging the buckets that now share one.
    fn widen(&mut self) {
        self.bucket_ms *= 2;
        let w = self.bucket_ms;
        let mut out: Vec<TipBucket> = Vec::with_capacity(self.buckets.len() / 2 + 1);
        for b in self.buckets.drain(..) {
            let at = b.at_ms / w * w;
            match out.last_mut() {
                Some(o) if o.at_ms == at => {
                    o.max = o.max.max(b.max);
                    o.last = b.last;
                }
                _ => out.push(TipBucket { at_ms: at, ..b }),
            }
        }
        self.buckets = out;
    }
}

/// A change to the network that the tips chart marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// Partition `id` took effect.
    Partition(u32),
    /// Partition `id` was lifted.
    Heal(u32),
    /// Peer crashed.
    Crash(u32),
    /// Peer restarted.
    Restart(u32),
}

/// Everything recorded for the charts during a run (see the module doc).
#[derive(Debug, Clone, Default)]
pub struct ChartRecord {
    /// Region of each peer.
    region_of: Vec<u8>,
    /// (block, peer other than its miner) delays by the receiving peer's region.
    pub region_delays: Vec<LogHistogram>,
    /// Distinct tips of the online peers over time.
    pub tips: TipSeries,
    /// Partitions, heals, crashes and restarts with the time (ms) they took effect, in order.
    pub marks: Vec<(u64, Mark)>,
}

impl ChartRecord {
    /// Sets each peer's region (before the run starts).
    pub fn set_regions(&mut self, region_of: &[u8]) {
        let n = region_of
            .iter()
            .map(|&r| usize::from(r) + 1)
            .max()
            .unwrap_or(1);
        self.region_of = region_of.to_vec();
        self.region_delays = vec![LogHistogram::default(); n];
    }

    /// Peers per region.
    pub fn region_peers(&self) -> Vec<u32> {
        let mut n = vec![0u32; self.region_delays.len()];
        for &r in &self.region_of {
            n[usize::from(r)] += 1;
        }
        n
    }

    /// Peer `node` accepted a block `ms` after it was mined.
    #[inline]
    pub fn delay(&mut self, node: u32, ms: u64) {
        if let Some(&r) = self.region_of.get(node as usize) {
            self.region_delays[usize::from(r)].record(ms);
        }
    }

    /// A partition, heal, crash or restart took effect at `now_ms`.
    pub fn mark(&mut self, now_ms: u64, what: Mark) {
        self.marks.push((now_ms, what));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_buckets_hold_their_delays_and_are_narrow() {
        for ms in [0, 1, 31, 32, 33, 100, 1000, 4095, 4096, 123_456, 10_000_000] {
            let b = bucket_of(ms);
            assert!(bucket_top(b) >= ms, "{ms}");
            assert!(b == 0 || bucket_top(b - 1) < ms, "{ms}");
            assert!(bucket_top(b) as f64 <= ms as f64 * 1.07 + 1.0, "{ms}");
        }
        let mut h = LogHistogram::default();
        for ms in [5, 5, 40, 1000] {
            h.record(ms);
        }
        let cdf = h.cdf();
        assert_eq!(cdf.first(), Some(&(5, 0.5)));
        assert_eq!(cdf.last(), Some(&(1000, 1.0)));
    }

    #[test]
    fn the_tips_series_stays_bounded_and_keeps_its_peaks() {
        let mut s = TipSeries::default();
        for t in 0..100_000u64 {
            // The count changes every millisecond; a peak of 5 tips every 10 s.
            let tips = if t % 10_000 == 0 {
                5
            } else {
                1 + (t % 2) as u32
            };
            s.set(t, tips);
        }
        assert!(s.buckets.len() <= MAX_TIP_BUCKETS);
        assert!(s.bucket_ms > FIRST_TIP_BUCKET_MS);
        assert_eq!(s.buckets.iter().filter(|b| b.max == 5).count(), 10);
        assert!(s.buckets.windows(2).all(|w| w[0].at_ms < w[1].at_ms));
    }
}
