//! The sans-IO peer's cost for the commonest input of a simulation: an announcement of a
//! block it has already requested or already holds.
//!
//! Run: `cargo bench --bench peer`.

#[path = "../tests/harness/mod.rs"]
mod harness;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rantai_core::{ConnId, Hash32, Input, Message, Output};
use std::hint::black_box;

/// One peer with 16 ready neighbours handles an announcement it does not act on, then drains
/// its outputs (there are none). About three quarters of a simulation's events are
/// announcements, and nearly all of them name a block the receiver has already requested
/// from another neighbour or already holds (on 10,000 x 1,000: 92.1 M `inv` among 122.5 M
/// events, 10.0 M requests, 11.5 M for held blocks). So this is a floor under the cost of a
/// simulated event: a hot cache, and no event queue, latency draw or metrics around it.
fn peer(c: &mut Criterion) {
    let mut net = harness::Net::new(17, |_| harness::config());
    for k in 1..17 {
        net.connect(0, k);
    }
    net.run_for(3_000);
    let block = net.mine(1);
    net.run_for(3_000);
    assert_eq!(net.tip_height(0), 1, "the block reached the measured peer");
    let conns: Vec<ConnId> = (1..17)
        .map(|k| net.conn_of(0, k).expect("connected"))
        .collect();
    let now = net.now;
    let p = &mut net.peers[0];
    let inv = |h: Hash32| Message::Inv {
        hashes: std::iter::once(h).collect(),
    };
    // A block nobody has sent yet, announced by the first neighbour: the peer requests it
    // there, and every later announcement of it finds the request pending.
    let pending = Hash32([7; 32]);
    p.handle(
        now,
        Input::Message {
            peer: conns[0],
            msg: inv(pending),
        },
    );
    let requested = std::iter::from_fn(|| p.poll()).any(|o| {
        matches!(
            o,
            Output::Send {
                msg: Message::GetBlocks { .. },
                ..
            }
        )
    });
    assert!(requested, "the first announcement is requested");

    let mut g = c.benchmark_group("peer");
    g.throughput(Throughput::Elements(1));
    for (name, hash) in [
        ("inv_already_requested_16_conns", pending),
        ("inv_already_held_16_conns", block.hash()),
    ] {
        let mut i = 0;
        g.bench_function(name, |b| {
            b.iter(|| {
                // Neighbours 1..16 (the first one was asked for the pending block).
                i = i % (conns.len() - 1) + 1;
                p.handle(
                    now,
                    Input::Message {
                        peer: conns[i],
                        msg: inv(hash),
                    },
                );
                while let Some(out) = p.poll() {
                    black_box(out);
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, peer);
criterion_main!(benches);
