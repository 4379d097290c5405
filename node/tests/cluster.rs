//! The tutorial's user story with real `rantai-node` processes on 127.0.0.1: convergence in any
//! start order, a late starter, SIGKILL + restart from the data dir, and two sides that mined
//! apart. Every wait is bounded; every child is killed on drop.

mod common;

use common::*;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// Waits until all nodes hold one best chain with each of `texts` exactly once (see
/// [`converge`] for how first-seen ties are settled).
fn wait_converged(nodes: &mut [&mut NodeProc], texts: &mut Vec<String>) {
    let n = nodes.len();
    converge(
        nodes,
        n,
        |nodes, k| nodes[k].best_chain(),
        |nodes, t| nodes[0].type_line(t),
        texts,
        WAIT,
    );
}

fn three_node_story(order: [usize; 3], tag: &str) {
    let dir = TempDir::new(tag);
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut nodes: Vec<Option<NodeProc>> = vec![None, None, None];
    for &i in &order {
        let peers: Vec<u16> = (0..3).filter(|&j| j != i).map(|j| ports[j]).collect();
        nodes[i] = Some(NodeProc::start(
            &format!("n{i}"),
            &node_args(ports[i], &peers, &[]),
            dir.path(),
        ));
        std::thread::sleep(Duration::from_millis(150));
    }
    let mut nodes: Vec<NodeProc> = nodes.into_iter().map(|n| n.expect("started")).collect();
    let mut texts = Vec::new();
    for round in 0..3 {
        for (i, n) in nodes.iter_mut().enumerate() {
            let t = format!("{tag} line {round} typed at node {i}");
            n.type_line(&t);
            texts.push(t);
        }
    }
    let mut refs: Vec<&mut NodeProc> = nodes.iter_mut().collect();
    wait_converged(&mut refs, &mut texts);
}

#[test]
fn three_nodes_converge_in_any_start_order() {
    three_node_story([0, 1, 2], "order012");
    three_node_story([2, 0, 1], "order201");
}

#[test]
fn node_started_last_catches_up() {
    let dir = TempDir::new("late");
    let (pa, pb) = (free_port(), free_port());
    let mut a = NodeProc::start("a", &node_args(pa, &[pb], &[]), dir.path());
    let mut b = NodeProc::start("b", &node_args(pb, &[pa], &[]), dir.path());
    let mut texts: Vec<String> = (0..20).map(|i| format!("early line {i}")).collect();
    for t in &texts {
        a.type_line(t);
    }
    wait_converged(&mut [&mut a, &mut b], &mut texts);
    // C knows only B; it must fetch everything mined before it existed.
    let mut c = NodeProc::start("c", &node_args(free_port(), &[pb], &[]), dir.path());
    wait_converged(&mut [&mut a, &mut b, &mut c], &mut texts);
    let st = c.status().expect("status");
    let peer = st.peers.iter().find(|p| p.ready).expect("c has a peer");
    assert_eq!(
        peer.best_height,
        Some(st.height),
        "status shows the peer's best height"
    );
    assert_eq!(peer.direction, rantai_core::Direction::Outbound);
    // C learned A's address from B (address exchange) and dials it too.
    let a_addr = a.addr.to_string();
    wait_until(WAIT, "c connected to the learned address of a", || {
        c.status().is_some_and(|s| {
            s.peers
                .iter()
                .any(|p| p.ready && p.listen.as_deref() == Some(a_addr.as_str()))
        })
    });
}

#[test]
fn sigkill_and_restart_keeps_the_chain_and_catches_up() {
    let dir = TempDir::new("kill9");
    let data = dir.path().join("a-data");
    let data_s = data.to_string_lossy().to_string();
    let (pa, pb) = (free_port(), free_port());
    let mut a = NodeProc::start(
        "a",
        &node_args(pa, &[pb], &["--data-dir", &data_s]),
        dir.path(),
    );
    let mut b = NodeProc::start("b", &node_args(pb, &[pa], &[]), dir.path());
    let mut texts: Vec<String> = (0..30).map(|i| format!("before kill {i}")).collect();
    for t in &texts {
        a.type_line(t);
    }
    wait_converged(&mut [&mut a, &mut b], &mut texts);
    // Keep A writing while it dies: what it reported stored must survive.
    for i in 0..200 {
        a.type_line(&format!("during kill {i}"));
    }
    std::thread::sleep(Duration::from_millis(100));
    let reported = a
        .status()
        .and_then(|s| s.stored_blocks)
        .expect("stored_blocks");
    a.kill9();
    let after: Vec<String> = (0..10).map(|i| format!("while A is down {i}")).collect();
    for t in &after {
        b.type_line(t);
    }
    let mut a2 = NodeProc::start(
        "a-restarted",
        &node_args(pa, &[pb], &["--data-dir", &data_s]),
        dir.path(),
    );
    let log = a2.log_text();
    let loaded: u64 = log
        .lines()
        .find_map(|l| {
            l.split("blocks, height")
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
        "loaded {loaded} blocks, but {reported} were reported stored before SIGKILL"
    );
    texts.extend(after);
    wait_converged(&mut [&mut a2, &mut b], &mut texts);
}

#[test]
fn two_sides_that_mined_apart_end_on_one_chain_with_both_sides_data() {
    let dir = TempDir::new("apart");
    let (pa, pb) = (free_port(), free_port());
    let mut a = NodeProc::start("a", &node_args(pa, &[], &[]), dir.path());
    let mut b = NodeProc::start("b", &node_args(pb, &[], &[]), dir.path());
    let mut texts = Vec::new();
    for i in 0..4 {
        let (ta, tb) = (format!("side A {i}"), format!("side B {i}"));
        a.type_line(&ta);
        b.type_line(&tb);
        texts.push(ta);
        texts.push(tb);
    }
    wait_until(WAIT, "both sides mined", || {
        a.tip().is_some_and(|t| t.0 >= 1) && b.tip().is_some_and(|t| t.0 >= 1)
    });
    // A bridge node joins the two histories. With equal work each side keeps its own branch
    // (first seen wins a tie) until wait_converged types one more line; then the losing side's
    // lines go back to its pending pool and are mined again on the winning chain.
    let mut c = NodeProc::start(
        "bridge",
        &node_args(free_port(), &[pa, pb], &[]),
        dir.path(),
    );
    wait_until(WAIT, "bridge connected to both", || {
        c.status()
            .is_some_and(|s| s.peers.iter().filter(|p| p.ready).count() >= 2)
    });
    wait_converged(&mut [&mut a, &mut b, &mut c], &mut texts);
}

/// One valid line used to cut a node off: 900,000 control characters took 5.4 MB as JSON,
/// over the frame limit, so no peer could receive the block. In the binary encoding it is a
/// 900 kB item like any other: typed at one node and POSTed to another, both lines reach all
/// three nodes, which end on one chain.
#[test]
fn lines_of_900000_control_characters_reach_every_node_by_stdin_and_by_post() {
    let dir = TempDir::new("controls");
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut nodes: Vec<NodeProc> = (0..3)
        .map(|i| {
            let peers: Vec<u16> = (0..3).filter(|&j| j != i).map(|j| ports[j]).collect();
            NodeProc::start(
                &format!("c{i}"),
                &node_args(ports[i], &peers, &[]),
                dir.path(),
            )
        })
        .collect();
    wait_until(WAIT, "three connected nodes", || {
        nodes.iter().all(|n| {
            n.status()
                .is_some_and(|s| s.peers.iter().filter(|p| p.ready).count() == 2)
        })
    });
    let typed = "\u{1}".repeat(900_000);
    let posted = "\u{2}".repeat(900_000);
    nodes[0].type_line(&typed);
    let (code, body) = http(nodes[1].http, "POST", "/blocks", posted.as_bytes()).expect("POST");
    assert_eq!(code, 202, "{}", String::from_utf8_lossy(&body));
    let mut texts = vec![typed, posted];
    let mut refs: Vec<&mut NodeProc> = nodes.iter_mut().collect();
    wait_converged(&mut refs, &mut texts);
    for n in &nodes {
        let log = n.log_text();
        assert!(
            !log.contains("frame of"),
            "no frame was refused: {}",
            log.lines()
                .find(|l| l.contains("frame of"))
                .unwrap_or_default()
        );
    }
}
