//! Performance measurements, `#[ignore]`d because they take tens of seconds and want a release
//! build. Run them one at a time and read the printed numbers:
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-node cargo test -p rantai-node --release --test bench -- \
//!     --ignored --nocapture --test-threads 1
//! ```

mod common;

use common::*;
use rantai_core::message::{Hello, PROTOCOL_VERSION};
use rantai_core::{FrameDecoder, Message, Params, RelayPolicy, Tip, Work};
use rantai_node::{NodeHandle, NodeOptions};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn raw_peer(addr: std::net::SocketAddr) -> TcpStream {
    let g = Params::main().genesis_hash();
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.set_nodelay(true).expect("nodelay");
    let hello = Message::Hello(Box::new(Hello {
        version: PROTOCOL_VERSION,
        genesis: g,
        node_id: rand::random(),
        tip: Tip {
            height: 0,
            hash: g,
            work: Work(1),
        },
        listen: None,
    }));
    s.write_all(&hello.to_frame()).await.expect("hello");
    s
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn pct(v: &[f64], p: f64) -> f64 {
    v[((v.len() as f64 - 1.0) * p) as usize]
}

/// One hop: a block sent by raw peer P to the node arrives at raw peer Q (receive, validate,
/// relay, send), 1,000 times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn per_hop_latency() {
    // Push: the node forwards the block itself, so the hop is the node's own work.
    let mut opts = NodeOptions::default();
    opts.config.relay = RelayPolicy::Push;
    let node = spawn_node(opts).await;
    let blocks = mined_chain(1000, "hop");
    let mut p = raw_peer(node.local_addr()).await;
    let mut q = raw_peer(node.local_addr()).await;
    // P only sends; the node sends it nothing but its hello (no relay back to the sender).
    let (_pr, mut pw) = p.split();
    let mut samples = Vec::new();
    let mut dec = FrameDecoder::new();
    let mut buf = vec![0u8; 256 * 1024];
    tokio::time::sleep(Duration::from_millis(200)).await;
    for b in &blocks {
        let frame = Message::Block { block: b.clone() }.to_frame();
        let t0 = Instant::now();
        pw.write_all(&frame).await.expect("send");
        let want = b.hash();
        'wait: loop {
            let n = tokio::time::timeout(Duration::from_secs(5), q.read(&mut buf))
                .await
                .expect("relay within 5 s")
                .expect("read");
            assert!(n > 0, "q closed");
            dec.extend(&buf[..n]);
            while let Some(m) = dec.next_message().expect("valid") {
                match m {
                    Message::Block { block } if block.hash() == want => break 'wait,
                    Message::Inv { hashes } if hashes.contains(&want) => break 'wait,
                    Message::Ping { nonce, .. } => {
                        let tip = Tip {
                            height: 0,
                            hash: Params::main().genesis_hash(),
                            work: Work(1),
                        };
                        q.write_all(&Message::Pong { nonce, tip }.to_frame())
                            .await
                            .expect("pong");
                    }
                    _ => {}
                }
            }
        }
        samples.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    let med = median(&mut samples);
    println!(
        "per-hop latency over {} blocks: median {med:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        samples.len(),
        pct(&samples, 0.9),
        pct(&samples, 0.99),
        samples[samples.len() - 1]
    );
    node.shutdown().await;
}

/// Items in a process node's best chain, counted through the HTTP API.
fn items_in(n: &NodeProc) -> usize {
    n.best_chain().map(|c| item_texts(&c).len()).unwrap_or(0)
}

fn piped_lines(persistent: bool) {
    let dir = TempDir::new("pipe");
    let (pa, pb, pc) = (free_port(), free_port(), free_port());
    let data = |n: &str| -> Vec<String> {
        if persistent {
            vec![
                "--data-dir".into(),
                dir.path().join(n).to_string_lossy().into(),
            ]
        } else {
            vec![]
        }
    };
    let args = |port: u16, peers: &[u16], name: &str| {
        let mut a = vec!["--port".to_string(), port.to_string()];
        for p in peers {
            a.push("--peer".into());
            a.push(format!("127.0.0.1:{p}"));
        }
        a.extend(data(name));
        a
    };
    let b = NodeProc::start("b", &args(pb, &[], "b"), dir.path());
    let c = NodeProc::start("c", &args(pc, &[], "c"), dir.path());
    let mut a = NodeProc::start("a", &args(pa, &[pb, pc], "a"), dir.path());
    wait_until(Duration::from_secs(10), "a connected to b and c", || {
        a.status()
            .is_some_and(|s| s.peers.iter().filter(|p| p.ready).count() == 2)
    });
    let input: String = (0..10_000).map(|i| format!("line {i}\n")).collect();
    let t0 = Instant::now();
    {
        let w = a.stdin.as_mut().expect("stdin");
        std::io::Write::write_all(w, input.as_bytes()).expect("pipe lines");
        std::io::Write::flush(w).expect("flush");
    }
    let mut poll_b = 0;
    wait_until(Duration::from_secs(60), "10,000 lines at b and c", || {
        poll_b += 1;
        items_in(&b) >= 10_000 && items_in(&c) >= 10_000
    });
    let took = t0.elapsed();
    let blocks = b.status().map(|s| s.height).unwrap_or(0);
    println!(
        "10,000 piped lines reached both peers in {:.3} s ({}; {blocks} blocks; {:.0} lines/s)",
        took.as_secs_f64(),
        if persistent {
            "--data-dir on all three"
        } else {
            "in memory"
        },
        10_000.0 / took.as_secs_f64()
    );
    let (_, metrics) = http(a.http, "GET", "/metrics", b"").expect("metrics");
    let metrics = String::from_utf8_lossy(&metrics);
    for l in metrics
        .lines()
        .filter(|l| l.starts_with("rantai_store_commits") || l.starts_with("rantai_blocks_stored"))
    {
        println!("  a: {l}");
    }
}

#[test]
#[ignore]
fn ten_thousand_piped_lines_in_memory() {
    piped_lines(false);
}

#[test]
#[ignore]
fn ten_thousand_piped_lines_with_data_dir() {
    piped_lines(true);
}

/// 50 in-process nodes over real sockets (a ring plus random chords); a block injected at
/// node 0 is timed until every node accepted it.
/// The same 50-node network and blocks with whole blocks pushed to every neighbour.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn fifty_node_propagation_push() {
    fifty_node_propagation(RelayPolicy::Push).await;
}

/// The same with hashes announced and blocks fetched (the default relay policy).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn fifty_node_propagation_announce() {
    fifty_node_propagation(RelayPolicy::Announce).await;
}

async fn fifty_node_propagation(relay: RelayPolicy) {
    const N: usize = 50;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let mut listeners = Vec::new();
    for _ in 0..N {
        listeners.push(
            tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind"),
        );
    }
    let addrs: Vec<String> = listeners
        .iter()
        .map(|l| l.local_addr().expect("addr").to_string())
        .collect();
    let mut nodes: Vec<NodeHandle> = Vec::new();
    for (i, l) in listeners.into_iter().enumerate() {
        let mut peers = vec![addrs[(i + 1) % N].clone()];
        peers.push(addrs[(i * 7 + 3) % N].clone());
        peers.retain(|p| p != &addrs[i]);
        let mut opts = NodeOptions {
            peers,
            ..NodeOptions::default()
        };
        opts.config.relay = relay;
        nodes.push(rantai_node::spawn(l, opts).await.expect("spawn"));
    }
    let start = Instant::now();
    loop {
        let mut ready = 0;
        for n in &nodes {
            if n.client()
                .status()
                .await
                .is_ok_and(|s| s.peers.iter().filter(|p| p.ready).count() >= 2)
            {
                ready += 1;
            }
        }
        if ready == N {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "network did not form"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let blocks = mined_chain(20, "fifty");
    let mut inject = raw_peer(nodes[0].local_addr()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut samples = Vec::new();
    for (k, b) in blocks.iter().enumerate() {
        let t0 = Instant::now();
        inject
            .write_all(&Message::Block { block: b.clone() }.to_frame())
            .await
            .expect("inject");
        loop {
            let done = nodes
                .iter()
                .all(|n| n.client().metrics().blocks_accepted.load(Ordering::Relaxed) > k as u64);
            if done {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "block {k} did not reach every node"
            );
            tokio::task::yield_now().await;
        }
        samples.push(t0.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let med = median(&mut samples);
    println!(
        "50-node propagation (ring + chords, {relay} relay) over {} blocks: median {med:.2} ms, max {:.2} ms",
        samples.len(),
        samples[samples.len() - 1]
    );
    for n in nodes {
        n.shutdown().await;
    }
}

/// RSS of a `rantai-node` process that loaded 100,000 small blocks from its data directory.
#[test]
#[ignore]
fn rss_with_100k_blocks() {
    let dir = TempDir::new("rss");
    let t0 = Instant::now();
    let blocks = mined_chain(100_000, "rss");
    println!(
        "mined 100,000 blocks in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    let data = dir.path().join("data");
    let params = Arc::new(Params::main());
    rantai_node::store::write_blocks(&data, &params, &blocks).expect("write store");
    drop(blocks);
    let t1 = Instant::now();
    let args = node_args(0, &[], &["--data-dir", &data.to_string_lossy()]);
    let mut n = NodeProc::start("rss", &args, dir.path());
    let load = t1.elapsed();
    let st = n.status().expect("status");
    assert_eq!(st.height, 100_000);
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", n.child.id())).expect("proc status");
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS"))
        .unwrap_or("VmRSS: ?")
        .to_string();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .unwrap_or("VmHWM: ?")
        .to_string();
    println!(
        "node holding 100,000 blocks (height {}): {rss}, peak {hwm}; start with load took {:.2} s",
        st.height,
        load.as_secs_f64()
    );
    n.kill9();
}

/// Block throughput: 10,000 pre-mined blocks pipelined into node A by a raw peer, timed until
/// A's two peers B and C (in-process, real sockets) accepted them all.
async fn block_throughput(persistent: bool) {
    let dir = TempDir::new("blocks");
    let opts = |name: &str, peers: Vec<String>| NodeOptions {
        peers,
        data_dir: persistent.then(|| dir.path().join(name)),
        ..NodeOptions::default()
    };
    let b = spawn_node(opts("b", vec![])).await;
    let c = spawn_node(opts("c", vec![])).await;
    let a = spawn_node(opts(
        "a",
        vec![b.local_addr().to_string(), c.local_addr().to_string()],
    ))
    .await;
    let ca = a.client().clone();
    let start = Instant::now();
    while !ca
        .status()
        .await
        .is_ok_and(|s| s.peers.iter().filter(|p| p.ready).count() == 2)
    {
        assert!(start.elapsed() < Duration::from_secs(10), "a connects");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let blocks = mined_chain(10_000, "throughput");
    let mut bytes = Vec::new();
    for blk in &blocks {
        bytes.extend_from_slice(&Message::Block { block: blk.clone() }.to_frame());
    }
    let mut p = raw_peer(a.local_addr()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t0 = Instant::now();
    p.write_all(&bytes).await.expect("send");
    let done =
        |n: &NodeHandle| n.client().metrics().blocks_accepted.load(Ordering::Relaxed) >= 10_000;
    let stored =
        |n: &NodeHandle| n.client().metrics().blocks_stored.load(Ordering::Relaxed) >= 10_000;
    while !(done(&b) && done(&c) && (!persistent || (stored(&b) && stored(&c)))) {
        assert!(t0.elapsed() < Duration::from_secs(120), "blocks arrive");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let took = t0.elapsed().as_secs_f64();
    let commits = b.client().metrics().store_commits.load(Ordering::Relaxed);
    println!(
        "10,000 blocks through one node to two peers ({}): {took:.3} s, {:.0} blocks/s{}",
        if persistent {
            "--data-dir on all three, durable at b and c"
        } else {
            "in memory"
        },
        10_000.0 / took,
        if persistent {
            format!(", b committed them in {commits} transactions")
        } else {
            String::new()
        }
    );
    for n in [a, b, c] {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn ten_thousand_blocks_in_memory() {
    block_throughput(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn ten_thousand_blocks_with_data_dir() {
    block_throughput(true).await;
}

/// RSS of a `rantai-node` process holding 1,000 blocks of about 1 MB each, received from a raw
/// peer (in memory, then with a data directory and after a restart from it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn rss_with_1000_blocks_of_1_mb() {
    let n_blocks = 1000;
    let text_bytes = 1_000_000;
    let dir = TempDir::new("rss-1mb");
    let data = dir.path().join("data");
    let t0 = Instant::now();
    let frames: Vec<Vec<u8>> = mined_chain_of(n_blocks, |i| {
        let mut text = format!("block {i} ");
        text.extend(std::iter::repeat_n('x', text_bytes - text.len()));
        text
    })
    .into_iter()
    .map(|block| Message::Block { block }.to_frame())
    .collect();
    println!(
        "mined {n_blocks} blocks of {text_bytes} bytes of data in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    let rss = |n: &NodeProc| {
        let s =
            std::fs::read_to_string(format!("/proc/{}/status", n.child.id())).expect("proc status");
        let kib = |key: &str| -> u64 {
            s.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0)
        };
        (kib("VmRSS:") / 1024, kib("VmHWM:") / 1024)
    };
    let wait_height = |n: &NodeProc| {
        wait_until(Duration::from_secs(300), "all blocks accepted", || {
            n.status().is_some_and(|s| {
                s.height == n_blocks as u64 && s.stored_blocks.unwrap_or(s.height) >= s.height
            })
        })
    };
    let data_arg = data.to_string_lossy().to_string();
    for (what, extra) in [
        ("in memory", vec![]),
        ("with --data-dir", vec!["--data-dir", data_arg.as_str()]),
    ] {
        let mut args = vec!["--port", "0", "--pow-bits", "8"];
        args.extend(extra.iter().copied());
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let mut n = NodeProc::start("rss-1mb", &args, dir.path());
        let mut p = raw_peer(n.addr).await;
        let t1 = Instant::now();
        for f in &frames {
            p.write_all(f).await.expect("send");
        }
        let addr_n = &n;
        tokio::task::block_in_place(|| wait_height(addr_n));
        let (now_mib, peak_mib) = rss(&n);
        println!(
            "{what}: {n_blocks} blocks of ~1 MB received in {:.1} s; VmRSS {now_mib} MiB, peak VmHWM {peak_mib} MiB",
            t1.elapsed().as_secs_f64()
        );
        drop(p);
        n.kill9();
    }
    let t2 = Instant::now();
    let args: Vec<String> = ["--port", "0", "--pow-bits", "8", "--data-dir", &data_arg]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut n = NodeProc::start("rss-1mb-reload", &args, dir.path());
    tokio::task::block_in_place(|| wait_height(&n));
    let (now_mib, peak_mib) = rss(&n);
    println!(
        "restarted from its data dir: height {n_blocks} in {:.1} s; VmRSS {now_mib} MiB, peak VmHWM {peak_mib} MiB",
        t2.elapsed().as_secs_f64()
    );
    n.kill9();
}
