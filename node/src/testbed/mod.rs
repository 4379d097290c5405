//! `rantai-node testbed`: real `rantai-node` processes, each in its own network namespace,
//! joined by a link emulator ([`router`]) that applies the links file's latencies and the
//! nodes' access rates to real TCP traffic. Blocks are mined on the schedule (mining off, the
//! block's data POSTed, mining on for one block), and the report is built from each node's
//! own accepted-block log (`GET /accepted`, wall-clock times: all processes share this host's
//! clock) and its per-kind counters (`GET /metrics`).
//!
//! Everything created (namespaces, TUN devices, processes) is removed when the run ends,
//! fails or is interrupted: each lives in a guard whose drop removes it.

pub mod netns;
pub mod router;

use netns::{http_in, Namespaces};
use rantai_core::calib::{block_text, CalibBlock, CalibReport, KindCount, Links, Scheduled};
use rantai_core::RelayPolicy;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Peer port of every node (each has its own address).
const PEER_PORT: u16 = 3000;
/// Where each node serves its API, inside its namespace.
const API: &str = "127.0.0.1:8000";
/// Most nodes one testbed runs.
pub const MAX_NODES: u32 = 50;

/// What a testbed run needs.
#[derive(Debug, Clone)]
pub struct TestbedConfig {
    pub links: Links,
    pub schedule: Vec<Scheduled>,
    pub relay: RelayPolicy,
    /// Probability that the emulator drops a packet.
    pub loss: f64,
    /// After the last block, how long to wait for every node to hold every block.
    pub settle: Duration,
    /// The `rantai-node` binary the nodes run.
    pub exe: PathBuf,
    /// Where the nodes' logs go.
    pub log_dir: PathBuf,
    /// Seeds the emulator's loss draws.
    pub seed: u64,
}

/// Why a testbed run did not produce a report.
#[derive(Debug, thiserror::Error)]
pub enum TestbedError {
    /// This host cannot run it (not root, no `ip`, no TUN); nothing was created.
    #[error("cannot run a testbed here: {0}")]
    Unavailable(String),
    #[error("the scenario does not fit the testbed: {0}")]
    Scenario(String),
    #[error("setting up the network failed: {0}")]
    Setup(String),
    #[error("node {node}: {why}")]
    Node { node: usize, why: String },
    #[error("interrupted")]
    Interrupted,
}

/// The node processes, killed (and reaped) on drop.
struct Procs(Vec<Child>);

impl Procs {
    /// The first node process that has exited, with its status.
    fn exited(&mut self) -> Option<(usize, std::process::ExitStatus)> {
        self.0
            .iter_mut()
            .enumerate()
            .find_map(|(i, c)| c.try_wait().ok().flatten().map(|s| (i, s)))
    }
}

/// Every block hash of node 0's best chain above genesis, page by page (a page stops at
/// 1,000 blocks or 8 MiB of data).
fn best_chain(h: &Handle) -> Result<BTreeSet<String>, TestbedError> {
    let mut best = BTreeSet::new();
    let mut from = 1u64;
    loop {
        let page = h.json(0, &format!("/blocks?from={from}&limit=1000"))?;
        let blocks = page["blocks"].as_array().cloned().unwrap_or_default();
        let height = page["height"].as_u64().unwrap_or(0);
        let last = blocks.last().and_then(|b| b["height"].as_u64());
        best.extend(
            blocks
                .iter()
                .filter_map(|b| b["hash"].as_str().map(String::from)),
        );
        match last {
            Some(l) if l < height => from = l + 1,
            _ => return Ok(best),
        }
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
        }
        for c in &mut self.0 {
            let _ = c.wait();
        }
    }
}

/// The router thread, stopped and joined on drop.
struct Router {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<router::RouterStats>>,
}

impl Router {
    fn finish(mut self) -> router::RouterStats {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One node's view from outside: its namespace and API address.
struct Handle {
    ns: String,
    api: SocketAddr,
}

impl Handle {
    fn call(
        &self,
        i: usize,
        method: &'static str,
        path: &str,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, TestbedError> {
        let node_err = |why: String| TestbedError::Node { node: i, why };
        let (code, body) = http_in(&self.ns, self.api, method, path, body).map_err(node_err)?;
        if !(200..300).contains(&code) {
            return Err(node_err(format!(
                "{method} {path} answered {code}: {}",
                String::from_utf8_lossy(&body)
            )));
        }
        Ok(body)
    }

    fn json(&self, i: usize, path: &str) -> Result<serde_json::Value, TestbedError> {
        let body = self.call(i, "GET", path, Vec::new())?;
        serde_json::from_slice(&body).map_err(|e| TestbedError::Node {
            node: i,
            why: format!("GET {path}: {e}"),
        })
    }

    fn accepted(&self, i: usize) -> Result<Vec<crate::Accepted>, TestbedError> {
        let body = self.call(i, "GET", "/accepted", Vec::new())?;
        serde_json::from_slice(&body).map_err(|e| TestbedError::Node {
            node: i,
            why: format!("GET /accepted: {e}"),
        })
    }
}

/// The scenario keys a testbed reads; the simulator reads the same file and more keys
/// (the rest are left to it, and named in a warning).
const KEYS: [&str; 6] = ["links", "schedule", "relay", "loss", "seed", "settle"];

impl TestbedConfig {
    /// Reads a simulator scenario file's `links`, `schedule` (paths relative to the file),
    /// `relay`, `loss`, `seed` and `settle` (seconds, or a string such as `"30s"`).
    pub fn from_scenario(
        path: &std::path::Path,
        exe: PathBuf,
        log_dir: PathBuf,
    ) -> Result<TestbedConfig, TestbedError> {
        let bad = |why: String| TestbedError::Scenario(format!("{}: {why}", path.display()));
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| bad(e.to_string()))?;
        let other: Vec<&str> = table
            .keys()
            .map(String::as_str)
            .filter(|k| !KEYS.contains(k))
            .collect();
        if !other.is_empty() {
            tracing::warn!("testbed: keys for the simulator only: {}", other.join(", "));
        }
        let base = path.parent().unwrap_or(std::path::Path::new("."));
        let file = |key: &str| -> Result<String, TestbedError> {
            let name = table
                .get(key)
                .and_then(|v| v.as_str())
                .ok_or_else(|| bad(format!("`{key}` (a file name) is required")))?;
            let p = base.join(name);
            std::fs::read_to_string(&p).map_err(|e| bad(format!("{}: {e}", p.display())))
        };
        let links = Links::parse(&file("links")?).map_err(|e| bad(format!("links: {e}")))?;
        let schedule = rantai_core::calib::parse_schedule(&file("schedule")?, links.nodes)
            .map_err(|e| bad(format!("schedule: {e}")))?;
        let relay = match table.get("relay") {
            None => RelayPolicy::Announce,
            Some(v) => v
                .as_str()
                .ok_or_else(|| bad("`relay` must be a string".into()))?
                .parse()
                .map_err(|e: rantai_core::peer::ParseRelayPolicyError| bad(e.to_string()))?,
        };
        let loss = match table.get("loss") {
            None => 0.0,
            Some(v) => v
                .as_float()
                .or_else(|| v.as_integer().map(|i| i as f64))
                .filter(|p| (0.0..1.0).contains(p))
                .ok_or_else(|| bad("`loss` must be a probability below 1".into()))?,
        };
        let seed = match table.get("seed") {
            None => 1,
            Some(v) => v
                .as_integer()
                .and_then(|s| u64::try_from(s).ok())
                .ok_or_else(|| bad("`seed` must be a non-negative integer".into()))?,
        };
        let settle = match table.get("settle") {
            None => Duration::from_secs(30),
            Some(toml::Value::Integer(s)) if (1..=86_400).contains(s) => {
                Duration::from_secs(*s as u64)
            }
            Some(toml::Value::String(s)) => rantai_core::calib::parse_ms(s)
                .filter(|&ms| ms <= 86_400_000)
                .map(Duration::from_millis)
                .ok_or_else(|| {
                    bad(format!(
                        "`settle`: expected a duration such as 30s, got {s}"
                    ))
                })?,
            Some(v) => return Err(bad(format!("`settle`: expected a duration, got {v}"))),
        };
        Ok(TestbedConfig {
            links,
            schedule,
            relay,
            loss,
            settle,
            exe,
            log_dir,
            seed,
        })
    }
}

/// Sleeps until `deadline`, in short steps so `stop` is seen.
fn sleep_until(deadline: Instant, stop: &AtomicBool) -> Result<(), TestbedError> {
    loop {
        if stop.load(Ordering::Relaxed) {
            return Err(TestbedError::Interrupted);
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(());
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(20)));
    }
}

/// Polls `cond` every 20 ms until it holds; `what` names it in the timeout error.
fn wait_for(
    timeout: Duration,
    stop: &AtomicBool,
    what: &str,
    mut cond: impl FnMut() -> Result<bool, TestbedError>,
) -> Result<(), TestbedError> {
    let deadline = Instant::now() + timeout;
    loop {
        if cond()? {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(TestbedError::Setup(format!(
                "timed out after {timeout:?} waiting for {what}"
            )));
        }
        sleep_until(Instant::now() + Duration::from_millis(20), stop)?;
    }
}

/// Runs the scenario on real nodes and reports what they recorded. `stop` (set by Ctrl-C)
/// ends the run early with [`TestbedError::Interrupted`], cleaning up all the same.
pub fn run(cfg: &TestbedConfig, stop: &Arc<AtomicBool>) -> Result<CalibReport, TestbedError> {
    netns::preflight().map_err(TestbedError::Unavailable)?;
    netns::sweep_stale();
    let n = cfg.links.nodes as usize;
    if n < 2 || n > MAX_NODES as usize {
        return Err(TestbedError::Scenario(format!(
            "{n} nodes; the testbed runs 2 to {MAX_NODES}"
        )));
    }
    std::fs::create_dir_all(&cfg.log_dir)
        .map_err(|e| TestbedError::Setup(format!("{}: {e}", cfg.log_dir.display())))?;
    let prefix = format!("rtb{}-", std::process::id());
    let mut namespaces = Namespaces::default();
    let mut fds = Vec::with_capacity(n);
    for i in 0..n {
        fds.push(
            namespaces
                .add_node(&format!("{prefix}{i}"), i)
                .map_err(TestbedError::Setup)?,
        );
    }
    let model = link_model(cfg);
    let router_stop = Arc::new(AtomicBool::new(false));
    let rs = router_stop.clone();
    let router = Router {
        stop: router_stop,
        thread: Some(std::thread::spawn(move || router::run(&fds, &model, &rs))),
    };
    let mut procs = Procs(Vec::with_capacity(n));
    for i in 0..n {
        procs.0.push(spawn_node(cfg, &prefix, i)?);
    }
    let api: SocketAddr = API
        .parse()
        .map_err(|e| TestbedError::Setup(format!("{e}")))?;
    let nodes: Vec<Handle> = (0..n)
        .map(|i| Handle {
            ns: format!("{prefix}{i}"),
            api,
        })
        .collect();
    let degree: Vec<usize> = (0..n as u32)
        .map(|i| {
            cfg.links
                .links
                .iter()
                .filter(|l| l.a == i || l.b == i)
                .count()
        })
        .collect();
    for (i, h) in nodes.iter().enumerate() {
        wait_for(
            Duration::from_secs(30),
            stop,
            &format!("node {i}'s handshakes"),
            || {
                // A node that exited (bad flags, a port in use) fails the run at once.
                if let Some((j, status)) = procs.exited() {
                    return Err(TestbedError::Node {
                        node: j,
                        why: format!(
                            "exited ({status}); see {}",
                            cfg.log_dir.join(format!("node{j}.log")).display()
                        ),
                    });
                }
                let Ok(s) = h.json(i, "/status") else {
                    return Ok(false);
                };
                let ready = s["peers"]
                    .as_array()
                    .map_or(0, |p| p.iter().filter(|p| p["ready"] == true).count());
                Ok(ready == degree[i])
            },
        )?;
    }
    tracing::info!(
        "testbed: {n} nodes connected; mining {} blocks",
        cfg.schedule.len()
    );
    let t0 = Instant::now();
    let mut hashes = Vec::with_capacity(cfg.schedule.len());
    for (k, s) in cfg.schedule.iter().enumerate() {
        sleep_until(t0 + Duration::from_millis(s.at_ms), stop)?;
        hashes.push(mine_one(&nodes, s, k, stop)?);
    }
    let want: BTreeSet<&str> = hashes.iter().map(String::as_str).collect();
    // One deadline for all: `settle` after the last block, however many nodes lag.
    let settled_by = Instant::now() + cfg.settle;
    for (i, h) in nodes.iter().enumerate() {
        let left = settled_by.saturating_duration_since(Instant::now());
        let r = wait_for(left, stop, "every block at every node", || {
            let got: BTreeSet<String> = h.accepted(i)?.into_iter().map(|a| a.hash).collect();
            Ok(want.iter().all(|w| got.contains(*w)))
        });
        match r {
            Err(TestbedError::Setup(why)) => tracing::warn!("node {i}: {why}"),
            other => other?,
        }
    }
    let mut logs = Vec::with_capacity(n);
    let mut messages: BTreeMap<String, KindCount> = BTreeMap::new();
    for (i, h) in nodes.iter().enumerate() {
        logs.push(h.accepted(i)?);
        let text = String::from_utf8_lossy(&h.call(i, "GET", "/metrics", Vec::new())?).to_string();
        add_sent(&text, &mut messages);
    }
    let best = best_chain(&nodes[0])?;
    drop(procs);
    let stats = router.finish();
    tracing::info!(
        "testbed: emulator carried {} packets ({} bytes), lost {}, queue drops {}, unroutable {}",
        stats.packets,
        stats.bytes,
        stats.lost,
        stats.queue_drops,
        stats.unroutable
    );
    drop(namespaces);
    Ok(report(cfg, &hashes, &logs, messages, &best))
}

/// The emulator's view of the links file.
fn link_model(cfg: &TestbedConfig) -> router::LinkModel {
    let n = cfg.links.nodes as usize;
    let mut latency_us = vec![None; n * n];
    for l in &cfg.links.links {
        let (a, b) = (l.a as usize, l.b as usize);
        latency_us[a * n + b] = Some(l.latency_ms * 1000);
        latency_us[b * n + a] = Some(l.latency_ms * 1000);
    }
    router::LinkModel {
        nodes: n,
        latency_us,
        up_bps: cfg.links.access.iter().map(|a| a.up_bps).collect(),
        down_bps: cfg.links.access.iter().map(|a| a.down_bps).collect(),
        loss: cfg.loss,
        seed: cfg.seed,
    }
}

/// Starts node `i` in its namespace: it dials the nodes its links name it the dialler of and
/// nothing else, never mines until told, does not gossip items (a block's bytes travel in
/// the block alone) and sends no keepalives: as simulated peers run a scheduled scenario
/// without faults.
fn spawn_node(cfg: &TestbedConfig, prefix: &str, i: usize) -> Result<Child, TestbedError> {
    let ns = format!("{prefix}{i}");
    let me = router::node_ip(i).to_string();
    let mut args: Vec<String> = vec![
        "netns".into(),
        "exec".into(),
        ns,
        cfg.exe.to_string_lossy().into_owned(),
        "--bind".into(),
        me,
        "--port".into(),
        PEER_PORT.to_string(),
        "--http".into(),
        API.into(),
        "--mine".into(),
        "off".into(),
        "--max-outbound".into(),
        "0".into(),
        "--pow-bits".into(),
        "8".into(),
        "--relay".into(),
        cfg.relay.as_str().into(),
        "--ping-interval-ms".into(),
        "0".into(),
    ];
    for l in cfg.links.links.iter().filter(|l| l.a as usize == i) {
        args.push("--peer".into());
        args.push(format!("{}:{PEER_PORT}", router::node_ip(l.b as usize)));
    }
    let log = |suffix: &str| {
        std::fs::File::create(cfg.log_dir.join(format!("node{i}.{suffix}")))
            .map_err(|e| TestbedError::Setup(format!("log file: {e}")))
    };
    let mut cmd = Command::new("ip");
    // Its own process group: a terminal's Ctrl-C reaches the testbed, which stops the nodes
    // itself, instead of killing them under it.
    cmd.process_group(0);
    // SAFETY: prctl only sets this child's parent-death signal, between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            // Killed if the testbed dies without cleaning up (SIGKILL); kept across exec.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.args(&args)
        .stdin(Stdio::null())
        .stdout(log("out")?)
        .stderr(log("log")?)
        .spawn()
        .map_err(|e| TestbedError::Node {
            node: i,
            why: format!("cannot start: {e}"),
        })
}

/// Mines scheduled block `k` at its node; returns the block's hash.
fn mine_one(
    nodes: &[Handle],
    s: &Scheduled,
    k: usize,
    stop: &AtomicBool,
) -> Result<String, TestbedError> {
    let i = s.node as usize;
    let h = &nodes[i];
    let before: BTreeSet<String> = h.accepted(i)?.into_iter().map(|a| a.hash).collect();
    h.call(i, "POST", "/blocks", block_text(k, s.bytes).into_bytes())?;
    h.call(i, "PUT", "/mining", b"own-items".to_vec())?;
    let mut hash = None;
    wait_for(
        Duration::from_secs(10),
        stop,
        "the scheduled block to be mined",
        || {
            let log = h.accepted(i)?;
            hash = log
                .iter()
                .find(|a| a.mined_here && !before.contains(&a.hash))
                .map(|a| a.hash.clone());
            Ok(hash.is_some())
        },
    )?;
    h.call(i, "PUT", "/mining", b"off".to_vec())?;
    hash.ok_or(TestbedError::Node {
        node: i,
        why: "no block mined".into(),
    })
}

/// Adds a node's `rantai_peer_{messages,bytes}_total{direction="out",...}` samples.
fn add_sent(text: &str, into: &mut BTreeMap<String, KindCount>) {
    for line in text.lines() {
        let (field, rest) = if let Some(r) =
            line.strip_prefix("rantai_peer_messages_total{direction=\"out\",kind=\"")
        {
            (0, r)
        } else if let Some(r) =
            line.strip_prefix("rantai_peer_bytes_total{direction=\"out\",kind=\"")
        {
            (1, r)
        } else {
            continue;
        };
        let Some((kind, value)) = rest.split_once("\"} ") else {
            continue;
        };
        let Ok(v) = value.trim().parse::<u64>() else {
            continue;
        };
        if v == 0 {
            continue;
        }
        let e = into.entry(kind.to_string()).or_default();
        if field == 0 {
            e.count += v;
        } else {
            e.bytes += v;
        }
    }
}

/// The report: per scheduled block, each node's acceptance time less the miner's.
fn report(
    cfg: &TestbedConfig,
    hashes: &[String],
    logs: &[Vec<crate::Accepted>],
    messages: BTreeMap<String, KindCount>,
    best: &BTreeSet<String>,
) -> CalibReport {
    let at = |node: usize, hash: &str| {
        logs[node]
            .iter()
            .find(|a| a.hash == hash)
            .map(|a| a.at_unix_us)
    };
    let blocks = cfg
        .schedule
        .iter()
        .zip(hashes)
        .map(|(s, hash)| {
            let mined = at(s.node as usize, hash).unwrap_or(0);
            CalibBlock {
                miner: s.node,
                bytes: s.bytes,
                hash: hash.clone(),
                arrival_ms: (0..logs.len())
                    .map(|j| at(j, hash).map(|t| (t.saturating_sub(mined) + 500) / 1000))
                    .collect(),
                ..CalibBlock::default()
            }
            .with_marks()
        })
        .collect();
    let seen: BTreeSet<&str> = logs
        .iter()
        .flatten()
        .filter(|a| a.height > 0)
        .map(|a| a.hash.as_str())
        .collect();
    CalibReport {
        source: "testbed".into(),
        nodes: cfg.links.nodes,
        relay: cfg.relay.as_str().into(),
        blocks,
        messages,
        stale: seen.iter().filter(|h| !best.contains(**h)).count() as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sent_counters_are_summed_by_kind_from_prometheus_text() {
        let text = "rantai_peer_messages_total{direction=\"in\",kind=\"inv\"} 9\n\
                    rantai_peer_messages_total{direction=\"out\",kind=\"inv\"} 3\n\
                    rantai_peer_bytes_total{direction=\"out\",kind=\"inv\"} 120\n\
                    rantai_peer_messages_total{direction=\"out\",kind=\"ping\"} 0\n";
        let mut m = BTreeMap::new();
        add_sent(text, &mut m);
        add_sent(text, &mut m);
        assert_eq!(m.len(), 1, "zero and inbound samples left out");
        assert_eq!(
            m["inv"],
            KindCount {
                count: 6,
                bytes: 240
            }
        );
    }
}
