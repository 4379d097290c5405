//! Pinned trace hashes: any change to a protocol decision or to the network model changes at
//! least one of these, so a behaviour change has to update them knowingly (and say why in its
//! commit), while a refactor has to leave every one as it is.
//!
//! All moved once on 2026-12-02 with the parallel engine (per-origin event keys, messages
//! booked at their receivers between rounds, the other side of dials and closes at the
//! round's end, per-peer trace hashes); every campaign seed still passed.
//!
//! Covered: every shipped scenario file (default, partitions one-way and healing, loss,
//! crashes, the three relay policies, a small world, the 2015 preset), the README's sweep
//! (block interval x 4 seeds) and the first fault-campaign seeds (events and messages).

use rantai_sim::{vopr, Sim, SimConfig};
use std::path::Path;

/// Runs `cfg` and returns its trace hash and event count.
fn hash_of(cfg: SimConfig) -> (String, u64) {
    let r = Sim::new(cfg).expect("valid scenario").run();
    assert!(r.invariants.ok, "{:?}", r.invariants.violations);
    assert_eq!(r.outcome, rantai_sim::report::Outcome::Ok, "{}", r.command);
    (r.engine.trace_hash.clone(), r.engine.events)
}

fn scenario(name: &str) -> SimConfig {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name);
    let mut cfg = SimConfig::default();
    cfg.apply_file(&path)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    cfg
}

/// Compares all results at once so one run of the test shows every changed hash.
fn check(got: Vec<(String, String, u64)>, want: &[(&str, &str, u64)]) {
    let mut diffs = Vec::new();
    for ((name, hash, events), (wname, whash, wevents)) in got.iter().zip(want) {
        assert_eq!(name, wname);
        if hash != whash || events != wevents {
            diffs.push(format!(
                "{name}: trace {hash} with {events} events, pinned {whash} with {wevents}"
            ));
        }
    }
    assert_eq!(got.len(), want.len());
    assert!(diffs.is_empty(), "behaviour changed:\n{}", diffs.join("\n"));
}

#[test]
fn scenario_files_keep_their_trace_hashes() {
    const PINS: &[(&str, &str, u64)] = &[
        ("bitcoin-2015.toml", "c30e2ffd0f8099d2", 2438713),
        ("crash-restart.toml", "4f11e2ce0c3780c3", 144387),
        ("default.toml", "50ae626a6e161a09", 1573377),
        ("lossy.toml", "ef44cdf8c1ad0750", 532232),
        ("oneway-partition.toml", "07b2dfef97b417c7", 450144),
        ("partition-heal.toml", "eb49d2825d92527d", 820504),
        ("relay-announce.toml", "d7a97e4d0f514e30", 329079),
        ("relay-compact.toml", "05ade40677e889de", 408396),
        ("relay-push.toml", "34c1efa40ab040d5", 442938),
        ("small-world.toml", "7cd1b45e1878ee08", 164837),
    ];
    let got = PINS
        .iter()
        .map(|(name, _, _)| {
            let (h, e) = hash_of(scenario(name));
            (name.to_string(), h, e)
        })
        .collect();
    check(got, PINS);
}

#[test]
fn default_config_matches_default_scenario_file() {
    // The CLI's run without flags and `default.toml` are one scenario.
    assert_eq!(
        hash_of(SimConfig::default()).0,
        "50ae626a6e161a09",
        "SimConfig::default() no longer runs the pinned default scenario"
    );
}

#[test]
fn readme_sweep_keeps_its_trace_hashes() {
    // `--peers 200 --blocks 100 --sweep block-interval=5s,30s,2m,10m --seeds 4`
    const PINS: &[(&str, &str, u64)] = &[
        ("5s seed 1", "34e5e1027171c4c0", 303294),
        ("5s seed 2", "a48ba41af25c7542", 306798),
        ("5s seed 3", "7d101717306596fd", 315739),
        ("5s seed 4", "af0ae2cb53ccf4e2", 312360),
        ("30s seed 1", "204b2236f358389e", 309159),
        ("30s seed 2", "9ddd0f1f99c2f2c0", 309805),
        ("30s seed 3", "f86cc850b076d98f", 318203),
        ("30s seed 4", "60fcf7b584777615", 313006),
        ("2m seed 1", "1f7c5c6e2b1adb2f", 309525),
        ("2m seed 2", "e2520d269029c2c3", 310605),
        ("2m seed 3", "96114feb1e090b81", 318767),
        ("2m seed 4", "f9dc080fd5ee9cbe", 314746),
        ("10m seed 1", "aa6f1c9090c95d5f", 309525),
        ("10m seed 2", "98e4549cb665de53", 310960),
        ("10m seed 3", "4e41034ef71443f2", 318767),
        ("10m seed 4", "1a09b289c99af08d", 314746),
    ];
    let mut got = Vec::new();
    for interval in ["5s", "30s", "2m", "10m"] {
        for seed in 1..=4u64 {
            let mut cfg = SimConfig::default();
            cfg.apply("peers", "200", None).unwrap();
            cfg.apply("blocks", "100", None).unwrap();
            cfg.apply("block_interval", interval, None).unwrap();
            cfg.seed = seed;
            let (h, e) = hash_of(cfg);
            got.push((format!("{interval} seed {seed}"), h, e));
        }
    }
    check(got, PINS);
}

#[test]
fn campaign_seeds_keep_their_event_and_message_counts() {
    // Campaign runs have no single trace; events and messages over a randomized fault mix
    // move with any protocol decision.
    const PINS: &[(u64, u64, u64)] = &[
        (0, 13833, 7727),
        (1, 38559, 21906),
        (2, 43825, 28613),
        (3, 126212, 73399),
        (4, 63964, 33807),
        (5, 1546752, 757829),
        (6, 659149, 423395),
        (7, 43656, 29970),
    ];
    let got: Vec<(u64, u64, u64)> = (0..PINS.len() as u64)
        .map(|seed| {
            let o = vopr::run(seed);
            assert!(o.ok(), "seed {seed}: {:?}", o.failures);
            (seed, o.events, o.messages)
        })
        .collect();
    assert_eq!(got, PINS, "behaviour changed");
}
