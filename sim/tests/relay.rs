//! Both relay policies deliver every block to every peer; push costs more block bytes.

use rantai_sim::{Builder, Millis, RelayPolicy, Topology};

fn run(relay: RelayPolicy) -> rantai_sim::Report {
    let mut sim = Builder::new(200)
        .seed(9)
        .relay(relay)
        .topology(Topology::Random { k: Some(6) })
        .mining(20, Millis::from_secs(20))
        .block_size(50_000)
        .bandwidth(rantai_sim::Bandwidth::Uniform {
            download: Some(50_000_000),
            upload: Some(20_000_000),
        })
        .build()
        .unwrap();
    sim.run()
}

#[test]
fn announce_and_push_both_reach_every_peer() {
    let announce = run(RelayPolicy::Announce);
    let push = run(RelayPolicy::Push);
    for r in [&announce, &push] {
        assert!(r.invariants.ok, "{:?}", r.invariants.violations);
        assert_eq!(r.blocks.mined, 20);
        assert_eq!(
            r.propagation_ms.reached_100, 20,
            "{} relay: not every block reached every peer",
            r.scenario.relay
        );
        assert!(r.convergence.converged);
    }
    // Announce fetches each block once per peer; push sends it over most links.
    let blocks = |r: &rantai_sim::Report| r.messages.by_kind["block"].count;
    assert!(
        blocks(&announce) <= 20 * 200,
        "announce sent {} blocks",
        blocks(&announce)
    );
    assert!(
        blocks(&push) > blocks(&announce) * 2,
        "push {} vs announce {}",
        blocks(&push),
        blocks(&announce)
    );
    assert!(push.redundancy.duplicate_block_deliveries > 0);
    assert_eq!(announce.redundancy.duplicate_block_deliveries, 0);
    // Announce relay announces: every peer hears of each block by `inv` from a neighbour and
    // asks for it once, so there are at least as many announcements as fetches.
    let count =
        |r: &rantai_sim::Report, kind: &str| r.messages.by_kind.get(kind).map_or(0, |k| k.count);
    assert!(count(&announce, "get_blocks") >= 20 * 199 / 2);
    assert!(
        count(&announce, "inv") >= count(&announce, "get_blocks"),
        "inv {} get_blocks {}",
        count(&announce, "inv"),
        count(&announce, "get_blocks")
    );
}
