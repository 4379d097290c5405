//! The network model's two ordering rules, checked to the millisecond on tiny networks:
//! a connection is a FIFO stream (a message never overtakes one sent before it on the same
//! connection unless the `reorder` fault holds it back), and a busy downlink delays a message
//! (the receiver's download slot is booked in send order, before the message arrives).

use rantai_sim::net::{transfer_us, wire_size};
use rantai_sim::{Bandwidth, BlockHash, Builder, Latency, Millis, RelayPolicy, Sim, Topology};
mod common;
use common::SharedBuf;
use std::sync::Arc;

/// When peer `to` got its first `kind` message from `from` at or after `after` (ms), read
/// from the trace.
fn delivered_at(trace: &str, from: u32, to: u32, kind: &str, after: u64) -> Option<Millis> {
    let needle = format!(r#""ev":"deliver","from":{from},"to":{to},"msg":"{kind}""#);
    trace
        .lines()
        .filter(|l| l.contains(&needle))
        .filter_map(|l| {
            let t = l.strip_prefix(r#"{"t":"#)?.split(',').next()?;
            t.parse::<u64>().ok()
        })
        .find(|&t| t >= after)
        .map(Millis)
}

/// When peer `peer` accepted mined block `hash` (needs [`Sim::record_peer_delays`]).
fn accepted_at(sim: &Sim, peer: u32, hash: &BlockHash) -> Option<Millis> {
    let b = sim.metrics().blocks.iter().find(|b| b.hash == *hash)?;
    let ms = *b.arrival_ms.get(peer as usize)?;
    (ms != rantai_sim::metrics::NEVER).then(|| Millis(b.mined_at.0 + u64::from(ms)))
}

fn holds(sim: &Sim, peer: u32, block: &BlockHash) -> bool {
    sim.chain(peer).is_some_and(|c| c.contains(block))
}

/// Wire size of the block message carrying `hash` in a run with `block_size` virtual bytes.
fn block_message_bytes(sim: &Sim, miner: u32, hash: &BlockHash, block_size: u64) -> u64 {
    let chain = sim.chain(miner).expect("miner online");
    let block = chain.get(hash).and_then(|b| b.body()).expect("mined body");
    wire_size(
        &rantai_core::Message::Block {
            block: Arc::clone(block),
        },
        block_size,
    )
}

/// Two peers on a line pushing 1 MB blocks: 100 ms apart, 8 Mbps down and `up_bps` up.
fn pushing_pair(up_bps: u64) -> Sim {
    Builder::new(2)
        .seed(3)
        .relay(RelayPolicy::Push)
        .topology(Topology::Line)
        .latency(Latency::Const(Millis(100)))
        .bandwidth(Bandwidth::Uniform {
            download: Some(8_000_000),
            upload: Some(up_bps),
        })
        .block_size(1_000_000)
        .build()
        .unwrap()
}

#[test]
fn a_message_sent_after_a_block_arrives_after_it() {
    // Peer 0 pushes a 1 MB block to peer 1 over 8 Mbps (about a second on the wire), then at
    // the same millisecond gossips an item (64 bytes: latency only). The item must wait.
    let mut sim = pushing_pair(8_000_000);
    let trace = SharedBuf::default();
    sim.set_trace_writer(Box::new(trace.clone()));
    sim.run_for(Millis::from_secs(2)); // handshakes
    let sent_at = sim.now();
    let block = sim.mine(0).unwrap();
    let item = sim.submit(0, "sent after the block").unwrap();
    sim.run_until(Millis::from_secs(10), |s| {
        s.peer(1)
            .is_some_and(|p| p.pending_items().any(|it| it.id() == item))
    });
    assert!(holds(&sim, 1, &block));
    let text = trace.text();
    let block_seen = delivered_at(&text, 0, 1, "block", sent_at.0).expect("block delivered");
    let item_seen = delivered_at(&text, 0, 1, "items", sent_at.0).expect("item delivered");
    // The block took latency + its size at 8 Mbps; the item arrived in the same millisecond.
    let bytes = block_message_bytes(&sim, 0, &block, 1_000_000);
    let expect = sent_at.0 + (100_000 + transfer_us(bytes, Some(8_000_000))).div_ceil(1000);
    assert_eq!(block_seen, Millis(expect));
    assert_eq!(
        item_seen,
        Millis(expect),
        "the item waited for the block sent before it"
    );
}

#[test]
fn messages_with_random_latencies_keep_their_order_on_every_connection() {
    // Latency is drawn per message (20..200 ms), so without the FIFO rule a later message
    // often overtakes an earlier one: a `get_addr` before the `hello` is a protocol violation
    // that closes the connection, and handshakes then fail.
    let mut sim = Builder::new(60)
        .seed(11)
        .topology(Topology::Random { k: Some(6) })
        .latency(Latency::Uniform(Millis(20), Millis(200)))
        .mining(20, Millis::from_secs(5))
        .items(40)
        .ping_interval(Some(Millis::from_secs(2)))
        .build()
        .unwrap();
    let trace = SharedBuf::default();
    sim.set_trace_writer(Box::new(trace.clone()));
    let r = sim.run();
    assert!(r.invariants.ok, "{:?}", r.invariants.violations);
    assert!(r.convergence.converged);
    assert!(r.messages.total > 5_000, "{} messages", r.messages.total);
    let text = trace.text();
    let closes: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(r#""ev":"close""#))
        .collect();
    assert!(
        closes.is_empty(),
        "no connection closes without faults; {} did, e.g. {:?}",
        closes.len(),
        closes.first()
    );
}

/// Two leaves of a line 0 - 1 - 2 mine at the same millisecond and push their blocks to the
/// middle peer, whose downlink (8 Mbps) is ten times slower than their uplinks (80 Mbps).
fn downlink_race() -> (u64, u64, u64, Millis, Millis) {
    let mut sim = Builder::new(3)
        .seed(5)
        .relay(RelayPolicy::Push)
        .topology(Topology::Line)
        .latency(Latency::Const(Millis(100)))
        .bandwidth(Bandwidth::Uniform {
            download: Some(8_000_000),
            upload: Some(80_000_000),
        })
        .block_size(1_000_000)
        .build()
        .unwrap();
    sim.record_peer_delays();
    sim.run_for(Millis::from_secs(2)); // handshakes
    let t0 = sim.now().0;
    let a = sim.mine(0).unwrap();
    let b = sim.mine(2).unwrap();
    let bytes_a = block_message_bytes(&sim, 0, &a, 1_000_000);
    let bytes_b = block_message_bytes(&sim, 2, &b, 1_000_000);
    sim.run_until(Millis::from_secs(20), |s| {
        holds(s, 1, &a) && holds(s, 1, &b)
    });
    let got_a = accepted_at(&sim, 1, &a).expect("a at 1");
    let got_b = accepted_at(&sim, 1, &b).expect("b at 1");
    (t0, bytes_a, bytes_b, got_a, got_b)
}

#[test]
fn a_busy_downlink_delays_the_second_block() {
    let (t0, bytes_a, bytes_b, got_a, got_b) = downlink_race();
    let down = |bytes| transfer_us(bytes, Some(8_000_000));
    // The first block downloads at 8 Mbps after 100 ms of latency.
    let a_done_us = t0 * 1000 + 100_000 + down(bytes_a);
    assert_eq!(got_a, Millis(a_done_us.div_ceil(1000)), "first block");
    // The second one waits for the downlink: it starts when the first has finished.
    let b_done_us = a_done_us + down(bytes_b);
    assert_eq!(got_b, Millis(b_done_us.div_ceil(1000)), "second block");
    assert!(got_b.0 - got_a.0 >= 1000, "a full second apart");
}

/// The access rates a peer reports are the configured ones, and a crash drops the transfers
/// booked on the crashed peer's links: a restarted peer starts with an idle downlink, not one
/// still busy with a block the crash cut off.
#[test]
fn a_crash_frees_the_crashed_peers_links() {
    let mut sim = pushing_pair(80_000_000);
    assert_eq!(sim.upload_bps(0), Some(80_000_000));
    assert_eq!(sim.upload_bps(1), Some(80_000_000));
    assert_eq!(sim.upload_bps(2), None, "no such peer");
    sim.run_for(Millis::from_secs(2)); // handshakes
    sim.mine(0).unwrap();
    // Pushed at once: peer 1's downlink is booked for the latency (100 ms) and then a second
    // (1 MB at 8 Mbps).
    let booked = sim.download_backlog(1);
    assert!(
        (Millis(1100)..=Millis(1110)).contains(&booked),
        "downlink booked for {booked:?}"
    );
    sim.run_for(Millis(300));
    assert!(sim.download_backlog(1) >= Millis(700));
    sim.crash(1, true).unwrap();
    assert_eq!(
        sim.download_backlog(1),
        Millis::ZERO,
        "the crash dropped the download"
    );
    assert_eq!(sim.upload_backlog(1), Millis::ZERO);

    let unlimited = Builder::new(2)
        .seed(3)
        .topology(Topology::Line)
        .build()
        .unwrap();
    assert_eq!(unlimited.upload_bps(0), None);
}
