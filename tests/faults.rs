//! Regressions from the fault campaign (`rantai-sim vopr`), each the smallest story that showed
//! the bug on the in-memory harness: lost requests, lost items, the catch-up loop, a peer that
//! announces and never serves, and a valid line too large to relay.

mod harness;

use harness::{config, Net};
use rantai_core::{Chain, Config, Item, Millis, Params, Peer, RelayPolicy, SubmitError, Template};
use std::sync::Arc;

/// Test config with a request timeout long enough that only the loss probes can explain a
/// fast recovery.
fn slow_timeout_config(relay: RelayPolicy) -> Config {
    let mut c = config();
    c.relay = relay;
    c.request_timeout = Millis::from_secs(60);
    c.ping_interval = Some(Millis::from_secs(30));
    c.pong_timeout = Millis::from_secs(20);
    c
}

fn sent(net: &Net, kind: &str) -> u64 {
    net.sent.get(kind).copied().unwrap_or(0)
}

#[test]
fn lost_block_request_is_resent_after_a_probe_not_the_request_timeout() {
    let mut net = Net::new(2, |_| slow_timeout_config(RelayPolicy::Announce));
    net.connect(0, 1);
    net.run_for(500);
    net.lose.push((1, "get_blocks", 1));
    let b = net.mine(0);
    assert!(
        net.run_until(5_000, |n| n.peers[1].chain().contains(&b.hash())),
        "the block arrived within 5 s although its request was lost (timeout 60 s)"
    );
    assert_eq!(sent(&net, "get_blocks"), 2, "one lost request, one re-sent");
    assert!(net.disconnects.is_empty());
}

#[test]
fn lost_answer_to_a_catch_up_request_is_asked_again() {
    let mut net = Net::new(2, |_| slow_timeout_config(RelayPolicy::Announce));
    for _ in 0..5 {
        net.mine(0);
    }
    net.lose.push((0, "chain_hashes", 1));
    net.connect(1, 0);
    assert!(
        net.run_until(5_000, |n| n.tip_height(1) == 5),
        "caught up within 5 s although the first chain_hashes was lost"
    );
    assert_eq!(sent(&net, "get_chain"), 2);
}

#[test]
fn lost_items_message_does_not_lose_the_item() {
    let mut net = Net::new(2, |_| {
        let mut c = config();
        c.relay_items = true;
        c
    });
    net.connect(0, 1);
    net.run_for(500);
    net.lose.push((0, "items", 1));
    let id = net.submit(0, "typed at node 0");
    net.run_for(1_000);
    assert_eq!(
        net.peers[1].pending_len(),
        0,
        "the only items message was lost"
    );
    // Pending for longer than a ping interval (5 s here): re-sent with the next ping.
    assert!(
        net.run_until(15_000, |n| n.peers[1].pending_len() == 1),
        "the item reached node 1 with a keepalive"
    );
    net.mine(1);
    assert!(net.run_until(2_000, |n| n.peers[0].chain().contains_item(&id)));
}

/// Items (count, bytes) in each `items` message node 0 sent since outbox entry `from`.
fn items_sent(net: &Net, from: usize) -> Vec<(usize, usize)> {
    net.outbox[from..]
        .iter()
        .filter_map(|(_, node, _, m)| match m {
            rantai_core::Message::Items { items } if *node == 0 => {
                Some((items.len(), items.iter().map(Item::encoded_len).sum()))
            }
            _ => None,
        })
        .collect()
}

/// Two linked nodes that pool plenty of items, node 0 recording what it sends; returns once
/// node 0 has sent its first keepalive ping (the harness clock then stands at that ping).
fn pinging_pair() -> Net {
    let mut net = Net::new(2, |_| {
        let mut c = config();
        c.relay_items = true;
        c.max_pending_items = 4_000;
        c.max_pending_bytes = 64 << 20;
        let mut params = Params::dev();
        params.max_block_data_bytes = 2 << 20;
        c.params = Arc::new(params);
        c
    });
    net.record = true;
    net.connect(0, 1);
    assert!(net.run_until(10_000, |n| n
        .outbox
        .iter()
        .any(|(_, node, _, m)| *node == 0 && m.kind() == "ping")));
    net
}

/// Items still pending a ping interval after they entered the pool are re-sent with that
/// keepalive (exactly then, not one interval later), at most one full message's worth per
/// ping (256 items), resuming where the last one stopped.
#[test]
fn stale_items_are_resent_one_full_message_per_ping() {
    let mut net = pinging_pair();
    // Each submission is gossiped at once, in a message of its own: all 300 are lost.
    net.lose.push((0, "items", 300));
    for k in 0..300 {
        net.submit(0, &format!("item {k}"));
    }
    let from = net.outbox.len();
    net.run_for(10);
    assert_eq!(net.peers[1].pending_len(), 0, "all lost");
    net.run_for(4_990);
    assert_eq!(
        items_sent(&net, from)
            .iter()
            .map(|c| c.0)
            .collect::<Vec<_>>(),
        vec![256]
    );
    net.run_for(20);
    assert_eq!(net.peers[1].pending_len(), 256);
    // The next ping resumes after the last item re-sent, not at it.
    let from = net.outbox.len();
    net.run_for(5_000);
    let second: Vec<String> = net.outbox[from..]
        .iter()
        .filter_map(|(_, node, _, m)| match m {
            rantai_core::Message::Items { items } if *node == 0 => Some(items[0].text.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(second, vec!["item 256".to_string()]);
    assert_eq!(net.peers[1].pending_len(), 300);
}

/// A re-send also stops at the message byte bound: four items that fill it exactly go in one
/// message, and a fifth waits for the next ping.
#[test]
fn stale_items_are_resent_up_to_the_message_byte_bound_exactly() {
    use rantai_core::block::ITEM_OVERHEAD;
    use rantai_core::message::MAX_ITEMS_MSG_BYTES;
    let mut net = pinging_pair();
    net.lose.push((0, "items", 5));
    let quarter = MAX_ITEMS_MSG_BYTES / 4;
    let last = MAX_ITEMS_MSG_BYTES - 3 * quarter;
    let from = net.outbox.len();
    for (k, len) in [quarter, quarter, quarter, last, 100]
        .into_iter()
        .enumerate()
    {
        net.submit(0, &format!("{k}{}", "b".repeat(len - ITEM_OVERHEAD - 1)));
    }
    net.run_for(5_000);
    assert_eq!(
        items_sent(&net, from),
        [
            (1, quarter),
            (1, quarter),
            (1, quarter),
            (1, last),
            (1, 100),
            (4, MAX_ITEMS_MSG_BYTES)
        ],
        "the lost sends, one item each, then the re-send"
    );
}

#[test]
fn catch_up_does_not_loop_while_its_batch_is_requested_from_a_non_server() {
    // Node 2 announces what it has but never delivers a block (its block messages are lost).
    let mut net = Net::new(3, |_| slow_timeout_config(RelayPolicy::Announce));
    net.connect(0, 2);
    net.run_for(500);
    let b = net.mine(0);
    assert!(net.run_until(2_000, |n| n.peers[2].chain().contains(&b.hash())));
    net.lose.push((2, "block", u32::MAX));
    net.connect(1, 2);
    net.run_for(200);
    // Node 1 has requested the block from node 2. Node 0 now offers the same batch: before the
    // fix, every answer left catch-up unset and node 1 asked node 0 again at once, every round
    // trip, until node 2's request timed out (about 3,000 get_chain in 60 s).
    net.connect(1, 0);
    assert!(
        net.run_until(20_000, |n| n.peers[1].chain().contains(&b.hash())),
        "node 1 got the block from node 0 after node 2's requests proved lost"
    );
    assert!(
        sent(&net, "get_chain") <= 6,
        "{} get_chain sent",
        sent(&net, "get_chain")
    );
}

#[test]
fn peer_that_answers_pings_but_never_serves_is_dropped_quickly() {
    let mut net = Net::new(2, |_| slow_timeout_config(RelayPolicy::Announce));
    net.connect(0, 1);
    net.run_for(500);
    net.lose.push((0, "block", u32::MAX));
    net.mine(0);
    // Three strikes, each after a few probe rounds of re-sent requests: far less than three
    // 60 s request timeouts.
    assert!(
        net.run_until(60_000, |n| !n.disconnects.is_empty()),
        "the non-serving peer was disconnected within 60 s"
    );
    assert!(net
        .disconnects
        .iter()
        .any(|(n, r)| *n == 1 && matches!(r, rantai_core::DisconnectReason::Stalled(_))));
    assert!(sent(&net, "get_blocks") <= 16, "requests stay bounded");
}

/// 900,000 control characters took 5.4 MB as JSON, over the frame limit; in the binary
/// encoding each is one byte, so the line is an ordinary item that a block carries.
#[test]
fn a_line_of_control_characters_is_an_ordinary_item() {
    let mut peer = Peer::new(Config::new(Params::dev()), 1);
    let line = "\u{1}".repeat(900_000);
    assert!(peer.submit(Millis(0), line.clone()).is_ok());
    let block = peer.block_template(Millis(1)).into_block(0);
    assert_eq!(block.items()[0].text, line);
    let msg = rantai_core::Message::Block {
        block: Arc::new(block),
    };
    assert!(msg.to_frame().len() <= 4 + rantai_core::message::MAX_FRAME_BYTES);
    // Over the data limit is refused whatever the characters.
    let max = Params::dev().block_data_limit() - 4 - 12;
    assert!(matches!(
        peer.submit(Millis(0), "\u{1}".repeat(max + 1)),
        Err(SubmitError::TooLarge { .. })
    ));
}

/// A line is refused one byte past the data limit with the exact maximum in the error, and a
/// line exactly at the limit fills the block to its last byte.
#[test]
fn submit_and_template_meet_the_data_limit_exactly() {
    let params = Params::dev();
    let limit = params.block_data_limit();
    let max_text = limit - 4 - rantai_core::block::ITEM_OVERHEAD;
    let mut peer = Peer::new(Config::new(params), 1);
    assert_eq!(
        peer.submit(Millis(0), "x".repeat(max_text + 1)),
        Err(SubmitError::TooLarge {
            size: max_text + 1,
            max: max_text
        })
    );
    peer.submit(Millis(0), "y".repeat(max_text)).unwrap();
    let block = peer.block_template(Millis(1)).into_block(0);
    assert_eq!(block.items().len(), 1);
    assert_eq!(block.size(), rantai_core::block::HEADER_LEN + limit);
}

/// The template takes pending items while they fit and stops before the one that would not:
/// three thirds of the data limit go in, a fourth of the same size waits.
#[test]
fn a_template_takes_items_while_they_fit() {
    let params = Params::dev();
    let limit = params.block_data_limit();
    let each = (limit - 4) / 3;
    let mut peer = Peer::new(Config::new(params.clone()), 1);
    for c in ["a", "b", "c", "d"] {
        peer.submit(
            Millis(0),
            c.repeat(each - rantai_core::block::ITEM_OVERHEAD),
        )
        .unwrap();
    }
    let block = peer.block_template(Millis(1)).into_block(0);
    assert_eq!(block.items().len(), 3);
    assert_eq!(block.size(), rantai_core::block::HEADER_LEN + 4 + 3 * each);
    let chain = Chain::new(Arc::new(params));
    assert!(chain.check_block(&block, Millis(1)).is_ok());
}

/// A block message carrying one byte more than any block may is refused before decoding.
#[test]
fn a_block_message_over_the_data_cap_is_refused() {
    let params = Arc::new(Params::dev());
    let genesis = Chain::new(params).tip().clone();
    let cap = rantai_core::block::MAX_BLOCK_DATA_BYTES;
    let block = |data: usize| {
        let item = Item {
            nonce: 0,
            text: "z".repeat(data - 4 - rantai_core::block::ITEM_OVERHEAD),
        };
        let b =
            Template::new(genesis.header(), genesis.hash(), 0, Millis(1), vec![item]).into_block(0);
        rantai_core::Message::Block { block: Arc::new(b) }
    };
    assert_eq!(block(cap).check_limits(), Ok(()));
    assert_eq!(
        block(cap + 1).check_limits(),
        Err(rantai_core::DecodeError::Limit {
            what: "block bytes",
            n: cap + 1,
            max: cap
        })
    );
}

#[test]
fn the_largest_valid_block_fits_a_frame() {
    let params = Arc::new(Params::dev());
    let chain = Chain::new(params.clone());
    let genesis = chain.tip().clone();
    let build = |items: Vec<Item>| {
        Template::new(genesis.header(), genesis.hash(), 0, Millis(1), items).into_block(0)
    };
    // Items of every kind of character, the largest nonces, filling the data limit exactly.
    let limit = params.block_data_limit();
    let mut items = Vec::new();
    let mut data = 4;
    let piece: String = ["\"", "\\", "\n", "é", "\u{0}"]
        .into_iter()
        .chain(std::iter::repeat_n("\u{1f}", 2_000))
        .collect();
    while data + 12 + piece.len() <= limit - 12 {
        items.push(Item {
            nonce: u64::MAX - items.len() as u64,
            text: piece.clone(),
        });
        data += 12 + piece.len();
    }
    items.push(Item {
        nonce: 0,
        text: "\u{1}".repeat(limit - data - 12),
    });
    let block = build(items);
    assert_eq!(block.size(), rantai_core::block::HEADER_LEN + limit);
    assert!(chain.check_block(&block, Millis(1)).is_ok());
    let msg = rantai_core::Message::Block {
        block: Arc::new(block),
    };
    let frame = msg.to_frame();
    assert_eq!(frame.len(), 4 + 1 + rantai_core::block::HEADER_LEN + limit);
    assert!(frame.len() <= 4 + rantai_core::message::MAX_FRAME_BYTES);
    assert_eq!(rantai_core::Message::decode(&frame[4..]), Ok(msg));
}

#[test]
fn restart_requeues_items_of_blocks_that_lost_a_fork_race() {
    let params = Arc::new(Params::dev());
    let mut chain = Chain::new(params.clone());
    let genesis = chain.tip().clone();
    let item = Item {
        nonce: 7,
        text: "mined on the losing side".into(),
    };
    let on = |parent: &rantai_core::Block, items: Vec<Item>, t: u64| {
        Template::new(parent.header(), parent.hash(), 0, Millis(t), items).into_block(t)
    };
    let side = on(&genesis, vec![item.clone()], 1);
    chain.insert(Arc::new(side), Millis(10)).unwrap();
    let b1 = on(&genesis, vec![], 2);
    let b2 = on(&b1, vec![], 3);
    chain.insert(Arc::new(b1), Millis(10)).unwrap();
    chain.insert(Arc::new(b2), Millis(10)).unwrap();
    assert_eq!(chain.height(), 2);
    assert!(!chain.contains_item(&item.id()));
    let peer = Peer::with_chain(Config::new(Params::dev()), 1, chain);
    let pending: Vec<_> = peer.pending_items().map(|i| i.id()).collect();
    assert_eq!(
        pending,
        vec![item.id()],
        "the item is mined again, not lost"
    );
}

#[test]
fn items_of_a_side_branch_block_join_the_pool_when_items_are_gossiped() {
    let mut net = Net::new(2, |_| {
        let mut c = config();
        c.relay_items = true;
        c
    });
    net.connect(0, 1);
    net.run_for(500);
    let genesis = net.peers[0].chain().tip().clone();
    net.mine(1);
    net.mine(1);
    net.run_for(500);
    assert_eq!(net.tip_height(0), 2);
    // A block that lost the race, carrying an item no pool holds (its miner was wiped).
    let item = Item {
        nonce: 9,
        text: "only in a stale block".into(),
    };
    let stale = Template::new(
        genesis.header(),
        genesis.hash(),
        0,
        net.now,
        vec![item.clone()],
    )
    .into_block(1);
    let conn = net.conn_of(0, 1).expect("connected");
    net.inject(
        0,
        conn,
        rantai_core::Message::Block {
            block: Arc::new(stale),
        },
    );
    assert!(net.peers[0].pending_items().any(|i| i.id() == item.id()));
    net.mine(0);
    assert!(net.run_until(2_000, |n| n.peers[1].chain().contains_item(&item.id())));
}

/// A node that does not relay items never re-sends its pending ones either: with item gossip
/// off, its lines stay with it until it mines them.
#[test]
fn without_item_relay_pending_items_are_never_resent() {
    let mut net = Net::new(2, |_| config());
    net.record = true;
    net.connect(0, 1);
    net.run_for(500);
    net.submit(0, "stays here");
    net.run_for(30_000);
    let items = net
        .outbox
        .iter()
        .filter(|(_, _, _, m)| m.kind() == "items")
        .count();
    assert_eq!(items, 0);
    assert!(
        net.sent.get("ping").copied().unwrap_or(0) >= 4,
        "pings went out"
    );
}

/// An item gossiped again after it was mined is not pooled again (it would be mined twice).
#[test]
fn an_item_already_in_the_chain_is_not_pooled_again() {
    let mut net = Net::new(2, |_| {
        let mut c = config();
        c.relay_items = true;
        c
    });
    net.connect(0, 1);
    net.run_for(500);
    net.submit(0, "mined once");
    net.mine(0);
    net.run_for(500);
    assert!(net.same_tip(&[0, 1]));
    let item = net.peers[0].chain().tip().items()[0].clone();
    let conn = net.conn_of(1, 0).expect("linked");
    net.inject(1, conn, rantai_core::Message::Items { items: vec![item] });
    assert_eq!(net.peers[1].pending_len(), 0);
}
