//! Sweeps: runs in plan order, the same result on one thread or several, group figures that
//! are the statistics of the very runs a plain `Sim` produces, and a CLI that names bad keys.

use rantai_sim::sweep::{self, Axis};
use rantai_sim::{Millis, Sim, SimConfig};
use std::process::Command;

fn base() -> SimConfig {
    let mut cfg = SimConfig::small(40);
    cfg.seed = 5;
    cfg.blocks = 12;
    cfg.miners = Some(8);
    cfg.block_interval = Some(Millis::from_secs(2));
    cfg.block_size_bytes = Some(50_000);
    cfg
}

fn no_prepare(_: usize, _: &mut Sim) -> Result<(), String> {
    Ok(())
}

#[test]
fn threads_change_nothing_and_groups_summarise_their_runs() {
    let axis = Axis::parse("block-interval=1s,20s").unwrap();
    let runs = sweep::plan(&base(), Some(&axis), 3).unwrap();
    assert_eq!(runs.len(), 6);
    let one = sweep::run_all(&runs, 1, &no_prepare, &|_| {}).unwrap();
    let two = sweep::run_all(&runs, 2, &no_prepare, &|_| {}).unwrap();
    let wall = std::time::Duration::ZERO;
    let a = sweep::SweepReport::new(Some(&axis), &runs, one, 1, wall);
    let b = sweep::SweepReport::new(Some(&axis), &runs, two, 2, wall);
    assert_eq!(a.deterministic_json(), b.deterministic_json());
    assert!(a.ok());

    // Each run is exactly the plain simulation of its configuration.
    let mut single = base();
    single.seed = 6;
    single.block_interval = Some(Millis::from_secs(20));
    let plain = Sim::new(single).unwrap().run();
    assert_eq!(a.runs[4].value.as_deref(), Some("20s"));
    assert_eq!(a.runs[4].report.engine.trace_hash, plain.engine.trace_hash);

    // Group figures are the statistics of their own runs.
    assert_eq!(a.key.as_deref(), Some("block_interval"));
    assert_eq!(a.seeds, [5, 6, 7]);
    for (g, group) in a.groups.iter().enumerate() {
        let rates: Vec<f64> = a.runs[g * 3..g * 3 + 3]
            .iter()
            .map(|r| r.report.blocks.stale_rate)
            .collect();
        let mean = rates.iter().sum::<f64>() / 3.0;
        assert_eq!(group.runs, 3);
        assert_eq!(group.seeds, [5, 6, 7]);
        assert!((group.stale_rate.mean.unwrap() - mean).abs() < 1e-12);
        assert_eq!(group.stale_rate.max, rates.iter().copied().reduce(f64::max));
        assert_eq!(group.converged, 3);
    }
    // Blocks every second against ~0.1-0.5 s propagation fork far more than every 20 s.
    assert!(
        a.groups[0].stale_rate.mean > a.groups[1].stale_rate.mean,
        "{:?} vs {:?}",
        a.groups[0].stale_rate,
        a.groups[1].stale_rate
    );
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rantai-sim"))
}

#[test]
fn cli_sweep_prints_json_and_writes_each_run() {
    let dir = std::env::temp_dir().join(format!("rantai-sim-sweep-{}", std::process::id()));
    let out = bin()
        .args(["--preset", "none", "--peers", "30", "--blocks", "4"])
        .args(["--block-interval", "5s", "--quiet", "--json", "--jobs", "2"])
        .args(["--sweep", "relay=announce,push", "--seeds", "2", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["key"], "relay");
    assert_eq!(v["groups"].as_array().unwrap().len(), 2);
    assert_eq!(v["groups"][1]["value"], "push");
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4);
    assert_eq!(runs[3]["report"]["scenario"]["relay"], "push");
    assert_eq!(runs[3]["report"]["seed"], 2);
    assert!(dir.join("sweep.json").exists());
    let svg = std::fs::read_to_string(dir.join("sweep.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    // The stale-rate line and the three delay lines, and a dot per run in each.
    assert_eq!(svg.matches("<polyline").count(), 4);
    assert_eq!(svg.matches("<circle").count(), 4 * 4);
    assert!(dir.join("003-push-seed2").join("report.json").exists());
    assert!(dir
        .join("000-announce-seed1")
        .join("propagation.svg")
        .exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cli_sweep_rejects_bad_keys_and_values_with_exit_2() {
    for (args, needle) in [
        (vec!["--sweep", "block-intervall=1s,2s"], "block_intervall"),
        (vec!["--sweep", "loss=0.1,7"], "loss"),
        (vec!["--sweep", "seed=1,2"], "seed"),
        (vec!["--seeds", "0"], "seeds"),
        (
            vec!["--seeds", "2", "--check-determinism"],
            "--check-determinism",
        ),
    ] {
        let out = bin().args(&args).arg("--quiet").output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}
