//! The stale rate grows as the block interval shrinks relative to propagation time.
//!
//! Settings are a factor 10 apart (60 s, 6 s, 0.6 s against ~0.5-1 s propagation), so the
//! expected stale counts (~1%, ~8%, ~45% of 300 blocks) are many standard deviations apart:
//! the ordering is robust for any seed, not a lucky draw.

use rantai_sim::{Millis, SimConfig};

fn stale_rate(interval_ms: u64) -> f64 {
    let mut cfg = SimConfig::small(100);
    cfg.seed = 17;
    cfg.blocks = 300;
    cfg.block_interval = Some(Millis(interval_ms));
    cfg.miners = Some(25);
    cfg.block_size_bytes = Some(100_000);
    cfg.latency = Some(rantai_sim::Latency::Uniform(Millis(50), Millis(150)));
    cfg.bandwidth = Some(rantai_sim::Bandwidth::Uniform {
        download: Some(20_000_000),
        upload: Some(10_000_000),
    });
    let r = rantai_sim::Sim::new(cfg).unwrap().run();
    assert!(r.invariants.ok, "{:?}", r.invariants.violations);
    assert!(r.convergence.converged);
    r.blocks.stale_rate
}

#[test]
fn stale_rate_grows_as_interval_shrinks() {
    let slow = stale_rate(60_000);
    let mid = stale_rate(6_000);
    let fast = stale_rate(600);
    assert!(
        slow < mid && mid < fast,
        "stale rates not monotone: {slow} {mid} {fast}"
    );
    assert!(fast > 0.15, "fast blocks should fork a lot: {fast}");
    assert!(slow < 0.05, "slow blocks should rarely fork: {slow}");
}
