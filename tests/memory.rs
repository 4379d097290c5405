//! Measures what one peer spends per known block, relay bookkeeping included, with a counting
//! allocator: 100 peers in a random 8-out graph learn 1,000 shared blocks, then all but the
//! miner are dropped and the freed bytes are divided by (peers x blocks).

mod harness;

use harness::{config, Net};
use rand::{Rng, SeedableRng};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::{Arc, Mutex};

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

/// The tests here measure the process-wide allocation counter, so they run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

#[test]
fn bytes_per_peer_and_block_stay_near_100() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
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
    // The peers' own estimate, which budgets are checked with, is near the measurement.
    let ratio = estimated as f64 / freed as f64;
    assert!(
        (0.75..=1.25).contains(&ratio),
        "bookkeeping_bytes() says {estimated} bytes, dropping the peers freed {freed}"
    );
}

/// `Chain::bookkeeping_bytes` is what the memory budget is checked with: it must be close to
/// what dropping the chain really frees, with every body held (and shared) and with most
/// bodies evicted to their header-only form. The blocks stay alive outside the chain, so only
/// the chain's own bytes are freed.
#[test]
fn the_chain_bookkeeping_estimate_is_within_a_tenth_of_what_the_chain_frees() {
    use rantai_core::{Chain, Item, Millis, Params, Template};
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let params = Arc::new(Params::dev());
    let genesis = Chain::new(params.clone()).tip().clone();
    let mut blocks = vec![genesis];
    for n in 1..=2_000u64 {
        let parent = blocks.last().expect("genesis").clone();
        let items = vec![Item {
            nonce: n,
            text: format!("line {n}"),
        }];
        let t = Template::new(parent.header(), parent.hash(), 0, Millis(n), items);
        blocks.push(Arc::new(t.into_block(n)));
    }
    for cache in [None, Some(100)] {
        let before = LIVE.load(Ordering::Relaxed);
        let mut chain = Chain::new(params.clone());
        chain.set_body_cache(cache);
        for b in &blocks[1..] {
            chain
                .insert(b.clone(), Millis(10_000))
                .expect("valid block");
        }
        let estimated = chain.bookkeeping_bytes() as f64;
        let held = LIVE.load(Ordering::Relaxed);
        drop(chain);
        let freed = (held - LIVE.load(Ordering::Relaxed)) as f64;
        println!(
            "body cache {cache:?}: chain grew by {} bytes, freed {freed}, estimated {estimated}",
            held - before
        );
        assert!(
            (0.9..=1.1).contains(&(estimated / freed)),
            "body cache {cache:?}: estimated {estimated} bytes, dropping the chain freed {freed}"
        );
    }
}
