//! Pinned trace hashes: any change to a protocol decision or to the network model changes at
//! least one of these, so a behaviour change has to update them knowingly (and say why in its
//! commit), while a refactor has to leave every one as it is.
//!
//! Covered: every shipped scenario file (default, partitions one-way and healing, loss,
//! crashes, both relay policies, a small world, the 2015 preset), the README's sweep
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
        ("bitcoin-2015.toml", "4cb65d43c43dbb40", 2432563),
        ("crash-restart.toml", "6a3171e88fbe602b", 143046),
        ("default.toml", "4544be36469b0a6b", 1249413),
        ("lossy.toml", "3750df9ef5b5f092", 530681),
        ("oneway-partition.toml", "90d468d2fac409d0", 449144),
        ("partition-heal.toml", "c8b4a49dbbdfcfd3", 818257),
        ("relay-announce.toml", "3cebdf9d57a1aa6f", 325770),
        ("relay-push.toml", "b8ade7ce417322a7", 439271),
        ("small-world.toml", "b81608dd137368e0", 161914),
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
        "4544be36469b0a6b",
        "SimConfig::default() no longer runs the pinned default scenario"
    );
}

#[test]
fn readme_sweep_keeps_its_trace_hashes() {
    // `--peers 200 --blocks 100 --sweep block-interval=5s,30s,2m,10m --seeds 4`
    const PINS: &[(&str, &str, u64)] = &[
        ("5s seed 1", "c1ac6f3f9511bfa2", 232328),
        ("5s seed 2", "cf6129c0170cbcf1", 232360),
        ("5s seed 3", "93c2afbbd75b9f03", 240391),
        ("5s seed 4", "3153e1d4e8f286f1", 246604),
        ("30s seed 1", "840a2e4840ab700a", 245782),
        ("30s seed 2", "cb7eaf275ef5b377", 244901),
        ("30s seed 3", "924ab1918da3dcec", 252932),
        ("30s seed 4", "471038f0123a055b", 253454),
        ("2m seed 1", "64ad10a2fe6f0014", 247109),
        ("2m seed 2", "456fe6157baafd91", 247027),
        ("2m seed 3", "19f2c5907854533d", 253056),
        ("2m seed 4", "15f6a838f48bb579", 253164),
        ("10m seed 1", "60c3ac9cefc26aec", 247277),
        ("10m seed 2", "807078a78546bc86", 247533),
        ("10m seed 3", "5730e6cf42ef2303", 253056),
        ("10m seed 4", "3ebddb76ec7e8e8b", 253325),
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
        (0, 19099, 10711),
        (1, 38509, 21675),
        (2, 54006, 29402),
        (3, 112643, 65219),
        (4, 68706, 36954),
        (5, 983209, 468999),
        (6, 104199, 68069),
        (7, 42570, 29214),
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
