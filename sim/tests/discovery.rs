//! Topology growth by address exchange (`discovery`): peers advertise `sim:<i>`, learn
//! addresses from hellos and `addr` answers, and dial them within core's outbound budget, as
//! nodes do. Without it the configured links are the whole topology.

mod common;

use rantai_core::Direction;
use rantai_sim::{Builder, Millis, Sim, Topology};

const PEERS: u32 = 30;

fn line(discovery: bool, seed: u64) -> Sim {
    Builder::new(PEERS)
        .seed(seed)
        .topology(Topology::Line)
        .discovery(discovery)
        .build()
        .expect("valid")
}

/// Ready connections of peer `i` that it dialled.
fn outbound(sim: &Sim, i: u32) -> usize {
    sim.peer(i).map_or(0, |p| {
        p.peers()
            .iter()
            .filter(|c| c.ready && c.direction == Direction::Outbound)
            .count()
    })
}

/// Delay until every peer holds a block mined at peer 0.
fn spread(sim: &mut Sim) -> Millis {
    let start = sim.now();
    let b = sim.mine(0).expect("online");
    let all = |s: &Sim| (0..PEERS).all(|i| s.chain(i).is_some_and(|c| c.contains(&b)));
    assert!(sim.run_until(start.add(Millis::from_secs(60)), all));
    sim.now().since(start)
}

#[test]
fn discovery_grows_a_line_into_a_mesh_within_the_outbound_budget() {
    let mut plain = line(false, 7);
    plain.run_for(Millis::from_secs(60));
    assert_eq!(plain.edges().len(), PEERS as usize - 1);
    assert!((0..PEERS).all(|i| outbound(&plain, i) <= 1));

    let mut grown = line(true, 7);
    grown.run_for(Millis::from_secs(60));
    let budget = grown.peer(0).expect("up").config().max_outbound;
    let full = (0..PEERS)
        .filter(|&i| outbound(&grown, i) == budget)
        .count();
    let over = (0..PEERS).filter(|&i| outbound(&grown, i) > budget).count();
    assert_eq!(over, 0, "the outbound budget holds");
    // Also the last peer, which nobody is configured to dial out from: it asks its inbound
    // peers for addresses while its budget has room.
    assert_eq!(
        full, PEERS as usize,
        "{full} of {PEERS} peers filled their outbound budget from learned addresses"
    );
    assert!(grown.edges().len() > 5 * PEERS as usize);
    assert!(grown.online_connected());

    // More links, fewer hops: a block crosses the grown network faster than the line.
    let (slow, fast) = (spread(&mut plain), spread(&mut grown));
    assert!(fast.0 * 3 < slow.0, "line {slow}, grown {fast}");
    assert!(common::settle(&mut grown, Millis::from_secs(60)));
}

#[test]
fn discovery_is_seeded_and_a_restarted_peer_grows_back() {
    let run = |seed: u64| {
        let mut sim = line(true, seed);
        sim.run_for(Millis::from_secs(60));
        sim.crash(PEERS / 2, true).expect("up");
        sim.run_for(Millis::from_secs(10));
        sim.restart(PEERS / 2).expect("down");
        sim.run_for(Millis::from_secs(60));
        let b = sim.mine(PEERS / 2).expect("up");
        assert!(common::settle(&mut sim, Millis::from_secs(60)));
        assert!(sim.chain(0).expect("up").contains(&b));
        (
            sim.trace_hash(),
            outbound(&sim, PEERS / 2),
            sim.edges().len(),
        )
    };
    let (hash, restarted, links) = run(3);
    let budget = rantai_core::Config::new(rantai_core::Params::dev()).max_outbound;
    assert_eq!(
        restarted, budget,
        "the restarted peer dials learned addresses again"
    );
    assert_eq!(
        run(3),
        (hash.clone(), restarted, links),
        "same seed, same run"
    );
    assert_ne!(run(4).0, hash);
}
