//! What a peer does once a block connects, on the in-memory harness: the events name the
//! connection that delivered the block (and only that block), equal-work competitors are relayed
//! once per height while lighter side blocks stay local, a pushed block is pushed on but the
//! orphans it connects are announced, a reorg puts back exactly the items the new chain lacks,
//! side-branch items the best chain already holds are not pooled again, the sender's tip is
//! raised to what it proved it holds, and a lost tie is settled only after `tie_grace`.

mod harness;

use harness::{config, Net};
use rantai_core::message::{Hello, PROTOCOL_VERSION};
use rantai_core::{
    Block, BlockHash, Config, ConnId, DisconnectReason, Event, Item, Message, Millis, MinePolicy,
    RelayPolicy, Template, Tip,
};
use std::sync::Arc;

/// Node 0 with `speakers` ready connections whose remote ends the test speaks for (nodes
/// 1..=speakers never hear node 0: every message node 0 sends is only recorded).
fn with_speakers(speakers: usize, cfg: impl Fn() -> Config) -> (Net, Vec<ConnId>) {
    let mut net = Net::new(speakers + 1, |_| cfg());
    net.record = true;
    let mut conns = Vec::new();
    for s in 1..=speakers {
        net.cut_oneway(s, 0);
        net.cut_oneway(0, s);
        net.connect(s, 0);
        let conn = net.conn_of(0, s).expect("node 0's end of the link");
        let genesis = net.peers[0].chain().tip().hash();
        let hello = Message::Hello(Box::new(Hello {
            version: PROTOCOL_VERSION,
            genesis,
            node_id: 500 + s as u64,
            tip: Tip {
                height: 0,
                hash: genesis,
                work: net.peers[0].chain().tip_work(),
            },
            listen: None,
        }));
        net.inject(0, conn, hello);
        conns.push(conn);
    }
    assert_eq!(net.ready(0), speakers);
    (net, conns)
}

/// Mines only its own items (and to break ties it holds the greater side of).
fn own_items() -> Config {
    let mut c = config();
    c.mining = MinePolicy::OwnItems;
    c
}

/// A block on `parent` stamped `at` with `items`, nonce `nonce` (difficulty 0: any nonce).
fn block_on(parent: &Block, at: Millis, items: Vec<Item>, nonce: u64) -> Arc<Block> {
    Arc::new(Template::new(parent.header(), parent.hash(), 0, at, items).into_block(nonce))
}

/// The first block on `parent` whose hash passes `keep`, trying nonces in order.
fn block_where(parent: &Block, at: Millis, keep: impl Fn(&BlockHash) -> bool) -> Arc<Block> {
    (0..10_000u64)
        .map(|n| block_on(parent, at, vec![], n))
        .find(|b| keep(&b.hash()))
        .expect("a nonce with such a hash")
}

fn send_block(net: &mut Net, conn: ConnId, block: &Arc<Block>) {
    net.inject(
        0,
        conn,
        Message::Block {
            block: block.clone(),
        },
    );
}

/// Hashes node 0 sent to `to` in `inv` messages, and the blocks it pushed there.
fn relayed_to(net: &Net, to: ConnId) -> (Vec<BlockHash>, Vec<BlockHash>) {
    let mut announced = Vec::new();
    let mut pushed = Vec::new();
    for (_, node, conn, msg) in &net.outbox {
        if *node != 0 || *conn != to {
            continue;
        }
        match msg {
            Message::Inv { hashes } => announced.extend(hashes.iter().copied()),
            Message::Block { block } => pushed.push(block.hash()),
            _ => {}
        }
    }
    (announced, pushed)
}

/// What node 0 knows of the tip at the far end of `conn`.
fn speaker_tip(net: &Net, conn: ConnId) -> Tip {
    net.peers[0]
        .peers()
        .into_iter()
        .find(|p| p.peer == conn)
        .and_then(|p| p.tip)
        .expect("a known tip")
}

fn accepted_from(net: &Net, hash: BlockHash) -> Option<Option<ConnId>> {
    net.events[0].iter().find_map(|(_, e)| match e {
        Event::BlockAccepted { block, from } if block.hash() == hash => Some(*from),
        _ => None,
    })
}

fn requeued(net: &Net) -> Vec<usize> {
    net.events[0]
        .iter()
        .filter_map(|(_, e)| match e {
            Event::ItemsRequeued { count } => Some(*count),
            _ => None,
        })
        .collect()
}

#[test]
fn acceptance_events_name_the_sender_only_for_the_block_it_delivered() {
    let (mut net, conns) = with_speakers(1, config);
    let g = net.peers[0].chain().genesis().clone();
    let b1 = block_on(&g, net.now, vec![], 1);
    let b2 = block_on(&b1, net.now, vec![], 2);
    let b3 = block_on(&b2, net.now, vec![], 3);
    send_block(&mut net, conns[0], &b1);
    // b3 waits as an orphan; b2 connects both.
    send_block(&mut net, conns[0], &b3);
    send_block(&mut net, conns[0], &b2);
    assert_eq!(net.tip_height(0), 3);
    assert_eq!(accepted_from(&net, b1.hash()), Some(Some(conns[0])));
    assert_eq!(accepted_from(&net, b2.hash()), Some(Some(conns[0])));
    assert_eq!(
        accepted_from(&net, b3.hash()),
        Some(None),
        "the orphan it connected was not its delivery"
    );
}

#[test]
fn a_block_failing_a_chain_rule_is_reported_against_its_sender() {
    let (mut net, conns) = with_speakers(1, config);
    let g = net.peers[0].chain().genesis().clone();
    // The genesis item again: valid on its own, a duplicate in this chain.
    let dup = block_on(&g, net.now, vec![g.items()[0].clone()], 1);
    send_block(&mut net, conns[0], &dup);
    let from = net.events[0].iter().find_map(|(_, e)| match e {
        Event::BlockRejected { hash, from, .. } if *hash == dup.hash() => Some(*from),
        _ => None,
    });
    assert_eq!(from, Some(Some(conns[0])));
    assert!(matches!(
        net.disconnects.last(),
        Some((0, DisconnectReason::InvalidBlock(_)))
    ));
}

#[test]
fn one_equal_work_competitor_per_height_is_relayed_and_lighter_side_blocks_stay_local() {
    let (mut net, conns) = with_speakers(2, config);
    let (from, to) = (conns[0], conns[1]);
    let g = net.peers[0].chain().genesis().clone();
    let ours = net.mine(0);
    let (announced, _) = relayed_to(&net, to);
    assert_eq!(announced, vec![ours.hash()], "our own block is announced");
    let rival = block_on(&g, net.now, vec![], 11);
    let third = block_on(&g, net.now, vec![], 12);
    send_block(&mut net, from, &rival);
    send_block(&mut net, from, &third);
    assert_eq!(net.peers[0].chain().tip().hash(), ours.hash(), "first seen");
    let (announced, _) = relayed_to(&net, to);
    assert_eq!(
        announced,
        vec![ours.hash(), rival.hash()],
        "the first competitor at a height is relayed, a second is not"
    );
    let (back, _) = relayed_to(&net, from);
    assert_eq!(back, vec![ours.hash()], "never back to the sender");
    // Node 0 moves to height 2; a block at height 1 is now lighter than the tip.
    let ours = Arc::new(ours);
    let next = block_on(&ours, net.now, vec![], 21);
    send_block(&mut net, from, &next);
    let lighter = block_on(&g, net.now, vec![], 13);
    send_block(&mut net, from, &lighter);
    assert_eq!(net.tip_height(0), 2);
    let (announced, _) = relayed_to(&net, to);
    assert_eq!(announced, vec![ours.hash(), rival.hash(), next.hash()]);
}

#[test]
fn a_pushed_block_is_pushed_on_but_the_orphans_it_connects_are_announced() {
    let (mut net, conns) = with_speakers(2, || {
        let mut c = config();
        c.relay = RelayPolicy::Push;
        c
    });
    let g = net.peers[0].chain().genesis().clone();
    let b1 = block_on(&g, net.now, vec![], 1);
    let b2 = block_on(&b1, net.now, vec![], 2);
    send_block(&mut net, conns[0], &b2);
    send_block(&mut net, conns[0], &b1);
    assert_eq!(net.tip_height(0), 2);
    let (announced, pushed) = relayed_to(&net, conns[1]);
    assert_eq!(pushed, vec![b1.hash()]);
    assert_eq!(announced, vec![b2.hash()]);
}

#[test]
fn a_reorg_puts_back_only_the_items_the_new_chain_lacks() {
    for rival_carries_it in [true, false] {
        let (mut net, conns) = with_speakers(1, own_items);
        let g = net.peers[0].chain().genesis().clone();
        let id = net.submit(0, "a line");
        net.run_for(20);
        assert_eq!(net.tip_height(0), 1, "node 0 mined its line");
        assert_eq!(net.peers[0].pending_len(), 0);
        let item = net.peers[0].chain().tip().items()[0].clone();
        assert_eq!(item.id(), id);
        // A heavier branch from genesis, with or without the line.
        let items = if rival_carries_it { vec![item] } else { vec![] };
        let c1 = block_on(&g, net.now, items, 31);
        let c2 = block_on(&c1, net.now, vec![], 32);
        send_block(&mut net, conns[0], &c1);
        send_block(&mut net, conns[0], &c2);
        assert_eq!(net.peers[0].chain().tip().hash(), c2.hash(), "reorged");
        if rival_carries_it {
            assert_eq!(net.peers[0].pending_len(), 0, "the new chain holds it");
            assert_eq!(
                requeued(&net),
                Vec::<usize>::new(),
                "no empty requeue event"
            );
        } else {
            assert_eq!(requeued(&net), vec![1]);
            assert_eq!(net.peers[0].pending_item(&id).map(Item::id), Some(id));
        }
    }
}

#[test]
fn side_branch_items_the_best_chain_holds_are_not_pooled_again() {
    let (mut net, conns) = with_speakers(1, || {
        let mut c = config();
        c.relay_items = true;
        c.mining = MinePolicy::OwnItems;
        c
    });
    let g = net.peers[0].chain().genesis().clone();
    net.submit(0, "a line");
    net.run_for(20);
    let ours = net.peers[0].chain().tip().clone();
    assert_eq!(ours.items().len(), 1);
    let item = ours.items()[0].clone();
    let extra = Item {
        nonce: 7,
        text: "only on the side branch".to_string(),
    };
    let side = block_on(&g, net.now, vec![item, extra.clone()], 41);
    send_block(&mut net, conns[0], &side);
    assert_eq!(net.peers[0].chain().tip().hash(), ours.hash());
    let pending: Vec<_> = net.peers[0].pending_items().map(Item::id).collect();
    assert_eq!(pending, vec![extra.id()], "only what the best chain lacks");
}

#[test]
fn a_sender_proves_a_heavier_tip_by_delivering_it() {
    let (mut net, conns) = with_speakers(1, config);
    let g = net.peers[0].chain().genesis().clone();
    let b1 = block_on(&g, net.now, vec![], 1);
    send_block(&mut net, conns[0], &b1);
    let tip = speaker_tip(&net, conns[0]);
    assert_eq!((tip.height, tip.hash), (1, b1.hash()));
    // An equal-work competitor it relays is not its tip: fork choice keeps the first seen.
    let rival = block_on(&g, net.now, vec![], 2);
    send_block(&mut net, conns[0], &rival);
    let tip = speaker_tip(&net, conns[0]);
    assert_eq!(tip.hash, b1.hash());
}

/// Node 0 holds B2; a neighbour delivers an equal-work R2 with a greater hash. Node 0 (no
/// hash power) adopts R2 `tie_grace` after the later of the two was mined, not before; a
/// lighter side block with an even greater hash in between changes nothing.
#[test]
fn a_lost_tie_is_settled_after_the_grace_and_not_before() {
    let (mut net, conns) = with_speakers(1, config);
    let grace = net.peers[0].config().tie_grace;
    let g = net.peers[0].chain().genesis().clone();
    net.mine(0);
    let b1 = net.peers[0].chain().tip().clone();
    net.run_for(10);
    net.mine(0);
    let b2 = net.peers[0].chain().tip().hash();
    let mined = net.now;
    let r2 = block_where(&b1, mined, |h| *h > b2);
    send_block(&mut net, conns[0], &r2);
    let lighter = block_where(&g, mined, |h| *h > r2.hash());
    send_block(&mut net, conns[0], &lighter);
    let at = |net: &Net| net.peers[0].chain().tip().hash();
    net.run_for(grace.0 - 1_000);
    assert_eq!(at(&net), b2, "still within the grace");
    net.run_for(2_000);
    assert_eq!(
        at(&net),
        r2.hash(),
        "the greater tip, once the grace ran out"
    );
}

/// How a rival's hash relates to the tip's and to the rivals sent before it.
type Pick = fn(&BlockHash, &BlockHash, &[Arc<Block>]) -> bool;

/// Node 0 (no hash power but for tie breaks) mines its tip `b1`; the speaker delivers one
/// rival at height 1 per `picks` entry (the first nonce whose hash `pick(hash, b1, earlier)`
/// accepts) and goes away, so only what node 0 noted from the blocks counts.
fn tie_at_height_one(picks: &[Pick]) -> (Net, Arc<Block>, Vec<Arc<Block>>) {
    let (mut net, conns) = with_speakers(1, own_items);
    let g = net.peers[0].chain().genesis().clone();
    net.mine(0);
    let b1 = net.peers[0].chain().tip().clone();
    let mut sent: Vec<Arc<Block>> = Vec::new();
    for pick in picks {
        let r = block_where(&g, net.now, |h| pick(h, &b1.hash(), &sent));
        send_block(&mut net, conns[0], &r);
        sent.push(r);
    }
    net.disconnect(1, 0);
    (net, b1, sent)
}

#[test]
fn the_holder_of_the_greater_tip_mines_on_it_at_once() {
    let (mut net, b1, _) = tie_at_height_one(&[|h, b1, _| h < b1]);
    net.run_for(100);
    assert_eq!(net.tip_height(0), 2, "the tie was broken");
    assert_eq!(net.peers[0].chain().tip().header().prev, b1.hash());
}

#[test]
fn a_peer_that_knows_a_greater_tip_does_not_mine_beside_a_lesser_one() {
    let (mut net, _, rivals) = tie_at_height_one(&[|h, b1, _| h < b1, |h, b1, _| h > b1]);
    net.run_for(1_000);
    assert_eq!(net.tip_height(0), 1, "no block of its own");
    net.run_for(net.peers[0].config().tie_grace.0);
    // It adopted the greater tip, and now holds the greatest in the tie: it mines on it.
    assert!(net.peers[0].chain().in_best_chain(&rivals[1].hash()));
    assert_eq!(net.tip_height(0), 2);
}

#[test]
fn after_the_grace_the_greatest_of_several_greater_tips_is_adopted() {
    let (mut net, _, rivals) = tie_at_height_one(&[
        |h, b1, _| h > b1,
        |h, b1, sent| h > b1 && *h < sent[0].hash(),
    ]);
    net.run_for(net.peers[0].config().tie_grace.0 + 1_000);
    assert_eq!(net.peers[0].chain().tip().hash(), rivals[0].hash());
}

/// A rival noted at one height is stale once the tip moves on; a tie at the new height
/// replaces it, above and below.
#[test]
fn a_stale_rival_gives_way_to_a_tie_at_the_next_height() {
    for above in [true, false] {
        let (mut net, conns) = with_speakers(1, own_items);
        let g = net.peers[0].chain().genesis().clone();
        net.mine(0);
        let b1 = net.peers[0].chain().tip().clone();
        // A rival at height 1: the greatest (or least) of many hashes.
        let candidates = (0..200u64)
            .map(|n| block_on(&g, net.now, vec![], n))
            .filter(|b| b.hash() != b1.hash());
        let r1 = if above {
            candidates.max_by_key(|b| b.hash())
        } else {
            candidates.min_by_key(|b| b.hash())
        }
        .expect("rivals");
        send_block(&mut net, conns[0], &r1);
        let b2 = block_on(&b1, net.now, vec![], 1);
        send_block(&mut net, conns[0], &b2);
        assert_eq!(net.peers[0].chain().tip().hash(), b2.hash());
        let r2 = block_where(&b1, net.now, |h| {
            if above {
                *h > b2.hash() && *h < r1.hash()
            } else {
                *h < b2.hash() && *h > r1.hash()
            }
        });
        send_block(&mut net, conns[0], &r2);
        net.disconnect(1, 0);
        if above {
            net.run_for(net.peers[0].config().tie_grace.0 + 1_000);
            assert_eq!(net.peers[0].chain().tip().hash(), r2.hash(), "adopted");
        } else {
            net.run_for(100);
            assert_eq!(net.tip_height(0), 3, "broke the tie at height 2");
            assert_eq!(net.peers[0].chain().tip().header().prev, b2.hash());
        }
    }
}

/// `all-items` mines pending items only when settled: no neighbour claims more work.
#[test]
fn all_items_mining_waits_while_a_neighbour_claims_more_work() {
    for neighbour_ahead in [true, false] {
        let (mut net, conns) = with_speakers(1, || {
            let mut c = config();
            c.mining = MinePolicy::AllItems;
            c
        });
        net.mine(0);
        let claim = if neighbour_ahead {
            Tip {
                height: 9,
                hash: BlockHash::default(),
                work: rantai_core::Work(u128::from(u64::MAX)),
            }
        } else {
            let g = net.peers[0].chain().genesis().hash();
            Tip {
                height: 0,
                hash: g,
                work: net.peers[0].chain().work_of(&g).expect("genesis work"),
            }
        };
        net.inject(
            0,
            conns[0],
            Message::Ping {
                nonce: 1,
                tip: claim,
            },
        );
        net.submit(0, "a line");
        net.run_for(100);
        let expect = if neighbour_ahead { 1 } else { 2 };
        assert_eq!(
            net.tip_height(0),
            expect,
            "neighbour ahead: {neighbour_ahead}"
        );
    }
}

/// With item gossip, an item goes on to every other neighbour once: not back to its sender,
/// and not again when a second neighbour sends it too.
#[test]
fn a_gossiped_item_goes_to_each_other_neighbour_once() {
    let (mut net, conns) = with_speakers(3, || {
        let mut c = config();
        c.relay_items = true;
        c
    });
    let item = Item {
        nonce: 3,
        text: "gossip".to_string(),
    };
    let items_to = |net: &Net, to: ConnId| -> usize {
        net.outbox
            .iter()
            .filter(|(_, n, c, _)| *n == 0 && *c == to)
            .map(|(_, _, _, m)| match m {
                Message::Items { items } => items.iter().filter(|i| **i == item).count(),
                _ => 0,
            })
            .sum()
    };
    let send = |net: &mut Net, from: ConnId| {
        let items = vec![item.clone()];
        net.inject(0, from, Message::Items { items });
    };
    send(&mut net, conns[0]);
    send(&mut net, conns[1]);
    assert_eq!(net.peers[0].pending_len(), 1);
    assert_eq!(items_to(&net, conns[0]), 0, "not back to its sender");
    assert_eq!(items_to(&net, conns[1]), 1, "once");
    assert_eq!(
        items_to(&net, conns[2]),
        1,
        "once, though two neighbours sent it"
    );
}
