//! Dialling and admission, decided by core for both drivers: whom to dial and when (backoff
//! with jitter from the peer's seeded RNG), forgetting dead learned addresses, the outbound
//! budget, ourselves and duplicates, and inbound eviction at the limit.

mod harness;

use harness::{config, Net};
use rantai_core::{Config, Direction, DisconnectReason, Input, Millis, Output, Peer};

/// Peer `i` listens on `10.0.0.i:3000`.
fn addr(i: usize) -> String {
    format!("10.0.0.{i}:3000")
}

fn listening(i: usize) -> Config {
    let mut c = config();
    c.listen_addr = Some(addr(i));
    c.dial_retry_base = Millis(100);
    c.dial_retry_max = Millis(2_000);
    c
}

#[test]
fn a_configured_peer_is_dialled_at_once_and_kept() {
    let mut net = Net::new(2, |i| {
        let mut c = listening(i);
        // Peer 1 learns peer 0's address but dials no one, so only peer 0 re-dials.
        c.max_outbound = if i == 1 { 0 } else { 8 };
        c
    });
    net.add_peer(0, &addr(1));
    assert!(net.run_until(1_000, |n| n.ready(0) == 1 && n.ready(1) == 1));
    assert_eq!(net.dial_times(0, &addr(1)).len(), 1);
    assert!(net.peers[0].is_configured_peer(&addr(1)));
    assert!(
        !net.peers[1].is_configured_peer(&addr(0)),
        "learned from the hello, not configured"
    );
    assert!(net.peers[1].addrs().any(|a| *a == addr(0)));
    // The connection closes: it worked, so the dialler retries after one short backoff
    // (100-200 ms: the base doubled once, jittered).
    let closed = net.now;
    net.disconnect(0, 1);
    assert!(net.run_until(1_000, |n| n.ready(0) == 1));
    let times = net.dial_times(0, &addr(1));
    assert_eq!(times.len(), 2);
    let gap = times[1].since(closed).0;
    assert!((100..=200).contains(&gap), "re-dialled after {gap} ms");
}

/// Each failure doubles the delay (base 100 ms), jittered to 50-100% of it, capped at 2 s,
/// and a configured address is never given up.
#[test]
fn failed_dials_back_off_with_seeded_jitter_up_to_the_cap() {
    let run = || {
        let mut net = Net::new(2, listening);
        net.unreachable.insert(addr(1));
        net.add_peer(0, &addr(1));
        net.run_for(30_000);
        net.dial_times(0, &addr(1))
    };
    let times = run();
    assert!(times.len() > 15, "kept dialling: {} dials", times.len());
    let mut shortened = 0;
    for (k, w) in times.windows(2).enumerate() {
        let gap = w[1].since(w[0]).0;
        // Failure k+1 waits within 50-100% of min(100 ms * 2^(k+1), 2 s), plus the dial's
        // round trip through the harness (10 ms latency).
        let full = (100u64 << (k + 1).min(16)).min(2_000);
        assert!(
            gap >= full / 2 && gap <= full + 10,
            "gap {k}: {gap} ms, full {full}"
        );
        if gap + 10 < full * 9 / 10 {
            shortened += 1;
        }
    }
    assert!(
        shortened * 2 > times.len(),
        "jittered: only {shortened} of {} gaps under 90% of the backoff",
        times.len() - 1
    );
    assert_eq!(times, run(), "the jitter comes from the peer's seed");
}

#[test]
fn a_learned_address_is_forgotten_after_six_failures_in_a_row() {
    let mut net = Net::new(3, |i| {
        let mut c = listening(i);
        // Peer 0 dials no one back (a connection from it would cover its address).
        c.max_outbound = if i == 0 { 0 } else { 8 };
        c
    });
    net.connect(2, 1);
    // Peer 0's address is learned by 2 (through 1's hello), but nothing answers there.
    net.connect(0, 1);
    net.run_for(500);
    assert_eq!(net.dial_times(2, &addr(0)).len(), 1, "learned and dialled");
    net.unreachable.insert(addr(0));
    net.disconnect(0, 1);
    net.disconnect(2, 0);
    net.run_for(60_000);
    // The close counts as the first failure (after one quick retry, as it worked before),
    // then five failed dials: forgotten.
    let dials = net.dial_times(2, &addr(0));
    assert_eq!(dials.len(), 1 + 5, "{dials:?}");
}

/// Any peer may claim any listen address in its `hello`: an inbound impostor claiming a
/// configured peer's address must not keep us from dialling that address.
#[test]
fn an_inbound_peer_claiming_a_configured_address_does_not_stop_its_dialling() {
    let mut net = Net::new(3, |i| {
        // Peer 2 claims peer 1's address; neither dials anyone.
        let mut c = listening(if i == 2 { 1 } else { i });
        c.max_outbound = if i == 0 { 8 } else { 0 };
        c
    });
    net.connect(2, 0);
    net.run_for(100);
    assert_eq!(net.ready(0), 1);
    net.add_peer(0, &addr(1));
    assert!(
        net.run_until(1_000, |n| n.ready(0) == 2 && n.ready(1) == 1),
        "peer 0 dialled the real peer 1 at once"
    );
    // Connected to the node that answers there, a later claim changes nothing.
    net.disconnect(0, 1);
    assert!(net.run_until(1_000, |n| n.ready(1) == 1));
}

#[test]
fn learned_addresses_are_dialled_only_within_the_outbound_budget() {
    let n = 6;
    let mut net = Net::new(n, |i| {
        let mut c = listening(i);
        c.max_outbound = 2;
        c
    });
    // Peer 0 learns four addresses from peer 1's address book.
    for i in 2..n {
        net.connect(i, 1);
    }
    net.connect(0, 1);
    net.run_for(2_000);
    let learned: usize = (2..n)
        .filter(|&i| !net.dial_times(0, &addr(i)).is_empty())
        .count();
    assert_eq!(
        learned, 1,
        "the connection to 1 plus one learned dial fill a budget of 2"
    );
    // Later too: no learned dial while both connections stay up.
    net.run_for(10_000);
    assert_eq!(
        (2..n)
            .filter(|&i| !net.dial_times(0, &addr(i)).is_empty())
            .count(),
        1,
        "the budget holds while both connections stay up"
    );
}

#[test]
fn at_the_inbound_limit_a_newcomer_evicts_an_idle_socket_or_is_refused() {
    let mut net = Net::new(4, |i| {
        let mut c = listening(i);
        c.max_inbound = 2;
        c
    });
    net.cut_oneway(1, 0); // peer 1 never completes its handshake with 0
    net.connect(1, 0);
    net.connect(2, 0);
    net.run_for(100);
    net.connect(3, 0);
    assert!(
        net.disconnects
            .iter()
            .any(|(n, r)| *n == 0 && *r == DisconnectReason::Evicted),
        "the idle socket makes room"
    );
    assert!(net.run_until(1_000, |n| n.ready(0) == 2));
    // Both inbound peers are past their handshake now: one more is refused.
    net.heal(1, 0);
    net.connect(1, 0);
    assert!(net
        .disconnects
        .iter()
        .any(|(n, r)| *n == 0 && *r == DisconnectReason::InboundFull));
    assert_eq!(net.ready(0), 2);
}

/// A driver may wake later than `poll_timeout` asked: a dial overdue by then still goes out.
#[test]
fn an_overdue_dial_goes_out_when_the_driver_wakes_late() {
    let mut p = Peer::new(listening(0), 7);
    let dials = |p: &mut Peer| {
        std::iter::from_fn(|| p.poll())
            .filter(|o| matches!(o, Output::Dial { addr } if *addr == self::addr(1)))
            .count()
    };
    p.add_peer(Millis(0), addr(1));
    assert_eq!(dials(&mut p), 1);
    p.handle(Millis(1), Input::DialFailed { addr: addr(1) });
    assert_eq!(dials(&mut p), 0);
    let due = p.poll_timeout().expect("a retry is scheduled");
    p.handle_timeout(due.add(Millis(700)));
    assert_eq!(dials(&mut p), 1, "dialled when the driver woke");
}

/// A dial that connected is no longer in flight: when another outbound connection closes,
/// the freed place goes to a learned address.
#[test]
fn a_closed_connection_frees_its_place_in_the_outbound_budget() {
    let n = 6;
    let mut net = Net::new(n, |i| {
        let mut c = listening(i);
        // Only peer 0 dials addresses it learns.
        c.max_outbound = if i == 0 { 3 } else { 0 };
        c
    });
    for i in 2..n {
        net.connect(i, 1);
    }
    net.connect(0, 1);
    net.run_for(2_000);
    let dials = |net: &Net| net.dials.iter().filter(|(_, node, _)| *node == 0).count();
    let outbound = |net: &Net| {
        net.peers[0]
            .peers()
            .iter()
            .filter(|p| p.ready && p.direction == Direction::Outbound)
            .count()
    };
    assert_eq!(
        dials(&net),
        2,
        "two learned dials fill the budget beside peer 1"
    );
    assert_eq!(outbound(&net), 3);
    net.disconnect(0, 1);
    net.run_for(2_000);
    assert_eq!(dials(&net), 3, "the freed place is used");
    assert_eq!(outbound(&net), 3);
}

/// After a dial reached a node, that node's own connection to us covers its address: a
/// configured peer that re-connects to us first is not dialled a second time.
#[test]
fn a_configured_peer_that_reconnected_to_us_is_not_dialled_again() {
    let mut net = Net::new(2, |i| {
        let mut c = listening(i);
        c.max_outbound = if i == 1 { 0 } else { 8 };
        c
    });
    net.add_peer(0, &addr(1));
    assert!(net.run_until(1_000, |n| n.ready(0) == 1));
    net.disconnect(0, 1);
    net.connect(1, 0);
    net.run_for(3_000);
    assert_eq!(net.dial_times(0, &addr(1)).len(), 1);
    assert_eq!(net.ready(0), 1);
    assert!(net.disconnects.is_empty(), "{:?}", net.disconnects);
}

/// A configured peer that already dialled us: our dial there ends as a duplicate, which
/// tells us the node behind the address, so we do not keep dialling it.
#[test]
fn a_configured_peer_that_already_dialled_us_is_dialled_once() {
    let mut net = Net::new(2, |i| {
        let mut c = listening(i);
        c.max_outbound = if i == 1 { 0 } else { 8 };
        c
    });
    // The path under test: the established connection wins (our dial comes after the
    // handshake timeout) and we close our own dial as the duplicate.
    net.connect(1, 0);
    net.run_for(3_000);
    assert_eq!(net.ready(0), 1);
    net.add_peer(0, &addr(1));
    net.run_for(11_000);
    assert_eq!(net.dial_times(0, &addr(1)).len(), 1);
    assert_eq!(net.ready(0), 1);
    let id1 = net.peers[1].node_id();
    assert_eq!(
        net.disconnects,
        vec![(0, DisconnectReason::Duplicate(id1))],
        "closed by its dialler as a duplicate"
    );
    // Once the connection that covered the address closes, it is dialled again within the
    // base delay (100 ms), not at the next look after the longest one (2 s).
    let closed = net.now;
    net.disconnect(1, 0);
    assert!(net.run_until(1_000, |n| n.dial_times(0, &addr(1)).len() == 2));
    let gap = net.dial_times(0, &addr(1))[1].since(closed).0;
    assert!(gap <= 150, "re-dialled {gap} ms after the close");
}

/// Addresses are asked of every peer we dialled, and of inbound ones only while our own
/// outbound budget has room.
#[test]
fn inbound_peers_are_asked_for_addresses_only_while_the_outbound_budget_has_room() {
    let mut net = Net::new(4, |i| {
        let mut c = config();
        c.max_outbound = if i == 0 { 1 } else { 8 };
        c
    });
    net.record = true;
    let asked = |net: &Net, other: usize| {
        let conn = net.conn_of(0, other).expect("connected");
        net.outbox
            .iter()
            .any(|(_, n, to, m)| *n == 0 && *to == conn && m.kind() == "get_addr")
    };
    net.connect(1, 0);
    net.run_for(100);
    assert!(asked(&net, 1), "inbound, nothing dialled yet: asked");
    net.connect(0, 2);
    net.run_for(100);
    assert!(asked(&net, 2), "dialled by us: asked, the budget now full");
    net.connect(3, 0);
    net.run_for(100);
    assert_eq!(net.ready(0), 3);
    assert!(!asked(&net, 3), "inbound with the budget full: not asked");
}
