//! The bandwidth model: a transfer takes latency + size / min(upload, download) on an idle
//! path, and a sender's uploads queue (a block pushed to N peers takes N upload slots).

use rantai_sim::{Bandwidth, Builder, Latency, Millis, RelayPolicy, Topology};

fn t100(relay: RelayPolicy, topology: Topology, peers: u32, up: u64, down: u64) -> u64 {
    let mut sim = Builder::new(peers)
        .seed(1)
        .relay(relay)
        .topology(topology)
        .latency(Latency::Const(Millis(100)))
        .bandwidth(Bandwidth::Uniform {
            download: Some(down),
            upload: Some(up),
        })
        .block_size(1_000_000)
        .build()
        .unwrap();
    sim.run_for(Millis::from_secs(2)); // handshakes
    sim.mine(0).unwrap();
    let r = sim.run();
    assert!(r.invariants.ok);
    assert_eq!(r.propagation_ms.reached_100, 1);
    r.propagation_ms.t100.max.unwrap()
}

#[test]
fn idle_path_costs_latency_plus_size_over_the_slower_side() {
    // Announce: inv (100 ms) + get_blocks (100 ms) + block (100 ms + 1 MB at 1 MB/s).
    let expect = 100 + 100 + 100 + 1000;
    for (up, down) in [
        (8_000_000, 8_000_000),
        (8_000_000, 80_000_000),
        (80_000_000, 8_000_000),
    ] {
        let t = t100(RelayPolicy::Announce, Topology::Line, 2, up, down);
        assert!(
            (expect..expect + 5).contains(&t),
            "up {up} down {down}: {t} ms"
        );
    }
}

#[test]
fn pushed_uploads_queue_one_after_another() {
    // The star's centre pushes a 1 MB block to 4 leaves over an 8 Mbps uplink: the last leaf
    // waits for four full uploads.
    let t = t100(RelayPolicy::Push, Topology::Star, 5, 8_000_000, 80_000_000);
    assert!((4100..4110).contains(&t), "last leaf after {t} ms");
}
