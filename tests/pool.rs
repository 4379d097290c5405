//! The pending pool's bounds: submissions stop at its item count and byte size (the
//! boundaries exact), and items gossiped by neighbours fill at most half of it, so a local
//! line always fits.

mod harness;

use harness::{config, Net};
use rantai_core::{Millis, Peer, SubmitError};

#[test]
fn submissions_stop_at_the_item_count_and_at_the_byte_size() {
    let mut c = config();
    c.max_pending_items = 3;
    let mut p = Peer::new(c.clone(), 1);
    for k in 0..3 {
        assert!(p.submit(Millis(k), format!("line {k}")).is_ok());
    }
    assert_eq!(
        p.submit(Millis(3), "one too many".into()),
        Err(SubmitError::PoolFull(3))
    );
    // Bytes: each item is 12 bytes of header plus its text; 1,000 bytes hold 4 of 238 bytes
    // exactly, not one byte more.
    c.max_pending_items = 100;
    c.max_pending_bytes = 1_000;
    let mut p = Peer::new(c, 1);
    for k in 0..4 {
        assert!(p.submit(Millis(k), "x".repeat(238)).is_ok(), "item {k}");
    }
    assert_eq!(p.pending_len(), 4);
    assert_eq!(
        p.submit(Millis(5), String::new()),
        Err(SubmitError::PoolFull(4))
    );
}

/// Peer 1's pool holds 4 items or 1,000 bytes; peer 0 gossips it more than that.
fn gossip_into_small_pool(max_items: usize, max_bytes: usize, text: usize) -> Net {
    let mut net = Net::new(2, |i| {
        let mut c = config();
        c.relay_items = true;
        if i == 1 {
            c.max_pending_items = max_items;
            c.max_pending_bytes = max_bytes;
        }
        c
    });
    net.connect(0, 1);
    net.run_for(500);
    for k in 0..6 {
        net.submit(0, &format!("{k}{}", "y".repeat(text)));
    }
    // (Each item: 12 bytes of header, one digit, then `text` bytes.)
    net.run_for(1_000);
    assert_eq!(net.peers[0].pending_len(), 6);
    net
}

#[test]
fn gossiped_items_fill_at_most_half_of_the_pool_by_count() {
    let mut net = gossip_into_small_pool(4, 1 << 20, 10);
    assert_eq!(net.peers[1].pending_len(), 2, "half of 4");
    // Lines typed at peer 1 still fit, up to the whole pool.
    net.submit(1, "local a");
    net.submit(1, "local b");
    assert_eq!(net.peers[1].pending_len(), 4);
    let now = net.now;
    assert_eq!(
        net.peers[1].submit(now, "local c".into()),
        Err(SubmitError::PoolFull(4))
    );
}

#[test]
fn gossiped_items_fill_at_most_half_of_the_pool_by_bytes() {
    // Items of 12 + 1 + 237 bytes: two fill half of 1,000 bytes exactly, a third would not.
    let net = gossip_into_small_pool(100, 1_000, 237);
    assert_eq!(net.peers[1].pending_len(), 2);
}

/// Items typed at peer 1 do not count against the neighbours' half.
#[test]
fn own_items_leave_the_neighbours_half_alone() {
    let mut net = Net::new(2, |i| {
        let mut c = config();
        c.relay_items = true;
        if i == 1 {
            c.max_pending_items = 4;
        }
        c
    });
    net.connect(0, 1);
    net.run_for(500);
    net.submit(1, "typed at 1");
    net.run_for(500);
    for k in 0..6 {
        net.submit(0, &format!("typed at 0: {k}"));
    }
    net.run_for(1_000);
    assert_eq!(net.peers[1].pending_len(), 1 + 2);
}

/// Items restored after a restart go back to the pool only if neither the pool nor the chain
/// already holds them.
#[test]
fn restoring_skips_items_already_pending_or_mined() {
    use rantai_core::Item;
    let mut net = Net::new(1, |_| config());
    net.submit(0, "mined");
    net.mine(0);
    let mined = net.peers[0].chain().tip().items()[0].clone();
    net.submit(0, "pending");
    let pending: Vec<Item> = net.peers[0].pending_items().cloned().collect();
    let new = Item {
        nonce: 3,
        text: "new".into(),
    };
    let restored = net.restore_items(0, vec![pending[0].clone(), mined, new.clone()]);
    assert_eq!(restored, 1);
    let now: Vec<Item> = net.peers[0].pending_items().cloned().collect();
    assert_eq!(now, vec![pending[0].clone(), new]);
}
