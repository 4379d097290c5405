//! Lossy links and crashed peers: the network still converges and nothing is lost.

mod common;

use rantai_sim::config::PingInterval;
use rantai_sim::{Builder, Millis, SimConfig};

#[test]
fn twenty_percent_loss_still_converges() {
    let mut cfg = SimConfig::small(100);
    cfg.seed = 5;
    cfg.blocks = 30;
    cfg.block_interval = Some(Millis::from_secs(15));
    cfg.miners = Some(10);
    cfg.loss = 0.2;
    cfg.items = 30;
    let mut sim = rantai_sim::Sim::new(cfg).unwrap();
    let r = sim.run();
    assert!(r.invariants.ok, "{:?}", r.invariants.violations);
    assert!(r.faults.lost > 1000, "loss injected: {}", r.faults.lost);
    assert!(r.convergence.converged, "20% loss: no convergence");
    assert_eq!(r.items.submitted, 30);
    assert_eq!(r.items.missing, 0);
    assert_eq!(r.items.duplicated, 0);
    assert!(!r.engine.timed_out);
}

/// Blocks every 2 s on the bitcoin-2019 network with 20% loss and 5 s pings: many forks, and
/// keepalives always in flight. Ties at the end must still be broken (the tie-break waits for
/// sync traffic to stop, not for pings to stop) and the run must end once everyone agrees,
/// not at the settle deadline.
#[test]
fn fork_storm_with_loss_and_fast_pings_converges_and_ends() {
    let cfg = SimConfig {
        peers: 100,
        blocks: 60,
        block_interval: Some(Millis::from_secs(2)),
        ping_interval: PingInterval::Every(Millis::from_secs(5)),
        request_timeout: Millis::from_secs(3),
        loss: 0.2,
        ..SimConfig::default()
    };
    let r = rantai_sim::Sim::new(cfg).unwrap().run();
    assert!(r.invariants.ok, "{:?}", r.invariants.violations);
    assert!(
        r.blocks.stale > 10,
        "a fork storm: {} stale",
        r.blocks.stale
    );
    assert!(r.convergence.converged);
    assert!(!r.engine.timed_out);
}

#[test]
fn crashed_peer_catches_up_after_restart() {
    for keep_chain in [true, false] {
        let mut sim = Builder::new(30)
            .seed(21)
            .ping_interval(Some(Millis::from_secs(10)))
            .build()
            .unwrap();
        sim.run_for(Millis::from_secs(5));
        for i in 0..3 {
            sim.mine(i).unwrap();
            sim.run_for(Millis::from_secs(3));
        }
        assert!(common::settle(&mut sim, Millis::from_secs(30)));
        assert_eq!(sim.chain(7).unwrap().height(), 3);
        sim.crash(7, keep_chain).unwrap();
        assert!(sim.peer(7).is_none());
        for i in 10..15 {
            sim.mine(i).unwrap();
            sim.run_for(Millis::from_secs(3));
        }
        let tip = sim.chain(0).unwrap().tip().hash();
        assert_eq!(sim.chain(0).unwrap().height(), 8);
        sim.restart(7).unwrap();
        let start_height = sim.chain(7).unwrap().height();
        assert_eq!(start_height, if keep_chain { 3 } else { 0 });
        let caught_up = sim.run_until(sim.now().add(Millis::from_secs(120)), |s| {
            s.chain(7).is_some_and(|c| c.tip().hash() == tip)
        });
        assert!(
            caught_up,
            "peer 7 (keep_chain={keep_chain}) did not catch up"
        );
        assert!(sim.metrics().faults.crashes == 1 && sim.metrics().faults.restarts == 1);
    }
}

#[test]
fn scheduled_crash_and_restart_in_a_scenario() {
    let mut cfg = SimConfig::small(50);
    cfg.seed = 8;
    cfg.blocks = 20;
    cfg.block_interval = Some(Millis::from_secs(10));
    cfg.miners = Some(5);
    cfg.apply("crash", "3@30s..120s", None).unwrap();
    cfg.apply("crash", "4@40s..100s:wipe", None).unwrap();
    let r = rantai_sim::Sim::new(cfg).unwrap().run();
    assert!(r.invariants.ok, "{:?}", r.invariants.violations);
    assert_eq!((r.faults.crashes, r.faults.restarts), (2, 2));
    assert!(r.convergence.converged);
    assert_eq!(r.convergence.online_peers, 50);
}

/// Each per-message fault, configured alone, is injected, and the others stay at zero: no
/// check of the rates may switch off a fault that is the only one set, or count a fault
/// that is not.
#[test]
fn each_message_fault_alone_is_injected() {
    let run = |loss: f64, duplicate: f64, reorder: f64| {
        let mut cfg = SimConfig::small(20);
        cfg.seed = 9;
        cfg.blocks = 5;
        cfg.block_interval = Some(Millis::from_secs(15));
        cfg.loss = loss;
        cfg.duplicate = duplicate;
        cfg.reorder = reorder;
        let r = rantai_sim::Sim::new(cfg).unwrap().run();
        assert!(r.invariants.ok, "{:?}", r.invariants.violations);
        assert_eq!(r.outcome, rantai_sim::report::Outcome::Ok);
        (r.faults.lost, r.faults.duplicated, r.faults.delayed)
    };
    let (lost, dup, delayed) = run(0.1, 0.0, 0.0);
    assert!(
        lost > 0 && dup == 0 && delayed == 0,
        "loss alone: {lost} {dup} {delayed}"
    );
    let (lost, dup, delayed) = run(0.0, 0.1, 0.0);
    assert!(
        lost == 0 && dup > 0 && delayed == 0,
        "duplicate alone: {lost} {dup} {delayed}"
    );
    let (lost, dup, delayed) = run(0.0, 0.0, 0.1);
    assert!(
        lost == 0 && dup == 0 && delayed > 0,
        "reorder alone: {lost} {dup} {delayed}"
    );
    assert_eq!(run(0.0, 0.0, 0.0), (0, 0, 0));
}
