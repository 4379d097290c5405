//! The peer's disconnect rules at their exact boundaries, on the in-memory harness: whom the
//! handshake refuses (ourselves, another protocol version, a second connection to one node),
//! the misbehaviour score that disconnects (100, not one offence later), and the stall count
//! that disconnects (the third stall in a row, not the second or the fourth), and what a new
//! neighbour is told at once (our tip only if it has more work, pending items only if items
//! are relayed). Also: a simultaneous dial replaces a connection only within the handshake
//! timeout, and the address book learns each plausible address once, up to its bound.

mod harness;

use harness::{config, Net};
use rantai_core::message::{Hello, MAX_ADDR_LEN, PROTOCOL_VERSION};
use rantai_core::{Config, ConnId, DisconnectReason, Event, Message, Millis, RelayPolicy, Tip};

/// A hello for node 0's network from `node_id`, claiming the genesis tip.
fn hello_to(net: &Net, node: usize, version: u32, node_id: u64) -> Message {
    let genesis = net.peers[node].chain().tip().hash();
    Message::Hello(Box::new(Hello {
        version,
        genesis,
        node_id,
        tip: Tip {
            height: 0,
            hash: genesis,
            work: net.peers[node].chain().tip_work(),
        },
        listen: None,
    }))
}

/// Node 1 dials node 0, but node 1's own messages never arrive: the test speaks for it.
fn half_open() -> (Net, ConnId) {
    let mut net = Net::new(2, |_| config());
    net.cut_oneway(1, 0);
    net.connect(1, 0);
    let conn = net.conn_of(0, 1).expect("node 0's end of the link");
    (net, conn)
}

fn disconnects_of(net: &Net, node: usize) -> Vec<DisconnectReason> {
    net.disconnects
        .iter()
        .filter(|(n, _)| *n == node)
        .map(|(_, r)| r.clone())
        .collect()
}

#[test]
fn a_hello_carrying_our_own_node_id_is_refused_as_a_self_connection() {
    // On a connection we dialled: closed at once.
    let mut net = Net::new(2, |_| config());
    net.cut_oneway(1, 0);
    net.connect(0, 1);
    let conn = net.conn_of(0, 1).expect("node 0's outbound end");
    let own = net.peers[0].node_id();
    let hello = hello_to(&net, 0, PROTOCOL_VERSION, own);
    net.inject(0, conn, hello);
    assert_eq!(
        disconnects_of(&net, 0),
        vec![DisconnectReason::SelfConnection]
    );
    assert_eq!(net.peers[0].connection_count(), 0);
    // On an inbound one: never made ready; its dialling end closes it (below), or the
    // handshake timeout does.
    let (mut net, conn) = half_open();
    let own = net.peers[0].node_id();
    let hello = hello_to(&net, 0, PROTOCOL_VERSION, own);
    net.inject(0, conn, hello);
    assert_eq!(net.ready(0), 0);
    net.run_for(3_000);
    assert_eq!(
        disconnects_of(&net, 0),
        vec![DisconnectReason::HandshakeTimeout]
    );
    assert_eq!(net.peers[0].connection_count(), 0);
}

#[test]
fn a_node_that_dials_itself_drops_the_connection_as_a_self_connection() {
    let mut net = Net::new(1, |_| config());
    net.connect(0, 0);
    net.run_for(1_000);
    let reasons = disconnects_of(&net, 0);
    assert!(!reasons.is_empty(), "the self-connection was closed");
    assert!(
        reasons
            .iter()
            .all(|r| *r == DisconnectReason::SelfConnection),
        "closed as a self-connection, not as a duplicate: {reasons:?}"
    );
    assert_eq!(net.peers[0].connection_count(), 0);
}

#[test]
fn a_configured_address_that_reaches_ourselves_is_dialled_once() {
    let own = "10.0.0.9:3000".to_string();
    let mut net = Net::new(1, |_| {
        let mut c = config();
        c.listen_addr = Some(own.clone());
        c.dial_retry_base = Millis(100);
        c.dial_retry_max = Millis(2_000);
        c
    });
    net.add_peer(0, &own);
    net.run_for(30_000);
    assert_eq!(net.dial_times(0, &own).len(), 1, "never dialled again");
    assert_eq!(
        disconnects_of(&net, 0),
        vec![DisconnectReason::SelfConnection]
    );
    assert_eq!(net.peers[0].connection_count(), 0);
}

#[test]
fn a_hello_of_another_protocol_version_is_refused() {
    for version in [0, PROTOCOL_VERSION + 1, u32::MAX] {
        let (mut net, conn) = half_open();
        let hello = hello_to(&net, 0, version, 0x1234_5678);
        net.inject(0, conn, hello);
        assert_eq!(
            disconnects_of(&net, 0),
            vec![DisconnectReason::Version(version)],
            "version {version}"
        );
        assert_eq!(net.peers[0].connection_count(), 0, "version {version}");
    }
    // The same hello with our version is accepted.
    let (mut net, conn) = half_open();
    let hello = hello_to(&net, 0, PROTOCOL_VERSION, 0x1234_5678);
    net.inject(0, conn, hello);
    assert!(disconnects_of(&net, 0).is_empty());
    assert_eq!(net.ready(0), 1);
}

#[test]
fn a_second_connection_to_the_same_node_is_closed_by_its_dialler() {
    let mut net = Net::new(2, |_| config());
    net.connect(0, 1);
    assert!(net.run_until(1_000, |n| n.ready(0) == 1 && n.ready(1) == 1));
    let first = net.conn_of(0, 1).expect("first link");
    net.connect(0, 1);
    net.run_for(1_000);
    let id1 = net.peers[1].node_id();
    assert_eq!(
        disconnects_of(&net, 0),
        vec![DisconnectReason::Duplicate(id1)],
        "the dialler closes the newer connection"
    );
    assert!(
        disconnects_of(&net, 1).is_empty(),
        "the listener closes none"
    );
    assert_eq!(net.peers[0].connection_count(), 1);
    assert_eq!(net.peers[1].connection_count(), 1);
    assert_eq!(net.conn_of(0, 1), Some(first), "the established one stays");
    assert_eq!((net.ready(0), net.ready(1)), (1, 1));
}

#[test]
fn simultaneous_dials_leave_one_connection_that_both_ends_agree_on() {
    let mut net = Net::new(2, |_| config());
    net.connect(0, 1);
    net.connect(1, 0);
    net.run_for(2_000);
    // Both keep the connection the smaller id dialled; the larger id closes its own dial,
    // so that dial ends as a duplicate (not a failure to retry).
    let (id0, id1) = (net.peers[0].node_id(), net.peers[1].node_id());
    let (larger, smaller_id) = if id0 > id1 { (0, id1) } else { (1, id0) };
    assert_eq!(
        net.disconnects,
        vec![(larger, DisconnectReason::Duplicate(smaller_id))],
        "only the losing connection's dialler closes it"
    );
    assert_eq!(net.peers[0].connection_count(), 1);
    assert_eq!(net.peers[1].connection_count(), 1);
    assert_eq!((net.ready(0), net.ready(1)), (1, 1));
}

#[test]
fn misbehaviour_disconnects_at_a_score_of_exactly_100() {
    assert_eq!(config().disconnect_score, 100);
    let mut net = Net::new(2, |_| config());
    net.connect(0, 1);
    assert!(net.run_until(1_000, |n| n.ready(0) == 1 && n.ready(1) == 1));
    net.run_for(500);
    // Node 0 dialled, so it asked node 1 for addresses once: every further `get_addr` on the
    // connection costs 20 points.
    assert!(net.sent.get("get_addr").copied().unwrap_or(0) >= 1);
    let conn = net.conn_of(1, 0).expect("node 1's end");
    for k in 1..=4 {
        net.inject(1, conn, Message::GetAddr);
        assert_eq!(
            net.peers[1].connection_count(),
            1,
            "{} points after {k} repeated get_addr: still connected",
            20 * k
        );
    }
    assert!(disconnects_of(&net, 1).is_empty());
    net.inject(1, conn, Message::GetAddr);
    assert_eq!(
        disconnects_of(&net, 1),
        vec![DisconnectReason::Misbehaving(100)],
        "the fifth repeat reaches 100 points"
    );
    assert_eq!(net.peers[1].connection_count(), 0);
}

/// No keepalive (so no loss probes) and a 2 s request timeout: only stalls can end a request.
fn stall_config() -> Config {
    let mut c = config();
    c.relay = RelayPolicy::Announce;
    c.ping_interval = None;
    c.request_timeout = Millis::from_secs(2);
    c
}

#[test]
fn the_third_stall_in_a_row_disconnects_the_staller() {
    assert_eq!(stall_config().max_strikes, 3);
    let mut net = Net::new(2, |_| stall_config());
    net.connect(0, 1);
    assert!(net.run_until(1_000, |n| n.ready(0) == 1 && n.ready(1) == 1));
    // Node 0 announces blocks but every block it sends is lost: each of node 1's requests
    // stalls after the 2 s request timeout.
    net.lose.push((0, "block", u32::MAX));
    for stall in 1..=3u32 {
        net.mine(0);
        net.run_for(3_000);
        if stall < 3 {
            assert!(
                net.disconnects.is_empty(),
                "still connected after {stall} stalls: {:?}",
                net.disconnects
            );
            assert_eq!(net.peers[1].connection_count(), 1);
        }
    }
    assert_eq!(
        net.disconnects,
        vec![(1, DisconnectReason::Stalled(3))],
        "node 1 drops node 0 at its third stall"
    );
    assert_eq!(net.peers[1].connection_count(), 0);
    assert_eq!(net.tip_height(1), 0);
}

/// How many messages of `kind` all nodes have sent so far.
fn sent(net: &Net, kind: &str) -> u64 {
    net.sent.get(kind).copied().unwrap_or(0)
}

/// Node 0's `(inv, items)` messages in answer to `hello` from node 1.
fn told_on_hello(net: &mut Net, conn: ConnId, hello: Message) -> (u64, u64) {
    let before = (sent(net, "inv"), sent(net, "items"));
    net.inject(0, conn, hello);
    assert_eq!(net.ready(0), 1, "the hello was accepted");
    (sent(net, "inv") - before.0, sent(net, "items") - before.1)
}

#[test]
fn a_new_neighbour_with_less_work_is_told_our_tip_and_one_with_as_much_is_not() {
    // Equal work: nothing to announce.
    let (mut net, conn) = half_open();
    let hello = hello_to(&net, 0, PROTOCOL_VERSION, 0x1234_5678);
    assert_eq!(told_on_hello(&mut net, conn, hello), (0, 0));
    // A block mined while the handshake was in flight is announced once the hello arrives.
    let (mut net, conn) = half_open();
    let hello = hello_to(&net, 0, PROTOCOL_VERSION, 0x1234_5678);
    net.mine(0);
    assert_eq!(told_on_hello(&mut net, conn, hello), (1, 0));
}

#[test]
fn pending_items_go_to_a_new_neighbour_only_when_items_are_relayed() {
    let relaying = |relay_items: bool| {
        let mut net = Net::new(2, |_| {
            let mut c = config();
            c.relay_items = relay_items;
            c
        });
        net.cut_oneway(1, 0);
        net.connect(1, 0);
        let conn = net.conn_of(0, 1).expect("node 0's end of the link");
        (net, conn)
    };
    // Relaying with an item pending, the new neighbour gets it at once; relaying with
    // nothing pending, or not relaying (pending items stay with the miner), no `items`.
    for (relay_items, pending, items_sent) in [(true, true, 1), (true, false, 0), (false, true, 0)]
    {
        let (mut net, conn) = relaying(relay_items);
        if pending {
            net.submit(0, "pending before the handshake");
        }
        let hello = hello_to(&net, 0, PROTOCOL_VERSION, 0x1234_5678);
        assert_eq!(
            told_on_hello(&mut net, conn, hello),
            (0, items_sent),
            "relay_items {relay_items}, an item pending: {pending}"
        );
    }
}

/// Node 0 with two links whose far ends never speak (the test speaks for them): `out`,
/// dialled by node 0 at `t0`, and `inb`, dialled by node 2 `after` ms later; the remote node
/// `remote` says hello on `out` at once and on `inb` as soon as it is open.
fn dial_race(remote: u64, after: u64) -> (Net, ConnId, ConnId) {
    let mut net = Net::new(3, |_| config());
    net.cut_oneway(1, 0);
    net.cut_oneway(2, 0);
    net.connect(0, 1);
    let out = net.conn_of(0, 1).expect("node 0's outbound link");
    let hello = hello_to(&net, 0, PROTOCOL_VERSION, remote);
    net.inject(0, out, hello);
    assert_eq!(net.ready(0), 1);
    net.now = net.now.add(Millis(after));
    net.connect(2, 0);
    let inb = net.conn_of(0, 2).expect("node 0's inbound link");
    let hello = hello_to(&net, 0, PROTOCOL_VERSION, remote);
    net.inject(0, inb, hello);
    (net, out, inb)
}

#[test]
fn a_simultaneous_dial_replaces_a_connection_only_within_the_handshake_timeout() {
    let timeout = config().handshake_timeout.0;
    let ours = Net::new(1, |_| config()).peers[0].node_id();
    assert!(
        1 < ours && ours < u64::MAX,
        "node 0's id is neither extreme"
    );
    // A remote with the smaller id dials us while our own dial is young: both ends keep its
    // connection, so ours goes.
    let (net, out, inb) = dial_race(1, timeout - 1);
    assert_eq!(
        disconnects_of(&net, 0),
        vec![DisconnectReason::Duplicate(1)]
    );
    assert_eq!(net.conn_of(0, 1), None, "our dial {out:?} closed");
    assert_eq!(net.conn_of(0, 2), Some(inb));
    // From the handshake timeout on, an established connection stays and the newcomer goes;
    // a remote with the larger id: the connection we dialled wins, however young. Either
    // way the newcomer loses, and its dialler (the remote, silent here) is the one to close
    // it: we never make it ready, and the handshake timeout ends it.
    for (remote, after) in [(1, timeout), (u64::MAX, 1)] {
        let (mut net, out, inb) = dial_race(remote, after);
        // Its dialler may have made it ready and spoken on it before seeing the duplicate:
        // dropped quietly, not a protocol violation.
        net.inject(0, inb, Message::GetAddr);
        assert_eq!(disconnects_of(&net, 0), vec![], "remote {remote}");
        assert_eq!(net.ready(0), 1);
        assert_eq!(net.conn_of(0, 1), Some(out));
        net.run_for(timeout + 100);
        assert_eq!(
            disconnects_of(&net, 0),
            vec![DisconnectReason::HandshakeTimeout]
        );
        assert_eq!(net.conn_of(0, 2), None, "the newcomer {inb:?} closed");
        assert_eq!(net.conn_of(0, 1), Some(out));
    }
}

#[test]
fn only_plausible_addresses_that_are_not_our_own_are_learned() {
    let own = "10.0.0.1:7000".to_string();
    let mut net = Net::new(2, |i| {
        let mut c = config();
        if i == 0 {
            c.listen_addr = Some(own.clone());
        }
        c
    });
    net.cut_oneway(1, 0);
    net.connect(0, 1);
    let conn = net.conn_of(0, 1).expect("node 0's outbound link");
    let hello = hello_to(&net, 0, PROTOCOL_VERSION, 0x1234_5678);
    net.inject(0, conn, hello);
    // Node 0 dialled, so it asked for addresses: this answer is solicited. (A longer address
    // is refused with the whole message, see `core/tests/codec.rs`.)
    let longest = "a".repeat(MAX_ADDR_LEN);
    let addrs = vec![String::new(), own.clone(), longest.clone()];
    net.inject(0, conn, Message::Addr { addrs });
    assert!(disconnects_of(&net, 0).is_empty());
    let learned: Vec<&String> = net.peers[0].addrs().collect();
    assert_eq!(learned, vec![&longest]);
}

#[test]
fn the_address_book_learns_each_address_once_and_stops_at_its_bound() {
    let mut net = Net::new(2, |_| {
        let mut c = config();
        c.max_known_addrs = 2;
        c
    });
    net.cut_oneway(1, 0);
    net.connect(0, 1);
    let conn = net.conn_of(0, 1).expect("node 0's outbound link");
    let hello = hello_to(&net, 0, PROTOCOL_VERSION, 0x1234_5678);
    net.inject(0, conn, hello);
    let addrs = ["x:1", "x:1", "x:2", "x:3"].map(String::from).to_vec();
    net.inject(0, conn, Message::Addr { addrs });
    let learned: Vec<&String> = net.peers[0].addrs().collect();
    assert_eq!(learned, vec!["x:1", "x:2"]);
    let events = net.events[0]
        .iter()
        .filter(|(_, e)| matches!(e, Event::AddrLearned { .. }))
        .count();
    assert_eq!(events, 2, "one event per address learned");
}

/// A ready connection from node 1 to node 0 whose messages the test speaks (node 0 at height
/// `height`, mined on its own).
fn ready_speaker(relay: RelayPolicy, height: usize) -> (Net, ConnId) {
    let mut c = config();
    c.relay = relay;
    ready_speaker_with(c, height)
}

/// [`ready_speaker`] with node 0 configured as `c`.
fn ready_speaker_with(c: Config, height: usize) -> (Net, ConnId) {
    let (mut net, conn) = {
        let mut net = Net::new(2, |_| c.clone());
        net.cut_oneway(1, 0);
        net.connect(1, 0);
        let conn = net.conn_of(0, 1).expect("node 0's end of the link");
        (net, conn)
    };
    let hello = hello_to(&net, 0, PROTOCOL_VERSION, 77);
    net.inject(0, conn, hello);
    assert_eq!(net.ready(0), 1);
    for _ in 0..height {
        net.mine(0);
        net.run_for(1);
    }
    (net, conn)
}

/// A block on node 0's genesis stamped `at` (the harness clock starts at 1 s).
fn block_on_genesis(net: &Net, at: u64) -> Message {
    let g = net.peers[0].chain().genesis().clone();
    let block =
        rantai_core::Template::new(g.header(), g.hash(), 0, Millis(at), vec![]).into_block(at);
    Message::Block {
        block: std::sync::Arc::new(block),
    }
}

/// A block from too far in the future is the sender's fault, but only 5 points (its clock may
/// be off): the 20th such block disconnects, not the first.
#[test]
fn blocks_from_the_future_cost_points_not_the_connection() {
    let (mut net, conn) = ready_speaker(RelayPolicy::Announce, 0);
    let max_future = net.peers[0].config().params.max_future_ms;
    for k in 1..=20u64 {
        let msg = block_on_genesis(&net, net.now.0 + max_future + k);
        net.inject(0, conn, msg);
        let expect: Vec<DisconnectReason> = if k < 20 {
            vec![]
        } else {
            vec![DisconnectReason::Misbehaving(100)]
        };
        assert_eq!(disconnects_of(&net, 0), expect, "after {k} future blocks");
    }
}

/// A block whose parent is known to be invalid costs 20 points: the fifth disconnects.
#[test]
fn blocks_on_an_invalid_parent_cost_points_not_the_connection() {
    let (mut net, conn) = ready_speaker(RelayPolicy::Announce, 0);
    // An invalid block: it repeats the genesis item. It disconnects its sender, so it comes
    // from a second, throwaway connection.
    let g = net.peers[0].chain().genesis().clone();
    let bad =
        rantai_core::Template::new(g.header(), g.hash(), 0, net.now, vec![g.items()[0].clone()])
            .into_block(0);
    net.connect(1, 0);
    let other = net.peers[0]
        .peers()
        .iter()
        .map(|p| p.peer)
        .find(|&p| p != conn)
        .expect("second connection");
    let hello = hello_to(&net, 0, PROTOCOL_VERSION, 78);
    net.inject(0, other, hello);
    let bad = std::sync::Arc::new(bad);
    net.inject(0, other, Message::Block { block: bad.clone() });
    for k in 1..=5u64 {
        let child =
            rantai_core::Template::new(bad.header(), bad.hash(), 0, net.now.add(Millis(k)), vec![])
                .into_block(k);
        net.inject(
            0,
            conn,
            Message::Block {
                block: std::sync::Arc::new(child),
            },
        );
        let on_conn = net.peers[0].peers().iter().any(|p| p.peer == conn);
        assert_eq!(on_conn, k < 5, "after {k} children of an invalid block");
    }
    assert_eq!(
        disconnects_of(&net, 0).last(),
        Some(&DisconnectReason::Misbehaving(100))
    );
}

/// An unrequested block that does not join our best chain: 10 points under announce (nobody
/// should push it), 1 under push (a fork race pushes such blocks honestly); each accepted block
/// also earns 5 points of credit back.
#[test]
fn unrequested_side_blocks_cost_ten_points_under_announce_and_one_under_push() {
    let side_blocks_until_dropped = |relay: RelayPolicy| {
        let (mut net, conn) = ready_speaker(relay, 2);
        for k in 1..=40u64 {
            let msg = block_on_genesis(&net, net.now.0 + k);
            net.inject(0, conn, msg);
            if net.ready(0) == 0 {
                return Some(k);
            }
        }
        None
    };
    // Announce: +10 -5 per block after the first (10): 100 at the 19th.
    assert_eq!(side_blocks_until_dropped(RelayPolicy::Announce), Some(19));
    assert_eq!(side_blocks_until_dropped(RelayPolicy::Push), None);
}

/// The same side blocks, announced first and then sent because node 0 asked for them: a
/// requested block is never a penalty, whatever branch it lands on.
#[test]
fn requested_side_blocks_cost_nothing() {
    let (mut net, conn) = ready_speaker(RelayPolicy::Announce, 2);
    let asked_before = sent(&net, "get_blocks");
    for k in 1..=40u64 {
        let Message::Block { block } = block_on_genesis(&net, net.now.0 + k) else {
            unreachable!()
        };
        net.inject(
            0,
            conn,
            Message::Inv {
                hashes: vec![block.hash()].into(),
            },
        );
        net.inject(0, conn, Message::Block { block });
    }
    assert!(sent(&net, "get_blocks") > asked_before, "node 0 asked");
    assert_eq!(
        net.ready(0),
        1,
        "still connected: {:?}",
        disconnects_of(&net, 0)
    );
}

/// How many messages from `make(k)` (k = 1, 2, ...) node 0 takes before it drops the speaker.
fn messages_until_dropped(
    relay: RelayPolicy,
    height: usize,
    mut make: impl FnMut(&mut Net, u64) -> Message,
) -> Option<u64> {
    let (mut net, conn) = ready_speaker(relay, height);
    for k in 1..=200u64 {
        let msg = make(&mut net, k);
        net.inject(0, conn, msg);
        if net.ready(0) == 0 {
            return Some(k);
        }
    }
    None
}

/// `not_found` costs 20 points for hashes never asked of that peer (the fifth drops it) and 10
/// for ones it announced and then did not serve (the tenth), and releases the request: the
/// block is asked for again once announced again.
#[test]
fn not_found_costs_points_by_whether_the_block_was_requested() {
    let unrequested = messages_until_dropped(RelayPolicy::Announce, 0, |_, k| Message::NotFound {
        hashes: vec![rantai_core::Hash32([k as u8; 32])].into(),
    });
    assert_eq!(unrequested, Some(5));
    let requested = messages_until_dropped(RelayPolicy::Announce, 0, |net, k| {
        let h = rantai_core::Hash32([k as u8; 32]);
        let conn = net.conn_of(0, 1).expect("link");
        net.inject(
            0,
            conn,
            Message::Inv {
                hashes: vec![h].into(),
            },
        );
        Message::NotFound {
            hashes: vec![h].into(),
        }
    });
    assert_eq!(requested, Some(10));
    // Released: announced again, the block is asked for again.
    let (mut net, conn) = ready_speaker(RelayPolicy::Announce, 0);
    let h = rantai_core::Hash32([7; 32]);
    let inv = Message::Inv {
        hashes: vec![h].into(),
    };
    net.inject(0, conn, inv.clone());
    net.inject(
        0,
        conn,
        Message::NotFound {
            hashes: vec![h].into(),
        },
    );
    let asked = sent(&net, "get_blocks");
    net.inject(0, conn, inv);
    assert_eq!(sent(&net, "get_blocks"), asked + 1);
}

/// An unrequested block node 0 already holds costs 2 points under announce (a late answer
/// to a re-request, usually): with 5 points of credit for each block that is not redundant,
/// only repeats add up, and the 50th repeat drops the speaker; under push, never.
#[test]
fn repeated_unrequested_blocks_cost_points_only_under_announce() {
    let repeat = |relay: RelayPolicy| {
        messages_until_dropped(relay, 1, |net, _| {
            let tip = net.peers[0].chain().tip().clone();
            Message::Block { block: tip }
        })
    };
    assert_eq!(repeat(RelayPolicy::Announce), Some(50));
    assert_eq!(repeat(RelayPolicy::Push), None);
}

/// An unrequested block well below node 0's tip (more than six blocks of work) is dropped
/// unstored and costs 2 points; one within the margin is stored.
#[test]
fn unrequested_blocks_far_below_the_tip_are_not_stored() {
    let (mut net, conn) = ready_speaker(RelayPolicy::Push, 8);
    let msg = block_on_genesis(&net, net.now.0 + 1);
    let Message::Block { block } = msg.clone() else {
        unreachable!()
    };
    net.inject(0, conn, msg);
    assert!(
        !net.peers[0].chain().knows(&block.hash()),
        "height 1 under tip 8"
    );
    // At tip 7 the block (with its parent) falls short of the tip by exactly the margin of six
    // blocks' work: still stored.
    for tip in [6, 7] {
        let (mut net, conn) = ready_speaker(RelayPolicy::Push, tip);
        let msg = block_on_genesis(&net, net.now.0 + 1);
        let Message::Block { block } = msg.clone() else {
            unreachable!()
        };
        net.inject(0, conn, msg);
        assert!(
            net.peers[0].chain().knows(&block.hash()),
            "height 1 under tip {tip}"
        );
    }
    let stale = messages_until_dropped(RelayPolicy::Push, 8, |net, k| {
        block_on_genesis(net, net.now.0 + k)
    });
    assert_eq!(stale, Some(50));
}

/// A block rejected once is not asked for again when announced (by anyone).
#[test]
fn a_rejected_block_is_not_fetched_again_when_announced() {
    let (mut net, conn) = ready_speaker(RelayPolicy::Announce, 0);
    let max_future = net.peers[0].config().params.max_future_ms;
    let msg = block_on_genesis(&net, net.now.0 + max_future + 1);
    let Message::Block { block } = &msg else {
        unreachable!()
    };
    let hash = block.hash();
    net.inject(0, conn, msg);
    let asked = sent(&net, "get_blocks");
    net.inject(
        0,
        conn,
        Message::Inv {
            hashes: vec![hash].into(),
        },
    );
    assert_eq!(sent(&net, "get_blocks"), asked, "not fetched again");
}

/// A `get_blocks` of exactly `MAX_GET_BLOCKS` hashes is answered (here: all `not_found`), one
/// more is a protocol violation, and a request naming a hash twice costs 20 points.
#[test]
fn get_blocks_is_bounded_at_its_limit_and_refuses_repeated_hashes() {
    use rantai_core::peer::MAX_GET_BLOCKS;
    use rantai_core::{BlockHash, Hash32, Violation};
    let hashes = |n: usize| -> rantai_core::Hashes {
        (0..n)
            .map(|i| {
                let mut h = [7u8; 32];
                h[..8].copy_from_slice(&(i as u64).to_le_bytes());
                BlockHash::from(Hash32(h))
            })
            .collect()
    };
    let (mut net, conn) = ready_speaker(RelayPolicy::Announce, 0);
    let before = sent(&net, "not_found");
    net.inject(
        0,
        conn,
        Message::GetBlocks {
            hashes: hashes(MAX_GET_BLOCKS),
        },
    );
    assert!(disconnects_of(&net, 0).is_empty());
    assert_eq!(sent(&net, "not_found"), before + 1, "answered");
    net.inject(
        0,
        conn,
        Message::GetBlocks {
            hashes: hashes(MAX_GET_BLOCKS + 1),
        },
    );
    assert_eq!(
        disconnects_of(&net, 0),
        vec![DisconnectReason::Protocol(Violation::GetBlocksOverLimit)]
    );
    let (mut net, conn) = ready_speaker(RelayPolicy::Announce, 0);
    for k in 1..=5 {
        let mut twice = hashes(2);
        twice[1] = twice[0];
        net.inject(0, conn, Message::GetBlocks { hashes: twice });
        let expect = if k < 5 {
            vec![]
        } else {
            vec![DisconnectReason::Misbehaving(100)]
        };
        assert_eq!(
            disconnects_of(&net, 0),
            expect,
            "after {k} repeated requests"
        );
    }
}

/// An item of exactly the block data limit (with its 4-byte count, it must fit in a block of
/// its own) is pooled; one byte more costs 20 points, so the fifth drops the sender.
#[test]
fn gossiped_items_are_bounded_by_what_fits_in_a_block() {
    use rantai_core::block::ITEM_OVERHEAD;
    use rantai_core::Item;
    let mut c = config();
    c.relay_items = true;
    c.max_pending_bytes = 64 << 20;
    let limit = c.params.block_data_limit();
    let item = |k: u64, len: usize| Message::Items {
        items: vec![Item {
            nonce: k,
            text: "i".repeat(len - ITEM_OVERHEAD),
        }],
    };
    let (mut net, conn) = ready_speaker_with(c.clone(), 0);
    for k in 0..5 {
        net.inject(0, conn, item(k, limit - 4));
    }
    assert_eq!(net.peers[0].pending_len(), 5);
    assert!(disconnects_of(&net, 0).is_empty());
    let (mut net, conn) = ready_speaker_with(c, 0);
    for k in 0..5 {
        net.inject(0, conn, item(k, limit - 3));
    }
    assert_eq!(net.peers[0].pending_len(), 0);
    assert_eq!(
        disconnects_of(&net, 0),
        vec![DisconnectReason::Misbehaving(100)]
    );
}

/// Announcements of what is already requested, queued, stored or rejected take no room in the
/// fetch queue: with the queue full, twenty of each (an honest neighbour repeating itself)
/// cost nothing, while twenty of new blocks cost the 5 points of an overflow each.
#[test]
fn announcements_of_blocks_already_handled_never_overflow_the_fetch_queue() {
    use rantai_core::{BlockHash, Hash32};
    let mut c = config();
    c.max_in_flight_per_peer = 2;
    c.max_fetch_queue = 3;
    let unknown = |n: u8| BlockHash::from(Hash32([n; 32]));
    let inv = |h: BlockHash| Message::Inv {
        hashes: vec![h].into(),
    };
    let (mut net, conn) = ready_speaker_with(c.clone(), 1);
    // A rejected block (from the future: 5 points, once).
    let max_future = net.peers[0].config().params.max_future_ms;
    let msg = block_on_genesis(&net, net.now.0 + max_future + 1);
    let Message::Block { block } = &msg else {
        unreachable!()
    };
    let rejected = block.hash();
    net.inject(0, conn, msg);
    // Two requested, three queued: the queue is full.
    net.inject(
        0,
        conn,
        Message::Inv {
            hashes: (1..=5).map(unknown).collect(),
        },
    );
    assert_eq!(sent(&net, "get_blocks"), 1);
    let stored = net.peers[0].chain().tip().hash();
    for h in [unknown(1), unknown(5), stored, rejected] {
        for _ in 0..20 {
            net.inject(0, conn, inv(h));
        }
    }
    assert!(
        disconnects_of(&net, 0).is_empty(),
        "{:?}",
        disconnects_of(&net, 0)
    );
    // New blocks past a full queue: 5 + 19 x 5 points reach 100.
    for n in 0..19 {
        net.inject(0, conn, inv(unknown(100 + n)));
    }
    assert_eq!(
        disconnects_of(&net, 0),
        vec![DisconnectReason::Misbehaving(100)]
    );
}

/// A hash queued behind a full request window is skipped when its turn comes if the block
/// arrived meanwhile: it is never requested twice.
#[test]
fn a_queued_hash_that_arrived_meanwhile_is_not_requested() {
    use rantai_core::{BlockHash, Hash32};
    let mut c = config();
    c.max_in_flight_per_peer = 2;
    let (mut net, conn) = ready_speaker_with(c, 0);
    let unknown = |n: u8| BlockHash::from(Hash32([n; 32]));
    let msg = block_on_genesis(&net, net.now.0 + 1);
    let Message::Block { block } = msg.clone() else {
        unreachable!()
    };
    // Two requested, the block queued behind them; then it arrives anyway.
    net.inject(
        0,
        conn,
        Message::Inv {
            hashes: vec![unknown(1), unknown(2), block.hash()].into(),
        },
    );
    net.inject(0, conn, msg);
    assert!(net.peers[0].chain().contains(&block.hash()));
    let asked = sent(&net, "get_blocks");
    net.inject(
        0,
        conn,
        Message::NotFound {
            hashes: vec![unknown(1), unknown(2)].into(),
        },
    );
    assert_eq!(sent(&net, "get_blocks"), asked, "nothing left to ask for");
}

/// `AllItems` mining waits while a block is being fetched (it may extend the tip the new
/// block would land on), and starts once the fetch ends.
#[test]
fn all_items_mining_waits_for_blocks_in_flight() {
    use rantai_core::{BlockHash, Hash32, MinePolicy};
    let mut c = config();
    c.mining = MinePolicy::AllItems;
    let (mut net, conn) = ready_speaker_with(c, 0);
    let unknown = BlockHash::from(Hash32([9; 32]));
    net.inject(
        0,
        conn,
        Message::Inv {
            hashes: vec![unknown].into(),
        },
    );
    assert_eq!(sent(&net, "get_blocks"), 1);
    net.submit(0, "waits for the fetch");
    net.run_for(500);
    assert_eq!(net.tip_height(0), 0, "a block is in flight");
    net.inject(
        0,
        conn,
        Message::NotFound {
            hashes: vec![unknown].into(),
        },
    );
    net.run_for(100);
    assert_eq!(net.tip_height(0), 1, "mined once the fetch ended");
}
