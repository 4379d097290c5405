//! `rantai-node`: run one node (`rantai-node --port 3000 --peer 127.0.0.1:3001`) or the
//! tutorial's three-node localnet (`rantai-node localnet`).

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use rantai_core::{Millis, MinePolicy, Params, RelayPolicy};
use rantai_node::http;
use rantai_node::lines::{Line, LineReader};
use rantai_node::{NodeClient, NodeOptions, Submitted};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::io::AsyncBufReadExt;

#[derive(Parser, Debug)]
#[command(
    name = "rantai-node",
    version,
    about = "A rantai blockchain node over TCP",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    #[command(flatten)]
    node: NodeArgs,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Start the tutorial's localnet: nodes on ports 3000.. (HTTP on 8000..), all connected.
    Localnet(LocalnetArgs),
    /// Run a scenario on real nodes, each in its own network namespace, behind a link
    /// emulator (Linux, root); write the report that `rantai-sim compare` reads.
    Testbed(TestbedArgs),
    /// GET a path from a node's HTTP API and print the body (for hosts without curl).
    Api {
        /// The node's `--http` address.
        addr: String,
        /// For example `/status` or `/blocks?from=0&limit=10`.
        #[arg(default_value = "/status")]
        path: String,
    },
}

#[derive(Args, Debug)]
struct NodeArgs {
    /// TCP port to listen on for peers (0 picks a free port and prints it).
    #[arg(long, default_value_t = 3000)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind: String,
    /// Peer to connect to (repeatable); retried with backoff while it is down.
    #[arg(long = "peer", value_name = "ADDR:PORT", value_parser = parse_host_port)]
    peers: Vec<String>,
    /// Connect only to this peer (repeatable), like bitcoind's -connect: no learned address is
    /// dialled (as --max-outbound 0) and no inbound connection is accepted unless --listen.
    #[arg(long = "connect", value_name = "ADDR:PORT", value_parser = parse_host_port,
          conflicts_with = "max_outbound")]
    connect: Vec<String>,
    /// With --connect: accept inbound peers on --bind/--port after all (the default without
    /// --connect).
    #[arg(long, requires = "connect")]
    listen: bool,
    /// Keep the chain in this directory (crash-safe); without it the chain is in memory.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Serve the HTTP status API on this address (port 0 picks a free port and prints it).
    #[arg(long, value_name = "ADDR:PORT", value_parser = parse_socket_addr)]
    http: Option<String>,
    /// Difficulty in leading zero bits of blocks mined here (network minimum 8).
    #[arg(long, default_value_t = defaults().config.mine_difficulty, value_parser = clap::value_parser!(u32).range(8..=48))]
    pow_bits: u32,
    /// Most inbound peer connections (the old name --max-peers still works).
    #[arg(long, visible_alias = "max-peers", default_value_t = defaults().config.max_inbound as u32,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    max_inbound: u32,
    /// Most outbound connections to addresses learned from peers (configured --peer are extra).
    #[arg(long, default_value_t = defaults().config.max_outbound as u32,
          value_parser = clap::value_parser!(u32).range(0..=1_000))]
    max_outbound: u32,
    /// Address to advertise to peers, HOST:PORT (default: the listen address, unless it is a
    /// wildcard).
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_advertise)]
    advertise: Option<String>,
    /// How blocks travel: `push` (whole block at once), `announce` (hash, then fetched) or
    /// `compact` (short ids of the items, rebuilt from the pending pool).
    #[arg(long, default_value = relay_name(defaults().config.relay), value_parser = parse_relay)]
    relay: RelayPolicy,
    /// Gossip pending items to peers, so their pools hold them before a block does (compact
    /// relay then sends short ids instead of the items).
    #[arg(long)]
    relay_items: bool,
    /// When to mine: `own-items` (lines submitted here), `all-items` (any pending item),
    /// `always`, or `off` (switch later with `PUT /mining`).
    #[arg(long, default_value = defaults().config.mining.as_str(), value_parser = parse_mine)]
    mine: MinePolicy,
    /// Most HTTP API connections served at once; more wait to be accepted.
    #[arg(long, default_value_t = http::MAX_API_CONNECTIONS as u32,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    http_max_connections: u32,
    #[arg(long, hide = true, default_value_t = http::HEADER_READ_TIMEOUT.as_millis() as u64,
          value_parser = clap::value_parser!(u64).range(1..))]
    http_header_timeout_ms: u64,
    #[arg(long, hide = true, default_value_t = http::REQUEST_TIMEOUT.as_millis() as u64,
          value_parser = clap::value_parser!(u64).range(1..))]
    http_request_timeout_ms: u64,
    #[arg(long, hide = true, default_value_t = http::MAX_CONNECTION_AGE.as_millis() as u64,
          value_parser = clap::value_parser!(u64).range(1..))]
    http_max_age_ms: u64,
    #[arg(long, hide = true, default_value_t = defaults().config.handshake_timeout.0)]
    handshake_timeout_ms: u64,
    /// Keepalive period; pings also carry our tip, which settles equal-work forks. 0 disables.
    #[arg(long, hide = true, default_value_t = defaults().config.ping_interval.map_or(0, |t| t.0))]
    ping_interval_ms: u64,
    #[arg(long, hide = true, default_value_t = defaults().config.pong_timeout.0)]
    pong_timeout_ms: u64,
    #[arg(long, hide = true, default_value_t = defaults().config.request_timeout.0)]
    request_timeout_ms: u64,
    #[arg(long, hide = true, default_value_t = defaults().write_timeout.as_millis() as u64)]
    write_timeout_ms: u64,
    #[arg(long, hide = true, default_value_t = defaults().config.dial_retry_base.0)]
    retry_base_ms: u64,
    #[arg(long, hide = true, default_value_t = defaults().config.dial_retry_max.0)]
    retry_max_ms: u64,
    #[arg(long, hide = true, default_value_t = defaults().send_queue)]
    send_queue: usize,
}

#[derive(Args, Debug)]
struct LocalnetArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=20))]
    nodes: u16,
    /// Peer port of the first node; node i listens on base + i.
    #[arg(long, default_value_t = 3000)]
    base_port: u16,
    /// HTTP port of the first node; node i serves its API on base + i.
    #[arg(long, default_value_t = 8000)]
    http_base_port: u16,
    /// Keep each node's chain in DIR/node1, DIR/node2, ...
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Difficulty of mined blocks.
    #[arg(long, default_value_t = defaults().config.mine_difficulty, value_parser = clap::value_parser!(u32).range(8..=48))]
    pow_bits: u32,
    /// How each node relays blocks: `push`, `announce` or `compact` (passed as --relay).
    #[arg(long, default_value = relay_name(defaults().config.relay), value_parser = parse_relay)]
    relay: RelayPolicy,
}

#[derive(Args, Debug)]
struct TestbedArgs {
    /// A simulator scenario file with `links` and `schedule` (and optionally `relay`, `loss`,
    /// `seed`, `settle`).
    scenario: PathBuf,
    /// Where to write the report (JSON).
    #[arg(long, default_value = "testbed-report.json")]
    out: PathBuf,
    /// Where the nodes' logs go.
    #[arg(long, default_value = "testbed-logs")]
    logs: PathBuf,
}

/// The node's defaults ([`NodeOptions::default`]), which the flags' defaults show.
fn defaults() -> NodeOptions {
    NodeOptions::default()
}

/// `HOST:PORT` with a numeric port (the host may be a name, resolved when dialling).
fn parse_host_port(s: &str) -> Result<String, String> {
    match s.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(s.to_string()),
        _ => Err(format!("expected HOST:PORT, got `{s}`")),
    }
}

/// A literal socket address such as `127.0.0.1:8000`.
fn parse_socket_addr(s: &str) -> Result<String, String> {
    s.parse::<std::net::SocketAddr>()
        .map(|_| s.to_string())
        .map_err(|e| format!("expected IP:PORT, got `{s}`: {e}"))
}

fn relay_name(relay: RelayPolicy) -> &'static str {
    relay.as_str()
}

/// An advertised address is `HOST:PORT` (what peers dial) and fits a `hello` (64 bytes), or
/// every peer would refuse it.
fn parse_advertise(s: &str) -> Result<String, String> {
    let max = rantai_core::message::MAX_ADDR_LEN;
    if s.len() > max {
        return Err(format!(
            "{} bytes, more than the {max} a peer accepts",
            s.len()
        ));
    }
    match s.rsplit_once(':').map(|(_, port)| port.parse::<u16>()) {
        Some(Ok(0)) => Err(format!("`{s}`: port 0 cannot be dialled")),
        _ => parse_host_port(s),
    }
}

fn parse_mine(s: &str) -> Result<MinePolicy, String> {
    s.parse()
        .map_err(|e: rantai_core::peer::ParseMinePolicyError| e.to_string())
}

fn parse_relay(s: &str) -> Result<RelayPolicy, String> {
    s.parse()
        .map_err(|e: rantai_core::peer::ParseRelayPolicyError| e.to_string())
}

/// Allocations of this size or more get their own mappings (glibc's `M_MMAP_THRESHOLD`).
/// Block bodies (up to 1 MiB) are evicted by the body cache once stored; glibc's default
/// threshold rises to 32 MiB as such blocks are freed, after which it keeps the freed memory
/// and the process stays near the size of data it no longer holds.
const MMAP_THRESHOLD_BYTES: i32 = 128 * 1024;

/// Pins the mmap threshold, so a freed block body goes back to the system at once.
fn release_large_frees() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called once, before other threads.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
    }
}

fn main() -> Result<()> {
    release_large_frees();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = match cli.command {
        Some(Cmd::Localnet(args)) => rt.block_on(localnet(args)),
        Some(Cmd::Api { addr, path }) => api_get(&addr, &path),
        Some(Cmd::Testbed(args)) => rt.block_on(testbed(args)),
        None => rt.block_on(node(cli.node)),
    };
    // stdin is read on a blocking thread that cannot be interrupted: do not wait for it.
    rt.shutdown_timeout(Duration::from_millis(200));
    result
}

async fn node(a: NodeArgs) -> Result<()> {
    let accept_inbound = a.connect.is_empty() || a.listen;
    // Without inbound connections the node binds only a placeholder, which it closes at start.
    let (bind, port) = match accept_inbound {
        true => (a.bind.as_str(), a.port),
        false => ("127.0.0.1", 0),
    };
    let listener = tokio::net::TcpListener::bind((bind, port))
        .await
        .with_context(|| format!("cannot listen on {bind}:{port}"))?;
    let local = listener.local_addr()?;
    let http = match &a.http {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr.as_str())
                .await
                .with_context(|| format!("cannot serve HTTP on {addr}"))?,
        ),
        None => None,
    };
    let ms = Duration::from_millis;
    let mut opts = NodeOptions {
        peers: a.peers.iter().chain(&a.connect).cloned().collect(),
        accept_inbound,
        data_dir: a.data_dir.clone(),
        advertise: a.advertise.clone(),
        write_timeout: ms(a.write_timeout_ms),
        send_queue: a.send_queue.max(16),
        ..NodeOptions::default()
    };
    let config = &mut opts.config;
    config.max_inbound = a.max_inbound as usize;
    // With --connect only the given addresses are dialled, never learned ones.
    config.max_outbound = match a.connect.is_empty() {
        true => a.max_outbound as usize,
        false => 0,
    };
    config.dial_retry_base = Millis(a.retry_base_ms);
    config.dial_retry_max = Millis(a.retry_max_ms);
    config.mine_difficulty = a.pow_bits;
    config.relay = a.relay;
    config.relay_items = a.relay_items;
    config.mining = a.mine;
    config.handshake_timeout = Millis(a.handshake_timeout_ms);
    config.ping_interval = (a.ping_interval_ms > 0).then_some(Millis(a.ping_interval_ms));
    config.pong_timeout = Millis(a.pong_timeout_ms);
    config.request_timeout = Millis(a.request_timeout_ms);
    let handle = rantai_node::spawn(listener, opts)
        .await
        .context("cannot start the node")?;
    {
        let mut out = std::io::stdout().lock();
        match accept_inbound {
            true => writeln!(out, "listening on {local}")?,
            false => writeln!(out, "not listening (--connect without --listen)")?,
        }
        out.flush()?;
    }
    match accept_inbound {
        true => tracing::info!("listening on {local}"),
        false => tracing::info!(
            "not listening: --connect dials only {} and accepts no inbound peer",
            a.connect.join(", ")
        ),
    }
    let (http_stop, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let http_task = match http {
        Some(l) => {
            let addr = l.local_addr()?;
            {
                let mut out = std::io::stdout().lock();
                writeln!(out, "http on {addr}")?;
                out.flush()?;
            }
            tracing::info!("HTTP API on http://{addr}/status");
            let client = handle.client().clone();
            let limits = http::HttpLimits {
                max_connections: a.http_max_connections as usize,
                header_read_timeout: ms(a.http_header_timeout_ms),
                request_timeout: ms(a.http_request_timeout_ms),
                max_connection_age: ms(a.http_max_age_ms),
            };
            Some(tokio::spawn(http::serve(l, client, limits, async {
                let _ = http_stopped.await;
            })))
        }
        None => None,
    };
    let max_line = Params::main().block_data_limit() - 16;
    tokio::spawn(read_stdin(handle.client().clone(), max_line));
    wait_for_signal().await;
    let _ = http_stop.send(());
    if let Some(t) = http_task {
        let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
    }
    handle.shutdown().await;
    Ok(())
}

/// Lines submitted from stdin whose answer has not been read yet: enough for a burst of piped
/// lines to share the store's commits.
const STDIN_IN_FLIGHT: usize = 4096;

/// Logs the answer to one stdin line; false once the node stopped.
async fn stdin_answer(rx: Submitted, len: usize) -> bool {
    match rx.await {
        Ok(Ok(id)) => tracing::debug!("queued item {}… ({len} bytes)", id.short()),
        Ok(Err(e)) => tracing::warn!("line refused: {e}"),
        Err(_) => return false,
    }
    true
}

/// Each stdin line becomes an item to mine. Over-long or non-UTF-8 lines are refused with a
/// message; end of input leaves the node running. Lines are submitted without waiting for each
/// answer (up to [`STDIN_IN_FLIGHT`]), in order, and the answers are logged in order.
async fn read_stdin(client: NodeClient, max_line: usize) {
    let stdin = tokio::io::BufReader::with_capacity(64 * 1024, tokio::io::stdin());
    let mut lines = LineReader::new(stdin, max_line);
    let mut waiting: std::collections::VecDeque<(Submitted, usize)> = Default::default();
    while let Some(line) = lines.next_line().await {
        match line {
            Line::Text(t) if t.trim().is_empty() => {}
            Line::Text(t) => {
                let len = t.len();
                let Ok(rx) = client.submit_queued(t).await else {
                    return;
                };
                waiting.push_back((rx, len));
                while waiting.len() >= STDIN_IN_FLIGHT
                    || waiting.front_mut().is_some_and(|(rx, _)| !rx.is_empty())
                {
                    let Some((rx, len)) = waiting.pop_front() else {
                        break;
                    };
                    if !stdin_answer(rx, len).await {
                        return;
                    }
                }
            }
            Line::TooLong(n) => {
                tracing::warn!(
                    "line of {n} bytes refused: the limit is {max_line} bytes; input goes on"
                )
            }
            Line::NotUtf8 => tracing::warn!("line refused: not UTF-8 text; input goes on"),
        }
    }
    for (rx, len) in waiting {
        if !stdin_answer(rx, len).await {
            return;
        }
    }
    tracing::info!("end of stdin; the node keeps running (Ctrl-C to stop)");
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Minimal HTTP/1.1 GET: prints the body, fails on a non-2xx status.
fn api_get(addr: &str, path: &str) -> Result<()> {
    use std::io::Read;
    use std::net::ToSocketAddrs;
    let sock = addr
        .to_socket_addrs()
        .with_context(|| format!("bad address {addr}"))?
        .next()
        .with_context(|| format!("no address for {addr}"))?;
    let mut s = std::net::TcpStream::connect_timeout(&sock, Duration::from_secs(5))
        .with_context(|| format!("cannot connect to {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut resp = Vec::new();
    s.take(64 << 20).read_to_end(&mut resp)?;
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("malformed HTTP response")?;
    let head = String::from_utf8_lossy(&resp[..split]);
    let ok = head
        .split_whitespace()
        .nth(1)
        .is_some_and(|c| c.starts_with('2'));
    let mut out = std::io::stdout().lock();
    out.write_all(&resp[split + 4..])?;
    writeln!(out)?;
    if !ok {
        bail!("{}", head.lines().next().unwrap_or("HTTP error"));
    }
    Ok(())
}

/// Kills a localnet child when dropped.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn localnet(a: LocalnetArgs) -> Result<()> {
    let exe = std::env::current_exe().context("cannot find my own executable")?;
    let n = a.nodes;
    if u32::from(a.base_port) + u32::from(n) > 65_536
        || u32::from(a.http_base_port) + u32::from(n) > 65_536
    {
        bail!("port range overflows 65535");
    }
    let mut children = Vec::new();
    let mut inputs = Vec::new();
    for i in 0..n {
        let mut cmd = Command::new(&exe);
        cmd.arg("--port")
            .arg((a.base_port + i).to_string())
            .arg("--http")
            .arg(format!("127.0.0.1:{}", a.http_base_port + i))
            .arg("--pow-bits")
            .arg(a.pow_bits.to_string())
            .arg("--relay")
            .arg(a.relay.as_str());
        for j in 0..n {
            if j != i {
                cmd.arg("--peer")
                    .arg(format!("127.0.0.1:{}", a.base_port + j));
            }
        }
        if let Some(d) = &a.data_dir {
            cmd.arg("--data-dir").arg(d.join(format!("node{}", i + 1)));
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().context("cannot start a node")?;
        let name = format!("node{}", i + 1);
        if let Some(out) = child.stdout.take() {
            prefix_lines(out, name.clone());
        }
        if let Some(err) = child.stderr.take() {
            prefix_lines(err, name.clone());
        }
        inputs.push(child.stdin.take());
        children.push(ChildGuard(child));
    }
    eprintln!(
        "localnet: {n} nodes on ports {}..{}, HTTP on 127.0.0.1:{}..{}.\n\
         Type a line to mine it on node1, or `2 some text` to mine it on node2.\n\
         Try: curl -s 127.0.0.1:{}/status   Ctrl-C stops everything.",
        a.base_port,
        a.base_port + n - 1,
        a.http_base_port,
        a.http_base_port + n - 1,
        a.http_base_port
    );
    let stdin = tokio::io::BufReader::new(tokio::io::stdin());
    let mut lines = stdin.lines();
    loop {
        tokio::select! {
            _ = wait_for_signal() => break,
            line = lines.next_line() => match line {
                Ok(Some(l)) => {
                    let (target, text) = route(&l, n);
                    if let Some(Some(w)) = inputs.get_mut(target) {
                        if writeln!(w, "{text}").and_then(|_| w.flush()).is_err() {
                            eprintln!("localnet: node{} is not running", target + 1);
                        }
                    }
                }
                // End of input: keep the nodes running until Ctrl-C.
                Ok(None) | Err(_) => { wait_for_signal().await; break; }
            },
        }
    }
    eprintln!("localnet: stopping");
    for c in &children {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.0.id().to_string())
            .status();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    for c in &mut children {
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = c.0.try_wait() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(())
}

/// `"2 text"` goes to node 2; anything else to node 1.
fn route(line: &str, n: u16) -> (usize, &str) {
    if let Some((first, rest)) = line.split_once(' ') {
        if let Ok(k) = first.parse::<u16>() {
            if (1..=n).contains(&k) {
                return ((k - 1) as usize, rest);
            }
        }
    }
    (0, line)
}

fn prefix_lines(r: impl std::io::Read + Send + 'static, name: String) {
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            eprintln!("[{name}] {line}");
        }
    });
}

#[cfg(target_os = "linux")]
async fn testbed(a: TestbedArgs) -> Result<()> {
    use rantai_node::testbed::{self, TestbedConfig};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let exe = std::env::current_exe().context("cannot find this binary")?;
    let cfg = TestbedConfig::from_scenario(&a.scenario, exe, a.logs.clone())?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    // Registered before anything is created, so no signal finds the default action (which
    // would leave namespaces and nodes behind).
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut hup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
    let signals = tokio::spawn(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
            _ = hup.recv() => {}
        }
        eprintln!("stopping: removing the testbed's processes and namespaces");
        flag.store(true, Ordering::Relaxed);
    });
    let run = tokio::task::spawn_blocking(move || testbed::run(&cfg, &stop));
    let report = run.await.context("the testbed thread failed")?;
    signals.abort();
    let report = report?;
    let json = serde_json::to_string_pretty(&report)?;
    std::fs::write(&a.out, json + "\n")
        .with_context(|| format!("cannot write {}", a.out.display()))?;
    println!(
        "testbed: {} nodes, {} blocks, relay {}",
        report.nodes,
        report.blocks.len(),
        report.relay
    );
    for (k, b) in report.blocks.iter().enumerate() {
        let ms = |t: Option<u64>| t.map_or("-".to_string(), |t| format!("{t} ms"));
        println!(
            "  block {k}: node {} {} bytes: t50 {} t90 {} t100 {}",
            b.miner,
            b.bytes,
            ms(b.t50),
            ms(b.t90),
            ms(b.t100)
        );
    }
    println!(
        "report written to {} (compare: rantai-sim compare)",
        a.out.display()
    );
    Ok(())
}

#[cfg(not(target_os = "linux"))]
async fn testbed(_: TestbedArgs) -> Result<()> {
    bail!("the testbed needs Linux network namespaces")
}
