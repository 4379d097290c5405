//! Every bad input from the issue against an in-process node on 127.0.0.1 that has an honest
//! peer: the offender is disconnected (or its data dropped) and the two honest nodes keep
//! serving each other with identical chains.

mod common;

use common::*;
use rand::RngCore;
use rantai_core::block::data_hash;
use rantai_core::message::{Hello, PROTOCOL_VERSION};
use rantai_core::pow::Miner;
use rantai_core::{Block, BlockHash, FrameDecoder, Header, Item, Message, Params, Tip, Work};
use rantai_node::NodeHandle;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A victim `a` and an honest `b` that dials it.
async fn pair() -> (NodeHandle, NodeHandle) {
    let a = spawn_node(fast_options()).await;
    let b = spawn_node(rantai_node::NodeOptions {
        peers: vec![a.local_addr().to_string()],
        ..fast_options()
    })
    .await;
    let ca = a.client().clone();
    wait_async(WAIT, "b connected to a", || {
        let ca = ca.clone();
        async move {
            ca.status()
                .await
                .is_ok_and(|s| s.peers.iter().any(|p| p.ready))
        }
    })
    .await;
    (a, b)
}

/// A line submitted at each node in turn reaches the other, and both chains are identical.
async fn assert_in_sync(a: &NodeHandle, b: &NodeHandle, tag: &str) {
    for (i, from) in [a, b].into_iter().enumerate() {
        let text = format!("{tag}: honest line {i}");
        from.client()
            .submit(text.clone())
            .await
            .expect("running")
            .expect("accepted");
        let (ca, cb) = (a.client().clone(), b.client().clone());
        wait_async(WAIT, &format!("{tag}: both chains hold {text:?}"), || {
            let (ca, cb, text) = (ca.clone(), cb.clone(), text.clone());
            async move {
                let (Ok(x), Ok(y)) = (ca.best_chain().await, cb.best_chain().await) else {
                    return false;
                };
                let hx: Vec<BlockHash> = x.iter().map(|b| b.hash()).collect();
                let hy: Vec<BlockHash> = y.iter().map(|b| b.hash()).collect();
                hx == hy && x.iter().any(|b| b.items().iter().any(|it| it.text == text))
            }
        })
        .await;
    }
}

/// A block on `prev` at `height`, mined to `difficulty`; `tamper` may break it afterwards.
fn block(
    prev: BlockHash,
    height: u64,
    text: &str,
    tamper: impl FnOnce(&mut Header, &mut Vec<Item>),
) -> Block {
    let mut items = vec![Item {
        nonce: rand::random(),
        text: text.to_string(),
    }];
    let mut header = Header {
        version: 1,
        difficulty: 8,
        height,
        timestamp_ms: rantai_node::unix_now().0,
        prev,
        data_hash: data_hash(&items),
        nonce: 0,
    };
    header.nonce = Miner::new(&header)
        .search(0..u64::MAX, &AtomicBool::new(false))
        .expect("8 bits are found");
    tamper(&mut header, &mut items);
    Block::new(header, items)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_bytes_and_bad_frames_are_dropped() {
    let (a, b) = pair().await;
    let m = a.client().metrics().clone();
    let mut random = vec![0u8; 10_000];
    seeded_rng(1, "the garbage bytes").1.fill_bytes(&mut random);
    let other_net = Params::new("some-other-network", 8).genesis_hash();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("random bytes", random),
        ("4 GB length prefix", u32::MAX.to_be_bytes().to_vec()),
        ("1 MB first frame", (1u32 << 20).to_be_bytes().to_vec()),
        ("a truncated hello", frame(&[0, 2, 0])),
        ("unknown kind", frame(&[200, 1, 2])),
        ("wrong genesis", hello(other_net).to_frame()),
    ];
    for (what, bytes) in cases {
        let before = m.disconnects_misbehaviour.load(Ordering::Relaxed);
        let mut s = TcpStream::connect(a.local_addr()).await.expect("connect");
        let _ = s.write_all(&bytes).await;
        assert!(
            closed_within(&mut s, Duration::from_secs(5)).await,
            "{what}: connection closed"
        );
        if what != "random bytes" {
            // Random bytes may also look like a frame still arriving: a handshake timeout closes it.
            assert!(
                m.disconnects_misbehaviour.load(Ordering::Relaxed) > before,
                "{what}: counted as misbehaviour"
            );
        }
        assert_in_sync(&a, &b, what).await;
    }
    assert!(m.malformed_in.load(Ordering::Relaxed) >= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_blocks_are_rejected_and_their_senders_dropped() {
    let (a, b) = pair().await;
    let m = a.client().metrics().clone();
    // Each bad block builds on the victim's current tip: blocks far below the tip's work are
    // dropped unexamined by the core, which would test nothing.
    let tip = || async {
        let t = a.client().best_chain().await.expect("alive");
        let last = t.last().expect("genesis").clone();
        (last.hash(), last.height())
    };
    type MakeBad = fn(BlockHash, u64) -> Block;
    let cases: Vec<(&str, MakeBad)> = vec![
        ("wrong proof of work", |h, n| {
            block(h, n + 1, "bad pow", |h, _| {
                // Find a nonce whose hash misses the target.
                let miner = Miner::new(h);
                h.nonce = (0..).find(|&n| !miner.check(n)).expect("some nonce fails");
            })
        }),
        ("wrong data hash", |h, n| {
            block(h, n + 1, "bad data", |_, items| {
                items[0].text.push_str(" (edited)")
            })
        }),
        ("wrong height", |h, n| {
            block(h, n + 5, "bad height", |_, _| {})
        }),
    ];
    let n_cases = cases.len() as u64;
    for (what, make) in cases {
        let (h, n) = tip().await;
        let blk = make(h, n);
        let rejected = m.blocks_rejected.load(Ordering::Relaxed);
        let mut s = handshake(a.local_addr()).await;
        s.write_all(
            &Message::Block {
                block: Arc::new(blk),
            }
            .to_frame(),
        )
        .await
        .expect("send");
        assert!(
            closed_within(&mut s, Duration::from_secs(5)).await,
            "{what}: sender dropped"
        );
        assert!(
            m.blocks_rejected.load(Ordering::Relaxed) > rejected,
            "{what}: rejected"
        );
        assert_in_sync(&a, &b, what).await;
    }
    // /metrics names each rule broken and each disconnect's reason.
    let text = a.client().metrics_text().await.expect("metrics");
    let samples = |prefix: &str| -> Vec<(String, u64)> {
        text.lines()
            .filter_map(|l| {
                let rest = l.strip_prefix(prefix)?;
                let (label, v) = rest.split_once("\"} ")?;
                Some((label.to_string(), v.parse().ok()?))
            })
            .collect()
    };
    let kinds = samples("rantai_blocks_rejected_by_kind_total{kind=\"");
    assert!(kinds.len() >= 3, "a kind per broken rule: {kinds:?}");
    let by_kind: u64 = kinds.iter().map(|k| k.1).sum();
    assert_eq!(
        by_kind,
        m.blocks_rejected.load(Ordering::Relaxed),
        "{kinds:?}"
    );
    let reasons = samples("rantai_disconnects_total{reason=\"");
    let invalid = reasons
        .iter()
        .find(|r| r.0 == "invalid_block")
        .map_or(0, |r| r.1);
    assert!(invalid >= n_cases, "{reasons:?}");
    // A block whose parent never arrives waits in the bounded orphan pool; nothing breaks.
    let mut s = handshake(a.local_addr()).await;
    let mut fake_parent = [0u8; 32];
    seeded_rng(2, "the orphan's parent")
        .1
        .fill_bytes(&mut fake_parent);
    let orphan = block(
        BlockHash::from(rantai_core::Hash32(fake_parent)),
        7,
        "orphan",
        |_, _| {},
    );
    s.write_all(
        &Message::Block {
            block: Arc::new(orphan),
        }
        .to_frame(),
    )
    .await
    .expect("send");
    assert_in_sync(&a, &b, "unknown parent").await;
    let st = a.client().status().await.expect("alive");
    assert_eq!(st.height, b.client().status().await.expect("alive").height);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_a_thousand_idle_connections() {
    let (a, b) = pair().await;
    let mut silent = TcpStream::connect(a.local_addr()).await.expect("connect");
    assert!(
        closed_within(&mut silent, Duration::from_secs(5)).await,
        "a connection that sends nothing is closed after the handshake timeout"
    );
    let mut idle = Vec::new();
    for _ in 0..1000 {
        if let Ok(s) = TcpStream::connect(a.local_addr()).await {
            idle.push(s);
        }
    }
    assert_eq!(idle.len(), 1000, "the kernel accepted 1000 connections");
    let m = a.client().metrics().clone();
    wait_async(WAIT, "idle connections evicted at the limit", || {
        let m = m.clone();
        async move { m.connections_evicted.load(Ordering::Relaxed) > 0 }
    })
    .await;
    // While they are open, the honest peer keeps working and a new node can still join.
    assert_in_sync(&a, &b, "1000 idle").await;
    let c = spawn_node(rantai_node::NodeOptions {
        peers: vec![a.local_addr().to_string()],
        ..fast_options()
    })
    .await;
    let (ca, cc) = (a.client().clone(), c.client().clone());
    wait_async(WAIT, "newcomer catches up during the idle flood", || {
        let (ca, cc) = (ca.clone(), cc.clone());
        async move {
            let (Ok(x), Ok(y)) = (ca.status().await, cc.status().await) else {
                return false;
            };
            x.tip == y.tip
        }
    })
    .await;
    let st = a.client().status().await.expect("alive");
    assert!(
        st.peers.len() <= 64 + 2,
        "connections stay within the limit: {}",
        st.peers.len()
    );
    drop(idle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_unknown_announcements_is_cut_off() {
    let (a, b) = pair().await;
    let mut s = handshake(a.local_addr()).await;
    let mut sent = 0usize;
    let (_, mut rng) = seeded_rng(3, "the announced hashes");
    for _ in 0..100 {
        let hashes: Vec<BlockHash> = (0..1000)
            .map(|_| {
                let mut h = [0u8; 32];
                rng.fill_bytes(&mut h);
                rantai_core::Hash32(h)
            })
            .collect();
        if s.write_all(
            &Message::Inv {
                hashes: hashes.into(),
            }
            .to_frame(),
        )
        .await
        .is_err()
        {
            break;
        }
        sent += 1000;
    }
    assert!(
        closed_within(&mut s, Duration::from_secs(10)).await,
        "the flooder is disconnected (after {sent} announcements sent)"
    );
    assert!(
        a.client()
            .metrics()
            .disconnects_misbehaviour
            .load(Ordering::Relaxed)
            >= 1
    );
    assert_in_sync(&a, &b, "inv flood").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_stops_reading_is_dropped() {
    let (a, b) = pair().await;
    // Twenty blocks of ~200 kB each for the slow reader to ask for.
    let mut hashes = Vec::new();
    for i in 0..20 {
        let big = format!("{i} {}", "x".repeat(200_000));
        let before = a.client().status().await.expect("alive").height;
        a.client()
            .submit(big)
            .await
            .expect("alive")
            .expect("accepted");
        let c = a.client().clone();
        wait_async(WAIT, "big block mined", || {
            let c = c.clone();
            async move { c.status().await.is_ok_and(|s| s.height > before) }
        })
        .await;
    }
    for blk in a
        .client()
        .best_chain()
        .await
        .expect("alive")
        .iter()
        .skip(1)
        .take(20)
    {
        hashes.push(blk.hash());
    }
    let mut s = handshake(a.local_addr()).await;
    // Ask for all twenty, again and again (4 MB of answers each time), and never read.
    let req = Message::GetBlocks {
        hashes: hashes.into(),
    }
    .to_frame();
    for _ in 0..300 {
        match tokio::time::timeout(Duration::from_secs(2), s.write_all(&req)).await {
            Ok(Ok(())) => {}
            _ => break,
        }
    }
    let m = a.client().metrics().clone();
    wait_async(WAIT, "the slow reader is dropped", || {
        let m = m.clone();
        async move { m.peers_dropped_slow.load(Ordering::Relaxed) >= 1 }
    })
    .await;
    assert_in_sync(&a, &b, "slow reader").await;
    let st = a.client().status().await.expect("alive");
    assert_eq!(
        st.peers.len(),
        1,
        "only the honest peer is left: {:?}",
        st.peers
    );
}

/// Reads until the remote closes: what it sent, or `None` if it was still open after `t`.
/// A counter of a node's `GET /metrics`.
fn metric(api: std::net::SocketAddr, name: &str) -> u64 {
    let (code, body) = http(api, "GET", "/metrics", b"").expect("metrics");
    assert_eq!(code, 200, "metrics");
    let text = String::from_utf8_lossy(&body);
    let prefix = format!("rantai_{name} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("metric {name} in {text}"))
}

/// What the hostile peer saw on one connection.
#[derive(Debug, Default)]
struct Hostile {
    /// Messages the node sent it, by kind.
    received: std::collections::BTreeMap<&'static str, u64>,
    /// Messages it sent the node (hello, inv and pongs).
    sent: u64,
    /// The node closed the connection.
    closed: bool,
}

/// Handshakes claiming `tip` (more work than anyone has), announces its hash, answers pings
/// with that tip and nothing else, for `window`.
async fn hostile_announcer(addr: std::net::SocketAddr, tip: Tip, window: Duration) -> Hostile {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let genesis = Params::main().genesis_hash();
    let hello = Message::Hello(Box::new(Hello {
        version: PROTOCOL_VERSION,
        genesis,
        node_id: rand::random(),
        tip,
        listen: None,
    }));
    let inv = Message::Inv {
        hashes: smallvec_of(tip.hash),
    };
    let mut seen = Hostile::default();
    for m in [hello, inv] {
        s.write_all(&m.to_frame()).await.expect("send");
        seen.sent += 1;
    }
    let mut dec = FrameDecoder::new();
    let mut buf = vec![0u8; 64 * 1024];
    let end = tokio::time::Instant::now() + window;
    loop {
        let n = match tokio::time::timeout_at(end, s.read(&mut buf)).await {
            Err(_) => return seen,
            Ok(Ok(0)) | Ok(Err(_)) => {
                seen.closed = true;
                return seen;
            }
            Ok(Ok(n)) => n,
        };
        dec.extend(&buf[..n]);
        while let Ok(Some(m)) = dec.next_message() {
            *seen.received.entry(m.kind()).or_default() += 1;
            if let Message::Ping { nonce, .. } = m {
                if s.write_all(&Message::Pong { nonce, tip }.to_frame())
                    .await
                    .is_ok()
                {
                    seen.sent += 1;
                }
            }
        }
    }
}

fn smallvec_of(h: BlockHash) -> rantai_core::message::Hashes {
    std::iter::once(h).collect()
}

// The core's catch-up loop (core/src/peer.rs) decides what the honest nodes send here; this
// guards it from the node's side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_announcing_a_block_it_never_serves_causes_no_storm() {
    let dir = TempDir::new("phantom");
    let a = NodeProc::start("a", &node_args(0, &[], &[]), dir.path());
    let b_args = node_args(0, &[a.addr.port()], &[]);
    let b = NodeProc::start("b", &b_args, dir.path());
    let api = (a.http, b.http);
    tokio::task::spawn_blocking(move || {
        wait_until(WAIT, "a and b connected", || {
            [api.0, api.1].iter().all(|&h| {
                http_status(h).is_some_and(|s| s.peers.iter().filter(|p| p.ready).count() == 1)
            })
        })
    })
    .await
    .expect("join");
    let messages_in =
        move || metric(api.0, "messages_in_total") + metric(api.1, "messages_in_total");
    let before = tokio::task::spawn_blocking(messages_in)
        .await
        .expect("join");
    let mut phantom = [0u8; 32];
    seeded_rng(4, "the phantom tip").1.fill_bytes(&mut phantom);
    let tip = Tip {
        height: 1000,
        hash: rantai_core::Hash32(phantom),
        work: Work(u128::from(u64::MAX)),
    };
    let window = Duration::from_secs(6);
    let (at_a, at_b) = tokio::join!(
        hostile_announcer(a.addr, tip, window),
        hostile_announcer(b.addr, tip, window)
    );
    let after = tokio::task::spawn_blocking(messages_in)
        .await
        .expect("join");
    let honest = (after - before).saturating_sub(at_a.sent + at_b.sent);
    eprintln!(
        "in {window:?}: {honest} messages between the honest nodes; \
         hostile peer at a: {at_a:?}; at b: {at_b:?}"
    );
    assert!(
        honest < 200,
        "{honest} messages between two honest nodes in {window:?}: a storm"
    );
    for (name, h) in [("a", &at_a), ("b", &at_b)] {
        let asked: u64 = h.received.values().sum();
        assert!(
            h.closed || asked < 50,
            "{name} neither dropped nor ignored the hostile peer: {h:?}"
        );
    }
    for (name, h) in [("a", api.0), ("b", api.1)] {
        let st = tokio::task::spawn_blocking(move || http_status(h))
            .await
            .expect("join")
            .expect("status");
        assert!(
            st.peers.iter().any(|p| p.ready),
            "{name} still has its honest peer: {:?}",
            st.peers
        );
    }
}

/// One valid line used to cut a node off: 700,000 control characters fit the 1 MiB data limit
/// but took 4.2 MB as JSON, over the 4 MiB frame limit, so no peer could receive the block and
/// each dropped the sender, again and again. The binary encoding carries a control character
/// in one byte: the largest line the data limit allows, all control characters, reaches the
/// peer, and one byte more is refused as too large for a block.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_largest_line_of_control_characters_relays_and_one_byte_more_is_refused() {
    let (a, b) = pair().await;
    let max = Params::main().block_data_limit() - 4 - rantai_core::block::ITEM_OVERHEAD;
    let refused = a
        .client()
        .submit("\u{1}".repeat(max + 1))
        .await
        .expect("running");
    assert!(
        matches!(refused, Err(rantai_core::SubmitError::TooLarge { .. })),
        "{refused:?}"
    );
    let text = "\u{1}".repeat(max);
    a.client()
        .submit(text.clone())
        .await
        .expect("running")
        .expect("accepted");
    let cb = b.client().clone();
    wait_async(WAIT, "b holds the block with the largest line", || {
        let (cb, text) = (cb.clone(), text.clone());
        async move {
            cb.best_chain().await.is_ok_and(|c| {
                c.iter()
                    .any(|blk| blk.items().iter().any(|it| it.text == text))
            })
        }
    })
    .await;
    assert_in_sync(&a, &b, "after the large line").await;
}
