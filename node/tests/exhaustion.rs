//! Resource exhaustion against a node process or an in-process node on 127.0.0.1: the HTTP
//! API's connection limits and timeouts, running out of file descriptors, and floods of
//! maximal `POST /blocks`. The node keeps serving its peers and its memory stays bounded.

mod common;

use common::*;
use rantai_node::NodeHandle;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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
    let ping = Arc::new(large_frame_then_ping(frame_bytes));
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
