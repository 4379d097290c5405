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

const WAIT: Duration = Duration::from_secs(20);

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

fn hello(genesis: BlockHash) -> Message {
    Message::Hello(Box::new(Hello {
        version: PROTOCOL_VERSION,
        genesis,
        node_id: rand::random(),
        tip: Tip {
            height: 0,
            hash: genesis,
            work: Work(1),
        },
        listen: None,
    }))
}

/// Connects and completes the handshake (our hello, theirs back).
async fn handshake(addr: std::net::SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(&hello(Params::main().genesis_hash()).to_frame())
        .await
        .expect("send hello");
    let mut dec = FrameDecoder::new();
    let mut buf = vec![0u8; 64 * 1024];
    let got_hello = tokio::time::timeout(WAIT, async {
        loop {
            let n = s.read(&mut buf).await.expect("read");
            assert!(n > 0, "closed during handshake");
            dec.extend(&buf[..n]);
            while let Some(m) = dec.next_message().expect("node sends valid frames") {
                if matches!(m, Message::Hello(_)) {
                    return;
                }
            }
        }
    })
    .await;
    assert!(got_hello.is_ok(), "no hello from the node");
    s
}

/// Reads (and discards) until the node closes the connection; false on timeout.
async fn closed_within(s: &mut TcpStream, t: Duration) -> bool {
    let mut buf = vec![0u8; 64 * 1024];
    tokio::time::timeout(t, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
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
    rand::thread_rng().fill_bytes(&mut random);
    let other_net = Params::new("some-other-network", 8).genesis_hash();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("random bytes", random),
        ("4 GB length prefix", u32::MAX.to_be_bytes().to_vec()),
        ("1 MB first frame", (1u32 << 20).to_be_bytes().to_vec()),
        ("invalid JSON", frame(b"{\"type\":\"hello\",\"version\":")),
        (
            "unknown kind",
            frame(b"{\"type\":\"teleport\",\"to\":\"mars\"}"),
        ),
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
    // A block whose parent never arrives waits in the bounded orphan pool; nothing breaks.
    let mut s = handshake(a.local_addr()).await;
    let mut fake_parent = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut fake_parent);
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
    for _ in 0..100 {
        let hashes: Vec<BlockHash> = (0..1000)
            .map(|_| {
                let mut h = [0u8; 32];
                rand::thread_rng().fill_bytes(&mut h);
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

/// Resident memory of process `pid` in KiB (`VmRSS` of `/proc/PID/status`).
fn vm_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("process status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// A valid ping padded with an unknown field to `len` bytes of JSON, framed.
fn padded_ping(len: usize) -> Vec<u8> {
    let genesis = Params::main().genesis_hash();
    let ping = Message::Ping {
        nonce: 7,
        tip: Tip {
            height: 0,
            hash: genesis,
            work: Work(1),
        },
    };
    let mut json = ping.to_json();
    assert_eq!(json.pop(), Some(b'}'));
    let head = br#","pad":""#;
    let pad = len.saturating_sub(json.len() + head.len() + 2);
    json.extend_from_slice(head);
    json.resize(json.len() + pad, b'x');
    json.extend_from_slice(b"\"}");
    frame(&json)
}

/// A ping claiming the genesis tip.
fn ping_frame() -> Vec<u8> {
    Message::Ping {
        nonce: rand::random(),
        tip: Tip {
            height: 0,
            hash: Params::main().genesis_hash(),
            work: Work(1),
        },
    }
    .to_frame()
}

/// Reads frames until a pong arrives; false on timeout or close.
async fn pong_within(s: &mut TcpStream, t: Duration) -> bool {
    let mut dec = FrameDecoder::new();
    let mut buf = vec![0u8; 64 * 1024];
    tokio::time::timeout(t, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => dec.extend(&buf[..n]),
            }
            while let Ok(Some(m)) = dec.next_message() {
                if matches!(m, Message::Pong { .. }) {
                    return true;
                }
            }
        }
    })
    .await
    .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_carried_a_large_frame_gives_its_buffer_back() {
    let dir = TempDir::new("big-frame");
    let args: Vec<String> = ["--port", "0", "--pow-bits", "10", "--ping-interval-ms", "0"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let node = NodeProc::start("big-frame", &args, dir.path());
    let pid = node.child.id();
    let conns = 48;
    let frame_bytes = 3 << 20;
    let ping = Arc::new(padded_ping(frame_bytes));
    let before = vm_rss_kib(pid);
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (addr, ping) = (node.addr, ping.clone());
        tasks.push(tokio::spawn(async move {
            let mut s = handshake(addr).await;
            s.write_all(&ping).await.expect("send the padded ping");
            assert!(
                pong_within(&mut s, WAIT).await,
                "a padded ping is a valid ping: answered"
            );
            s
        }));
    }
    let mut open = Vec::new();
    for t in tasks {
        open.push(t.await.expect("connection task"));
    }
    let after = vm_rss_kib(pid);
    let grown_mib = after.saturating_sub(before) / 1024;
    eprintln!(
        "RSS {} MiB before, {} MiB with {conns} connections that each carried a {} MiB frame",
        before / 1024,
        after / 1024,
        frame_bytes >> 20
    );
    let carried_mib = (conns * frame_bytes) as u64 >> 20;
    assert!(
        grown_mib < carried_mib / 2,
        "RSS grew {grown_mib} MiB after {carried_mib} MiB of frames: buffers kept"
    );
    assert_eq!(
        node.status().expect("status").peers.len(),
        conns,
        "every connection is still open"
    );
    drop(open);
}

/// Reads until the remote closes: what it sent, or `None` if it was still open after `t`.
async fn read_to_close(s: &mut TcpStream, t: Duration) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    tokio::time::timeout(t, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .ok()
    .map(|_| got)
}

/// An in-process node serving its API on 127.0.0.1:0 within `limits`; the API stops when the
/// returned sender is dropped.
async fn api_node(
    limits: rantai_node::http::HttpLimits,
) -> (
    NodeHandle,
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
) {
    let node = spawn_node(fast_options()).await;
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(rantai_node::http::serve(
        l,
        node.client().clone(),
        limits,
        async {
            let _ = stopped.await;
        },
    ));
    (node, addr, stop)
}

const GET_STATUS: &[u8] = b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_closes_slow_idle_and_old_connections_and_caps_how_many_it_serves() {
    let limits = rantai_node::http::HttpLimits {
        max_connections: 4,
        header_read_timeout: Duration::from_millis(400),
        request_timeout: Duration::from_millis(800),
        max_connection_age: Duration::from_millis(2000),
    };
    let (_node, api, _stop) = api_node(limits).await;
    let t = std::time::Instant::now;

    // A header that never ends is cut off after the header timeout, not before.
    let mut s = TcpStream::connect(api).await.expect("connect");
    s.write_all(b"GET /status HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("send");
    let start = t();
    assert!(
        read_to_close(&mut s, WAIT).await.is_some(),
        "half header closed"
    );
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(350) && took < Duration::from_secs(3),
        "closed after the header timeout: {took:?}"
    );

    // An idle kept-alive connection: answered, then closed once the next header is late.
    let mut s = TcpStream::connect(api).await.expect("connect");
    s.write_all(GET_STATUS).await.expect("send");
    let start = t();
    let got = read_to_close(&mut s, WAIT)
        .await
        .expect("idle keep-alive closed");
    assert!(got.starts_with(b"HTTP/1.1 200"), "answered first");
    assert!(start.elapsed() >= Duration::from_millis(350));

    // A body that trickles in: 408 once the request timeout passes, then the socket closes.
    let mut s = TcpStream::connect(api).await.expect("connect");
    s.write_all(b"POST /blocks HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nslow")
        .await
        .expect("send");
    let start = t();
    let got = read_to_close(&mut s, WAIT).await.expect("slow body closed");
    let took = start.elapsed();
    let head = String::from_utf8_lossy(&got);
    assert!(
        head.starts_with("HTTP/1.1 408"),
        "408 for a slow body: {head}"
    );
    assert!(
        took >= Duration::from_millis(750) && took < Duration::from_secs(3),
        "answered after the request timeout: {took:?}"
    );

    // A client that keeps its connection busy is still let go at the age limit.
    let mut s = TcpStream::connect(api).await.expect("connect");
    let start = t();
    let mut answers = 0;
    let closed = loop {
        assert!(
            start.elapsed() < WAIT,
            "a busy connection outlived its age limit"
        );
        if s.write_all(GET_STATUS).await.is_err() {
            break start.elapsed();
        }
        let mut buf = vec![0u8; 16 * 1024];
        match tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => answers += 1,
            _ => break start.elapsed(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(answers >= 5, "served while young: {answers} answers");
    assert!(
        closed >= Duration::from_millis(1900) && closed < Duration::from_secs(4),
        "closed at the age limit: {closed:?}"
    );

    // Four idle connections hold every slot: a fifth is served only once their header
    // timeout frees one, and then it is.
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(TcpStream::connect(api).await.expect("connect"));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut s = TcpStream::connect(api).await.expect("connect");
    s.write_all(GET_STATUS).await.expect("send");
    let start = t();
    let mut buf = vec![0u8; 16 * 1024];
    let n = tokio::time::timeout(WAIT, s.read(&mut buf))
        .await
        .expect("served once a slot is free")
        .expect("read");
    let took = start.elapsed();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "served");
    assert!(
        took >= Duration::from_millis(200),
        "waited for a slot: {took:?}"
    );
    drop(idle);
}

/// Runs the node with at most 256 open files, like a host with a low `ulimit -n`.
const LOW_FD_LIMIT: &[&str] = &["sh", "-c", "ulimit -n 256 && exec \"$0\" \"$@\""];

/// Open file descriptors of process `pid`.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// The soft open-file limit of process `pid`, from `/proc/PID/limits`.
fn fd_limit(pid: u32) -> Option<u64> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_half_sent_requests_starve_neither_the_api_nor_the_peers() {
    let dir = TempDir::new("half-open");
    let header_timeout = Duration::from_millis(1000);
    let mut args = node_args(0, &[], &[]);
    args.extend(["--http-header-timeout-ms".into(), "1000".into()]);
    let mut node = NodeProc::start_in(LOW_FD_LIMIT, "half-open", &args, dir.path());
    let pid = node.child.id();
    assert_eq!(fd_limit(pid), Some(256), "the node runs with 256 files");
    let fds_before = open_fds(pid);
    let cap = rantai_node::http::MAX_API_CONNECTIONS;

    let mut half_open = Vec::new();
    let (sent_tx, mut sent_rx) = tokio::sync::mpsc::channel(300);
    for _ in 0..300 {
        let (api, sent_tx) = (node.http, sent_tx.clone());
        half_open.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(api).await.expect("connect");
            s.write_all(b"GET /status HTTP/1.1\r\nHost: x\r\n")
                .await
                .expect("send half a header");
            let sent = std::time::Instant::now();
            let _ = sent_tx.send(()).await;
            read_to_close(&mut s, WAIT).await.map(|_| sent.elapsed())
        }));
    }
    for _ in 0..300 {
        tokio::time::timeout(WAIT, sent_rx.recv())
            .await
            .expect("all half-sent requests out");
    }
    let fds_full = fds_before + cap;
    wait_async(WAIT, "the API to take its limit of connections", || async {
        open_fds(pid) >= fds_full
    })
    .await;
    // While they hold every API slot, a new peer connects and completes its handshake.
    let start = std::time::Instant::now();
    let mut peer = tokio::time::timeout(Duration::from_secs(5), handshake(node.addr))
        .await
        .expect("a peer is served during the flood");
    eprintln!("peer handshake during the flood: {:?}", start.elapsed());
    let fds_during = open_fds(pid);
    // A complete request waits its turn behind the half-sent ones: each batch of `cap` is
    // cut off after the header timeout.
    let rounds = 300u32.div_ceil(cap as u32) + 2;
    let api = node.http;
    let answered = tokio::task::spawn_blocking(move || {
        let start = std::time::Instant::now();
        let mut s = std::net::TcpStream::connect(api).expect("connect");
        s.set_read_timeout(Some(header_timeout * rounds + Duration::from_secs(5)))
            .expect("timeout");
        std::io::Write::write_all(
            &mut s,
            b"GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .expect("send");
        let mut resp = Vec::new();
        let _ = std::io::Read::read_to_end(&mut s, &mut resp);
        (resp, start.elapsed())
    })
    .await
    .expect("join");
    eprintln!(
        "complete request answered after {:?}; node fds {fds_before} before, {fds_during} during",
        answered.1
    );
    assert!(
        answered.0.starts_with(b"HTTP/1.1 200"),
        "a complete request is answered: {:?}",
        String::from_utf8_lossy(&answered.0)
    );
    assert!(
        answered.1 < header_timeout * rounds,
        "within {rounds} header timeouts"
    );
    assert!(
        fds_during <= fds_before + cap + 8,
        "the API holds at most {cap} connections: {fds_during} fds (from {fds_before})"
    );
    for (i, h) in half_open.into_iter().enumerate() {
        let lived = h
            .await
            .expect("join")
            .unwrap_or_else(|| panic!("half-open request {i} still open"));
        assert!(
            lived >= header_timeout * 9 / 10,
            "half-open request {i} closed by its header timeout, not before: {lived:?}"
        );
    }
    assert!(node.alive(), "the node is running");
    assert!(node.status().is_some(), "and serving");
    // The peer kept its connection through all of it.
    peer.write_all(&ping_frame()).await.expect("send a ping");
    assert!(
        pong_within(&mut peer, WAIT).await,
        "the peer is still served"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_peer_listener_waits_out_running_out_of_file_descriptors() {
    let dir = TempDir::new("emfile");
    let args = node_args(0, &[], &["--max-inbound", "1000"]);
    let mut node = NodeProc::start_in(LOW_FD_LIMIT, "emfile", &args, dir.path());
    let pid = node.child.id();
    assert_eq!(fd_limit(pid), Some(256), "the node runs with 256 files");
    // More idle connections than the node has descriptors: it accepts until EMFILE, the rest
    // wait in the kernel; the handshake timeout (2 s) closes them and frees descriptors.
    let mut idle = Vec::new();
    for _ in 0..300 {
        idle.push(TcpStream::connect(node.addr).await.expect("connect"));
    }
    wait_until(WAIT, "the node to run out of descriptors", || {
        node.log_text().contains("accept failed")
    });
    let peak = open_fds(pid);
    let start = std::time::Instant::now();
    let mut peer = tokio::time::timeout(WAIT, handshake(node.addr))
        .await
        .expect("a peer is served once descriptors are free");
    eprintln!(
        "node fds at the limit: {peak}; peer handshake {:?} later",
        start.elapsed()
    );
    let log = node.log_text();
    let failures = log.matches("peer accept failed").count();
    eprintln!("peer accept failures logged: {failures}");
    assert!(
        failures < 100,
        "accept errors back off instead of spinning: {failures} logged"
    );
    assert!(node.alive(), "the node is running");
    peer.write_all(&ping_frame()).await.expect("send a ping");
    assert!(pong_within(&mut peer, WAIT).await, "the new peer is served");
    let st = tokio::task::spawn_blocking({
        let http = node.http;
        move || {
            let mut st = None;
            wait_until(WAIT, "status", || {
                st = http_status(http);
                st.is_some()
            });
            st
        }
    })
    .await
    .expect("join")
    .expect("status");
    assert!(
        st.peers.iter().any(|p| p.ready),
        "the new peer is connected: {:?}",
        st.peers
    );
    drop(idle);
}

fn http_status(addr: std::net::SocketAddr) -> Option<rantai_node::Status> {
    let (code, body) = http(addr, "GET", "/status", b"").ok()?;
    (code == 200)
        .then(|| serde_json::from_slice(&body).ok())
        .flatten()
}

#[test]
fn a_flood_of_maximal_posts_is_answered_and_memory_stays_bounded() {
    let dir = TempDir::new("post-flood");
    // Mining at 24 bits takes seconds a block, so the posts fill the pending pool.
    let mut args = node_args(0, &[], &[]);
    let bits = args
        .iter()
        .position(|a| a == "--pow-bits")
        .expect("--pow-bits")
        + 1;
    args[bits] = "24".into();
    let node = NodeProc::start("post-flood", &args, dir.path());
    let pid = node.child.id();
    let rss_before = vm_rss_kib(pid);
    let body_bytes = 1_000_000;
    let (posters, posts_each) = (10, 10);
    let done = Arc::new(AtomicBool::new(false));
    // Watchers: the peak RSS, and the slowest /status while the posts go on.
    let rss_peak = std::thread::spawn({
        let done = done.clone();
        move || {
            let mut peak = 0;
            while !done.load(Ordering::Relaxed) {
                peak = peak.max(vm_rss_kib(pid));
                std::thread::sleep(Duration::from_millis(10));
            }
            peak
        }
    });
    let status_slowest = std::thread::spawn({
        let (done, api) = (done.clone(), node.http);
        move || {
            let mut slowest = Duration::ZERO;
            while !done.load(Ordering::Relaxed) {
                let start = std::time::Instant::now();
                let (code, _) = http(api, "GET", "/status", b"").expect("status during the flood");
                assert_eq!(code, 200, "status during the flood");
                slowest = slowest.max(start.elapsed());
                std::thread::sleep(Duration::from_millis(50));
            }
            slowest
        }
    });
    let posts: Vec<_> = (0..posters)
        .map(|t| {
            let api = node.http;
            std::thread::spawn(move || {
                let mut codes = Vec::new();
                for i in 0..posts_each {
                    let mut body = format!("poster {t} post {i} ").into_bytes();
                    body.resize(body_bytes, b'x');
                    let (code, _) = http(api, "POST", "/blocks", &body).expect("POST answered");
                    codes.push(code);
                }
                codes
            })
        })
        .collect();
    let codes: Vec<u16> = posts
        .into_iter()
        .flat_map(|p| p.join().expect("poster"))
        .collect();
    done.store(true, Ordering::Relaxed);
    let peak = rss_peak.join().expect("rss watcher");
    let slowest = status_slowest.join().expect("status watcher");
    let accepted = codes.iter().filter(|&&c| c == 202).count();
    let pool_full = codes.iter().filter(|&&c| c == 503).count();
    eprintln!(
        "{} posts of {body_bytes} bytes: {accepted} accepted, {pool_full} refused (pool full); \
         RSS {} MiB before, peak {} MiB; slowest /status {slowest:?}",
        codes.len(),
        rss_before / 1024,
        peak / 1024
    );
    assert_eq!(
        accepted + pool_full,
        codes.len(),
        "only 202 or 503: {codes:?}"
    );
    assert!(accepted > 0, "posts are accepted");
    assert!(pool_full > 0, "a full pool answers 503");
    assert!(
        slowest < Duration::from_secs(2),
        "status stays quick: {slowest:?}"
    );
    let mut node = node;
    assert!(node.alive(), "the node is running");
    // The pending pool holds at most 64 MiB; the rest is bodies in flight.
    assert!(
        peak / 1024 < 256,
        "RSS peak {} MiB for {} MiB posted",
        peak / 1024,
        (codes.len() * body_bytes) >> 20
    );
}

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
    rand::thread_rng().fill_bytes(&mut phantom);
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
/// but take 4.2 MB as JSON, over the 4 MiB frame limit, so no peer could receive the block and
/// each dropped the sender, again and again. Now the node refuses the line, and the largest
/// line of control characters it accepts still reaches its peer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_too_large_as_json_is_refused_and_the_largest_accepted_one_relays() {
    let (a, b) = pair().await;
    let refused = a
        .client()
        .submit("\u{1}".repeat(700_000))
        .await
        .expect("running");
    assert!(
        matches!(
            refused,
            Err(rantai_core::SubmitError::TooLargeOnWire { .. })
        ),
        "{refused:?}"
    );
    // 6 bytes each as JSON: about 690,000 of them fit a frame.
    let max =
        (rantai_core::block::MAX_BLOCK_WIRE_BYTES - rantai_core::block::ITEM_WIRE_OVERHEAD) / 6;
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
