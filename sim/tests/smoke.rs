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
    // Bitcoin-like network with compact relay: blocks reach half the peers in a fraction of
    // a second to seconds, not minutes, and never faster than a few hops of latency.
    let t50 = r.propagation_ms.t50.median.unwrap();
    assert!((100..20_000).contains(&t50), "t50 median {t50} ms");
    assert_eq!(r.scenario.relay, "compact");
    assert!(r.compact.rebuilt + r.compact.round_trip > 0);
    // No fault was injected, so nobody may be dropped (compact relay once left requests
    // answered by another neighbour to time out as stalls).
    assert!(
        r.faults.disconnects.is_empty(),
        "{:?}",
        r.faults.disconnects
    );
}
