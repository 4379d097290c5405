//! Mining: each miner is a Poisson process with rate `share / block_interval`, and the run
//! decides whether a race that fires still produces a block.
//!
//! Contract: because the exponential distribution is memoryless, a tip change needs no
//! redraw; a superseded race is cancelled by its generation. Mining stops at the block
//! target, except for (a) up to [`MAX_TIEBREAK_BLOCKS`] blocks that break a final tie between
//! equal-work tips, and (b) in the liveness phase ([`Mining::set_liveness`]), blocks that mine
//! pending items and uncapped tie breaks.

use crate::config::SimConfig;
use crate::time::SimTime;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rantai_core::{Millis, Peer};

/// Most extra blocks mined after the target to break a final tie between equal-work tips.
pub const MAX_TIEBREAK_BLOCKS: u64 = 10;

/// Each peer's share of the network's hash power (0 for non-miners). Miners are spread evenly
/// over the peer indices, so regions and partitions mix them.
pub(crate) fn hash_shares(cfg: &SimConfig) -> Vec<f64> {
    let n = cfg.peers as usize;
    let miners = cfg.miners() as usize;
    let mut shares = vec![0.0; n];
    let weights: Vec<f64> = cfg.hashpower.clone().unwrap_or_else(|| vec![1.0; miners]);
    let total: f64 = weights.iter().sum();
    for (j, w) in weights.iter().enumerate().take(miners) {
        shares[j * n / miners.max(1)] = w / total;
    }
    shares
}

/// One peer's mining race.
pub(crate) struct Miner {
    /// Share of the network's hash power (0 for non-miners).
    share: f64,
    /// Generation of the race in progress; older `Mine` events are stale.
    gen: u32,
    rng: ChaCha8Rng,
}

impl Miner {
    /// A miner with hash power `share`, drawing from `rng` (the `mining`/i stream).
    pub(crate) fn new(share: f64, rng: ChaCha8Rng) -> Miner {
        Miner { share, gen: 0, rng }
    }

    /// Whether `gen` is the race in progress.
    pub(crate) fn is_current(&self, gen: u32) -> bool {
        self.gen == gen
    }

    /// Abandons the race in progress.
    pub(crate) fn cancel(&mut self) {
        self.gen = self.gen.wrapping_add(1);
    }

    /// Starts a new race: when it fires (after `interval / share` on average) and its
    /// generation; `None` for a peer without hash power.
    pub(crate) fn race(&mut self, interval: Millis) -> Option<(Millis, u32)> {
        if self.share <= 0.0 {
            return None;
        }
        let u: f64 = 1.0 - self.rng.gen::<f64>();
        let dt = (-u.ln() * interval.0 as f64 / self.share)
            .round()
            .clamp(1.0, 1e15) as u64;
        self.cancel();
        Some((Millis(dt), self.gen))
    }

    /// The nonce of a block found now.
    pub(crate) fn nonce(&mut self) -> u64 {
        self.rng.gen()
    }
}

/// Why a race that fired produces a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MineReason {
    /// Below the target, or (liveness phase) to mine pending items.
    Scheduled,
    /// Past the target, to break a tie between equal-work tips.
    Tiebreak,
}

/// The run's mining progress.
pub(crate) struct Mining {
    target: u64,
    interval: Millis,
    mined: u64,
    tiebreak: u64,
    done_at: Option<SimTime>,
    liveness: bool,
}

impl Mining {
    pub(crate) fn new(cfg: &SimConfig) -> Mining {
        Mining {
            target: cfg.blocks,
            interval: cfg.block_interval(),
            mined: 0,
            tiebreak: 0,
            done_at: None,
            liveness: false,
        }
    }

    /// Network-wide mean time between blocks.
    pub(crate) fn interval(&self) -> Millis {
        self.interval
    }

    /// Blocks mined so far.
    pub(crate) fn mined(&self) -> u64 {
        self.mined
    }

    /// Blocks mined past the target to break ties.
    pub(crate) fn tiebreak_blocks(&self) -> u64 {
        self.tiebreak
    }

    /// When the target block was mined.
    pub(crate) fn done_at(&self) -> Option<SimTime> {
        self.done_at
    }

    /// Whether the liveness phase is on.
    pub(crate) fn liveness(&self) -> bool {
        self.liveness
    }

    /// Turns the liveness phase on or off; true when it was just turned on.
    pub(crate) fn set_liveness(&mut self, on: bool) -> bool {
        let was = std::mem::replace(&mut self.liveness, on);
        on && !was
    }

    /// Whether the target is reached (trivially so without one).
    pub(crate) fn complete(&self) -> bool {
        self.target == 0 || self.mined >= self.target
    }

    fn tiebreaks_left(&self) -> bool {
        self.tiebreak < MAX_TIEBREAK_BLOCKS || self.liveness
    }

    /// Whether races run at all: there is a target and tie breaks are not used up.
    pub(crate) fn racing(&self) -> bool {
        self.target > 0 && self.tiebreaks_left()
    }

    /// Whether a race that fired now produces a block. `holds_items`: the miner mines pending
    /// items in the liveness phase; `tied`: the quiet network sits on equal-work tips.
    pub(crate) fn decide(
        &self,
        holds_items: bool,
        tied: impl FnOnce() -> bool,
    ) -> Option<MineReason> {
        if self.mined < self.target || holds_items {
            Some(MineReason::Scheduled)
        } else if self.target > 0 && self.tiebreaks_left() && tied() {
            Some(MineReason::Tiebreak)
        } else {
            None
        }
    }

    /// Counts a race that fired to break a tie.
    pub(crate) fn record_tiebreak(&mut self) {
        self.tiebreak += 1;
    }

    /// Counts a block mined at `now`.
    pub(crate) fn record(&mut self, now: SimTime) {
        self.mined += 1;
        if self.mined == self.target {
            self.done_at = Some(now);
        }
    }
}

/// Whether a ready neighbour of `p` claims more work than `p`'s tip: mining on a tip that a
/// neighbour has already passed would add forks faster than a slow path can drain them.
pub(crate) fn neighbour_ahead(p: &Peer) -> bool {
    let ours = p.chain().tip_work();
    p.peers()
        .iter()
        .any(|c| c.ready && c.tip.is_some_and(|t| t.work > ours))
}
