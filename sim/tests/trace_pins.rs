//! Pinned trace hashes: any change to a protocol decision or to the network model changes at
//! least one of these, so a behaviour change has to update them knowingly (and say why in its
//! commit), while a refactor has to leave every one as it is.
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
        ("bitcoin-2015.toml", "c00bb745a9fd87a7", 2441267),
        ("crash-restart.toml", "3fdbdac8e196cb31", 144057),
        ("default.toml", "a795f16081c3acec", 1590657),
        ("lossy.toml", "2ce05dd4d56ad287", 533650),
        ("oneway-partition.toml", "e88a5a3ec69ce977", 449977),
        ("partition-heal.toml", "9a9499183cd99453", 821829),
        ("relay-announce.toml", "dd5e53a3c35b7b28", 329403),
        ("relay-compact.toml", "0a4293252ce590b6", 411895),
        ("relay-push.toml", "ade815e740ec4014", 442728),
        ("small-world.toml", "ab3567244448d3a6", 164912),
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
        "a795f16081c3acec",
        "SimConfig::default() no longer runs the pinned default scenario"
    );
}

#[test]
fn readme_sweep_keeps_its_trace_hashes() {
    // `--peers 200 --blocks 100 --sweep block-interval=5s,30s,2m,10m --seeds 4`
    const PINS: &[(&str, &str, u64)] = &[
        ("5s seed 1", "7882180e56fbe818", 307504),
        ("5s seed 2", "e2ecaf4088bd2d61", 310736),
        ("5s seed 3", "c2abfddfc99c9cda", 319243),
        ("5s seed 4", "de71c6bbf45699b8", 315784),
        ("30s seed 1", "591b90346839eaae", 312631),
        ("30s seed 2", "e2532a4870b637bb", 312593),
        ("30s seed 3", "348744cb86942e76", 322481),
        ("30s seed 4", "74a150607819c168", 315490),
        ("2m seed 1", "9b67c890e6726e28", 312526),
        ("2m seed 2", "eb0646dc43fed31a", 312727),
        ("2m seed 3", "2d601b450473d955", 322995),
        ("2m seed 4", "1ee7ece352da224b", 316217),
        ("10m seed 1", "6d5ec516d9c6e63a", 312526),
        ("10m seed 2", "289f21d9945b1865", 313056),
        ("10m seed 3", "e6871a73de862536", 322995),
        ("10m seed 4", "ea271862e4eb7132", 316217),
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
        (0, 13737, 7718),
        (1, 38707, 22297),
        (2, 36322, 24516),
        (3, 136515, 79570),
        (4, 63750, 34319),
        (5, 1522596, 746693),
        (6, 659496, 424195),
        (7, 44704, 30211),
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
