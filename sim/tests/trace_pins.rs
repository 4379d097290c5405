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
        ("bitcoin-2015.toml", "c00bb745a9fd87a7", 2441267),
        ("crash-restart.toml", "3fdbdac8e196cb31", 144057),
        ("default.toml", "d988f3ae06516e66", 1575210),
        ("lossy.toml", "2ce05dd4d56ad287", 533650),
        ("oneway-partition.toml", "e88a5a3ec69ce977", 449977),
        ("partition-heal.toml", "9a9499183cd99453", 821829),
        ("relay-announce.toml", "dd5e53a3c35b7b28", 329403),
        ("relay-compact.toml", "1ba95d1c043de675", 407729),
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
        "d988f3ae06516e66",
        "SimConfig::default() no longer runs the pinned default scenario"
    );
}

#[test]
fn readme_sweep_keeps_its_trace_hashes() {
    // `--peers 200 --blocks 100 --sweep block-interval=5s,30s,2m,10m --seeds 4`
    const PINS: &[(&str, &str, u64)] = &[
        ("5s seed 1", "4c0892c5cde94f37", 302934),
        ("5s seed 2", "14a270a3bbe8e568", 307273),
        ("5s seed 3", "aaf0dc1704c547e2", 316484),
        ("5s seed 4", "ddff5f0c5921aced", 313013),
        ("30s seed 1", "1ce80a80c25cb5ed", 308141),
        ("30s seed 2", "f74886092604693f", 310165),
        ("30s seed 3", "c5671beb9a88d076", 318910),
        ("30s seed 4", "ee3645f0579ac0bb", 313331),
        ("2m seed 1", "ea6ab0510c78498c", 310254),
        ("2m seed 2", "f2e1a2289e80d66e", 310637),
        ("2m seed 3", "c2a6cdd1ef6cc0c0", 319482),
        ("2m seed 4", "4c689975a5c72e45", 313129),
        ("10m seed 1", "db5462c369fa5ec9", 310254),
        ("10m seed 2", "873f98ae491555c2", 311001),
        ("10m seed 3", "8f6605effd53b49c", 319482),
        ("10m seed 4", "071052e372415b96", 313129),
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
        (2, 32973, 21801),
        (3, 128443, 75411),
        (4, 64498, 34984),
        (5, 1534274, 756093),
        (6, 651548, 420655),
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
