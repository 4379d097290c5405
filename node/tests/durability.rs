//! The durability promise of node/README.md, checked the way it is stated: a block the node
//! logged as `accepted` survives `kill -9` at any moment.
//!
//! A raw peer pipes pre-mined blocks into a `rantai-node --data-dir` process so that its store
//! thread commits all the time. The test freezes the process with SIGSTOP at seeded random
//! moments. A frozen process writes nothing more, so its store file as the kernel holds it is
//! exactly what a `kill -9` at that moment would leave: each probe reads the `accepted block`
//! lines logged so far, copies the store file, and lets the node run on (SIGCONT). Every copy
//! must open and hold every block logged before it was taken. The last probe is a real
//! SIGKILL of the frozen node and a restart from its data directory, compared block by block.
//!
//! The data directory is on tmpfs (`/dev/shm`) where there is one: kill -9 loses nothing the
//! kernel already holds, so the disk is not what is tested, and without fsync latency the
//! store thread spends its time in the part of a commit that a too-early log line would
//! expose. `RANTAI_TEST_SEED=N` replays a run's probe times.

mod common;

use common::*;
use rand::Rng;
use rantai_core::message::{Hello, PROTOCOL_VERSION};
use rantai_core::{Message, Params, Tip, Work};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Probes that freeze the node while its store thread is busy, before the final kill.
const BUSY_PROBES: usize = 12;
/// Blocks the raw peer sends, in chunks with a pause between them so the feed lasts a while.
const BLOCKS: usize = 4_000;
const CHUNK_BLOCKS: usize = 40;

/// A directory removed on drop, on tmpfs if the machine has one.
struct DataDir(PathBuf);

impl DataDir {
    fn new(tag: &str, seed: u64) -> DataDir {
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let p = base.join(format!(
            "rantai-node-test-{tag}-{}-{seed}",
            std::process::id()
        ));
        std::fs::create_dir_all(&p).expect("create data dir");
        DataDir(p)
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var_os("RANTAI_KEEP_TEST_DIRS").is_some() {
            eprintln!("data kept in {}", self.0.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) with the pid of a child this test started and still owns.
    let r = unsafe { libc::kill(pid as libc::pid_t, sig) };
    assert_eq!(r, 0, "kill({pid}, {sig})");
}

/// Waits until every thread of `pid` is stopped (SIGSTOP is delivered asynchronously).
fn wait_stopped(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("/proc/PID/task");
        let all = tasks.filter_map(Result::ok).all(|t| {
            let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
            // The state follows the parenthesised command name.
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|s| s.trim().chars().next());
            matches!(state, Some('T') | Some('t'))
        });
        if all {
            return;
        }
        assert!(Instant::now() < deadline, "node {pid} did not stop");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Height -> hash prefix of every `accepted block H PREFIX… from …` line in the log.
fn logged_accepted(log: &str) -> BTreeMap<u64, String> {
    let mut out = BTreeMap::new();
    for l in log.lines() {
        let Some(rest) = l.split("accepted block ").nth(1) else {
            continue;
        };
        let mut w = rest.split_whitespace();
        let (Some(h), Some(prefix)) = (w.next(), w.next()) else {
            continue;
        };
        let Ok(h) = h.parse::<u64>() else { continue };
        let prefix = prefix.trim_end_matches('…').to_string();
        let old = out.insert(h, prefix.clone());
        assert!(
            old.is_none_or(|o| o == prefix),
            "two blocks logged at height {h}: the chain is linear"
        );
    }
    out
}

/// Every logged block is in `chain` (hashes by height, genesis first) under the logged prefix.
fn assert_holds(what: &str, logged: &BTreeMap<u64, String>, chain: &[String]) {
    for (&h, prefix) in logged {
        let held = chain.get(h as usize);
        assert!(
            held.is_some_and(|hash| hash.starts_with(prefix.as_str())),
            "{what}: block {h} {prefix}… was logged as accepted but the store a kill -9 left \
             holds {} blocks{}",
            chain.len().saturating_sub(1),
            held.map(|x| format!(", {x} at that height"))
                .unwrap_or_default()
        );
    }
}

/// Sends our hello and then every block, ignoring what the node says; stops when `stop` is set.
fn feed(addr: std::net::SocketAddr, frames: Arc<Vec<Vec<u8>>>, stop: Arc<AtomicBool>) {
    let g = Params::main().genesis_hash();
    let hello = Message::Hello(Box::new(Hello {
        version: PROTOCOL_VERSION,
        genesis: g,
        node_id: 0x0d0d_0d0d,
        tip: Tip {
            height: 0,
            hash: g,
            work: Work(1),
        },
        listen: None,
    }));
    let mut s = TcpStream::connect(addr).expect("connect to the node");
    s.set_write_timeout(Some(Duration::from_millis(50)))
        .expect("write timeout");
    let mut r = s.try_clone().expect("clone");
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        while matches!(r.read(&mut buf), Ok(n) if n > 0) {}
    });
    s.write_all(&hello.to_frame()).expect("hello");
    for chunk in frames.chunks(CHUNK_BLOCKS) {
        let bytes: Vec<u8> = chunk.concat();
        let mut sent = 0;
        while sent < bytes.len() {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            match s.write(&bytes[sent..]) {
                Ok(n) => sent += n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return,
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The node's store thread, if it can be told apart by name.
fn store_thread(pid: u32) -> Option<std::path::PathBuf> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .filter_map(Result::ok)
        .map(|t| t.path())
        .find(|t| std::fs::read_to_string(t.join("comm")).is_ok_and(|c| c.trim().contains("store")))
}

/// Whether a thread is running or in a system call that waits for the disk (not asleep).
fn busy(task: &Path) -> bool {
    let stat = std::fs::read_to_string(task.join("stat")).unwrap_or_default();
    let state = stat
        .rsplit(')')
        .next()
        .and_then(|s| s.trim().chars().next());
    matches!(state, Some('R') | Some('D'))
}

/// Waits (bounded) until the store thread is busy, then freezes the node.
fn freeze_while_writing(pid: u32, task: Option<&Path>, rng: &mut impl Rng) -> bool {
    std::thread::sleep(Duration::from_micros(rng.gen_range(0..2_000)));
    let deadline = Instant::now() + Duration::from_secs(2);
    let caught = loop {
        match task {
            Some(t) if busy(t) => break true,
            Some(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_micros(100)),
            _ => break false,
        }
    };
    signal(pid, libc::SIGSTOP);
    wait_stopped(pid);
    caught
}

/// Hashes of the best chain a store holds, opened by an in-process node.
fn chain_in_store(rt: &tokio::runtime::Runtime, dir: &Path) -> Vec<String> {
    rt.block_on(async {
        let mut opts = rantai_node::NodeOptions {
            data_dir: Some(dir.to_path_buf()),
            ..fast_options()
        };
        opts.config.ping_interval = None;
        let node = spawn_node(opts).await;
        let chain = node.client().best_chain().await.expect("running");
        node.shutdown().await;
        chain.iter().map(|b| b.hash().to_string()).collect()
    })
}

#[test]
fn a_block_logged_as_accepted_survives_kill_9_at_any_moment() {
    let (seed, mut rng) = seeded_rng(19, "the probe times");
    let logs = TempDir::new("durability");
    let data = DataDir::new("durability", seed);
    let db = data.0.join("node").join("chain.redb");
    let node_dir = data.0.join("node").to_string_lossy().to_string();
    // No keepalive: the raw peer never answers pings, and must not be dropped for it.
    let args: Vec<String> = [
        "--port",
        "0",
        "--data-dir",
        &node_dir,
        "--ping-interval-ms",
        "0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();

    let text = "x".repeat(1_000);
    let frames: Vec<Vec<u8>> = mined_chain_of(BLOCKS, |i| format!("durable {i} {text}"))
        .into_iter()
        .map(|block| Message::Block { block }.to_frame())
        .collect();
    let frames = Arc::new(frames);

    let mut node = NodeProc::start("durable", &args, logs.path());
    let pid = node.child.id();
    let task = store_thread(pid);
    if task.is_none() {
        println!("no store thread found by name: probing at random moments");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let feeder = std::thread::spawn({
        let (addr, frames, stop) = (node.addr, frames.clone(), stop.clone());
        move || feed(addr, frames, stop)
    });

    // Probes: freeze while the store writes, read the log, copy the store, run on. The copies
    // are checked after the kill, when the node no longer competes for the CPU.
    let mut probes: Vec<(BTreeMap<u64, String>, PathBuf)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut attempts = 0;
    while probes.len() < BUSY_PROBES && Instant::now() < deadline {
        attempts += 1;
        let caught = freeze_while_writing(pid, task.as_deref(), &mut rng);
        let logged = logged_accepted(&node.log_text());
        if caught || task.is_none() {
            let snap = data.0.join(format!("probe{}", probes.len()));
            std::fs::create_dir_all(&snap).expect("snapshot dir");
            std::fs::copy(&db, snap.join("chain.redb")).expect("copy the frozen node's store");
            probes.push((logged.clone(), snap));
        }
        signal(pid, libc::SIGCONT);
        if logged.len() >= BLOCKS {
            break;
        }
    }

    // The real thing: freeze while writing, read the log, kill -9, restart from the data dir.
    freeze_while_writing(pid, task.as_deref(), &mut rng);
    let logged = logged_accepted(&node.log_text());
    node.kill9();
    stop.store(true, Ordering::Relaxed);
    feeder.join().expect("feeder");
    let restarted = NodeProc::start("durable-restart", &args, logs.path());
    let chain: Vec<String> = restarted
        .best_chain()
        .expect("chain of the restarted node")
        .iter()
        .map(|b| b.hash.clone())
        .collect();
    drop(restarted);
    assert_holds(&format!("kill -9 (seed {seed})"), &logged, &chain);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    for (k, (logged, snap)) in probes.iter().enumerate() {
        let chain = chain_in_store(&rt, snap);
        assert_holds(&format!("probe {k} (seed {seed})"), logged, &chain);
    }
    let sizes: Vec<usize> = probes.iter().map(|(l, _)| l.len()).collect();
    println!(
        "{} probes in {attempts} tries (blocks logged at each: {sizes:?}) and a kill -9 with \
         {} logged, {} after the restart: every logged block was durable",
        probes.len(),
        logged.len(),
        chain.len() - 1
    );
    assert!(
        probes.len() >= 3,
        "the store thread was caught writing only {} times",
        probes.len()
    );
}
