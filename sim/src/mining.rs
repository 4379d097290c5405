//! Mining: each miner is a Poisson process with rate `share / block_interval`, armed while
//! its peer has a mining job out (core's [`Output::Mine`](rantai_core::Output::Mine)) and
//! cancelled when the job stops. Core decides when to mine ([`MinePolicy`]); this module only
//! says which policy each phase of a run gives a miner, and how fast its races fire.
//!
//! Contract: because the exponential distribution is memoryless, a new job on a new tip needs
//! no redraw; a cancelled race is superseded by its generation. Miners run `Always` until the
//! block target is reached, then `OwnItems` (core's tie rule still mines when a tie needs
//! breaking), with at most [`MAX_EXTRA_BLOCKS`] blocks past the target; in the liveness phase
//! ([`Mining::set_liveness`]) `AllItems`, uncapped. Peers without hash power run `Off`.

use crate::config::SimConfig;
use crate::time::SimTime;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rantai_core::{Millis, MinePolicy};

/// Most blocks the races mine past the target outside the liveness phase (tie breaks, a
/// miner's own items): a run ends even if the network never settles. The count is taken
/// between rounds, so races that fire within one round may pass it by a few blocks.
pub const MAX_EXTRA_BLOCKS: u64 = 10;

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
    /// Whether a race is scheduled.
    armed: bool,
    rng: ChaCha8Rng,
}

impl Miner {
    /// A miner with hash power `share`, drawing from `rng` (the `mining`/i stream).
    pub(crate) fn new(share: f64, rng: ChaCha8Rng) -> Miner {
        Miner {
            share,
            gen: 0,
            armed: false,
            rng,
        }
    }

    /// Whether this peer has any hash power.
    pub(crate) fn has_power(&self) -> bool {
        self.share > 0.0
    }

    /// Whether a race is scheduled.
    pub(crate) fn is_armed(&self) -> bool {
        self.armed
    }

    /// Takes the race `gen` as fired: true if it was the race in progress.
    pub(crate) fn fire(&mut self, gen: u32) -> bool {
        let current = self.armed && self.gen == gen;
        if current {
            self.armed = false;
        }
        current
    }

    /// Abandons the race in progress.
    pub(crate) fn cancel(&mut self) {
        self.gen = self.gen.wrapping_add(1);
        self.armed = false;
    }

    /// Starts a race unless one is running: when it fires (after `interval / share` on
    /// average) and its generation; `None` while racing or without hash power.
    pub(crate) fn arm(&mut self, interval: Millis) -> Option<(Millis, u32)> {
        if self.share <= 0.0 || self.armed {
            return None;
        }
        let u: f64 = 1.0 - self.rng.gen::<f64>();
        let dt = (-u.ln() * interval.0 as f64 / self.share)
            .round()
            .clamp(1.0, 1e15) as u64;
        self.cancel();
        self.armed = true;
        Some((Millis(dt), self.gen))
    }

    /// The nonce of a block found now.
    pub(crate) fn nonce(&mut self) -> u64 {
        self.rng.gen()
    }
}

/// The run's mining progress.
pub(crate) struct Mining {
    target: u64,
    interval: Millis,
    mined: u64,
    extra: u64,
    done_at: Option<SimTime>,
    liveness: bool,
}

impl Mining {
    pub(crate) fn new(cfg: &SimConfig) -> Mining {
        Mining {
            target: cfg.blocks,
            interval: cfg.block_interval(),
            mined: 0,
            extra: 0,
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

    /// Blocks the races mined past the target outside the liveness phase.
    pub(crate) fn extra_blocks(&self) -> u64 {
        self.extra
    }

    /// When the target block was mined.
    pub(crate) fn done_at(&self) -> Option<SimTime> {
        self.done_at
    }

    /// Turns the liveness phase on or off; true when that changed anything.
    pub(crate) fn set_liveness(&mut self, on: bool) -> bool {
        std::mem::replace(&mut self.liveness, on) != on
    }

    /// Whether the target is reached (trivially so without one).
    pub(crate) fn complete(&self) -> bool {
        self.target == 0 || self.mined >= self.target
    }

    /// The policy a miner runs now ([`MinePolicy::Off`] without hash power).
    pub(crate) fn policy(&self, has_power: bool) -> MinePolicy {
        if !has_power {
            MinePolicy::Off
        } else if self.liveness {
            MinePolicy::AllItems
        } else if !self.complete() {
            MinePolicy::Always
        } else {
            MinePolicy::OwnItems
        }
    }

    /// Whether a race that fires now may produce a block.
    pub(crate) fn may_mine(&self) -> bool {
        !self.complete() || self.liveness || self.extra < MAX_EXTRA_BLOCKS
    }

    /// Counts a block mined at `now` (`raced`: by a race, not on request); true when it
    /// reached the target.
    pub(crate) fn record(&mut self, now: SimTime, raced: bool) -> bool {
        if raced && self.complete() && !self.liveness {
            self.extra += 1;
        }
        self.mined += 1;
        let reached = self.mined == self.target;
        if reached {
            self.done_at = Some(now);
        }
        reached
    }
}
