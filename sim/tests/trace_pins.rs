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
        ("default.toml", "7eba78dd381b8c33", 1567643),
        ("lossy.toml", "2ce05dd4d56ad287", 533650),
        ("oneway-partition.toml", "e88a5a3ec69ce977", 449977),
        ("partition-heal.toml", "9a9499183cd99453", 821829),
        ("relay-announce.toml", "dd5e53a3c35b7b28", 329403),
        ("relay-compact.toml", "4ddb6b23f186cd67", 403957),
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
        "7eba78dd381b8c33",
        "SimConfig::default() no longer runs the pinned default scenario"
    );
}

#[test]
fn readme_sweep_keeps_its_trace_hashes() {
    // `--peers 200 --blocks 100 --sweep block-interval=5s,30s,2m,10m --seeds 4`
    const PINS: &[(&str, &str, u64)] = &[
        ("5s seed 1", "122ae3edd0091a8b", 294394),
        ("5s seed 2", "66293b438a6504b6", 299539),
        ("5s seed 3", "19d1bc72f0b873e7", 308316),
        ("5s seed 4", "cfa353e62f5d1038", 304673),
        ("30s seed 1", "01422ed12bf656ef", 306254),
        ("30s seed 2", "ac251cfdae0c9492", 307300),
        ("30s seed 3", "325530415c34744f", 314322),
        ("30s seed 4", "d34906a2b7eda869", 309768),
        ("2m seed 1", "e1f8d07cb1aa6951", 306030),
        ("2m seed 2", "bc3ae2a61d6ed6c9", 307855),
        ("2m seed 3", "136e513e43c90da6", 316271),
        ("2m seed 4", "c2890090b2aec24b", 312048),
        ("10m seed 1", "b6ed8187d0b86d54", 306571),
        ("10m seed 2", "040cf211554b9b30", 308496),
        ("10m seed 3", "ff74d8c32d7c3998", 317135),
        ("10m seed 4", "f4a48300fb743922", 312486),
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
        (4, 63812, 34501),
        (5, 1532225, 758309),
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
