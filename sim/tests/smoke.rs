//! A 1,000-peer run of the default (bitcoin-2019) network, kept short.

use rantai_sim::SimConfig;

#[test]
fn thousand_peers_smoke() {
    let cfg = SimConfig {
        peers: 1000,
        blocks: 10,
        ..SimConfig::default()
    };
    let r = rantai_sim::Sim::new(cfg).unwrap().run();
    assert!(r.invariants.ok, "{:?}", r.invariants.violations);
    assert_eq!(r.blocks.mined, 10);
    assert_eq!(r.propagation_ms.reached_100, 10);
    assert!(r.convergence.converged);
    assert!(r.scenario.links > 4000);
    // Bitcoin-like network: blocks reach half the peers within seconds, not minutes.
    let t50 = r.propagation_ms.t50.median.unwrap();
    assert!((500..20_000).contains(&t50), "t50 median {t50} ms");
}
