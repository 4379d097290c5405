//! Validation rules, fork choice and reorgs of the block tree.

use rantai_core::block::{Header, Item, MAX_BLOCK_DATA_BYTES, MAX_DIFFICULTY};
use rantai_core::chain::{BlockError, Chain, Insert, OrphanLimits};
use rantai_core::message::MAX_FRAME_BYTES;
use rantai_core::Message;
use rantai_core::{Block, Millis, Params, Template};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

const NOW: Millis = Millis(2_000_000_000_000);

fn params(min_difficulty: u32) -> Arc<Params> {
    Arc::new(Params::new("test", min_difficulty))
}

fn item(n: u64) -> Item {
    Item {
        nonce: n,
        text: format!("item {n}"),
    }
}

/// A valid child of `parent` carrying `items`, mined at `difficulty`.
fn child(parent: &Block, difficulty: u32, items: Vec<Item>, ts: u64) -> Block {
    Template::new(
        parent.header(),
        parent.hash(),
        difficulty,
        Millis(ts),
        items,
    )
    .solve(&AtomicBool::new(false))
    .expect("uncancelled search finds a nonce")
}

fn build(from: &Block, n: usize, difficulty: u32, salt: u64) -> Vec<Block> {
    let mut out: Vec<Block> = Vec::new();
    let mut parent = from.clone();
    for i in 0..n {
        let b = child(
            &parent,
            difficulty,
            vec![item(salt * 1_000_000 + i as u64)],
            1000 + i as u64,
        );
        parent = b.clone();
        out.push(b);
    }
    out
}

fn insert(chain: &mut Chain, b: &Block) -> Result<Insert, BlockError> {
    chain.insert(Arc::new(b.clone()), NOW)
}

/// Re-mines `block` after `f` changed its header, keeping every other field.
fn with_header(block: &Block, f: impl FnOnce(&mut Header)) -> Block {
    let mut h = *block.header();
    f(&mut h);
    Block::new(h, block.items().to_vec())
}

#[test]
fn accepts_a_valid_chain_and_tracks_the_tip() {
    let mut c = Chain::new(params(4));
    let g = c.genesis().as_ref().clone();
    let blocks = build(&g, 5, 4, 1);
    for b in &blocks {
        assert!(matches!(insert(&mut c, b), Ok(Insert::Accepted(_))));
    }
    assert_eq!(c.height(), 5);
    assert_eq!(c.tip().hash(), blocks[4].hash());
    assert!(matches!(insert(&mut c, &blocks[2]), Ok(Insert::Duplicate)));
    assert!(c.contains_item(&blocks[3].items()[0].id()));
    for (h, b) in [&g].into_iter().chain(&blocks).enumerate() {
        assert_eq!(c.at_height(h as u64).map(|x| x.hash()), Some(b.hash()));
    }
    assert!(c.at_height(6).is_none());
}

/// Reserving room re-indexes what is already there: every block stays findable, before and
/// after the tree outgrows the reservation.
#[test]
fn reserve_keeps_every_block_findable() {
    let mut c = Chain::new(params(4));
    let g = c.genesis().as_ref().clone();
    let blocks = build(&g, 40, 4, 7);
    for b in &blocks[..5] {
        insert(&mut c, b).unwrap();
    }
    c.reserve(10);
    assert!(c.contains(&g.hash()));
    for b in &blocks[5..] {
        assert!(matches!(insert(&mut c, b), Ok(Insert::Accepted(_))));
    }
    for b in &blocks {
        assert!(c.in_best_chain(&b.hash()), "block {} lost", b.height());
    }
    assert_eq!(c.height(), 40);
}

/// Reserving for the blocks that then arrive takes the memory up front, and no more than
/// growing block by block ends with.
#[test]
fn reserve_costs_no_more_than_growing() {
    let g = Chain::new(params(4)).genesis().as_ref().clone();
    let blocks = build(&g, 100, 4, 9);
    let mut grown = Chain::new(params(4));
    let mut reserved = Chain::new(params(4));
    let empty = reserved.bookkeeping_bytes();
    reserved.reserve(blocks.len());
    // It really reserved: at least a 16-byte entry per block up front.
    assert!(reserved.bookkeeping_bytes() >= empty + 16 * blocks.len());
    for b in &blocks {
        insert(&mut grown, b).unwrap();
        insert(&mut reserved, b).unwrap();
    }
    assert!(
        reserved.bookkeeping_bytes() <= grown.bookkeeping_bytes(),
        "reserved {} > grown {}",
        reserved.bookkeeping_bytes(),
        grown.bookkeeping_bytes()
    );
}

#[test]
fn rejects_each_rule_with_its_reason() {
    let p = params(4);
    let mut c = Chain::new(p.clone());
    let g = c.genesis().as_ref().clone();
    let good = child(&g, 6, vec![item(1)], 10);

    // Wrong version.
    let b = with_header(&good, |h| h.version = 2);
    assert_eq!(insert(&mut c, &b), Err(BlockError::Version(2)));
    // Data hash does not match the items.
    let b = Block::new(*good.header(), vec![item(99)]);
    assert_eq!(insert(&mut c, &b), Err(BlockError::DataHash));
    // Below the network minimum difficulty (mined properly at 2 bits).
    let b = child(&g, 2, vec![item(1)], 10);
    assert_eq!(
        insert(&mut c, &b),
        Err(BlockError::DifficultyBelowMinimum { got: 2, min: 4 })
    );
    // Above the maximum difficulty.
    let b = with_header(&good, |h| h.difficulty = MAX_DIFFICULTY + 1);
    assert_eq!(
        insert(&mut c, &b),
        Err(BlockError::DifficultyTooHigh(MAX_DIFFICULTY + 1))
    );
    // Proof of work not met: claim far more work than the hash has.
    let b = with_header(&good, |h| h.difficulty = 40);
    assert!(matches!(
        insert(&mut c, &b),
        Err(BlockError::ProofOfWork { need: 40, .. })
    ));
    // Too far in the future.
    let b = child(&g, 4, vec![item(1)], NOW.0 + p.max_future_ms + 1);
    assert!(matches!(
        insert(&mut c, &b),
        Err(BlockError::FromFuture { .. })
    ));
    // Oversized data.
    let big = Item {
        nonce: 0,
        text: "x".repeat(p.max_block_data_bytes),
    };
    let b = child(&g, 4, vec![big], 10);
    assert!(matches!(
        insert(&mut c, &b),
        Err(BlockError::TooLarge { .. })
    ));
    // Height 0 that is not genesis.
    let b = Template::new(g.header(), g.hash(), 4, Millis(1), vec![]);
    let mut h = b.header;
    h.height = 0;
    let b = Template {
        header: h,
        items: vec![],
    }
    .solve(&AtomicBool::new(false))
    .unwrap();
    assert_eq!(insert(&mut c, &b), Err(BlockError::FakeGenesis));
    // Height that does not follow the parent.
    let mut t = Template::new(g.header(), g.hash(), 4, Millis(1), vec![]);
    t.header.height = 5;
    let b = t.solve(&AtomicBool::new(false)).unwrap();
    assert_eq!(
        insert(&mut c, &b),
        Err(BlockError::Height { got: 5, parent: 0 })
    );
    // The good block still goes in: nothing above polluted the tree.
    assert!(matches!(insert(&mut c, &good), Ok(Insert::Accepted(_))));
    assert_eq!(c.height(), 1);
    assert_eq!(c.tree_len(), 2);
}

#[test]
fn duplicate_item_in_chain_or_block_is_rejected() {
    let mut c = Chain::new(params(0));
    let g = c.genesis().as_ref().clone();
    let b1 = child(&g, 0, vec![item(7)], 1);
    insert(&mut c, &b1).unwrap();
    let b2 = child(&b1, 0, vec![item(8), item(7)], 2);
    let Ok(Insert::Accepted(acc)) = insert(&mut c, &b2) else {
        panic!("structurally valid block enters the tree");
    };
    assert_eq!(
        acc.rejected,
        vec![(b2.hash(), BlockError::DuplicateItem(item(7).id()))]
    );
    assert_eq!(c.tip().hash(), b1.hash());
    assert!(
        !c.contains_item(&item(8).id()),
        "a rejected block leaves no items behind"
    );
    // Its children are invalid too.
    let b3 = child(&b2, 0, vec![], 3);
    assert_eq!(insert(&mut c, &b3), Err(BlockError::InvalidParent));
    let twice = child(&b1, 0, vec![item(9), item(9)], 4);
    let Ok(Insert::Accepted(acc)) = insert(&mut c, &twice) else {
        panic!()
    };
    assert_eq!(acc.rejected.len(), 1);
    assert_eq!(c.tip().hash(), b1.hash());
}

#[test]
fn heavier_branch_wins_and_reorg_reports_both_sides() {
    let mut c = Chain::new(params(0));
    let g = c.genesis().as_ref().clone();
    let a = build(&g, 3, 0, 1);
    for b in &a {
        insert(&mut c, b).unwrap();
    }
    // Equal work on the other branch: first seen stays.
    let b = build(&g, 3, 0, 2);
    for x in &b {
        let r = insert(&mut c, x).unwrap();
        assert!(matches!(r, Insert::Accepted(ref acc) if acc.tip_change.is_none()));
    }
    assert_eq!(c.tip().hash(), a[2].hash());
    // One more block on b: reorg of depth 3.
    let b4 = child(&b[2], 0, vec![item(555)], 9);
    let Ok(Insert::Accepted(acc)) = insert(&mut c, &b4) else {
        panic!()
    };
    let change = acc.tip_change.expect("tip moved");
    let left: Vec<_> = change.left.iter().map(|x| x.hash()).collect();
    let joined: Vec<_> = change.joined.iter().map(|x| x.hash()).collect();
    assert_eq!(left, vec![a[2].hash(), a[1].hash(), a[0].hash()]);
    assert_eq!(
        joined,
        vec![b[0].hash(), b[1].hash(), b[2].hash(), b4.hash()]
    );
    assert!(!c.contains_item(&a[0].items()[0].id()));
    assert!(c.contains_item(&b[0].items()[0].id()));
    assert!(c.in_best_chain(&b[1].hash()) && !c.in_best_chain(&a[1].hash()));
}

#[test]
fn more_work_beats_more_blocks() {
    let mut c = Chain::new(params(0));
    let g = c.genesis().as_ref().clone();
    for b in build(&g, 4, 0, 1) {
        insert(&mut c, &b).unwrap();
    }
    // One block at 4 bits (work 16) outweighs four at 0 bits (work 4).
    let heavy = child(&g, 4, vec![], 5);
    insert(&mut c, &heavy).unwrap();
    assert_eq!(c.tip().hash(), heavy.hash());
    assert_eq!(c.height(), 1);
}

#[test]
fn orphans_connect_when_parent_arrives_and_pool_is_bounded() {
    let p = params(0);
    let mut c = Chain::with_orphan_limits(
        p,
        OrphanLimits {
            max_blocks: 3,
            max_bytes: 1 << 20,
        },
    );
    let g = c.genesis().as_ref().clone();
    let blocks = build(&g, 4, 0, 1);
    for b in blocks[1..].iter().rev() {
        assert_eq!(insert(&mut c, b), Ok(Insert::Orphan));
    }
    assert_eq!(c.orphan_count(), 3);
    assert_eq!(c.orphan_root(&blocks[3].hash()), Some(blocks[0].hash()));
    let Ok(Insert::Accepted(acc)) = insert(&mut c, &blocks[0]) else {
        panic!()
    };
    assert_eq!(acc.connected.len(), 4);
    assert_eq!(c.height(), 4);
    assert_eq!(c.orphan_count(), 0);

    // The pool evicts the oldest beyond its bound.
    let other = build(&g, 6, 0, 2);
    for b in &other[1..] {
        insert(&mut c, b).unwrap();
    }
    assert_eq!(c.orphan_count(), 3);
}

#[test]
fn locator_finds_the_fork() {
    let mut c = Chain::new(params(0));
    let g = c.genesis().as_ref().clone();
    let main = build(&g, 100, 0, 1);
    for b in &main {
        insert(&mut c, b).unwrap();
    }
    let loc = c.locator();
    assert_eq!(loc[0], main[99].hash());
    assert_eq!(*loc.last().unwrap(), g.hash());
    assert!(loc.len() < 30);
    let mut other = Chain::new(params(0));
    for b in &main[..40] {
        insert(&mut other, b).unwrap();
    }
    assert_eq!(c.find_fork(&other.locator()), 40);
    assert_eq!(
        c.hashes_after(40, 3),
        vec![main[40].hash(), main[41].hash(), main[42].hash()]
    );
    assert_eq!(c.hashes_after(99, 10), vec![main[99].hash()]);
    assert!(c.hashes_after(100, 10).is_empty());
}

#[test]
fn deep_reorg_of_a_thousand_blocks() {
    let mut c = Chain::new(params(0));
    let g = c.genesis().as_ref().clone();
    let a = build(&g, 1000, 0, 1);
    let b = build(&g, 1001, 0, 2);
    for x in &a {
        insert(&mut c, x).unwrap();
    }
    for x in &b[..1000] {
        insert(&mut c, x).unwrap();
    }
    assert_eq!(c.tip().hash(), a[999].hash());
    let Ok(Insert::Accepted(acc)) = insert(&mut c, &b[1000]) else {
        panic!()
    };
    let ch = acc.tip_change.unwrap();
    assert_eq!((ch.left.len(), ch.joined.len()), (1000, 1001));
    assert_eq!(c.tip().hash(), b[1000].hash());
}

/// Chains that share block objects (as the simulator's peers do) agree on every block's
/// cumulative work, whichever chain attached a block first and in whatever order blocks came.
#[test]
fn chains_sharing_blocks_agree_on_cumulative_work() {
    let p = params(1);
    let g = p.genesis().clone();
    let main: Vec<Arc<Block>> = build(&g, 6, 2, 1).into_iter().map(Arc::new).collect();
    let side: Vec<Arc<Block>> = build(&main[1], 3, 4, 2).into_iter().map(Arc::new).collect();
    let (mut a, mut b) = (Chain::new(p.clone()), Chain::new(p.clone()));
    for blk in main.iter().chain(&side) {
        a.insert(blk.clone(), NOW).expect("valid");
    }
    // The other chain sees the side branch first, and its blocks in reverse (as orphans).
    for blk in side.iter().chain(&main).rev() {
        b.insert(blk.clone(), NOW).expect("valid");
    }
    let expected = |blocks: &[Arc<Block>], base: u128| {
        blocks
            .iter()
            .scan(base, |w, blk| {
                *w += blk.header().work().0;
                Some(*w)
            })
            .collect::<Vec<_>>()
    };
    let g_work = g.header().work().0;
    let main_work = expected(&main, g_work);
    let side_work = expected(&side, main_work[1]);
    for (blk, w) in main
        .iter()
        .zip(&main_work)
        .chain(side.iter().zip(&side_work))
    {
        assert_eq!(a.work_of(&blk.hash()).map(|x| x.0), Some(*w));
        assert_eq!(b.work_of(&blk.hash()).map(|x| x.0), Some(*w));
    }
    assert_eq!(a.tip().hash(), b.tip().hash());
    // The cached work is not part of a block's value.
    let fresh = Block::new(*main[0].header(), main[0].items().to_vec());
    assert_eq!(fresh, *main[0]);
}

#[test]
fn a_body_cache_keeps_bodies_near_the_tip_and_item_rules_intact() {
    let mut c = Chain::new(params(0));
    c.set_body_cache(Some(3));
    assert_eq!(c.body_cache(), Some(3));
    let g = c.genesis().as_ref().clone();
    let a = build(&g, 10, 0, 1);
    for b in &a {
        insert(&mut c, b).unwrap();
    }
    // Heights 8, 9, 10 keep their bodies; 1..=7 are header-only; genesis always stays.
    for (i, b) in a.iter().enumerate() {
        let held = c.get(&b.hash()).expect("in the tree");
        assert_eq!(held.body().is_some(), i + 1 >= 8, "height {}", i + 1);
        assert_eq!(held.hash(), b.hash());
        assert_eq!(held.height(), b.height());
        assert_eq!(held.size(), b.size());
        assert_eq!(held.item_ids(), vec![b.items()[0].id()]);
        assert_eq!(c.body(&b.hash()).is_some(), i + 1 >= 8);
    }
    assert!(c.genesis().items().len() == g.items().len());
    assert_eq!(c.tip().hash(), a[9].hash());
    // The item index still knows the items of evicted blocks...
    assert_eq!(c.item_height(&a[0].items()[0].id()), Some(1));
    // ... so a block repeating one is refused when it would join the best chain.
    let dup = child(&a[9], 0, vec![a[0].items()[0].clone()], 99);
    let Ok(Insert::Accepted(acc)) = insert(&mut c, &dup) else {
        panic!("connects, then fails the item rule")
    };
    assert!(matches!(acc.rejected[..], [(h, BlockError::DuplicateItem(_))] if h == dup.hash()));
    assert_eq!(c.tip().hash(), a[9].hash());
}

#[test]
fn a_deep_reorg_over_evicted_blocks_reports_them_without_bodies() {
    let mut c = Chain::new(params(0));
    c.set_body_cache(Some(2));
    let g = c.genesis().as_ref().clone();
    let a = build(&g, 6, 0, 1);
    for b in &a {
        insert(&mut c, b).unwrap();
    }
    // A heavier branch from genesis: its early blocks are evicted as soon as they attach.
    let b = build(&g, 7, 0, 2);
    let mut change = None;
    for x in &b {
        if let Insert::Accepted(acc) = insert(&mut c, x).unwrap() {
            change = acc.tip_change.or(change);
        }
    }
    let change = change.expect("reorg");
    assert_eq!(c.tip().hash(), b[6].hash());
    assert_eq!(change.left.len(), 6);
    assert_eq!(change.joined.len(), 7);
    // Deep blocks that left come without bodies but with their item ids.
    let left_a1 = change
        .left
        .iter()
        .find(|x| x.hash() == a[0].hash())
        .unwrap();
    assert!(left_a1.body().is_none());
    assert_eq!(left_a1.item_ids(), vec![a[0].items()[0].id()]);
    assert!(change.joined.iter().any(|x| x.body().is_none()));
    // The item index followed the reorg.
    assert!(!c.contains_item(&a[0].items()[0].id()));
    assert!(c.contains_item(&b[0].items()[0].id()));
    for (i, x) in b.iter().enumerate() {
        assert_eq!(c.body(&x.hash()).is_some(), i + 1 >= 6, "height {}", i + 1);
    }
    // Back again: a[] gets two more blocks and wins; its evicted blocks rejoin by header.
    let a7 = child(&a[5], 0, vec![item(77)], 70);
    let a8 = child(&a7, 0, vec![item(78)], 71);
    insert(&mut c, &a7).unwrap();
    insert(&mut c, &a8).unwrap();
    assert_eq!(c.tip().hash(), a8.hash());
    assert!(c.contains_item(&a[0].items()[0].id()));
    assert!(!c.contains_item(&b[0].items()[0].id()));
    let best: Vec<_> = c.best_chain().map(|x| x.hash()).collect();
    assert_eq!(best.len(), 9);
    assert_eq!(best[1], a[0].hash());
}

#[test]
fn without_a_body_cache_every_body_stays() {
    let mut c = Chain::new(params(0));
    let g = c.genesis().as_ref().clone();
    for b in build(&g, 200, 0, 1) {
        insert(&mut c, &b).unwrap();
    }
    assert!(c.blocks().all(|b| b.body().is_some()));
    assert_eq!(c.body_cache(), None);
    // Turning it on later evicts at once.
    c.set_body_cache(Some(10));
    assert_eq!(c.blocks().filter(|b| b.body().is_some()).count(), 11);
}

#[test]
fn each_limit_of_a_block_accepts_its_boundary_value() {
    let p = params(4);
    let g = Chain::new(p.clone()).genesis().as_ref().clone();
    let accepted = |b: &Block| {
        let mut c = Chain::new(p.clone());
        insert(&mut c, b)
    };
    // Exactly the minimum difficulty.
    let b = child(&g, 4, vec![item(1)], 10);
    assert!(matches!(accepted(&b), Ok(Insert::Accepted(_))));
    // Exactly the maximum difficulty is not too high (only its proof of work is missing).
    let b = with_header(&b, |h| h.difficulty = MAX_DIFFICULTY);
    assert!(matches!(
        accepted(&b),
        Err(BlockError::ProofOfWork {
            need: MAX_DIFFICULTY,
            ..
        })
    ));
    // A hash with exactly as many leading zero bits as the difficulty asks.
    let exact = (0..64)
        .map(|i| child(&g, 4, vec![item(i)], 10))
        .find(|b| b.hash().leading_zero_bits() == 4)
        .expect("about half of all blocks mined at 4 bits have exactly 4");
    assert!(matches!(accepted(&exact), Ok(Insert::Accepted(_))));
    // A timestamp exactly `max_future_ms` ahead; one more is refused.
    let b = child(&g, 4, vec![item(2)], NOW.0 + p.max_future_ms);
    assert!(matches!(accepted(&b), Ok(Insert::Accepted(_))));
    let b = child(&g, 4, vec![item(2)], NOW.0 + p.max_future_ms + 1);
    assert_eq!(
        accepted(&b),
        Err(BlockError::FromFuture {
            timestamp_ms: NOW.0 + p.max_future_ms + 1,
            now_ms: NOW.0,
            max_future_ms: p.max_future_ms,
        })
    );
    // Data of exactly `max_block_data_bytes`; one byte more is refused.
    let sized = |data_bytes: usize| Item {
        nonce: 0,
        text: "x".repeat(data_bytes - 4 - 12),
    };
    let b = child(&g, 4, vec![sized(p.max_block_data_bytes)], 10);
    assert!(matches!(accepted(&b), Ok(Insert::Accepted(_))));
    let b = child(&g, 4, vec![sized(p.max_block_data_bytes + 1)], 10);
    assert_eq!(
        accepted(&b),
        Err(BlockError::TooLarge {
            size: p.max_block_data_bytes + 1,
            max: p.max_block_data_bytes,
        })
    );
}

#[test]
fn the_bookkeeping_estimate_counts_the_header_only_form_of_every_evicted_block() {
    let mut full = Chain::new(params(0));
    let mut cached = Chain::new(params(0));
    cached.set_body_cache(Some(1));
    let g = full.genesis().as_ref().clone();
    for b in build(&g, 100, 0, 1) {
        insert(&mut full, &b).unwrap();
        insert(&mut cached, &b).unwrap();
    }
    let evicted = cached.blocks().filter(|b| b.body().is_none()).count();
    assert_eq!(evicted, 99);
    // Each header-only form holds at least a header and its `Arc` counters on the heap.
    let extra = cached.bookkeeping_bytes() - full.bookkeeping_bytes();
    let least = evicted * (16 + std::mem::size_of::<Header>());
    assert!(
        extra >= least,
        "{extra} bytes counted, at least {least} held"
    );
}

#[test]
fn a_network_limit_above_the_frame_is_capped_so_every_valid_block_fits_a_frame() {
    // A data limit far above what a frame carries: the protocol ceiling applies.
    let mut p = Params::new("test", 0);
    p.max_block_data_bytes = 8 << 20;
    assert_eq!(p.block_data_limit(), MAX_BLOCK_DATA_BYTES);
    let p = Arc::new(p);
    let g = Chain::new(p.clone()).genesis().as_ref().clone();
    // Control characters, which JSON would escape to 6 bytes each, cost one byte here.
    let sized = |data_bytes: usize| Item {
        nonce: 0,
        text: "\u{1}".repeat(data_bytes - 4 - 12),
    };
    let b = child(&g, 0, vec![sized(MAX_BLOCK_DATA_BYTES)], 10);
    assert_eq!(
        Message::Block {
            block: Arc::new(b.clone())
        }
        .encoded_len(),
        MAX_FRAME_BYTES
    );
    let mut c = Chain::new(p.clone());
    assert!(matches!(insert(&mut c, &b), Ok(Insert::Accepted(_))));
    let b = child(&g, 0, vec![sized(MAX_BLOCK_DATA_BYTES + 1)], 10);
    let mut c = Chain::new(p);
    assert_eq!(
        insert(&mut c, &b),
        Err(BlockError::TooLarge {
            size: MAX_BLOCK_DATA_BYTES + 1,
            max: MAX_BLOCK_DATA_BYTES,
        })
    );
}

#[test]
fn when_the_heaviest_branch_fails_the_heaviest_valid_one_wins() {
    let mut c = Chain::new(params(0));
    let g = c.genesis().as_ref().clone();
    let a1 = child(&g, 0, vec![item(1)], 10);
    insert(&mut c, &a1).unwrap();
    // A side branch from genesis, held back by its first block x1: y2-y3 is valid; z2 repeats
    // x1's item, so z2-z3-z4 and w3-w4 (on z2) can never join the best chain.
    let x1 = child(&g, 0, vec![item(2)], 11);
    let y2 = child(&x1, 0, vec![item(3)], 12);
    let y3 = child(&y2, 0, vec![item(4)], 13);
    let z2 = child(&x1, 0, x1.items().to_vec(), 14);
    let z3 = child(&z2, 0, vec![item(5)], 15);
    let z4 = child(&z3, 0, vec![item(6)], 16);
    let w3 = child(&z2, 0, vec![item(7)], 17);
    let w4 = child(&w3, 0, vec![item(8)], 18);
    for b in [&y2, &y3, &z2, &z3, &z4, &w3, &w4] {
        assert_eq!(insert(&mut c, b), Ok(Insert::Orphan));
    }
    let Ok(Insert::Accepted(acc)) = insert(&mut c, &x1) else {
        panic!("x1 connects")
    };
    assert_eq!(acc.connected.len(), 8);
    // The heaviest tips (z4, w4) fail on z2's repeated item; of the rest, y3 has the most work.
    assert_eq!(c.tip().hash(), y3.hash());
    assert_eq!(
        acc.rejected,
        vec![(z2.hash(), BlockError::DuplicateItem(x1.items()[0].id()))],
        "only the offending block is reported"
    );
    let change = acc.tip_change.expect("the tip moved");
    assert_eq!(change.left.len(), 1);
    assert_eq!(change.joined.len(), 3);
}

#[test]
fn a_hash_sharing_its_lookup_key_with_a_block_is_not_that_block() {
    // `BlockHash::key_u64` reads the last eight bytes: a hash from the network that differs
    // from a block's only in its first bytes must not find that block.
    let mut c = Chain::new(params(0));
    let g = c.genesis().as_ref().clone();
    let blocks = build(&g, 3, 0, 1);
    for b in &blocks {
        insert(&mut c, b).unwrap();
    }
    for b in blocks.iter().chain([&g]) {
        let mut fake = b.hash();
        fake.0[0] ^= 0xff;
        assert_eq!(fake.key_u64(), b.hash().key_u64());
        assert!(!c.contains(&fake));
        assert!(!c.knows(&fake));
        assert!(c.get(&fake).is_none());
        assert_eq!(c.work_of(&fake), None);
        assert!(c.contains(&b.hash()));
    }
}

#[test]
fn the_locator_lists_ten_recent_heights_then_doubling_steps_and_genesis_once() {
    let mut c = Chain::new(params(0));
    let g = c.genesis().as_ref().clone();
    let blocks = build(&g, 30, 0, 1);
    let height_of = |c: &Chain| -> Vec<u64> {
        c.locator()
            .iter()
            .map(|h| c.get(h).expect("a block of the tree").height())
            .collect()
    };
    assert_eq!(height_of(&c), vec![0]);
    for b in &blocks[..3] {
        insert(&mut c, b).unwrap();
    }
    assert_eq!(height_of(&c), vec![3, 2, 1, 0]);
    for b in &blocks[3..] {
        insert(&mut c, b).unwrap();
    }
    assert_eq!(
        height_of(&c),
        vec![30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 19, 15, 7, 0]
    );
}

#[test]
fn tips_name_the_best_tip_each_valid_fork_and_each_invalid_branch() {
    use rantai_core::chain::TipStatus;
    let mut c = Chain::new(params(0));
    let g = c.genesis().as_ref().clone();
    // Best chain of 3; a valid fork of 2 from height 1; an invalid block on top of height 2.
    let a = build(&g, 3, 0, 1);
    for b in &a {
        insert(&mut c, b).unwrap();
    }
    let fork = build(&a[0], 2, 0, 2);
    for b in &fork {
        insert(&mut c, b).unwrap();
    }
    // A branch off the side branch: it still leaves the best chain at height 1.
    let off_fork = child(&fork[0], 0, vec![item(60)], 6);
    insert(&mut c, &off_fork).unwrap();
    // Valid alone, but repeats an item of the best chain: found invalid when tried as the tip.
    let bad1 = child(&a[1], 0, vec![item(50)], 7);
    let bad2 = child(&bad1, 0, vec![a[0].items()[0].clone()], 8);
    for b in [&bad1, &bad2] {
        insert(&mut c, b).unwrap();
    }
    let bad3 = child(&bad2, 0, vec![item(51)], 9);
    assert_eq!(insert(&mut c, &bad3), Err(BlockError::InvalidParent));
    assert_eq!(c.tip().hash(), a[2].hash(), "the invalid branch never wins");
    let tips: Vec<_> = c
        .tips()
        .into_iter()
        .map(|t| (t.hash, t.height, t.branch_len, t.status))
        .collect();
    assert_eq!(
        tips,
        vec![
            (a[2].hash(), 3, 0, TipStatus::Active),
            (bad2.hash(), 4, 2, TipStatus::Invalid),
            (fork[1].hash(), 3, 2, TipStatus::ValidFork),
            (off_fork.hash(), 3, 2, TipStatus::ValidFork),
        ]
    );
    assert_eq!(c.tips()[0].work, c.tip_work());
}

#[test]
fn a_hash_prefix_finds_every_valid_block_it_starts() {
    let mut c = Chain::new(params(0));
    let g = c.genesis().as_ref().clone();
    let a = build(&g, 20, 0, 1);
    for b in &a {
        insert(&mut c, b).unwrap();
    }
    let full = a[7].hash().to_string();
    assert_eq!(c.hashes_with_prefix(&full[..8], 2), vec![a[7].hash()]);
    assert_eq!(
        c.hashes_with_prefix(&full[..9].to_uppercase(), 2),
        vec![a[7].hash()]
    );
    assert_eq!(c.hashes_with_prefix(&full, 2), vec![a[7].hash()]);
    // The empty prefix matches every block; the limit bounds the answer.
    assert_eq!(c.hashes_with_prefix("", 5).len(), 5);
    assert!(c.hashes_with_prefix("xyz", 5).is_empty());
    // An odd-length prefix compares half a byte.
    let first_digit = &full[..1];
    let n = c.hashes_with_prefix(first_digit, 100).len();
    let expect = [&g]
        .into_iter()
        .chain(&a)
        .filter(|b| b.hash().to_string().starts_with(first_digit))
        .count();
    assert_eq!(n, expect);
}
