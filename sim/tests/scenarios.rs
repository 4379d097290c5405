//! Every shipped scenario file parses; the fault scenarios run clean (invariants hold and the
//! network converges after its faults).

use rantai_sim::{Sim, SimConfig};
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

fn load(name: &str) -> SimConfig {
    let mut cfg = SimConfig::default();
    cfg.apply_file(&dir().join(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    cfg.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
    cfg
}

#[test]
fn every_scenario_file_parses() {
    let mut n = 0;
    for entry in std::fs::read_dir(dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            load(path.file_name().unwrap().to_str().unwrap());
            n += 1;
        }
    }
    assert!(n >= 8, "only {n} scenario files");
}

#[test]
fn fault_scenarios_run_clean() {
    for name in [
        "lossy.toml",
        "partition-heal.toml",
        "oneway-partition.toml",
        "crash-restart.toml",
    ] {
        let cfg = load(name);
        let r = Sim::new(cfg).unwrap().run();
        assert!(r.invariants.ok, "{name}: {:?}", r.invariants.violations);
        assert!(r.convergence.converged, "{name}: no convergence");
        assert!(!r.engine.timed_out, "{name}: timed out");
        let f = &r.faults;
        assert!(
            f.lost + f.partitions + f.crashes > 0,
            "{name}: no fault was injected: {f:?}"
        );
    }
}
