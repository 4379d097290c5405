//! Helpers shared by the node's integration tests: real `rantai-node` processes on 127.0.0.1
//! with ephemeral ports (killed on drop), in-process nodes, a tiny HTTP client and bounded waits.
#![allow(dead_code)]

mod wire;
#[allow(unused_imports)]
pub use wire::*;

use rantai_node::{BlockPage, BlockView, NodeHandle, NodeOptions, Status};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_rantai-node");

/// Flags that keep tests fast: cheap proof of work and short protocol timers.
pub const FAST: &[&str] = &[
    "--pow-bits",
    "10",
    "--handshake-timeout-ms",
    "2000",
    "--request-timeout-ms",
    "2000",
    "--ping-interval-ms",
    "1000",
    "--pong-timeout-ms",
    "3000",
    "--retry-base-ms",
    "50",
    "--retry-max-ms",
    "500",
];

/// A free TCP port on 127.0.0.1 for a node whose address others must know before it starts.
///
/// Drawn at random below Linux's ephemeral range (32768+) and checked by binding it, so that
/// sockets the kernel numbers itself (`--http 127.0.0.1:0`, outgoing connections) of tests
/// running in parallel cannot take it between this check and the node's bind.
pub fn free_port() -> u16 {
    for _ in 0..1000 {
        let port = 20_000 + (rand::random::<u16>() % 12_000);
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 20000..32000");
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "rantai-node-test-{tag}-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var_os("RANTAI_KEEP_TEST_DIRS").is_some() {
            eprintln!("test files kept in {}", self.0.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Polls `cond` every 20 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

/// Minimal HTTP/1.1 client: returns (status code, body).
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)?;
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let head = String::from_utf8_lossy(&resp[..split]).to_string();
    let code: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status code"))?;
    let mut body = resp[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Ok((code, body))
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let Ok(n) = usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16) else {
            break;
        };
        if n == 0 || b.len() < eol + 2 + n {
            break;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + n]);
        b = &b[(eol + 4 + n).min(b.len())..];
    }
    out
}

/// A `rantai-node` child process; killed (SIGKILL) on drop.
pub struct NodeProc {
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    pub addr: SocketAddr,
    pub http: SocketAddr,
    pub log: PathBuf,
}

impl NodeProc {
    /// Starts the binary with `args` plus an HTTP API on an ephemeral port, and waits until it
    /// printed its addresses. stderr goes to `log`.
    pub fn start(name: &str, args: &[String], log_dir: &Path) -> NodeProc {
        NodeProc::start_in(&[], name, args, log_dir)
    }

    /// Like [`NodeProc::start`], with the binary run through `wrapper` (e.g. `ip netns exec ns`).
    pub fn start_in(wrapper: &[&str], name: &str, args: &[String], log_dir: &Path) -> NodeProc {
        let log = log_dir.join(format!("{name}.log"));
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        let mut cmd = match wrapper.split_first() {
            Some((prog, rest)) => {
                let mut c = Command::new(prog);
                c.args(rest).arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        let mut child = cmd
            .args(args)
            .args(["--http", "127.0.0.1:0"])
            .env("RUST_LOG", "info")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .expect("spawn rantai-node");
        let stdout = child.stdout.take().expect("stdout");
        let stdin = child.stdin.take();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut node = NodeProc {
            child,
            stdin,
            addr: "0.0.0.0:0".parse().expect("addr"),
            http: "0.0.0.0:0".parse().expect("addr"),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut got = (false, false);
        while !(got.0 && got.1) {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "{name} did not print its addresses; log:\n{}",
                    node.log_text()
                )
            });
            if let Some(a) = line.strip_prefix("listening on ") {
                node.addr = a.trim().parse().expect("listen addr");
                got.0 = true;
            } else if line.starts_with("not listening") {
                // `--connect` without `--listen`: `addr` stays 0.0.0.0:0.
                got.0 = true;
            } else if let Some(a) = line.strip_prefix("http on ") {
                node.http = a.trim().parse().expect("http addr");
                got.1 = true;
            }
        }
        node
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Types a line on the node's stdin.
    pub fn type_line(&mut self, line: &str) {
        let w = self.stdin.as_mut().expect("stdin open");
        writeln!(w, "{line}").expect("write stdin");
        w.flush().expect("flush stdin");
    }

    pub fn status(&self) -> Option<Status> {
        let (code, body) = http(self.http, "GET", "/status", b"").ok()?;
        (code == 200)
            .then(|| serde_json::from_slice(&body).ok())
            .flatten()
    }

    /// The whole best chain through `GET /blocks`, page by page.
    pub fn best_chain(&self) -> Option<Vec<BlockView>> {
        let mut out = Vec::new();
        loop {
            let path = format!("/blocks?from={}&limit=1000", out.len());
            let (code, body) = http(self.http, "GET", &path, b"").ok()?;
            if code != 200 {
                return None;
            }
            let page: BlockPage = serde_json::from_slice(&body).ok()?;
            let n = page.blocks.len();
            out.extend(page.blocks);
            if n == 0 || out.len() as u64 > page.height {
                return Some(out);
            }
        }
    }

    pub fn tip(&self) -> Option<(u64, String)> {
        self.status().map(|s| (s.height, s.tip))
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Args for a node on `port` dialling `peers`, with the fast test flags.
pub fn node_args(port: u16, peers: &[u16], extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = vec!["--port".into(), port.to_string()];
    for p in peers {
        a.push("--peer".into());
        a.push(format!("127.0.0.1:{p}"));
    }
    a.extend(FAST.iter().map(|s| s.to_string()));
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

/// Texts of all items in a chain, in chain order.
pub fn item_texts(chain: &[BlockView]) -> Vec<String> {
    chain
        .iter()
        .flat_map(|b| b.items.iter().map(|i| i.text.clone()))
        .collect()
}

/// Options for an in-process node with the fast test settings.
pub fn fast_options() -> NodeOptions {
    let mut o = NodeOptions {
        write_timeout: Duration::from_secs(5),
        ..NodeOptions::default()
    };
    o.config.dial_retry_base = rantai_core::Millis(50);
    o.config.dial_retry_max = rantai_core::Millis(500);
    o.config.mine_difficulty = 10;
    o.config.handshake_timeout = rantai_core::Millis(1000);
    o.config.ping_interval = Some(rantai_core::Millis(1000));
    o.config.pong_timeout = rantai_core::Millis(3000);
    o.config.request_timeout = rantai_core::Millis(2000);
    o
}

/// Starts an in-process node on 127.0.0.1:0.
pub async fn spawn_node(opts: NodeOptions) -> NodeHandle {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    rantai_node::spawn(l, opts).await.expect("node starts")
}

/// Async bounded wait for in-process tests.
pub async fn wait_async<F, Fut>(timeout: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if cond().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

/// Waits until the `n` nodes of `ctx` hold one best chain with each of `texts` exactly once.
///
/// Fork choice keeps the first-seen branch on equal work, so nodes that mined at the same
/// height stay split until the next block. If they sit on different tips of equal height for
/// 2 s, one more line is typed (through `type_line`, added to `texts`): that block decides, and
/// the losing branch's lines are requeued and mined again by their node.
pub fn converge<C: ?Sized>(
    ctx: &mut C,
    n: usize,
    mut chain: impl FnMut(&mut C, usize) -> Option<Vec<BlockView>>,
    mut type_line: impl FnMut(&mut C, &str),
    texts: &mut Vec<String>,
    wait: Duration,
) {
    let deadline = Instant::now() + wait;
    let mut stable = 0;
    let mut last_tips = Vec::new();
    let mut since = Instant::now();
    let mut tiebreaks = 0;
    loop {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for one chain holding every line"
        );
        let chains: Option<Vec<Vec<BlockView>>> = (0..n).map(|k| chain(ctx, k)).collect();
        if let Some(chains) = chains {
            let hashes: Vec<Vec<&str>> = chains
                .iter()
                .map(|c| c.iter().map(|b| b.hash.as_str()).collect())
                .collect();
            let items = item_texts(&chains[0]);
            if hashes.windows(2).all(|w| w[0] == w[1]) && texts.iter().all(|t| items.contains(t)) {
                stable += 1;
                if stable >= 2 {
                    for t in texts.iter() {
                        let count = items.iter().filter(|x| *x == t).count();
                        assert_eq!(count, 1, "line {t:?} exactly once");
                    }
                    return;
                }
            } else {
                stable = 0;
            }
            let tips: Vec<String> = chains
                .iter()
                .map(|c| c.last().map(|b| b.hash.clone()).unwrap_or_default())
                .collect();
            let same_height = chains.windows(2).all(|w| w[0].len() == w[1].len());
            if tips != last_tips {
                last_tips = tips;
                since = Instant::now();
            } else if stable == 0 && same_height && since.elapsed() > Duration::from_secs(2) {
                tiebreaks += 1;
                assert!(tiebreaks <= 5, "ties never resolved");
                let t = format!("tie-break {tiebreaks}");
                type_line(ctx, &t);
                texts.push(t);
                since = Instant::now();
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `n` chained blocks on the main network's genesis, one item `"{tag} {i}"` each, mined at
/// the network minimum with the current time.
pub fn mined_chain(n: usize, tag: &str) -> Vec<std::sync::Arc<rantai_core::Block>> {
    mined_chain_of(n, |i| format!("{tag} {i}"))
}

/// [`mined_chain`] with block `i`'s item text given by `text(i)`.
pub fn mined_chain_of(
    n: usize,
    text: impl Fn(usize) -> String,
) -> Vec<std::sync::Arc<rantai_core::Block>> {
    let params = rantai_core::Params::main();
    let now = rantai_node::unix_now();
    let mut prev = params.genesis().clone();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let items = vec![rantai_core::Item {
            nonce: i as u64,
            text: text(i),
        }];
        let block = rantai_core::Template::new(
            prev.header(),
            prev.hash(),
            params.min_difficulty,
            now,
            items,
        )
        .solve(&std::sync::atomic::AtomicBool::new(false))
        .expect("an uncancelled search finds a nonce");
        prev = std::sync::Arc::new(block);
        out.push(prev.clone());
    }
    out
}

/// A test's seed and RNG: `RANTAI_TEST_SEED` or `default`, printed so that a failure can be
/// replayed (`what` names what the RNG draws).
pub fn seeded_rng(default: u64, what: &str) -> (u64, rand::rngs::StdRng) {
    use rand::SeedableRng;
    let seed = std::env::var("RANTAI_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    println!("seed {seed} (RANTAI_TEST_SEED={seed} replays {what})");
    (seed, rand::rngs::StdRng::seed_from_u64(seed))
}
