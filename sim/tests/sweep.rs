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

/// The reports of a finished sweep with their plan positions.
fn indexed(reports: Vec<Option<rantai_sim::Report>>) -> Vec<(usize, rantai_sim::Report)> {
    reports
        .into_iter()
        .enumerate()
        .map(|(i, r)| (i, r.expect("every run finished")))
        .collect()
}

#[test]
fn threads_change_nothing_and_groups_summarise_their_runs() {
    let axis = Axis::parse("block-interval=1s,20s").unwrap();
    let runs = sweep::plan(&base(), Some(&axis), 3).unwrap();
    assert_eq!(runs.len(), 6);
    let one = indexed(sweep::run_all(&runs, 1, sweep::Hooks::default()).unwrap());
    let two = indexed(sweep::run_all(&runs, 2, sweep::Hooks::default()).unwrap());
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
        let sd = (rates.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
        assert!((group.stale_rate.sd.unwrap() - sd).abs() < 1e-12);
        assert_eq!(group.stale_rate.min, rates.iter().copied().reduce(f64::min));
        // A spread leaves out runs without the measure.
        let t100: Vec<f64> = a.runs[g * 3..g * 3 + 3]
            .iter()
            .filter_map(|r| r.report.propagation_ms.t100.median.map(|v| v as f64))
            .collect();
        assert_eq!(group.t100_median_ms.n, t100.len());
        if !t100.is_empty() {
            let m = t100.iter().sum::<f64>() / t100.len() as f64;
            assert!((group.t100_median_ms.mean.unwrap() - m).abs() < 1e-9);
        }
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

fn assert_success(out: &std::process::Output) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
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
    assert_success(&out);
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
    // The stale-rate line and the three delay lines, and a faint dot per run in each.
    assert_eq!(svg.matches("<polyline").count(), 4);
    assert_eq!(svg.matches(r#"fill-opacity="0.3""#).count(), 4 * 4);
    // A legend on each panel.
    assert_eq!(svg.matches(">95% CI<").count(), 2);
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
        (
            vec!["--sweep", "block-intervall=1s,2s"],
            "unknown key `block_intervall`",
        ),
        (vec!["--sweep", "loss=0.1,7"], "invalid value for `loss`"),
        (vec!["--sweep", "seed=1,2"], "`seed` cannot be swept"),
        (vec!["--sweep", "blocks=2,2"], "listed twice"),
        (vec!["--seeds", "0"], "must be at least 1"),
        (vec!["--seeds", "18446744073709551615"], "at most 100000"),
        (
            vec!["--seeds", "2", "--check-determinism"],
            "cannot be combined",
        ),
        (
            vec!["--seeds", "2", "--jobs", "0"],
            "--jobs: must be at least 1",
        ),
        (vec!["--jobs", "2"], "needs --seeds or --sweep"),
    ] {
        let out = bin().args(&args).arg("--quiet").output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

/// The CLI's JSON with every `wall` object removed.
fn without_wall(stdout: &[u8]) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_slice(stdout).unwrap();
    v.as_object_mut().unwrap().remove("wall");
    for r in v["runs"].as_array_mut().unwrap() {
        r["report"].as_object_mut().unwrap().remove("wall");
    }
    v
}

#[test]
fn cli_output_and_traces_do_not_depend_on_jobs() {
    let mut outputs = Vec::new();
    let mut traces = Vec::new();
    for jobs in ["1", "3"] {
        let dir = std::env::temp_dir().join(format!(
            "rantai-sim-sweep-jobs{jobs}-{}",
            std::process::id()
        ));
        let out = bin()
            .args(["--preset", "none", "--peers", "25", "--blocks", "5"])
            .args([
                "--block-interval",
                "3s",
                "--loss",
                "0.05",
                "--quiet",
                "--json",
            ])
            .args([
                "--sweep",
                "latency=10ms,uniform:20ms..200ms",
                "--seeds",
                "2",
            ])
            .args(["--jobs", jobs, "--trace", "--out"])
            .arg(&dir)
            .output()
            .unwrap();
        assert_success(&out);
        let mut v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["wall"]["jobs"].to_string(), jobs);
        assert!(v["runs"][3]["report"]["wall"]["peak_rss_bytes"].is_null());
        v = without_wall(&out.stdout);
        outputs.push(v);
        let mut t = Vec::new();
        for name in [
            "000-10ms-seed1",
            "001-10ms-seed2",
            "002-uniform_20ms..200ms-seed1",
            "003-uniform_20ms..200ms-seed2",
        ] {
            let trace = std::fs::read(dir.join(name).join("events.jsonl")).unwrap();
            assert!(trace.len() > 1000, "{name}: trace too short");
            t.push(trace);
        }
        traces.push(t);
        let _ = std::fs::remove_dir_all(&dir);
    }
    assert_eq!(outputs[0], outputs[1]);
    assert_eq!(traces[0], traces[1]);
    // Different runs really differ, so the comparisons above are not vacuous.
    assert_ne!(traces[0][0], traces[0][1]);
    assert_ne!(traces[0][0], traces[0][2]);
}

#[test]
fn a_failing_run_stops_the_sweep_and_is_named() {
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    let runs = sweep::plan(&base(), None, 6).unwrap();
    let (started, ended) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let prepare = |run: &sweep::Run, _: &mut Sim| {
        started.fetch_add(1, Relaxed);
        if run.index == 2 {
            Err("no disk".to_string())
        } else {
            Ok(())
        }
    };
    let finished = |_: &sweep::Run, _: &Sim, _: &rantai_sim::Report| {
        ended.fetch_add(1, Relaxed);
        Ok(())
    };
    let hooks = sweep::Hooks {
        prepare: &prepare,
        finished: &finished,
        stop: None,
    };
    let err = sweep::run_all(&runs, 1, hooks).unwrap_err();
    assert_eq!((err.index, err.seed), (2, 7));
    assert!(err.to_string().contains("no disk"), "{err}");
    assert!(err.command.contains("--seed 7"), "{}", err.command);
    // One job: runs 3.. never started; runs 0 and 1 finished.
    assert_eq!(started.load(Relaxed), 3);
    assert_eq!(ended.load(Relaxed), 2);
}
