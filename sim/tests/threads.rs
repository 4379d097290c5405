//! The parallel engine's promise: a run's report (all but `wall`) and trace are the same
//! bytes whatever the number of threads, one included, on quiet runs, partitions that heal,
//! lossy links with duplicates and reordering, crashes and restarts, and sweeps.

mod common;
use common::SharedBuf;
use rantai_sim::{Sim, SimConfig};
use std::path::Path;
use std::process::Command;

const THREADS: [usize; 4] = [1, 2, 3, 8];

fn scenario(name: &str, overrides: &[(&str, &str)]) -> SimConfig {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name);
    let mut cfg = SimConfig::default();
    cfg.apply_file(&path)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    for (k, v) in overrides {
        cfg.apply(k, v, None).unwrap();
    }
    cfg
}

/// The report without `wall` and the written trace, with `threads` threads; the run must
/// keep every invariant.
fn run(cfg: &SimConfig, threads: usize) -> (String, Vec<u8>) {
    let (report, trace, ok) = run_any(cfg, threads);
    assert!(ok, "{report}");
    (report, trace)
}

/// The report without `wall`, the written trace, and whether every invariant held.
fn run_any(cfg: &SimConfig, threads: usize) -> (String, Vec<u8>, bool) {
    let mut cfg = cfg.clone();
    cfg.threads = Some(threads);
    let mut sim = Sim::new(cfg).expect("valid scenario");
    let trace = SharedBuf::default();
    sim.set_trace_writer(Box::new(trace.clone()));
    let r = sim.run();
    assert_eq!(r.wall.threads, threads);
    let mut v = serde_json::to_value(&r).unwrap();
    v.as_object_mut().unwrap().remove("wall");
    let bytes = trace.bytes();
    (serde_json::to_string(&v).unwrap(), bytes, r.invariants.ok)
}

fn same_for_any_thread_count(what: &str, cfg: SimConfig) {
    let (report, trace) = run(&cfg, 1);
    assert!(trace.len() > 1000, "{what}: a trace was written");
    for t in &THREADS[1..] {
        let (r, tr) = run(&cfg, *t);
        assert_eq!(
            r, report,
            "{what}: report with {t} threads differs from 1 thread"
        );
        assert!(
            tr == trace,
            "{what}: trace with {t} threads differs from 1 thread"
        );
    }
}

#[test]
fn default_scenario_at_reduced_size() {
    let cfg = scenario("default.toml", &[("peers", "300"), ("blocks", "8")]);
    same_for_any_thread_count("default", cfg);
}

#[test]
fn partition_that_heals() {
    let cfg = scenario("partition-heal.toml", &[("peers", "80")]);
    same_for_any_thread_count("partition-heal", cfg);
}

#[test]
fn lossy_links_with_duplicates_and_reordering() {
    let cfg = scenario("lossy.toml", &[("peers", "80"), ("blocks", "20")]);
    same_for_any_thread_count("lossy", cfg);
}

#[test]
fn crash_and_restart() {
    let cfg = scenario("crash-restart.toml", &[]);
    same_for_any_thread_count("crash-restart", cfg);
}

#[test]
fn discovery_and_tcp_windows() {
    let cfg = scenario(
        "default.toml",
        &[
            ("peers", "150"),
            ("blocks", "5"),
            ("discovery", "on"),
            ("tcp_slow_start", "on"),
            ("topology", "random:3"),
        ],
    );
    same_for_any_thread_count("discovery", cfg);
}

#[test]
fn a_sweep() {
    let dir = std::env::temp_dir().join(format!("rantai-threads-sweep-{}", std::process::id()));
    let mut outs = Vec::new();
    for t in THREADS {
        let out = dir.join(format!("t{t}"));
        let st = Command::new(env!("CARGO_BIN_EXE_rantai-sim"))
            .args(["--peers", "60", "--blocks", "5", "--quiet", "--seeds", "2"])
            .args(["--sweep", "block-interval=10s,1m", "--jobs", "1"])
            .args(["--threads", &t.to_string()])
            .arg("--out")
            .arg(&out)
            .status()
            .expect("rantai-sim runs");
        assert!(st.success(), "sweep with {t} threads");
        let text = std::fs::read_to_string(out.join("sweep.json")).expect("sweep.json");
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v.as_object_mut().unwrap().remove("wall");
        for run in v["runs"].as_array_mut().expect("runs") {
            run["report"].as_object_mut().unwrap().remove("wall");
        }
        outs.push(v.to_string());
    }
    let _ = std::fs::remove_dir_all(&dir);
    for (t, o) in THREADS.iter().zip(&outs) {
        assert_eq!(o, &outs[0], "sweep.json with {t} threads differs");
    }
}

#[test]
fn a_latency_model_without_a_positive_minimum_is_refused() {
    let mut cfg = SimConfig::default();
    cfg.apply("peers", "10", None).unwrap();
    cfg.apply("latency", "uniform:0ms..50ms", None).unwrap();
    let err = Sim::new(cfg).err().expect("refused").to_string();
    assert!(err.contains("`latency`"), "{err}");
    assert!(err.contains("0 ms"), "{err}");
    // The binary refuses it as a bad value: exit code 2, naming the key.
    let out = Command::new(env!("CARGO_BIN_EXE_rantai-sim"))
        .args(["--peers", "10", "--latency", "const:0ms", "--quiet"])
        .output()
        .expect("rantai-sim runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("`latency`"), "{stderr}");
    // A links file with a 0 ms link: the key named is `links`.
    let path = std::env::temp_dir().join(format!("rantai-zero-link-{}.txt", std::process::id()));
    std::fs::write(&path, "0 1 20ms\n1 2 0ms\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rantai-sim"))
        .args(["--peers", "3", "--quiet", "--links"])
        .arg(&path)
        .output()
        .expect("rantai-sim runs");
    let _ = std::fs::remove_file(&path);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("`links`"), "{stderr}");
    assert!(stderr.contains("0 ms"), "{stderr}");
}

/// The fault campaign's random mixes (loss, duplication, reordering, partitions, crashes,
/// items) run to the same report and trace on 1 and 3 threads (a plain run, without the
/// campaign's liveness phase, so items may be left unmined: only sameness is judged).
#[test]
fn campaign_scenarios() {
    for seed in 0..6u64 {
        let cfg = rantai_sim::vopr::scenario(seed);
        let (one, trace_one, _) = run_any(&cfg, 1);
        let (three, trace_three, _) = run_any(&cfg, 3);
        assert_eq!(one, three, "campaign seed {seed}");
        assert!(
            trace_one == trace_three,
            "campaign seed {seed}: traces differ"
        );
    }
}
