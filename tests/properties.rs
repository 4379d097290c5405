//! Property tests: fork choice is order-independent, reorgs are reversible, every mutation of a
//! valid block is rejected, and no byte sequence makes the decoder panic.

use proptest::prelude::*;
use rantai_core::block::{Header, Item};
use rantai_core::chain::{BlockError, Chain, Insert, OrphanLimits};
use rantai_core::{Block, FrameDecoder, Message, Millis, Params, Template, Work};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};

const NOW: Millis = Millis(2_000_000_000_000);

fn solve(parent: &Block, difficulty: u32, items: Vec<Item>, ts: u64) -> Block {
    Template::new(
        parent.header(),
        parent.hash(),
        difficulty,
        Millis(ts),
        items,
    )
    .solve(&AtomicBool::new(false))
    .expect("solvable")
}

fn unbounded(p: Arc<Params>) -> Chain {
    Chain::with_orphan_limits(
        p,
        OrphanLimits {
            max_blocks: 10_000,
            max_bytes: 1 << 30,
        },
    )
}

/// A random tree: block i's parent is one of the earlier blocks (or genesis), difficulty 0-2.
fn tree(spec: &[(usize, u32)]) -> (Arc<Params>, Vec<Block>) {
    let p = Arc::new(Params::new("prop", 0));
    let mut blocks: Vec<Block> = Vec::new();
    for (i, &(parent, difficulty)) in spec.iter().enumerate() {
        let parent = if blocks.is_empty() || parent % (blocks.len() + 1) == 0 {
            p.genesis().as_ref().clone()
        } else {
            blocks[parent % (blocks.len() + 1) - 1].clone()
        };
        let item = Item {
            nonce: i as u64,
            text: format!("b{i}"),
        };
        blocks.push(solve(&parent, difficulty, vec![item], 1 + i as u64));
    }
    (p, blocks)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_delivery_order_gives_the_same_best_tip(
        spec in prop::collection::vec((0usize..64, 0u32..3), 1..40),
        order in Just(()).prop_perturb(|_, mut rng| rng.next_u64()),
    ) {
        let (p, blocks) = tree(&spec);
        let mut reference = unbounded(p.clone());
        for b in &blocks {
            reference.insert(Arc::new(b.clone()), NOW).unwrap();
        }
        // Shuffle deterministically from the drawn seed.
        let mut shuffled = blocks.clone();
        let mut s = order;
        for i in (1..shuffled.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (s >> 33) as usize % (i + 1));
        }
        let mut c = unbounded(p);
        for b in &shuffled {
            c.insert(Arc::new(b.clone()), NOW).unwrap();
        }
        prop_assert_eq!(c.tree_len(), blocks.len() + 1);
        prop_assert_eq!(c.orphan_count(), 0);
        prop_assert_eq!(c.tip_work(), reference.tip_work());
        // Ties keep the block seen first, and a block is seen when it connects: once it and
        // every ancestor have arrived. The tip is therefore predicted in every case: the
        // most-work block that connected first (the reference got blocks parents first).
        let max_work = blocks.iter().filter_map(|b| reference.work_of(&b.hash())).max().unwrap_or(Work(1));
        let winners: Vec<&Block> = blocks.iter().filter(|b| reference.work_of(&b.hash()) == Some(max_work)).collect();
        prop_assert_eq!(reference.tip().hash(), winners[0].hash());
        let arrived: std::collections::HashMap<_, _> =
            shuffled.iter().enumerate().map(|(i, b)| (b.hash(), i)).collect();
        let connected = |b: &Block| {
            let (mut at, mut h) = (arrived[&b.hash()], b.prev());
            while let Some(&i) = arrived.get(&h) {
                at = at.max(i);
                h = blocks[blocks.iter().position(|x| x.hash() == h).unwrap()].prev();
            }
            at
        };
        let first = winners.iter().map(|b| connected(b)).min().unwrap();
        let firsts: Vec<_> = winners.iter().filter(|b| connected(b) == first).map(|b| b.hash()).collect();
        // Winners that connected by the same arrival (orphans freed by one parent) tie once more.
        prop_assert!(firsts.contains(&c.tip().hash()), "tip {} not among {:?}", c.tip().hash(), firsts);
        if firsts.len() == 1 {
            prop_assert_eq!(c.tip().hash(), firsts[0]);
        }
    }

    #[test]
    fn reorg_away_and_back_restores_the_state(a_len in 1usize..12, b_extra in 1usize..6, back_extra in 1usize..4) {
        let p = Arc::new(Params::new("prop", 0));
        let g = p.genesis().as_ref().clone();
        let chain_of = |from: &Block, n: usize, salt: u64| {
            let mut v: Vec<Block> = Vec::new();
            for i in 0..n {
                let parent = v.last().unwrap_or(from).clone();
                v.push(solve(&parent, 0, vec![Item { nonce: salt + i as u64, text: "x".into() }], salt + i as u64));
            }
            v
        };
        let a = chain_of(&g, a_len, 1_000);
        let b = chain_of(&g, a_len + b_extra, 2_000);
        let a_more = chain_of(&a[a_len - 1], b_extra + back_extra, 3_000);

        let mut c = unbounded(p.clone());
        for x in &a { c.insert(Arc::new(x.clone()), NOW).unwrap(); }
        for x in &b { c.insert(Arc::new(x.clone()), NOW).unwrap(); }
        prop_assert_eq!(c.tip().hash(), b.last().unwrap().hash());
        for x in &a_more { c.insert(Arc::new(x.clone()), NOW).unwrap(); }

        let mut direct = unbounded(p);
        for x in a.iter().chain(&a_more) { direct.insert(Arc::new(x.clone()), NOW).unwrap(); }
        let best = |c: &Chain| c.best_chain().map(|x| x.hash()).collect::<Vec<_>>();
        prop_assert_eq!(best(&c), best(&direct));
        for x in a.iter().chain(&a_more) {
            prop_assert!(c.contains_item(&x.items()[0].id()));
        }
        for x in &b {
            prop_assert!(!c.contains_item(&x.items()[0].id()));
        }
    }

    #[test]
    fn every_single_field_mutation_is_rejected(field in 0usize..11, value in any::<u64>()) {
        let (p, base) = pow_base();
        let mut c = Chain::new(p.clone());
        let h0 = *base.header();
        let mut h = h0;
        let mut items = base.items().to_vec();
        match field {
            0 => h.version = h0.version.wrapping_add(1 + (value % 1000) as u32),
            1 => h.difficulty = (value % 200) as u32,
            2 => h.height = h0.height.wrapping_add(1 + value % 1_000_000),
            3 => h.timestamp_ms = h0.timestamp_ms ^ (1 + value % (1 << 40)),
            4 => h.prev.0[(value % 32) as usize] ^= 1 << (value % 8),
            5 => h.data_hash.0[(value % 32) as usize] ^= 1 << (value % 8),
            6 => h.nonce = h0.nonce.wrapping_add(1 + value % (u64::MAX - 1)),
            7 => items[0].text.push(char::from(b'a' + (value % 26) as u8)),
            8 => items[0].nonce = items[0].nonce.wrapping_add(1 + value % 1000),
            9 => items.push(Item { nonce: value, text: String::new() }),
            _ => { items.pop(); }
        }
        prop_assume!(field != 1 || h.difficulty != h0.difficulty);
        let mutated = Block::new(h, items);
        prop_assert_ne!(&mutated, &base);
        let r = c.insert(Arc::new(mutated), NOW);
        prop_assert!(r.is_err(), "mutation of field {} accepted: {:?}", field, r);
        // The original is still fine afterwards.
        prop_assert!(matches!(c.insert(Arc::new(base.clone()), NOW), Ok(Insert::Accepted(_))));
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(bytes in prop::collection::vec(any::<u8>(), 0..2048), split in 1usize..64) {
        let mut dec = FrameDecoder::new();
        for chunk in bytes.chunks(split) {
            dec.extend(chunk);
            // Bounded: each Ok(Some) consumes at least the 4-byte prefix.
            for _ in 0..bytes.len() {
                match dec.next_message() {
                    Ok(Some(m)) => { let _ = m.check_limits(); }
                    Ok(None) | Err(_) => break,
                }
            }
        }
        if let Ok(m) = Message::decode(&bytes) {
            // Whatever decodes re-encodes to the same bytes: one encoding per message.
            prop_assert_eq!(m.encode(), bytes);
        }
    }

    #[test]
    fn a_mutated_valid_block_message_never_panics(pos in any::<usize>(), byte in any::<u8>()) {
        let (_, base) = pow_base();
        let mut bytes = Message::Block { block: Arc::new(base.clone()) }.encode();
        let i = pos % bytes.len();
        bytes[i] = byte;
        if let Ok(Message::Block { block }) = Message::decode(&bytes) {
            // Whatever decoded is judged by validation, never trusted.
            let p = Arc::new(Params::new("prop-pow", 20));
            let mut c = Chain::new(p);
            let _ = c.insert(block, NOW);
        }
    }
}

/// One block at 20 bits of work on a network whose minimum is 20: changing any header field
/// breaks its proof of work except with probability 2^-20.
fn pow_base() -> (Arc<Params>, Block) {
    static BASE: OnceLock<(Arc<Params>, Block)> = OnceLock::new();
    BASE.get_or_init(|| {
        let p = Arc::new(Params::new("prop-pow", 20));
        let g = p.genesis().as_ref().clone();
        let b = solve(
            &g,
            20,
            vec![Item {
                nonce: 5,
                text: "payload".into(),
            }],
            10,
        );
        (p, b)
    })
    .clone()
}

#[test]
fn pow_base_is_valid_and_header_mutations_fail_pow() {
    let (p, base) = pow_base();
    let mut c = Chain::new(p);
    let mut h: Header = *base.header();
    h.timestamp_ms += 1;
    let r = c.insert(Arc::new(Block::new(h, base.items().to_vec())), NOW);
    assert!(
        matches!(r, Err(BlockError::ProofOfWork { need: 20, .. })),
        "{r:?}"
    );
    assert!(matches!(
        c.insert(Arc::new(base), NOW),
        Ok(Insert::Accepted(_))
    ));
}
