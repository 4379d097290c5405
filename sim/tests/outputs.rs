//! What a study reads off a run: the per-block, per-peer and per-miner tables (from the
//! library and as CSV under `--out`), the run's outcome and exit status, a clean stop on
//! Ctrl-C for a run and for a sweep, and sweep shards merged into the very sweep one process
//! writes.

mod common;

use common::Scratch;
use rantai_sim::report::Outcome;
use rantai_sim::{Millis, Sim, SimConfig};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rantai-sim"))
}

fn small(peers: u32, blocks: u64) -> SimConfig {
    let mut cfg = SimConfig::small(peers);
    cfg.seed = 3;
    cfg.blocks = blocks;
    cfg.miners = Some(6);
    cfg.block_interval = Some(Millis::from_secs(2));
    cfg.block_size_bytes = Some(100_000);
    cfg
}

#[test]
fn tables_agree_with_the_report() {
    let mut sim = Sim::new(small(40, 30)).unwrap();
    sim.record_peer_delays();
    let r = sim.run();
    assert_eq!(r.outcome, Outcome::Ok);
    let t = sim.tables();

    assert_eq!(t.blocks.len() as u64, r.blocks.mined);
    let stale = t.blocks.iter().filter(|b| b.status == "stale").count() as u64;
    assert_eq!(stale, r.blocks.stale);
    assert!(
        stale > 0,
        "2 s blocks on this network make forks; the check needs one"
    );
    for (row, marks) in t.blocks.iter().zip(&r.per_block) {
        assert_eq!((row.t50_ms, row.t90_ms, row.t100_ms), *marks);
        assert!(
            row.size_bytes > 100_000,
            "payload plus the block's own encoding"
        );
        assert_eq!(row.hash.len(), 64);
    }

    assert_eq!(t.peers.len(), 40);
    let received: u64 = t.peers.iter().filter_map(|p| p.blocks_received).sum();
    assert_eq!(received, r.propagation_ms.all_peers_samples);
    let out: u32 = t.peers.iter().map(|p| p.out_degree).sum();
    let inn: u32 = t.peers.iter().map(|p| p.in_degree).sum();
    assert_eq!(
        (out as usize, inn as usize),
        (r.scenario.links, r.scenario.links)
    );
    let mined: u64 = t.peers.iter().map(|p| p.blocks_mined).sum();
    assert_eq!(mined, r.blocks.mined);
    let stale_mined: u64 = t.peers.iter().map(|p| p.stale_mined).sum();
    assert_eq!(stale_mined, stale);

    assert_eq!(t.miners.len(), 6);
    let share: f64 = t.miners.iter().map(|m| m.hash_share).sum();
    assert!((share - 1.0).abs() < 1e-9);
    let best: u64 = t.miners.iter().map(|m| m.in_best_chain).sum();
    assert_eq!(best, r.blocks.in_best_chain);
    let revenue: f64 = t.miners.iter().map(|m| m.best_chain_share).sum();
    assert!((revenue - 1.0).abs() < 1e-9);
    for m in &t.miners {
        assert_eq!(m.in_best_chain + m.stale, m.blocks_mined);
    }
}

/// With one block, each peer's median delay is its only delay, so the peers' medians are
/// exactly the (block, peer) pairs the report's exact quantiles are computed from.
#[test]
fn peer_delays_are_the_pairs_of_the_report() {
    let mut sim = Sim::new(small(60, 1)).unwrap();
    sim.record_peer_delays();
    let r = sim.run();
    let t = sim.tables();
    let mut delays: Vec<u64> = t.peers.iter().filter_map(|p| p.median_delay_ms).collect();
    assert_eq!(delays.len(), 59, "every peer but the miner");
    for p in &t.peers {
        assert_eq!(p.median_delay_ms, p.p90_delay_ms);
    }
    delays.sort_unstable();
    let nearest_rank = |q: f64| delays[((q * 59.0).ceil() as usize).clamp(1, 59) - 1];
    assert_eq!(r.propagation_ms.all_peers.median, Some(nearest_rank(0.5)));
    assert_eq!(r.propagation_ms.all_peers.p90, Some(nearest_rank(0.9)));
    assert_eq!(r.propagation_ms.all_peers.max, delays.last().copied());

    // Without recording, the delay columns are empty rather than wrong.
    let mut plain = Sim::new(small(60, 1)).unwrap();
    plain.run();
    assert!(plain
        .tables()
        .peers
        .iter()
        .all(|p| p.median_delay_ms.is_none()));
}

fn csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text
        .lines()
        .map(|l| l.split(',').map(str::to_string).collect());
    let header = lines.next().unwrap();
    (header, lines.collect())
}

#[test]
fn out_writes_the_tables_with_their_documented_columns() {
    let scratch = Scratch::new("tables");
    let dir = scratch.path("run");
    let out = bin()
        .args(["--peers", "30", "--blocks", "8", "--miners", "5", "--quiet"])
        .args(["--block-interval", "20s", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (h, rows) = csv(&dir.join("blocks.csv"));
    assert_eq!(h, rantai_sim::tables::BLOCK_COLUMNS);
    assert_eq!(rows.len(), 8);
    assert!(rows.iter().all(|r| r.len() == h.len() && r[5] == "best"));
    let (h, rows) = csv(&dir.join("peers.csv"));
    assert_eq!(h, rantai_sim::tables::PEER_COLUMNS);
    assert_eq!(rows.len(), 30);
    // Every peer but a block's miner receives it: medians are filled in.
    assert!(rows.iter().all(|r| !r[7].is_empty()));
    let (h, rows) = csv(&dir.join("miners.csv"));
    assert_eq!(h, rantai_sim::tables::MINER_COLUMNS);
    assert_eq!(rows.len(), 5);
    let mined: u64 = rows.iter().map(|r| r[3].parse::<u64>().unwrap()).sum();
    assert_eq!(mined, 8);
    // Files are a function of the seed.
    let again = scratch.path("again");
    let out = bin()
        .args(["--peers", "30", "--blocks", "8", "--miners", "5", "--quiet"])
        .args(["--block-interval", "20s", "--out"])
        .arg(&again)
        .output()
        .unwrap();
    assert!(out.status.success());
    for f in ["blocks.csv", "peers.csv", "miners.csv", "propagation.svg"] {
        assert_eq!(
            std::fs::read(dir.join(f)).unwrap(),
            std::fs::read(again.join(f)).unwrap(),
            "{f}"
        );
    }
}

#[test]
fn the_settle_deadline_is_its_own_outcome() {
    let out = bin()
        .args(["--peers", "40", "--blocks", "3", "--block-interval", "10s"])
        .args(["--settle", "1ms", "--quiet", "--json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["outcome"], "settle_deadline");
    assert_eq!(r["invariants"]["ok"], true, "not an invariant violation");
    assert_eq!(r["engine"]["timed_out"], true);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("raise `settle`"), "{err}");
}

/// A network left split never goes quiet, but it was never expected to converge: its run
/// ends at the deadline and is not a late one.
#[test]
fn a_partition_that_never_heals_is_not_a_settle_deadline() {
    let out = bin()
        .args(["--peers", "30", "--blocks", "4", "--block-interval", "10s"])
        .args([
            "--partition",
            "5s..:0.5",
            "--settle",
            "1m",
            "--quiet",
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["outcome"], "ok");
    assert_eq!(r["engine"]["timed_out"], true);
    assert_eq!(r["convergence"]["expected"], false);
}

#[test]
fn a_peer_without_links_is_warned_about_at_start() {
    let scratch = Scratch::new("lonely");
    let links = scratch.file(
        "links.txt",
        "node 0 up 10Mbit down 10Mbit\nnode 1 up 10Mbit down 10Mbit\n\
         node 2 up 10Mbit down 10Mbit\n0 1 20ms\n",
    );
    let out = bin()
        .arg("--links")
        .arg(&links)
        .args(["--blocks", "1", "--quiet"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("1 peer(s) have no link") && err.contains(": 2"),
        "{err}"
    );
    let out = bin()
        .args(["--peers", "10", "--blocks", "1", "--quiet"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("no link"));
}

/// A child process killed when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits (at most 60 s) until `ready` holds, then sends `signal` (`INT`, `TERM`); returns the
/// exit code.
fn interrupt_when(mut child: Running, signal: &str, ready: impl Fn() -> bool) -> Option<i32> {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < Duration::from_secs(60), "never got going");
        assert!(
            child.0.try_wait().unwrap().is_none(),
            "ended before the signal"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let sent = Command::new("kill")
        .args([&format!("-{signal}"), &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let start = Instant::now();
    loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            return s.code();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "did not stop after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn ctrl_c_writes_the_report_of_what_ran() {
    let scratch = Scratch::new("sigint-run");
    let dir = scratch.path("run");
    let child = bin()
        .args([
            "--peers", "1000", "--blocks", "100000", "--quiet", "--trace", "--out",
        ])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let trace = dir.join("events.jsonl");
    let code = interrupt_when(Running(child), "INT", || {
        std::fs::metadata(&trace).is_ok_and(|m| m.len() > 0)
    });
    assert_eq!(code, Some(130));
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(r["outcome"], "interrupted");
    assert_eq!(r["engine"]["interrupted"], true);
    assert!(r["blocks"]["mined"].as_u64().unwrap() < 100_000);
    // The trace was flushed: every line is whole JSON, and there are as many as events.
    let text = std::fs::read_to_string(&trace).unwrap();
    assert!(text.ends_with('\n'));
    assert!(text
        .lines()
        .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()));
    for f in ["blocks.csv", "peers.csv", "miners.csv", "propagation.svg"] {
        assert!(dir.join(f).exists(), "{f}");
    }
}

#[test]
fn ctrl_c_or_sigterm_keeps_a_sweeps_finished_runs() {
    let scratch = Scratch::new("sigint-sweep");
    let dir = scratch.path("sweep");
    // First a quick run, then long ones: one job, so the quick one finishes first.
    let child = bin()
        .args([
            "--peers",
            "300",
            "--sweep",
            "blocks=2,100000",
            "--jobs",
            "1",
            "--quiet",
        ])
        .args(["--block-interval", "30s", "--out"])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let first = dir.join("000-2-seed1").join("report.json");
    let sweep_json = dir.join("sweep.json");
    // SIGTERM, as a batch scheduler sends at a job's time limit, stops it the same way.
    let code = interrupt_when(Running(child), "TERM", || {
        first.exists() && sweep_json.exists()
    });
    assert_eq!(code, Some(130));
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sweep_json).unwrap()).unwrap();
    assert_eq!(s["interrupted"], true);
    assert_eq!(s["planned_runs"], 2);
    let runs = s["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "the finished run, not the interrupted one");
    assert_eq!(runs[0]["report"]["outcome"], "ok");
    let second: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("001-100000-seed1").join("report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(second["outcome"], "interrupted");
}

#[test]
fn merged_shards_are_the_sweep_one_process_writes() {
    let scratch = Scratch::new("shards");
    let args = [
        "--peers",
        "40",
        "--blocks",
        "6",
        "--block-interval",
        "5s",
        "--quiet",
        "--sweep",
        "loss=0,0.05",
        "--seeds",
        "3",
    ];
    let run = |extra: &[&str], out: &Path| {
        let o = bin()
            .args(args)
            .args(extra)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    let whole = scratch.path("whole");
    run(&[], &whole);
    let shards: Vec<_> = (1..=3)
        .map(|i| scratch.path(&format!("shard{i}")))
        .collect();
    for (i, d) in shards.iter().enumerate() {
        run(&["--shard", &format!("{}/3", i + 1), "--jobs", "1"], d);
    }
    // Shard 2 of 3 ran plan positions 1 and 4.
    let names: Vec<String> = std::fs::read_dir(&shards[1])
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("seed"))
        .collect();
    assert_eq!(names.len(), 2);
    assert!(
        names.iter().any(|n| n.starts_with("001-")) && names.iter().any(|n| n.starts_with("004-"))
    );

    let merged = scratch.path("merged");
    let o = bin()
        .arg("merge")
        .arg("--out")
        .arg(&merged)
        .args(shards.iter().rev())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let load = |d: &Path| -> rantai_sim::sweep::SweepReport {
        serde_json::from_str(&std::fs::read_to_string(d.join("sweep.json")).unwrap()).unwrap()
    };
    assert_eq!(
        load(&merged).deterministic_json(),
        load(&whole).deterministic_json()
    );
    assert_eq!(
        std::fs::read(merged.join("sweep.svg")).unwrap(),
        std::fs::read(whole.join("sweep.svg")).unwrap()
    );

    // A shard of another scenario is a different sweep, even with the same plan shape.
    let other = scratch.path("other");
    run(&["--shard", "3/3", "--miners", "7"], &other);
    let o = bin()
        .arg("merge")
        .arg("--out")
        .arg(scratch.path("mixed"))
        .args(&shards[..2])
        .arg(&other)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("the scenario differs"));

    // A missing shard is named, not silently averaged away.
    let o = bin()
        .arg("merge")
        .arg("--out")
        .arg(scratch.path("partial"))
        .args(&shards[..2])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("2 of 6 planned runs are missing"));
}
