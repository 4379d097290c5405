//! Measures what one peer spends per known block, relay bookkeeping included, with a counting
//! allocator: 100 peers in a random 8-out graph learn 1,000 shared blocks, then all but the
//! miner are dropped and the freed bytes are divided by (peers x blocks).

mod harness;

use harness::{config, Net};
use rand::{Rng, SeedableRng};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        System.realloc(p, l, new)
    }
}

#[global_allocator]
static A: Counting = Counting;

#[test]
fn bytes_per_peer_and_block_stay_near_100() {
    const PEERS: usize = 100;
    const BLOCKS: usize = 1000;
    let mut net = Net::new(PEERS, |_| {
        let mut c = config();
        c.ping_interval = None;
        c
    });
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    for a in 0..PEERS {
        for _ in 0..8 {
            let b = rng.gen_range(0..PEERS);
            if b != a {
                net.connect(a, b);
            }
        }
    }
    net.run_for(500);
    for k in 0..BLOCKS {
        net.mine(0);
        if k % 50 == 49 {
            net.run_for(2_000);
        }
    }
    assert!(net.run_until(60_000, |n| (0..PEERS)
        .all(|i| n.tip_height(i) == BLOCKS as u64)));
    // Drop the harness's own records first so only peer state is measured.
    net.events.iter_mut().for_each(Vec::clear);
    let before = LIVE.load(Ordering::Relaxed);
    let estimated: usize = net.peers[1..].iter().map(|p| p.bookkeeping_bytes()).sum();
    net.peers.truncate(1);
    let freed = before - LIVE.load(Ordering::Relaxed);
    let per = freed as f64 / ((PEERS - 1) * BLOCKS) as f64;
    println!(
        "memory: {per:.1} bytes per (peer, block) measured, {:.1} estimated by bookkeeping_bytes()",
        estimated as f64 / ((PEERS - 1) * BLOCKS) as f64
    );
    // Shared blocks are not copied per peer: a copy alone would cost more than 200 bytes.
    assert!(per < 150.0, "{per} bytes per (peer, block)");
}
