//! Loss probes at their exact schedule, with the remote end played by the test: a request that a
//! probe's pong proves lost is re-sent at once, `max_request_retries` times and no more; a
//! request sent after a probe is not taken as lost by that probe's pong; unanswered probes back
//! off (doubling, at most 8 probe delays apart).

mod harness;

use harness::{config, Net};
use rantai_core::message::{Hello, PROTOCOL_VERSION};
use rantai_core::{
    BlockHash, Config, ConnId, DisconnectReason, Hash32, Message, Millis, Tip, Work,
};

const SEC: u64 = 1_000;

/// Keepalive pings and request deadlines far away (60 s): within a test's first minute every
/// ping node 0 sends is a loss probe and no request stalls on its deadline.
fn probe_config() -> Config {
    let mut c = config();
    c.ping_interval = Some(Millis::from_secs(60));
    c.pong_timeout = Millis::from_secs(60);
    c.request_timeout = Millis::from_secs(60);
    c.probe_delay = Millis::from_secs(1);
    c.handshake_timeout = Millis::from_secs(3_600);
    c
}

/// Node 0 dialled node 1, whose end never speaks (the test does, on `conn`): node 1 claims
/// `work` more than node 0 and a tip of its own.
fn scripted(extra_work: u128) -> (Net, ConnId, Tip) {
    scripted_with(probe_config(), extra_work)
}

/// [`scripted`] with node 0 configured as `c`.
fn scripted_with(c: Config, extra_work: u128) -> (Net, ConnId, Tip) {
    let mut net = Net::new(2, |_| c.clone());
    net.record = true;
    net.partition(0, 1);
    net.connect(0, 1);
    let conn = net.conn_of(0, 1).expect("node 0's link");
    let ours = net.peers[0].tip();
    let tip = if extra_work == 0 {
        ours
    } else {
        Tip {
            height: 5,
            hash: hash(99),
            work: Work(ours.work.0 + extra_work),
        }
    };
    let hello = Message::Hello(Box::new(Hello {
        version: PROTOCOL_VERSION,
        genesis: net.peers[0].chain().genesis().hash(),
        node_id: 0x5eed,
        tip,
        listen: None,
    }));
    net.inject(0, conn, hello);
    assert_eq!(net.ready(0), 1);
    (net, conn, tip)
}

fn hash(i: u8) -> BlockHash {
    Hash32([i; 32])
}

/// What node 0 sent from `from` on in the outbox: (ms since `t0`, message).
fn sent_since(net: &Net, from: usize, t0: Millis) -> Vec<(u64, Message)> {
    net.outbox[from..]
        .iter()
        .filter(|(_, node, _, _)| *node == 0)
        .map(|(at, _, _, m)| (at.0 - t0.0, m.clone()))
        .collect()
}

/// Runs `ms` of virtual time; with `answer`, every ping node 0 sends is answered at once.
fn run(net: &mut Net, conn: ConnId, tip: Tip, ms: u64, answer: bool) {
    let limit = net.now.add(Millis(ms));
    let mut seen = net.outbox.len();
    for _ in 0..10_000 {
        let nonces: Vec<u64> = net.outbox[seen..]
            .iter()
            .filter_map(|(_, node, _, m)| match m {
                Message::Ping { nonce, .. } if *node == 0 => Some(*nonce),
                _ => None,
            })
            .collect();
        seen = net.outbox.len();
        if answer {
            for nonce in nonces {
                net.inject(0, conn, Message::Pong { nonce, tip });
            }
        }
        if seen == net.outbox.len() && !net.step(limit) {
            break;
        }
    }
    net.now = net.now.max(limit);
}

/// `(ms, kind)` of each message, block hashes of a `get_blocks` spelled out.
fn story(sent: &[(u64, Message)]) -> Vec<(u64, String)> {
    sent.iter()
        .map(|(at, m)| {
            let what = match m {
                Message::GetBlocks { hashes } => {
                    format!(
                        "get_blocks {:?}",
                        hashes.iter().map(|h| h.0[0]).collect::<Vec<_>>()
                    )
                }
                other => other.kind().to_string(),
            };
            (*at, what)
        })
        .collect()
}

fn s(at: u64, what: &str) -> (u64, String) {
    (at, what.to_string())
}

#[test]
fn a_request_proven_lost_is_resent_at_once_and_at_most_max_request_retries_times() {
    assert_eq!(probe_config().max_request_retries, 3);
    let (mut net, conn, tip) = scripted(0);
    let (t0, from) = (net.now, net.outbox.len());
    net.inject(
        0,
        conn,
        Message::Inv {
            hashes: vec![hash(1)].into(),
        },
    );
    run(&mut net, conn, tip, 30 * SEC, true);
    // Every probe is answered at once, so each pong proves the request lost: re-sent three
    // times, one probe delay apart; the fourth loss is a stall (a strike, the request goes
    // back to the queue with no other neighbour to take it), and nothing more is asked.
    assert_eq!(
        story(&sent_since(&net, from, t0)),
        vec![
            s(0, "get_blocks [1]"),
            s(SEC, "ping"),
            s(SEC, "get_blocks [1]"),
            s(2 * SEC, "ping"),
            s(2 * SEC, "get_blocks [1]"),
            s(3 * SEC, "ping"),
            s(3 * SEC, "get_blocks [1]"),
            s(4 * SEC, "ping"),
        ]
    );
    assert_eq!(
        net.peers[0].connection_count(),
        1,
        "one strike does not disconnect"
    );
    assert!(net.disconnects.is_empty());
}

#[test]
fn a_lost_get_chain_is_resent_at_most_max_request_retries_times_then_stalls() {
    let (mut net, conn, tip) = scripted(1_000);
    let t0 = net.now;
    // The hello already asked for the chain (node 1 claims more work).
    let asked: Vec<_> = story(&sent_since(&net, 0, t0))
        .into_iter()
        .filter(|(_, k)| k != "hello" && k != "get_addr")
        .collect();
    assert_eq!(asked, vec![s(0, "get_chain")]);
    let from = net.outbox.len();
    run(&mut net, conn, tip, 30 * SEC, true);
    // Each probe's pong proves the get_chain lost: re-sent three times, and the fourth loss
    // is a stall. Node 1 still claims more work, so catch-up starts over with a fresh
    // get_chain, until the third stall in a row disconnects it.
    let mut expected = Vec::new();
    for k in 1..=12 {
        expected.push(s(k * SEC, "ping"));
        if k < 12 {
            expected.push(s(k * SEC, "get_chain"));
        }
    }
    assert_eq!(story(&sent_since(&net, from, t0)), expected);
    assert_eq!(net.disconnects, vec![(0, DisconnectReason::Stalled(3))]);
}

#[test]
fn a_request_sent_after_a_probe_is_not_lost_when_that_probe_is_answered() {
    let (mut net, conn, tip) = scripted(0);
    let (t0, from) = (net.now, net.outbox.len());
    net.inject(
        0,
        conn,
        Message::Inv {
            hashes: vec![hash(1)].into(),
        },
    );
    // The first probe goes out unanswered; then block 2 is announced and requested.
    run(&mut net, conn, tip, SEC, false);
    net.inject(
        0,
        conn,
        Message::Inv {
            hashes: vec![hash(2)].into(),
        },
    );
    let nonce = sent_since(&net, from, t0)
        .iter()
        .find_map(|(_, m)| match m {
            Message::Ping { nonce, .. } => Some(*nonce),
            _ => None,
        })
        .expect("a probe");
    net.inject(0, conn, Message::Pong { nonce, tip });
    // Its pong proves only the earlier request lost.
    assert_eq!(
        story(&sent_since(&net, from, t0)),
        vec![
            s(0, "get_blocks [1]"),
            s(SEC, "ping"),
            s(SEC, "get_blocks [2]"),
            s(SEC, "get_blocks [1]"),
        ]
    );
}

#[test]
fn unanswered_probes_back_off_doubling_up_to_eight_probe_delays() {
    let (mut net, conn, tip) = scripted(0);
    let (t0, from) = (net.now, net.outbox.len());
    net.inject(
        0,
        conn,
        Message::Inv {
            hashes: vec![hash(1)].into(),
        },
    );
    run(&mut net, conn, tip, 40 * SEC, false);
    let probes: Vec<u64> = story(&sent_since(&net, from, t0))
        .into_iter()
        .filter(|(_, k)| k == "ping")
        .map(|(at, _)| at / SEC)
        .collect();
    // 1 s after the request, then 2, 4 and 8 probe delays apart, and 8 from then on.
    assert_eq!(probes, vec![1, 3, 7, 15, 23, 31, 39]);
}

/// Answers the last ping node 0 sent, `delay` ms after it went out.
fn answer_last_ping_after(net: &mut Net, conn: ConnId, tip: Tip, from: usize, delay: u64) {
    let (at, nonce) = net.outbox[from..]
        .iter()
        .rev()
        .find_map(|(at, node, _, m)| match m {
            Message::Ping { nonce, .. } if *node == 0 => Some((*at, *nonce)),
            _ => None,
        })
        .expect("a ping");
    let wait = at.add(Millis(delay)).since(net.now).0;
    run(net, conn, tip, wait, false);
    net.inject(0, conn, Message::Pong { nonce, tip });
}

/// On a slow path a probe waits twice the smoothed round trip (7/8 old, 1/8 new sample), not
/// the configured 1 s: the first probe answered after 1.5 s, the next comes 3 s after the
/// re-request; that one answered after 2.7 s (smoothed: 1.65 s), the next 3.3 s after.
#[test]
fn a_slow_path_probes_after_twice_its_smoothed_round_trip() {
    let (mut net, conn, tip) = scripted(0);
    let (t0, from) = (net.now, net.outbox.len());
    net.inject(
        0,
        conn,
        Message::Inv {
            hashes: vec![hash(1)].into(),
        },
    );
    run(&mut net, conn, tip, SEC, false);
    answer_last_ping_after(&mut net, conn, tip, from, 1_500);
    run(&mut net, conn, tip, 3 * SEC, false);
    answer_last_ping_after(&mut net, conn, tip, from, 2_700);
    run(&mut net, conn, tip, 3_300, false);
    assert_eq!(
        story(&sent_since(&net, from, t0)),
        vec![
            s(0, "get_blocks [1]"),
            s(SEC, "ping"),
            s(2_500, "get_blocks [1]"),
            s(5_500, "ping"),
            s(8_200, "get_blocks [1]"),
            s(11_500, "ping"),
        ]
    );
}

/// A pong proves lost only what was sent before the ping whose nonce it carries: pongs with
/// other nonces leave the request alone until its own probe.
#[test]
fn a_pong_with_another_nonce_proves_nothing() {
    let (mut net, conn, tip) = scripted(0);
    let (t0, from) = (net.now, net.outbox.len());
    net.inject(
        0,
        conn,
        Message::Inv {
            hashes: vec![hash(1)].into(),
        },
    );
    run(&mut net, conn, tip, 500, false);
    for nonce in [0, 1, u64::MAX] {
        net.inject(0, conn, Message::Pong { nonce, tip });
    }
    run(&mut net, conn, tip, 600, false);
    assert_eq!(
        story(&sent_since(&net, from, t0)),
        vec![s(0, "get_blocks [1]"), s(SEC, "ping")],
        "no resend before the probe, and the probe on time (no round trip was measured)"
    );
}

/// A keepalive pong measures the round trip too: answered after 1.5 s, the first probe waits
/// 3 s (twice that), not the configured 1 s. Only the pong carrying the keepalive's nonce counts.
#[test]
fn a_keepalive_pong_measures_the_round_trip() {
    let mut c = probe_config();
    c.ping_interval = Some(Millis::from_secs(5));
    let (mut net, conn, tip) = scripted_with(c, 0);
    let from = net.outbox.len();
    run(&mut net, conn, tip, 5 * SEC, false);
    net.inject(0, conn, Message::Pong { nonce: 7, tip });
    answer_last_ping_after(&mut net, conn, tip, from, 1_500);
    let (t0, from) = (net.now, net.outbox.len());
    net.inject(
        0,
        conn,
        Message::Inv {
            hashes: vec![hash(1)].into(),
        },
    );
    run(&mut net, conn, tip, 3_200, false);
    assert_eq!(
        story(&sent_since(&net, from, t0)),
        vec![s(0, "get_blocks [1]"), s(3 * SEC, "ping")]
    );
}
