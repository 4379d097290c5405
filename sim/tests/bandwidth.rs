//! The bandwidth model to the millisecond: a transfer takes latency + size / min(upload,
//! download) on an idle path, and a sender's uploads queue (a block pushed to N peers takes N
//! upload slots). The expected times are computed from the block message's wire size.

use rantai_sim::net::{transfer_us, wire_size};
use rantai_sim::{Bandwidth, Builder, Latency, Millis, RelayPolicy, Topology};
use std::sync::Arc;

const BLOCK_SIZE: u64 = 1_000_000;

/// The time the mined block took to reach every peer, and its message's size on the wire.
fn t100(relay: RelayPolicy, topology: Topology, peers: u32, up: u64, down: u64) -> (u64, u64) {
    let mut sim = Builder::new(peers)
        .seed(1)
        .relay(relay)
        .topology(topology)
        .latency(Latency::Const(Millis(100)))
        .bandwidth(Bandwidth::Uniform {
            download: Some(down),
            upload: Some(up),
        })
        .block_size(BLOCK_SIZE)
        .build()
        .unwrap();
    sim.run_for(Millis::from_secs(2)); // handshakes
    let hash = sim.mine(0).unwrap();
    let block = sim
        .chain(0)
        .and_then(|c| c.get(&hash))
        .and_then(|b| b.body())
        .expect("the mined block's body");
    let bytes = wire_size(
        &rantai_core::Message::Block {
            block: Arc::clone(block),
        },
        BLOCK_SIZE,
    );
    let r = sim.run();
    assert!(r.invariants.ok);
    assert_eq!(r.propagation_ms.reached_100, 1);
    (r.propagation_ms.t100.max.unwrap(), bytes)
}

#[test]
fn idle_path_costs_latency_plus_size_over_the_slower_side() {
    // Announce: inv (100 ms) + get_blocks (100 ms) + block (100 ms + its size at 8 Mbps, the
    // slower side in each case).
    for (up, down) in [
        (8_000_000, 8_000_000),
        (8_000_000, 80_000_000),
        (80_000_000, 8_000_000),
    ] {
        let (t, bytes) = t100(RelayPolicy::Announce, Topology::Line, 2, up, down);
        assert!(bytes > BLOCK_SIZE, "{bytes} bytes on the wire");
        let expect = (300_000 + transfer_us(bytes, Some(8_000_000))).div_ceil(1000);
        assert_eq!(t, expect, "up {up} down {down}: {bytes} bytes");
    }
}

#[test]
fn pushed_uploads_queue_one_after_another() {
    // The star's centre pushes a 1 MB block to 4 leaves over an 8 Mbps uplink: the last leaf
    // waits for four full uploads (its downlink, at 80 Mbps, keeps up with each).
    let (t, bytes) = t100(RelayPolicy::Push, Topology::Star, 5, 8_000_000, 80_000_000);
    let expect = (100_000 + 4 * transfer_us(bytes, Some(8_000_000))).div_ceil(1000);
    assert_eq!(t, expect, "last leaf after {t} ms");
}
