//! A partition that heals: both sides extend their own branch, then the whole network
//! converges on one, and the losing branch's blocks become stale.

mod common;

use rantai_sim::{Builder, Millis, Topology};

#[test]
fn scripted_partition_heals_and_converges() {
    let side_a: Vec<u32> = (0..20).collect();
    let side_b: Vec<u32> = (20..40).collect();
    // A ring lattice (two neighbours per side): each half stays connected when split.
    let mut sim = Builder::new(40)
        .seed(3)
        .topology(Topology::SmallWorld { k: 4, p: 0.0 })
        .ping_interval(Some(Millis::from_secs(5)))
        .build()
        .unwrap();
    sim.run_for(Millis::from_secs(5));
    let base = sim.mine(0).unwrap();
    assert!(common::settle(&mut sim, Millis::from_secs(30)));
    assert!(sim.chain(39).unwrap().contains(&base));

    sim.partition(vec![side_a.clone(), side_b.clone()]);
    // Side A mines three blocks, side B two: A's branch has more work and must win.
    let mut a_blocks = Vec::new();
    let mut b_blocks = Vec::new();
    for round in 0..3 {
        a_blocks.push(sim.mine(side_a[round]).unwrap());
        if round < 2 {
            b_blocks.push(sim.mine(side_b[round]).unwrap());
        }
        sim.run_for(Millis::from_secs(10));
    }
    // Each side followed its own branch; nothing crossed.
    let tip_a = sim.chain(5).unwrap().tip().hash();
    let tip_b = sim.chain(25).unwrap().tip().hash();
    assert_eq!(tip_a, a_blocks[2]);
    assert_eq!(tip_b, b_blocks[1]);
    assert!(side_b
        .iter()
        .all(|&i| !sim.chain(i).unwrap().contains(&a_blocks[0])));
    assert!(!sim.converged());
    assert!(sim.metrics().faults.partition_drops > 0);

    sim.heal();
    let ok = common::settle(&mut sim, Millis::from_secs(300));
    assert!(ok, "no convergence after heal");
    assert!(common::all_on_tip_of(&sim, 0));
    assert_eq!(sim.chain(30).unwrap().tip().hash(), a_blocks[2]);
    // B's branch is off the best chain everywhere, A's on it.
    for i in 0..40 {
        let c = sim.chain(i).unwrap();
        assert!(b_blocks.iter().all(|h| !c.in_best_chain(h)));
        assert!(a_blocks.iter().all(|h| c.in_best_chain(h)));
    }
    let report = sim.run();
    assert!(report.invariants.ok, "{:?}", report.invariants.violations);
    assert_eq!(report.outcome, rantai_sim::report::Outcome::Ok);
    assert_eq!(report.blocks.stale, 2);
    assert!(
        report.reorgs.count >= 20,
        "side B must reorg: {}",
        report.reorgs.count
    );
}

#[test]
fn poisson_partition_forks_on_both_sides_then_converges() {
    let mut cfg = rantai_sim::SimConfig::small(80);
    cfg.seed = 11;
    cfg.blocks = 40;
    cfg.block_interval = Some(Millis::from_secs(10));
    cfg.miners = Some(20);
    cfg.apply("partition", "60s..200s:0.5", None).unwrap();
    let mut sim = rantai_sim::Sim::new(cfg).unwrap();
    sim.run_until(Millis::from_secs(199), |_| false);
    // Just before the heal: two groups on different tips, both past the split.
    let tips = sim.tips();
    assert!(
        tips.len() >= 2,
        "expected divergent tips during the partition: {tips:?}"
    );
    let report = sim.run();
    assert!(report.invariants.ok, "{:?}", report.invariants.violations);
    assert!(report.convergence.converged);
    assert!(report.convergence.expected);
    assert!(
        report.blocks.stale >= 1,
        "a healed partition leaves stale blocks"
    );
    assert!(report.convergence.after_last_heal_ms.is_some());
    assert_eq!(report.faults.partitions, 1);
    assert_eq!(report.faults.heals, 1);
}

#[test]
fn oneway_partition_lets_only_one_direction_through() {
    // Push relay: announce relay would need the muted side's requests to get through.
    let mut sim = Builder::new(20)
        .seed(4)
        .relay(rantai_sim::RelayPolicy::Push)
        .topology(Topology::Mesh)
        .ping_interval(Some(Millis::from_secs(5)))
        .build()
        .unwrap();
    sim.run_for(Millis::from_secs(5));
    // Peers 0..5 can hear the others but are not heard.
    sim.partition_oneway((0..5).collect());
    let muted = sim.mine(0).unwrap();
    let heard = sim.mine(10).unwrap();
    sim.run_for(Millis::from_secs(3));
    assert!((5..20).all(|i| !sim.chain(i).unwrap().contains(&muted)));
    assert!(
        (0..20).all(|i| sim.chain(i).unwrap().contains(&heard)),
        "the open direction must deliver"
    );
    sim.heal();
    // Both blocks are at height 1 (a tie); the next block decides for everyone.
    let next = sim.mine(15).unwrap();
    assert!(common::settle(&mut sim, Millis::from_secs(300)));
    assert!((0..20).all(|i| sim.chain(i).unwrap().tip().hash() == next));
    assert!(sim.metrics().faults.partition_drops > 0);
}
