//! The binary: bad scenario files and flags are rejected with a clear message and exit code 2;
//! a small scenario runs and prints the JSON report with its documented keys.

mod common;

use common::Scratch;
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rantai-sim"))
}

#[test]
fn bad_scenario_key_is_named_and_exits_2() {
    let scratch = Scratch::new("bad-key");
    let p = scratch.file("bad_key.toml", "peers = 10\nblock_intervall = 5\n");
    let out = bin().arg("--scenario").arg(&p).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("block_intervall"), "{err}");
}

#[test]
fn bad_scenario_value_is_named_and_exits_2() {
    let scratch = Scratch::new("bad-value");
    let p = scratch.file("bad_value.toml", "peers = 10\nlatency = \"uniform:50ms\"\n");
    let out = bin().arg("--scenario").arg(&p).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`latency`"), "{err}");
    let p = scratch.file("bad_crash.toml", "[[crash]]\npeer = 1\nat = \"soon\"\n");
    let out = bin().arg("--scenario").arg(&p).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("crash[0].at"));
    let p = scratch.file("bad_toml.toml", "peers = = 3\n");
    let out = bin().arg("--scenario").arg(&p).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn bad_flags_exit_2() {
    let out = bin().args(["--block-size", "3 apples"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--block-size"));
    let out = bin().args(["--no-such-flag"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = bin()
        .arg("--scenario")
        .arg("/nonexistent/x.toml")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn small_run_prints_json_report_and_writes_outputs() {
    let scratch = Scratch::new("small-run");
    let p = scratch.file(
        "ok.toml",
        "peers = 30\nblocks = 5\npreset = \"none\"\nblock_interval = \"5s\"\nitems = 3\n",
    );
    let dir = scratch.0.join("out");
    // Flags override the file.
    let out = bin()
        .arg("--scenario")
        .arg(&p)
        .args(["--peers", "40", "--json", "--trace", "--out"])
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
    assert_eq!(v["scenario"]["peers"], 40);
    // The protocol settings every peer ran, under the node's `/status` `config` keys.
    let c = &v["scenario"]["peer_config"];
    assert_eq!(c["network"], "rantai-dev");
    assert_eq!(c["relay"], v["scenario"]["relay"]);
    assert_eq!(c["ping_interval_ms"], v["scenario"]["ping_interval_ms"]);
    assert_eq!(c["mining"], "always");
    assert_eq!(v["blocks"]["mined"], 5);
    for key in [
        "report_version",
        "seed",
        "command",
        "scenario",
        "blocks",
        "propagation_ms",
        "reorgs",
        "messages",
        "redundancy",
        "faults",
        "items",
        "convergence",
        "invariants",
        "engine",
        "wall",
    ] {
        assert!(v.get(key).is_some(), "missing key {key}");
    }
    assert_eq!(v["invariants"]["ok"], true);
    assert!(dir.join("report.json").exists());
    for chart in ["propagation.svg", "regions.svg", "traffic.svg", "tips.svg"] {
        let svg = std::fs::read_to_string(dir.join(chart)).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("</svg>"), "{chart}");
    }
    let svg = std::fs::read_to_string(dir.join("propagation.svg")).unwrap();
    assert!(svg.contains("polyline"));
    let trace = std::fs::read_to_string(dir.join("events.jsonl")).unwrap();
    assert!(trace.lines().count() > 100);
    for line in trace.lines().take(50) {
        serde_json::from_str::<serde_json::Value>(line).unwrap();
    }
}

#[test]
fn check_determinism_flag_runs_twice_and_passes() {
    let out = bin()
        .args([
            "--preset",
            "none",
            "--peers",
            "30",
            "--blocks",
            "5",
            "--block-interval",
            "5s",
        ])
        .args(["--loss", "0.05", "--check-determinism", "--quiet"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("determinism check passed"));
}

#[test]
fn vopr_runs_seeds_reports_json_and_refuses_bad_flags() {
    let out = bin()
        .args(["vopr", "--seeds", "3..5", "--json", "--jobs", "1"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(v["runs"], 2);
    assert_eq!(v["passed"], 2);
    assert_eq!(
        (v["seeds_from"].clone(), v["seeds_to"].clone()),
        (3.into(), 5.into())
    );
    assert!(v["events"].as_u64().unwrap() > 0);
    // A spent budget starts no seed; the summary says which seeds ran (none).
    let out = bin()
        .args(["vopr", "--seeds", "0..5", "--budget", "0s", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["runs"].clone(), v["budget_exhausted"].clone()),
        (0.into(), true.into())
    );
    // One seed, described in full, with its replay command's scenario.
    let out = bin().args(["vopr", "--seed", "3"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("scenario   cargo run --release -p rantai-sim -- --seed 3 "),
        "{text}"
    );
    assert!(text.contains("liveness   bound"), "{text}");
    for bad in [
        vec!["vopr", "--seeds", "5..3"],
        vec!["vopr", "--seeds", "x"],
        vec!["vopr", "--budget", "soon"],
        vec!["vopr", "--jobs", "0"],
        vec!["vopr", "--seed", "1", "--seeds", "0..2"],
    ] {
        let out = bin().args(&bad).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
}
