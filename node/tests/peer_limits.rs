//! The node's connection rules at their boundaries, against an in-process node over real
//! sockets on 127.0.0.1: after the handshake a frame of exactly 4 MiB is a message and one byte
//! more closes the connection; a hello carrying the node's own id, or another protocol
//! version, is refused; two nodes that dial each other keep one connection; and `POST /blocks`
//! answers 413 one byte over its limit and 503 once the pending pool is full.

mod common;

use common::*;
use rantai_core::message::{Hello, MAX_FRAME_BYTES, PROTOCOL_VERSION};
use rantai_core::{FrameDecoder, Message, Params, Tip, Work};
use rantai_node::{NodeHandle, NodeOptions};
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(10);

fn hello(version: u32, node_id: u64) -> Message {
    let genesis = Params::main().genesis_hash();
    Message::Hello(Box::new(Hello {
        version,
        genesis,
        node_id,
        tip: Tip {
            height: 0,
            hash: genesis,
            work: Work(1),
        },
        listen: None,
    }))
}

/// Sends `hello` and reads until the node's hello arrives (`true`) or the node closes (`false`).
async fn greet(s: &mut TcpStream, hello: &Message) -> bool {
    s.write_all(&hello.to_frame()).await.expect("send hello");
    let mut dec = FrameDecoder::new();
    let mut buf = vec![0u8; 64 * 1024];
    tokio::time::timeout(WAIT, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => dec.extend(&buf[..n]),
            }
            while let Ok(Some(m)) = dec.next_message() {
                if matches!(m, Message::Hello(_)) {
                    return true;
                }
            }
        }
    })
    .await
    .expect("the node answers or closes within the wait")
}

async fn node() -> NodeHandle {
    let mut opts = fast_options();
    opts.config.ping_interval = None;
    spawn_node(opts).await
}

async fn ready_peers(n: &NodeHandle) -> usize {
    n.client()
        .status()
        .await
        .map(|s| s.peers.iter().filter(|p| p.ready).count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_handshake_a_4_mib_frame_is_a_message_and_one_byte_more_closes() {
    let n = node().await;
    let mut s = TcpStream::connect(n.local_addr()).await.expect("connect");
    assert!(greet(&mut s, &hello(PROTOCOL_VERSION, 0xaaaa)).await);
    if let Err(e) = s.write_all(&large_frame_then_ping(MAX_FRAME_BYTES)).await {
        panic!("the node closed the connection during a frame of exactly 4 MiB: {e}");
    }
    assert_eq!(
        pong_or_close(&mut s, WAIT).await,
        Some(true),
        "a ping of exactly 4 MiB is answered"
    );
    let malformed = || n.client().metrics().malformed_in.load(Ordering::Relaxed);
    assert_eq!(malformed(), 0);
    // One byte more: refused from the length prefix, before any payload is sent.
    s.write_all(&((MAX_FRAME_BYTES + 1) as u32).to_be_bytes())
        .await
        .expect("send the prefix");
    assert_eq!(
        pong_or_close(&mut s, WAIT).await,
        Some(false),
        "a frame of 4 MiB + 1 closes the connection"
    );
    assert_eq!(malformed(), 1);
    // The node serves others as before.
    let mut t = TcpStream::connect(n.local_addr()).await.expect("connect");
    assert!(greet(&mut t, &hello(PROTOCOL_VERSION, 0xbbbb)).await);
    n.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hello_with_the_nodes_own_id_is_refused() {
    let n = node().await;
    let own = u64::from_str_radix(&n.client().status().await.expect("status").node_id, 16)
        .expect("node_id is 16 hex digits");
    let mut s = TcpStream::connect(n.local_addr()).await.expect("connect");
    s.write_all(&hello(PROTOCOL_VERSION, own).to_frame())
        .await
        .expect("send hello");
    assert!(
        closed_within(&mut s, WAIT).await,
        "a connection to ourselves is closed"
    );
    assert_eq!(ready_peers(&n).await, 0);
    // Another id is welcome.
    let mut t = TcpStream::connect(n.local_addr()).await.expect("connect");
    assert!(greet(&mut t, &hello(PROTOCOL_VERSION, own ^ 1)).await);
    n.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hello_of_another_protocol_version_is_refused() {
    let n = node().await;
    for version in [PROTOCOL_VERSION + 1, 0] {
        let mut s = TcpStream::connect(n.local_addr()).await.expect("connect");
        s.write_all(&hello(version, 0xcccc).to_frame())
            .await
            .expect("send hello");
        assert!(
            closed_within(&mut s, WAIT).await,
            "version {version} is refused"
        );
    }
    assert_eq!(ready_peers(&n).await, 0);
    n.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_that_dial_each_other_keep_one_connection() {
    let la = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let lb = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let (aa, ab) = (
        la.local_addr().expect("addr"),
        lb.local_addr().expect("addr"),
    );
    let opts = |peer: std::net::SocketAddr| NodeOptions {
        peers: vec![peer.to_string()],
        ..fast_options()
    };
    let a = rantai_node::spawn(la, opts(ab)).await.expect("a starts");
    let b = rantai_node::spawn(lb, opts(aa)).await.expect("b starts");
    let count = |n: &NodeHandle| {
        let c = n.client().clone();
        async move { c.status().await.map(|s| s.peers.len()).unwrap_or(0) }
    };
    wait_async(WAIT, "both ready", || {
        let (a, b) = (a.client().clone(), b.client().clone());
        async move {
            let r = |s: Result<rantai_node::Status, _>| {
                s.map(|s| s.peers.iter().filter(|p| p.ready).count())
                    .unwrap_or(0)
            };
            r(a.status().await) == 1 && r(b.status().await) == 1
        }
    })
    .await;
    // Stable: one connection each, through redials and handshake timeouts.
    for _ in 0..15 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(count(&a).await <= 1 && count(&b).await <= 1);
    }
    let (sa, sb) = (
        a.client().status().await.expect("a"),
        b.client().status().await.expect("b"),
    );
    assert_eq!(sa.peers.len(), 1, "{:?}", sa.peers);
    assert_eq!(sb.peers.len(), 1, "{:?}", sb.peers);
    assert_eq!(sa.peers[0].node_id.as_deref(), Some(sb.node_id.as_str()));
    assert_eq!(sb.peers[0].node_id.as_deref(), Some(sa.node_id.as_str()));
    a.shutdown().await;
    b.shutdown().await;
}

/// `POST /blocks` over the node's HTTP API: (status, body).
fn post(api: std::net::SocketAddr, body: &[u8]) -> (u16, String) {
    let (code, body) = http(api, "POST", "/blocks", body).expect("POST answered");
    (code, String::from_utf8_lossy(&body).to_string())
}

#[test]
fn post_blocks_answers_413_over_the_limit_and_503_when_the_pool_is_full() {
    let dir = TempDir::new("post-limits");
    // 48 bits (the most the CLI takes) would take years a block: nothing leaves the pending pool.
    let args = node_args(0, &[], &[]);
    let args: Vec<String> = args
        .iter()
        .scan(false, |bits, a| {
            let out = if *bits { "48".to_string() } else { a.clone() };
            *bits = a == "--pow-bits";
            Some(out)
        })
        .collect();
    let node = NodeProc::start("post-limits", &args, dir.path());
    const MAX_BODY: usize = 1_048_560;
    let (code, body) = post(node.http, &vec![b'y'; MAX_BODY + 1]);
    assert_eq!(code, 413, "{body}");
    assert_eq!(node.status().expect("status").pending_items, 0);
    // The pool holds 64 MiB.
    let mut accepted = 0;
    let refused = loop {
        let mut data = format!("item {accepted} ").into_bytes();
        data.resize(MAX_BODY, b'z');
        let (code, body) = post(node.http, &data);
        match code {
            202 => accepted += 1,
            503 => break body,
            other => panic!("POST {accepted}: {other} {body}"),
        }
        assert!(accepted <= 64, "the pool took more than 64 MiB");
    };
    assert!(refused.contains("error"), "{refused}");
    let pool = node.status().expect("status").pending_items;
    assert_eq!(pool, accepted, "every 202 is pending, the 503 is not");
    // An item takes 12 bytes plus its text in the pool: 64 maximal ones fill 64 MiB but for
    // 256 bytes, and a 65th does not fit.
    assert_eq!(
        accepted, 64,
        "maximal items before the 64 MiB pool was full"
    );
    // A small item still fits in what is left, and the large one still does not.
    let (code, _) = post(node.http, b"small");
    assert_eq!(code, 202);
    let mut data = b"again ".to_vec();
    data.resize(MAX_BODY, b'z');
    assert_eq!(post(node.http, &data).0, 503);
}
