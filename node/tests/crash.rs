//! `kill -9` at random moments while a node writes blocks: the store always opens, the chain
//! replays and validates, and every block reported stored before the kill is still there.
//! The moments are drawn from a seed, printed; `RANTAI_TEST_SEED=N` replays them.

mod common;

use common::*;
use rand::Rng;
use std::time::Duration;

#[test]
fn sigkill_at_random_moments_never_loses_a_reported_block() {
    let (seed, mut rng) = seeded_rng(8, "the kill moments");
    let dir = TempDir::new("crash");
    let data = dir.path().join("data").to_string_lossy().to_string();
    let args = node_args(0, &[], &["--data-dir", &data]);
    let mut reported = 0;
    for round in 0..8 {
        let mut n = NodeProc::start(&format!("round{round}"), &args, dir.path());
        let log = n.log_text();
        let loaded: u64 = log
            .lines()
            .rev()
            .find_map(|l| {
                l.split(" blocks, height")
                    .next()?
                    .rsplit(": ")
                    .next()?
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no load line in log:\n{log}"));
        assert!(
            loaded >= reported,
            "round {round} (seed {seed}): loaded {loaded} < {reported} reported before the kill"
        );
        assert!(
            !log.contains("loading stopped"),
            "round {round}: store intact:\n{log}"
        );
        // One line at a time so that many small blocks (and commits) are in flight.
        for i in 0..300 {
            n.type_line(&format!("round {round} line {i}"));
            if i % 50 == 0 {
                std::thread::sleep(Duration::from_millis(rng.gen_range(0..20)));
            }
        }
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..100)));
        reported = n
            .status()
            .and_then(|s| s.stored_blocks)
            .expect("stored_blocks");
        n.kill9();
    }
    println!("{reported} blocks stored after 8 SIGKILLs");
    assert!(reported > 8, "blocks were written: {reported}");
}

/// Lines POSTed to two nodes that mine at once (so blocks are orphaned in fork races), while
/// one or both are killed with SIGKILL at moments drawn from the seed: every line answered
/// 202 before a kill ends in the common chain exactly once, mined again after the restart
/// without another line typed (a line is typed only to settle a fork race that lasts 2 s).
#[test]
fn sigkill_never_loses_an_acknowledged_line() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    let (_, mut rng) = seeded_rng(8, "the kill moments");
    let dir = TempDir::new("crash-lines");
    let ports = [free_port(), free_port()];
    let args: Vec<Vec<String>> = (0..2)
        .map(|i| {
            let data = dir.path().join(format!("data{i}"));
            let data = data.to_string_lossy().to_string();
            let mut a = node_args(ports[i], &[ports[1 - i]], &["--data-dir", &data]);
            // Slower proof of work than the other tests: lines wait longer between their
            // acknowledgement and a stored block, so kills land in that window.
            let bits = a
                .iter()
                .position(|x| x == "--pow-bits")
                .expect("--pow-bits")
                + 1;
            a[bits] = "16".into();
            a
        })
        .collect();
    let start = |i: usize, round: usize| {
        NodeProc::start(&format!("node{i}-round{round}"), &args[i], dir.path())
    };
    let mut nodes: Vec<NodeProc> = (0..2).map(|i| start(i, 0)).collect();
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    for round in 0..5 {
        let stop = Arc::new(AtomicBool::new(false));
        let posters: Vec<_> = (0..2)
            .map(|i| {
                let (http, stop, acked) = (nodes[i].http, stop.clone(), acked.clone());
                std::thread::spawn(move || {
                    for k in 0..2_000 {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let line = format!("round {round} node {i} line {k}");
                        if let Ok((202, _)) = common::http(http, "POST", "/blocks", line.as_bytes())
                        {
                            acked.lock().expect("acked").push(line);
                        }
                        std::thread::sleep(Duration::from_millis(3));
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(rng.gen_range(100..600)));
        let victims: &[usize] = match rng.gen_range(0..3) {
            0 => &[0],
            1 => &[1],
            _ => &[0, 1],
        };
        for &v in victims {
            nodes[v].kill9();
        }
        stop.store(true, Ordering::Relaxed);
        for p in posters {
            p.join().expect("poster");
        }
        for &v in victims {
            nodes[v] = start(v, round + 1);
        }
    }
    let mut lines = acked.lock().expect("acked").clone();
    println!(
        "{} lines acknowledged across 5 rounds of kills",
        lines.len()
    );
    assert!(lines.len() > 50, "lines were accepted: {}", lines.len());
    converge(
        &mut nodes,
        2,
        |n, k| n[k].best_chain(),
        // A tie that lasts 2 s gets one more line (converge's rule); one tip that lacks an
        // acknowledged line is a lost line.
        |n, t| {
            assert_ne!(
                n[0].tip(),
                n[1].tip(),
                "one tip, lines missing: {t:?} would not help"
            );
            n[0].type_line(t)
        },
        &mut lines,
        Duration::from_secs(60),
    );
    let texts = item_texts(&nodes[0].best_chain().expect("chain"));
    let mut sorted = texts.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), texts.len(), "no line is in the chain twice");
}
