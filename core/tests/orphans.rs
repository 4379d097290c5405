//! The orphan pool's byte bound: blocks whose parent is unknown are kept up to
//! `OrphanLimits::max_bytes` in all, the oldest evicted first, a block larger than the
//! whole bound is never pooled (one of exactly the bound is), an orphan received twice
//! is pooled once, and the bound still holds after pooled orphans connect.

use rantai_core::block::Item;
use rantai_core::chain::{Chain, Insert, OrphanLimits};
use rantai_core::{Block, Millis, Params, Template};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

const NOW: Millis = Millis(2_000_000_000_000);

/// `n` chained blocks on genesis, each with one item of `text_bytes` bytes (all the same size).
fn chain_of(g: &Block, n: usize, text_bytes: usize) -> Vec<Block> {
    let mut out: Vec<Block> = Vec::new();
    for i in 0..n {
        let parent = out.last().unwrap_or(g).clone();
        let mut text = format!("block {i:04} ");
        text.push_str(&"o".repeat(text_bytes - text.len()));
        let item = Item {
            nonce: i as u64,
            text,
        };
        let b = Template::new(
            parent.header(),
            parent.hash(),
            0,
            Millis(1_000 + i as u64),
            vec![item],
        )
        .solve(&AtomicBool::new(false))
        .expect("difficulty 0");
        out.push(b);
    }
    out
}

fn pool(max_bytes: usize) -> Chain {
    Chain::with_orphan_limits(
        Arc::new(Params::new("orphans", 0)),
        OrphanLimits {
            max_blocks: 1_000,
            max_bytes,
        },
    )
}

fn insert(c: &mut Chain, b: &Block) -> Insert {
    c.insert(Arc::new(b.clone()), NOW).expect("valid block")
}

/// Inserts blocks 1..n as orphans (block 0 withheld), then the withheld ones front to back:
/// the height reached says which orphans were still pooled.
fn pooled_after_overflow(max_bytes_in_blocks: f64) -> (usize, u64) {
    let probe = pool(usize::MAX);
    let g = probe.genesis().as_ref().clone();
    let blocks = chain_of(&g, 7, 4_000);
    let size = blocks[0].size();
    assert!(blocks.iter().all(|b| b.size() == size), "equal sizes");
    let mut c = pool((size as f64 * max_bytes_in_blocks) as usize);
    for b in &blocks[1..] {
        assert_eq!(insert(&mut c, b), Insert::Orphan);
    }
    let pooled = c.orphan_count();
    // Withheld block 0 first: it connects only a pooled block 1, which was evicted first.
    insert(&mut c, &blocks[0]);
    assert_eq!(c.height(), 1, "the oldest orphans were evicted");
    // Feeding the evicted ones back connects the newest, which stayed pooled.
    for b in &blocks[1..7 - pooled] {
        insert(&mut c, b);
    }
    assert_eq!(c.orphan_count(), 0);
    (pooled, c.height())
}

#[test]
fn the_pool_keeps_the_newest_orphans_that_fit_its_bytes() {
    // Exactly three blocks' bytes: three fit.
    assert_eq!(pooled_after_overflow(3.0), (3, 7));
    // One byte less: two.
    assert_eq!(pooled_after_overflow(2.9999), (2, 7));
}

#[test]
fn a_block_larger_than_the_whole_bound_is_not_pooled() {
    let probe = pool(usize::MAX);
    let g = probe.genesis().as_ref().clone();
    let blocks = chain_of(&g, 3, 4_000);
    let mut c = pool(blocks[0].size() - 1);
    assert_eq!(insert(&mut c, &blocks[2]), Insert::Orphan);
    assert_eq!(c.orphan_count(), 0, "too large for the pool");
    insert(&mut c, &blocks[0]);
    insert(&mut c, &blocks[1]);
    assert_eq!(c.height(), 2, "block 2 was dropped, not pooled");
    // A block of exactly the whole bound is pooled.
    let mut c = pool(blocks[0].size());
    assert_eq!(insert(&mut c, &blocks[2]), Insert::Orphan);
    assert_eq!(c.orphan_count(), 1);
    insert(&mut c, &blocks[0]);
    insert(&mut c, &blocks[1]);
    assert_eq!(c.height(), 3, "block 2 was pooled and connected");
}

#[test]
fn an_orphan_received_twice_is_pooled_once() {
    let probe = pool(usize::MAX);
    let g = probe.genesis().as_ref().clone();
    let blocks = chain_of(&g, 2, 100);
    let mut c = pool(usize::MAX);
    assert_eq!(insert(&mut c, &blocks[1]), Insert::Orphan);
    assert!(c.knows(&blocks[1].hash()));
    assert!(!c.contains(&blocks[1].hash()), "pooled, not in the tree");
    assert_eq!(insert(&mut c, &blocks[1]), Insert::Duplicate);
    assert_eq!(c.orphan_count(), 1);
    let Insert::Accepted(acc) = insert(&mut c, &blocks[0]) else {
        panic!("the parent connects")
    };
    assert_eq!(acc.connected.len(), 2, "the orphan connects once");
    assert_eq!(c.orphan_count(), 0);
    assert_eq!(c.height(), 2);
}

#[test]
fn the_byte_bound_still_holds_after_pooled_orphans_connect() {
    let probe = pool(usize::MAX);
    let g = probe.genesis().as_ref().clone();
    let b = chain_of(&g, 8, 4_000);
    let size = b[0].size();
    assert!(b.iter().all(|x| x.size() == size), "equal sizes");
    let mut c = pool(3 * size);
    for x in [&b[1], &b[2], &b[6]] {
        assert_eq!(insert(&mut c, x), Insert::Orphan);
    }
    // Block 0 arrives: blocks 1 and 2 leave the pool for the tree, block 6 stays.
    assert!(matches!(insert(&mut c, &b[0]), Insert::Accepted(_)));
    assert_eq!((c.height(), c.orphan_count()), (3, 1));
    // Room for exactly two more: the pool is full at three again...
    insert(&mut c, &b[4]);
    insert(&mut c, &b[5]);
    assert_eq!(c.orphan_count(), 3);
    // ... so a fourth evicts the oldest, block 6.
    insert(&mut c, &b[7]);
    assert_eq!(c.orphan_count(), 3);
    assert!(matches!(insert(&mut c, &b[3]), Insert::Accepted(_)));
    assert_eq!(c.height(), 6, "blocks 4 and 5 were still pooled");
    assert!(!c.knows(&b[6].hash()), "block 6 was evicted");
    assert_eq!(c.orphan_count(), 1, "block 7 waits for block 6");
}
