//! The workload: data items submitted at random peers during the first half of the mining
//! phase, drawn from the `workload` stream.

use crate::config::SimConfig;
use crate::rng::stream;
use crate::time::SimTime;
use rand::Rng;
use rantai_core::Millis;

/// One planned submission: item `idx` at peer `node` at `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Submission {
    pub at: SimTime,
    pub idx: u32,
    pub node: u32,
}

/// Every submission of the run, in item order (times are not sorted).
pub(crate) fn plan(cfg: &SimConfig) -> Vec<Submission> {
    let n = cfg.peers;
    if cfg.items == 0 || n == 0 {
        return Vec::new();
    }
    let mut rng = stream(cfg.seed, "workload", 0);
    let span = (cfg.blocks * cfg.block_interval().0 / 2).max(1);
    (0..cfg.items)
        .map(|idx| {
            let at = SimTime::from_millis(Millis(rng.gen_range(0..span)));
            let node = rng.gen_range(0..n);
            Submission { at, idx, node }
        })
        .collect()
}

/// The text of item `idx`, padded to `size` bytes.
pub(crate) fn item_text(idx: u32, size: u32) -> String {
    let mut text = format!("item-{idx}-");
    while text.len() < size as usize {
        text.push('x');
    }
    text
}

/// The drawn peer if it is up, else the next one up (wrapping), else `None`.
pub(crate) fn pick_online(drawn: u32, n: u32, up: impl Fn(u32) -> bool) -> Option<u32> {
    (0..n).map(|k| (drawn + k) % n).find(|&i| up(i))
}
