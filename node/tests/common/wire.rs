//! Raw-socket helpers for tests that speak the peer protocol or HTTP to a node by hand.

use rantai_core::message::{Hello, PROTOCOL_VERSION};
use rantai_core::{BlockHash, FrameDecoder, Message, Params, Tip, Work};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::http;

pub const WAIT: Duration = Duration::from_secs(20);

pub fn hello(genesis: BlockHash) -> Message {
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
pub async fn handshake(addr: std::net::SocketAddr) -> TcpStream {
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
pub async fn closed_within(s: &mut TcpStream, t: Duration) -> bool {
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

pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

/// Resident memory of process `pid` in KiB (`VmRSS` of `/proc/PID/status`).
pub fn vm_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("process status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// A valid `items` message of exactly `len` payload bytes, framed, then a ping: a node that
/// took the large frame as a message answers the ping. Items of 64 KiB each, so none is over a
/// block's limit; a node that does not pool others' items (the default) ignores them.
pub fn large_frame_then_ping(len: usize) -> Vec<u8> {
    const TEXT: usize = 64 << 10;
    let mut left = len - 3;
    let mut items = Vec::new();
    while left >= 2 * (12 + TEXT) {
        items.push(rantai_core::Item {
            nonce: items.len() as u64,
            text: "x".repeat(TEXT),
        });
        left -= 12 + TEXT;
    }
    items.push(rantai_core::Item {
        nonce: items.len() as u64,
        text: "x".repeat(left - 12),
    });
    let msg = Message::Items { items };
    assert_eq!(msg.encoded_len(), len);
    let mut bytes = msg.to_frame();
    bytes.extend_from_slice(&ping_frame());
    bytes
}

/// A ping claiming the genesis tip.
pub fn ping_frame() -> Vec<u8> {
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

/// What happens next on `s` within `t`: `Some(true)` a pong, `Some(false)` closed, `None` neither.
pub async fn pong_or_close(s: &mut TcpStream, t: Duration) -> Option<bool> {
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
    .ok()
}

/// Reads frames until a pong arrives; false on timeout or close.
pub async fn pong_within(s: &mut TcpStream, t: Duration) -> bool {
    pong_or_close(s, t).await == Some(true)
}

pub fn http_status(addr: std::net::SocketAddr) -> Option<rantai_node::Status> {
    let (code, body) = http(addr, "GET", "/status", b"").ok()?;
    (code == 200)
        .then(|| serde_json::from_slice(&body).ok())
        .flatten()
}
