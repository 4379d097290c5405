//! Calibration scenarios (`links` and `schedule` keys): each link's latency and each peer's
//! rates come from the links file, blocks from the schedule, and every (block, peer) arrival
//! is kept for the comparison with the testbed.

use rantai_sim::calib;
use rantai_sim::{Sim, SimConfig};
use std::path::PathBuf;

/// A scenario directory under the target dir with these files; returns the scenario path.
fn scenario(tag: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rantai-calib-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    for (name, text) in files {
        std::fs::write(dir.join(name), text).expect("write");
    }
    dir.join("scenario.toml")
}

fn load(path: &std::path::Path) -> Result<SimConfig, rantai_sim::ConfigError> {
    let mut cfg = SimConfig::default();
    cfg.apply_file(path)?;
    cfg.validate()?;
    Ok(cfg)
}

fn run(path: &std::path::Path) -> (Sim, rantai_core::calib::CalibReport) {
    let mut sim = Sim::new(load(path).expect("valid scenario")).expect("sim");
    let report = sim.run();
    assert!(
        report.invariants.violations.is_empty(),
        "{:?}",
        report.invariants
    );
    let r = calib::sim_report(&sim);
    (sim, r)
}

#[test]
fn link_latencies_and_rates_come_from_the_links_file() {
    let path = scenario(
        "exact",
        &[
            (
                "scenario.toml",
                "links = \"links.txt\"\nschedule = \"schedule.txt\"\nrelay = \"announce\"\n",
            ),
            ("links.txt", "0 1 50ms\n1 2 20ms\nnode 2 down 1Mbit\n"),
            ("schedule.txt", "1s 0 1000\n3s 2 1000\n"),
        ],
    );
    let (sim, r) = run(&path);
    assert_eq!(sim.peer_count(), 3, "peers come from the links file");
    assert_eq!(r.blocks.len(), 2);
    let block = r.messages["block"];
    let frame = block.bytes / block.count;
    // Announce: inv, get_blocks, block, three one-way trips per hop.
    let b0 = &r.blocks[0];
    assert_eq!(b0.miner, 0);
    assert_eq!(b0.arrival_ms[0], Some(0));
    assert_eq!(b0.arrival_ms[1], Some(150));
    // Into node 2 through its 1 Mbit/s downlink: the block takes frame * 8 µs more.
    let serialize = (frame * 8).div_ceil(1000);
    assert_eq!(b0.arrival_ms[2], Some(150 + 60 + serialize));
    assert_eq!(b0.t100, Some(150 + 60 + serialize));
    // The other way, node 2's uplink is unlimited.
    let b1 = &r.blocks[1];
    assert_eq!(b1.arrival_ms, vec![Some(210), Some(60), Some(0)]);
    assert_eq!(r.stale, 0);
    let report = sim.config().clone();
    assert_eq!(report.blocks, 0, "a schedule replaces mining");
}

#[test]
fn a_calibration_run_is_deterministic_and_reaches_everyone() {
    let links = "0 1 20ms\n1 2 35ms\n2 3 50ms\n3 4 25ms\n4 0 40ms\n0 2 30ms\n\
                 node 0 up 10Mbit down 20Mbit\nnode 3 up 5Mbit\n";
    let path = scenario(
        "det",
        &[
            (
                "scenario.toml",
                "links = \"links.txt\"\nschedule = \"schedule.txt\"\nrelay = \"compact\"\n",
            ),
            ("links.txt", links),
            (
                "schedule.txt",
                "500ms 0 1000\n1500ms 2 50000\n2500ms 4 200000\n",
            ),
        ],
    );
    let (_, a) = run(&path);
    let (_, b) = run(&path);
    assert_eq!(a, b);
    for blk in &a.blocks {
        assert!(blk.arrival_ms.iter().all(Option::is_some), "{blk:?}");
        assert!(blk.t100.is_some());
    }
    let rows = calib::compare(&a, &b);
    assert!(
        rows.iter().all(calib::Row::agrees),
        "a run agrees with itself"
    );
}

#[test]
fn calibration_keys_are_checked_against_each_other() {
    let files = |scen: &'static str, sched: &'static str| {
        [
            ("scenario.toml", scen),
            ("links.txt", "0 1 10ms\n"),
            ("schedule.txt", sched),
        ]
    };
    let refused = |tag: &str, scen: &'static str, sched: &'static str, key: &str| {
        let e = load(&scenario(tag, &files(scen, sched))).expect_err("refused");
        assert!(e.to_string().contains(key), "{tag}: {e}");
    };
    refused(
        "peers",
        "links = \"links.txt\"\npeers = 5\n",
        "1s 0 10\n",
        "links",
    );
    // A schedule replaces mining; a flag asking for mined blocks on top is refused.
    let path = scenario(
        "blocks",
        &files(
            "links = \"links.txt\"\nschedule = \"schedule.txt\"\n",
            "1s 0 10\n",
        ),
    );
    let mut cfg = load(&path).expect("valid");
    assert_eq!((cfg.blocks, cfg.miners()), (0, 0));
    cfg.apply("--blocks", "5", None).expect("a number");
    let e = cfg.validate().expect_err("refused");
    assert!(e.to_string().contains("schedule"), "{e}");
    refused(
        "node",
        "links = \"links.txt\"\nschedule = \"schedule.txt\"\n",
        "1s 7 10\n",
        "schedule",
    );
    refused("missing", "links = \"nowhere.txt\"\n", "", "nowhere.txt");
}

#[test]
fn the_shipped_calibration_scenarios_parse_and_the_small_one_reaches_everyone() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/calibration");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).expect("calibration scenarios") {
        let path = e.expect("entry").path();
        if path.extension().is_some_and(|x| x == "toml") {
            let cfg = load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(cfg.peers, 20, "{}", path.display());
            n += 1;
        }
    }
    assert!(n >= 5, "{n} calibration scenarios");
    let (_, r) = run(&dir.join("small.toml"));
    assert_eq!(r.blocks.len(), 20);
    for b in &r.blocks {
        assert!(b.arrival_ms.iter().all(Option::is_some), "{b:?}");
    }
}
