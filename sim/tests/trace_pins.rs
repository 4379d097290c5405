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
        ("bitcoin-2015.toml", "30591acbd4a96b78", 2429538),
        ("crash-restart.toml", "a2052adc417786f3", 142953),
        ("default.toml", "f7cf7c7645d2504c", 1249307),
        ("lossy.toml", "709b22b5160c836b", 542650),
        ("oneway-partition.toml", "0922c922e4462566", 437360),
        ("partition-heal.toml", "57cc3ad61eecdccd", 777502),
        ("relay-announce.toml", "c3ad2c8c389df35f", 325400),
        ("relay-push.toml", "2b968c1df5408fd4", 438199),
        ("small-world.toml", "f8dc0339e9340592", 161442),
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
        "f7cf7c7645d2504c",
        "SimConfig::default() no longer runs the pinned default scenario"
    );
}

#[test]
fn readme_sweep_keeps_its_trace_hashes() {
    // `--peers 200 --blocks 100 --sweep block-interval=5s,30s,2m,10m --seeds 4`
    const PINS: &[(&str, &str, u64)] = &[
        ("5s seed 1", "b5f82306385da572", 225360),
        ("5s seed 2", "eb2aabbf4f9a9572", 229468),
        ("5s seed 3", "1544797b6afc3e4b", 237259),
        ("5s seed 4", "eaf97cb706b5696a", 244956),
        ("30s seed 1", "b09a476b484e1fa6", 245341),
        ("30s seed 2", "377270bfd6705201", 244724),
        ("30s seed 3", "6b0a9c180f17486a", 252350),
        ("30s seed 4", "53550ed2b8690fa0", 253144),
        ("2m seed 1", "8d3ae5898dc72470", 247122),
        ("2m seed 2", "cac5b99ab8091214", 247188),
        ("2m seed 3", "0dcb696efedee211", 253094),
        ("2m seed 4", "5ce3263eb0857791", 253222),
        ("10m seed 1", "55e005a960c2f34d", 247234),
        ("10m seed 2", "2139f0582972f410", 247422),
        ("10m seed 3", "23f07fda7e7b52af", 253094),
        ("10m seed 4", "bf7b9ba9bc7669bf", 253215),
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
        (0, 18907, 10662),
        (1, 37951, 21868),
        (2, 52084, 32495),
        (3, 135576, 77558),
        (4, 66709, 36230),
        (5, 879631, 465801),
        (6, 110129, 70692),
        (7, 42000, 28435),
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
