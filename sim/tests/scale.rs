//! Scale runs from the performance targets. Ignored by default (minutes of CPU);
//! run with `cargo test --release -p rantai-sim --test scale -- --ignored --nocapture`.

use rantai_sim::{Sim, SimConfig};

// The same allocator as the `rantai-sim` binary, so these numbers match the CLI's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn run(peers: u32, blocks: u64) {
    rantai_sim::alloc::keep_freed_memory();
    let cfg = SimConfig {
        peers,
        blocks,
        ..SimConfig::default()
    };
    let r = Sim::new(cfg).unwrap().run();
    println!("{}", r.summary());
    assert!(r.invariants.ok, "{:?}", r.invariants.violations);
    assert!(r.convergence.converged);
    assert_eq!(r.propagation_ms.reached_100 as u64, r.blocks.mined);
}

#[test]
#[ignore = "about 10 s of CPU; run explicitly"]
fn scale_1000_peers_1000_blocks() {
    run(1000, 1000);
}

#[test]
#[ignore = "several minutes of CPU; run explicitly"]
fn scale_10000_peers_1000_blocks() {
    run(10_000, 1000);
}
