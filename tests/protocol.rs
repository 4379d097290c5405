//! The peer protocol end to end on the in-memory harness: handshake, both relay policies,
//! catch-up, stalls, forks, misbehaviour and the nothing-lost rule.

mod harness;

use harness::{config, Net};
use rantai_core::{DisconnectReason, Event, LoadPurpose, Message, Params, RelayPolicy, Violation};
use std::collections::BTreeMap;

fn line(n: usize, relay: RelayPolicy) -> Net {
    let mut net = Net::new(n, |_| {
        let mut c = config();
        c.relay = relay;
        c
    });
    for i in 1..n {
        net.connect(i - 1, i);
    }
    net
}

#[test]
fn handshake_completes_both_ways() {
    let mut net = line(2, RelayPolicy::Announce);
    assert!(net.run_until(1_000, |n| n.ready(0) == 1 && n.ready(1) == 1));
    let ready = |e: &Event| matches!(e, Event::PeerReady { .. });
    assert!(net.events[0].iter().any(|(_, e)| ready(e)));
    assert!(net.events[1].iter().any(|(_, e)| ready(e)));
}

#[test]
fn peer_of_another_network_is_refused() {
    let mut net = Net::new(2, |i| {
        let mut c = config();
        if i == 1 {
            c.params = std::sync::Arc::new(Params::new("elsewhere", 0));
        }
        c
    });
    net.connect(0, 1);
    net.run_for(1_000);
    assert_eq!(net.ready(0), 0);
    assert!(net
        .disconnects
        .iter()
        .any(|(_, r)| matches!(r, DisconnectReason::WrongNetwork { .. })));
}

fn relay_reaches_everyone(relay: RelayPolicy) -> Net {
    let mut net = line(6, relay);
    net.run_for(500);
    for _ in 0..3 {
        net.mine(0);
        net.run_for(1_000);
    }
    let all: Vec<usize> = (0..6).collect();
    assert!(net.same_tip(&all), "{relay:?}: all six peers share the tip");
    assert_eq!(net.tip_height(5), 3);
    net
}

#[test]
fn announce_relay_uses_inv_and_requests() {
    let net = relay_reaches_everyone(RelayPolicy::Announce);
    assert!(net.sent.get("inv").copied().unwrap_or(0) >= 15);
    assert!(net.sent.get("get_blocks").copied().unwrap_or(0) >= 15);
    // Each block crosses each of the 5 links exactly once.
    assert_eq!(net.sent.get("block").copied(), Some(15));
}

#[test]
fn push_relay_sends_whole_blocks_without_requests() {
    let net = relay_reaches_everyone(RelayPolicy::Push);
    assert_eq!(net.sent.get("get_blocks").copied().unwrap_or(0), 0);
    assert_eq!(net.sent.get("block").copied(), Some(15));
}

#[test]
fn block_is_relayed_once_per_neighbour_in_a_mesh() {
    let mut net = Net::new(5, |_| config());
    for a in 0..5 {
        for b in a + 1..5 {
            net.connect(a, b);
        }
    }
    net.run_for(500);
    net.mine(0);
    net.run_for(1_000);
    assert!(net.same_tip(&[0, 1, 2, 3, 4]));
    // Announce relay: every node receives the block body exactly once.
    assert_eq!(net.sent.get("block").copied(), Some(4));
}

#[test]
fn late_joiner_catches_up_in_batches() {
    let mut net = Net::new(3, |_| {
        let mut c = config();
        c.sync_batch = 7;
        c
    });
    net.connect(0, 1);
    net.run_for(500);
    for _ in 0..60 {
        net.mine(0);
    }
    assert!(net.run_until(5_000, |n| n.tip_height(1) == 60));
    net.connect(2, 1);
    assert!(net.run_until(10_000, |n| n.same_tip(&[0, 1, 2])));
    assert_eq!(net.tip_height(2), 60);
    assert!(net.sent.get("get_chain").copied().unwrap_or(0) >= 60 / 7);
}

#[test]
fn catch_up_moves_on_when_a_peer_stalls() {
    let mut net = Net::new(3, |_| config());
    net.connect(0, 1);
    net.run_for(500);
    for _ in 0..20 {
        net.mine(0);
    }
    assert!(net.run_until(5_000, |n| n.tip_height(1) == 20));
    // Node 2 connects to both; node 0 answers the handshake and then goes silent.
    net.connect(2, 0);
    net.run_for(50);
    net.cut_oneway(0, 2);
    net.connect(2, 1);
    assert!(
        net.run_until(30_000, |n| n.tip_height(2) == 20),
        "caught up from node 1"
    );
}

#[test]
fn forks_resolve_to_the_heavier_chain_with_reorg() {
    let mut net = line(2, RelayPolicy::Announce);
    net.run_for(500);
    net.partition(0, 1);
    for _ in 0..3 {
        net.mine(0);
    }
    // Later timestamps: the two sides' blocks differ even though both carry no items.
    net.run_for(100);
    for _ in 0..5 {
        net.mine(1);
    }
    net.run_for(100);
    assert_ne!(
        net.peers[0].chain().tip().hash(),
        net.peers[1].chain().tip().hash()
    );
    net.heal(0, 1);
    // Keepalive pings carry the tip, so the lighter side notices and catches up.
    assert!(net.run_until(20_000, |n| n.same_tip(&[0, 1])));
    assert_eq!(net.tip_height(0), 5);
    let reorg = net.events[0].iter().find_map(|(_, e)| match e {
        Event::Reorg { left, joined } => Some((left.len(), joined.len())),
        _ => None,
    });
    // The switch happens when the fourth block of the longer side arrives.
    assert_eq!(reorg, Some((3, 4)));
}

#[test]
fn nothing_lost_when_a_block_loses_the_fork_race() {
    let mut net = Net::new(3, |_| {
        let mut c = config();
        c.mining = rantai_core::MinePolicy::OwnItems;
        c
    });
    net.connect(0, 1);
    net.connect(1, 2);
    net.run_for(500);
    net.partition(0, 1);
    let mut ids = Vec::new();
    for k in 0..4 {
        ids.push(net.submit(0, &format!("left {k}")));
        net.run_for(50);
    }
    for k in 0..6 {
        ids.push(net.submit(2, &format!("right {k}")));
        net.run_for(50);
    }
    net.run_for(500);
    assert!(net.tip_height(0) >= 1 && net.tip_height(2) >= 1);
    net.heal(0, 1);
    assert!(net.run_until(30_000, |n| {
        n.same_tip(&[0, 1, 2]) && ids.iter().all(|id| n.peers[0].chain().contains_item(id))
    }));
    // Exactly once in the final best chain, at every node.
    for p in &net.peers {
        let mut count: BTreeMap<_, usize> = BTreeMap::new();
        for b in p.chain().best_chain() {
            for id in b.item_ids() {
                *count.entry(id).or_default() += 1;
            }
        }
        for id in &ids {
            assert_eq!(count.get(id), Some(&1), "item {id} exactly once");
        }
        assert_eq!(p.pending_len(), 0);
    }
    assert!(net.events[0]
        .iter()
        .any(|(_, e)| matches!(e, Event::ItemsRequeued { .. })));
}

#[test]
fn items_relay_to_a_miner_when_enabled() {
    let mut net = Net::new(3, |_| {
        let mut c = config();
        c.relay_items = true;
        c
    });
    net.connect(0, 1);
    net.connect(1, 2);
    net.run_for(500);
    let id = net.submit(2, "from a non-miner");
    net.run_for(200);
    assert_eq!(net.peers[0].pending_len(), 1);
    net.mine(0);
    assert!(net.run_until(2_000, |n| n.peers[2].chain().contains_item(&id)));
    assert_eq!(net.peers[2].pending_len(), 0);
}

#[test]
fn invalid_block_disconnects_the_sender_and_keeps_the_chain() {
    let mut net = line(2, RelayPolicy::Push);
    net.run_for(500);
    let good = net.mine(0);
    net.run_for(500);
    assert_eq!(net.tip_height(1), 1);
    // A block claiming more work than its hash has.
    let mut h = *good.header();
    h.difficulty = 30;
    let bad = rantai_core::Block::new(h, good.items().to_vec());
    let conn = net.conn_of(1, 0).expect("linked");
    net.inject(
        1,
        conn,
        Message::Block {
            block: std::sync::Arc::new(bad),
        },
    );
    assert!(net
        .disconnects
        .iter()
        .any(|(n, r)| *n == 1 && matches!(r, DisconnectReason::InvalidBlock(_))));
    assert_eq!(net.tip_height(1), 1);
    assert_eq!(net.peers[1].chain().tip().hash(), good.hash());
}

#[test]
fn silent_peer_times_out_and_message_before_hello_is_a_violation() {
    let mut net = Net::new(2, |_| config());
    net.cut_oneway(1, 0);
    net.connect(0, 1);
    net.run_for(5_000);
    assert!(net
        .disconnects
        .iter()
        .any(|(n, r)| *n == 0 && *r == DisconnectReason::HandshakeTimeout));

    let mut net = Net::new(2, |_| config());
    net.cut_oneway(1, 0);
    net.connect(0, 1);
    let conn = net.conn_of(0, 1).unwrap();
    net.inject(0, conn, Message::GetAddr);
    assert!(net
        .disconnects
        .iter()
        .any(|(_, r)| *r == DisconnectReason::Protocol(Violation::MessageBeforeHello)));
}

#[test]
fn keepalive_drops_a_peer_that_stops_answering() {
    let mut net = line(2, RelayPolicy::Announce);
    assert!(net.run_until(1_000, |n| n.ready(0) == 1));
    net.cut_oneway(1, 0);
    // Ping every 5 s, pong deadline 3 s, three misses: gone within 20 s.
    net.run_for(8_000);
    assert_eq!(
        net.peers[0].connection_count(),
        1,
        "one lost pong is tolerated"
    );
    net.run_for(12_000);
    assert!(net
        .disconnects
        .iter()
        .any(|(n, r)| *n == 0 && *r == DisconnectReason::PingTimeout));
    assert_eq!(net.peers[0].connection_count(), 0);
}

#[test]
fn announcement_flood_is_bounded_and_ends_in_disconnect() {
    let mut net = line(2, RelayPolicy::Announce);
    net.run_for(500);
    let conn = net.conn_of(1, 0).unwrap();
    net.cut_oneway(0, 1);
    for k in 0..100u32 {
        let hashes = (0..1000u32)
            .map(|i| rantai_core::types::sha256(&(k * 1000 + i).to_le_bytes()))
            .collect();
        net.inject(1, conn, Message::Inv { hashes });
    }
    net.run_for(60_000);
    assert_eq!(net.peers[1].connection_count(), 0, "flooder dropped");
    assert!(net.disconnects.iter().any(
        |(n, r)| *n == 1 && (r.is_misbehaviour() || matches!(r, DisconnectReason::Stalled(_)))
    ));
}

#[test]
fn addresses_are_exchanged() {
    let mut net = Net::new(3, |i| {
        let mut c = config();
        c.listen_addr = Some(format!("10.0.0.{i}:3000"));
        c
    });
    net.connect(0, 1);
    net.connect(2, 1);
    net.run_for(1_000);
    // Node 2 dialled 1 and asked for addresses: it learns node 0's.
    assert!(net.peers[2].addrs().any(|a| a == "10.0.0.0:3000"));
}

#[test]
fn same_seed_same_history() {
    let run = || {
        let mut net = Net::new(4, |_| {
            let mut c = config();
            c.mining = rantai_core::MinePolicy::OwnItems;
            c
        });
        net.connect(0, 1);
        net.connect(1, 2);
        net.connect(2, 3);
        net.connect(3, 0);
        net.run_for(300);
        for k in 0..8 {
            net.submit(k % 4, &format!("x{k}"));
            net.run_for(7);
        }
        net.run_for(5_000);
        (net.peers[0].chain().tip().hash(), net.sent.clone())
    };
    assert_eq!(run(), run());
}

#[test]
fn block_repeating_an_item_costs_the_sender_not_the_relayer() {
    let mut net = line(3, RelayPolicy::Announce);
    net.run_for(500);
    net.mine(0);
    net.run_for(500);
    // Node 0 turns hostile: a block on the shared tip that repeats the genesis item.
    let tip = net.peers[1].chain().tip().clone();
    let genesis_item = net.peers[1].chain().genesis().items()[0].clone();
    let bad = rantai_core::Template::new(tip.header(), tip.hash(), 0, net.now, vec![genesis_item])
        .into_block(0);
    let conn = net.conn_of(1, 0).unwrap();
    net.inject(
        1,
        conn,
        Message::Block {
            block: std::sync::Arc::new(bad.clone()),
        },
    );
    net.run_for(2_000);
    assert!(net.disconnects.iter().any(|(n, r)| *n == 1
        && matches!(
            r,
            DisconnectReason::InvalidBlock(rantai_core::BlockError::DuplicateItem(_))
        )));
    assert!(!net.peers[2].chain().knows(&bad.hash()), "never relayed");
    assert_eq!(net.ready(1), 1, "node 1 keeps its honest neighbour");
    assert_eq!(net.peers[1].chain().tip().hash(), tip.hash());
}

#[test]
fn equal_work_fork_is_broken_and_keeps_both_sides_items() {
    let mut net = Net::new(2, |_| {
        let mut c = config();
        c.mining = rantai_core::MinePolicy::OwnItems;
        c
    });
    let a = net.submit(0, "left");
    let b = net.submit(1, "right");
    net.run_for(500);
    assert_eq!((net.tip_height(0), net.tip_height(1)), (1, 1));
    net.connect(0, 1);
    assert!(net.run_until(20_000, |n| {
        n.same_tip(&[0, 1]) && [a, b].iter().all(|id| n.peers[0].chain().contains_item(id))
    }));
}

#[test]
fn oversized_or_repeated_get_blocks_is_refused() {
    let mut net = line(2, RelayPolicy::Announce);
    net.run_for(500);
    let b = net.mine(0);
    net.run_for(500);
    let conn = net.conn_of(0, 1).unwrap();
    net.inject(
        0,
        conn,
        Message::GetBlocks {
            hashes: vec![b.hash(); 200].into(),
        },
    );
    assert!(net
        .disconnects
        .iter()
        .any(|(_, r)| *r == DisconnectReason::Protocol(Violation::GetBlocksOverLimit)));
}

/// A driver that reuses a live connection id replaces the connection; the old one's timer
/// must go with it (a leftover deadline would ask for timeouts forever).
#[test]
fn reusing_a_live_connection_id_leaves_one_timer() {
    use rantai_core::{Config, ConnId, Direction, Input, Millis, Peer};
    let mut p = Peer::new(Config::new(Params::dev()), 1);
    let connect = |p: &mut Peer, at: u64| {
        p.handle(
            Millis(at),
            Input::Connected {
                peer: ConnId(7),
                direction: Direction::Outbound,
                addr: None,
            },
        );
        while p.poll().is_some() {}
    };
    connect(&mut p, 0);
    assert_eq!(p.poll_timeout(), Some(Millis(10_000)));
    connect(&mut p, 5_000);
    assert_eq!(p.connection_count(), 1);
    assert_eq!(p.poll_timeout(), Some(Millis(15_000)));
}

#[test]
fn a_peer_catching_up_from_a_node_with_evicted_bodies_gets_every_block() {
    let mut net = Net::new(2, |i| {
        let mut c = config();
        c.body_cache_blocks = (i == 0).then_some(4);
        c
    });
    for k in 0..30 {
        net.submit(0, &format!("line {k}"));
        net.mine(0);
    }
    let evicted = net.peers[0]
        .chain()
        .best_chain()
        .filter(|b| b.body().is_none())
        .count();
    assert_eq!(
        evicted, 26,
        "heights 1..=26 evicted, 27..=30 and genesis kept"
    );
    net.connect(1, 0);
    assert!(net.run_until(10_000, |n| n.tip_height(1) == 30));
    // Every block arrived whole (a body-less block would have failed its data hash).
    let texts: Vec<String> = net.peers[1]
        .chain()
        .best_chain()
        .skip(1)
        .flat_map(|b| b.body().expect("no cache, all bodies").items().to_vec())
        .map(|it| it.text)
        .collect();
    assert_eq!(
        texts,
        (0..30).map(|k| format!("line {k}")).collect::<Vec<_>>()
    );
    let served: usize = net
        .loads
        .iter()
        .filter(|(n, p, _)| *n == 0 && matches!(p, LoadPurpose::Serve(_)))
        .map(|(_, _, k)| k)
        .sum();
    assert_eq!(served, 26, "each evicted block read once");
    assert!(net.disconnects.is_empty());
}

#[test]
fn a_get_blocks_for_evicted_blocks_is_answered_after_the_load_and_unknown_ones_not_found() {
    let mut net = Net::new(2, |i| {
        let mut c = config();
        c.body_cache_blocks = (i == 0).then_some(2);
        c
    });
    net.connect(1, 0);
    assert!(net.run_until(1_000, |n| n.ready(0) == 1));
    let blocks: Vec<_> = (0..5).map(|_| net.mine(0)).collect();
    assert!(net.run_until(2_000, |n| n.tip_height(1) == 5));
    let conn = net.conn_of(0, 1).expect("linked");
    let sent_before = net.sent.get("block").copied().unwrap_or(0);
    let unknown = rantai_core::BlockHash::ZERO;
    net.inject(
        0,
        conn,
        Message::GetBlocks {
            hashes: [blocks[0].hash(), blocks[4].hash(), unknown]
                .into_iter()
                .collect(),
        },
    );
    // The held tip goes at once; the evicted block after the store read.
    assert_eq!(net.sent.get("block").copied().unwrap_or(0), sent_before + 1);
    assert_eq!(
        net.loads.last(),
        Some(&(0, LoadPurpose::Serve(conn), 1)),
        "one read, for the evicted block only"
    );
    net.run_for(5);
    assert_eq!(net.sent.get("block").copied().unwrap_or(0), sent_before + 2);
    assert!(net.sent.get("not_found").copied().unwrap_or(0) >= 1);
}

/// Bodies read back from the store are checked before they are served: an intact one is sent
/// (and no `not_found` with it), while one missing from disk, one whose data no longer matches
/// its header, and one of another tree are answered `not_found`, never sent.
#[test]
fn served_bodies_from_the_store_must_be_ours_and_intact() {
    use rantai_core::{Block, Item};
    use std::sync::Arc;
    let mut net = Net::new(2, |i| {
        let mut c = config();
        c.body_cache_blocks = (i == 0).then_some(1);
        c
    });
    net.connect(1, 0);
    assert!(net.run_until(1_000, |n| n.ready(0) == 1));
    let blocks: Vec<_> = (0..5).map(|_| net.mine(0)).collect();
    assert!(net.run_until(2_000, |n| n.tip_height(1) == 5));
    let conn = net.conn_of(0, 1).expect("linked");
    let count = |net: &Net, kind: &str| net.sent.get(kind).copied().unwrap_or(0);
    // Asks node 0 for one evicted block; returns how many blocks and not_founds it sent.
    let ask = |net: &mut Net, hash| {
        let (blocks_before, nf_before) = (count(net, "block"), count(net, "not_found"));
        net.inject(
            0,
            conn,
            Message::GetBlocks {
                hashes: [hash].into_iter().collect(),
            },
        );
        net.run_for(5);
        (
            count(net, "block") - blocks_before,
            count(net, "not_found") - nf_before,
        )
    };
    assert_eq!(ask(&mut net, blocks[0].hash()), (1, 0), "intact on disk");
    net.disks[0].remove(&blocks[1].hash());
    assert_eq!(ask(&mut net, blocks[1].hash()), (0, 1), "gone from disk");
    let corrupt = Block::new(
        *blocks[2].header(),
        vec![Item {
            nonce: 9,
            text: "not what was mined".into(),
        }],
    );
    net.disks[0].insert(blocks[2].hash(), Arc::new(corrupt));
    assert_eq!(
        ask(&mut net, blocks[2].hash()),
        (0, 1),
        "data does not match"
    );
    let foreign = rantai_core::Template::new(
        blocks[3].header(),
        rantai_core::BlockHash::ZERO,
        0,
        rantai_core::Millis(5),
        vec![],
    )
    .into_block(1);
    net.disks[0].insert(blocks[3].hash(), Arc::new(foreign));
    assert_eq!(
        ask(&mut net, blocks[3].hash()),
        (0, 1),
        "not a block of our tree"
    );
    assert_eq!(net.ready(0), 1);
}

#[test]
fn items_of_evicted_blocks_return_to_the_pool_after_a_deep_reorg() {
    let mut net = Net::new(2, |i| {
        let mut c = config();
        c.body_cache_blocks = (i == 0).then_some(2);
        c
    });
    let mut ids = Vec::new();
    for k in 0..5 {
        ids.push(net.submit(0, &format!("mine {k}")));
        net.mine(0);
    }
    for _ in 0..8 {
        net.mine(1);
    }
    net.connect(0, 1);
    assert!(net.run_until(10_000, |n| n.same_tip(&[0, 1]) && n.tip_height(0) == 8));
    net.run_for(10); // the store read
    let requeue_reads = net
        .loads
        .iter()
        .filter(|(n, p, _)| *n == 0 && *p == LoadPurpose::Requeue)
        .map(|(_, _, k)| k)
        .sum::<usize>();
    assert_eq!(
        requeue_reads, 3,
        "heights 1..=3 were evicted when they left"
    );
    assert_eq!(
        net.peers[0].pending_len(),
        5,
        "all five items back in the pool"
    );
    let pending: Vec<_> = net.peers[0].pending_items().map(|it| it.id()).collect();
    for id in &ids {
        assert!(pending.contains(id));
    }
    net.mine(0);
    assert!(ids.iter().all(|id| net.peers[0].chain().contains_item(id)));
}

#[test]
fn a_peer_resuming_with_evicted_side_blocks_loads_them_to_requeue_their_items() {
    use rantai_core::{Chain, Input, Millis, Output, Peer};
    use std::sync::Arc;
    let cfg = || {
        let mut c = config();
        c.body_cache_blocks = Some(2);
        c
    };
    // A side branch of one block with an item, then a best chain six blocks long.
    let mut side = Peer::new(cfg(), 1);
    let id = side
        .submit(Millis(1_000), "on the side".into())
        .expect("queued");
    let lost = side
        .block_template(Millis(1_000))
        .solve(&Default::default())
        .expect("solvable");
    let mut chain = Chain::new(Arc::new(Params::dev()));
    chain.set_body_cache(Some(2));
    let mut tip = chain.genesis().clone();
    for k in 0..6u64 {
        let b = rantai_core::Template::new(tip.header(), tip.hash(), 0, Millis(1_000 + k), vec![])
            .solve(&Default::default())
            .expect("solvable");
        tip = Arc::new(b);
        chain.insert(tip.clone(), Millis(2_000)).expect("valid");
    }
    chain
        .insert(Arc::new(lost.clone()), Millis(2_000))
        .expect("valid");
    assert!(chain.body(&lost.hash()).is_none(), "evicted on arrival");
    let mut peer = Peer::with_chain(cfg(), 2, chain);
    let mut asked = Vec::new();
    while let Some(out) = peer.poll() {
        if let Output::LoadBlocks { hashes, purpose } = out {
            asked.push((hashes, purpose));
        }
    }
    assert_eq!(asked, vec![(vec![lost.hash()], LoadPurpose::Requeue)]);
    assert_eq!(peer.pending_len(), 0);
    peer.handle(
        Millis(2_000),
        Input::BlocksLoaded {
            purpose: LoadPurpose::Requeue,
            blocks: vec![Arc::new(lost)],
            missing: vec![],
        },
    );
    assert_eq!(
        peer.pending_items().map(|it| it.id()).collect::<Vec<_>>(),
        vec![id]
    );
}
