//! `rantai-node localnet`: the newcomer's one command starts connected nodes, routes typed
//! lines, and stops every node on SIGTERM.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `n` consecutive free ports below the ephemeral range.
fn free_range(n: u16) -> u16 {
    for _ in 0..1000 {
        let base = 20_000 + rand::random::<u16>() % 12_000;
        let held: Vec<_> = (0..n)
            .filter_map(|i| TcpListener::bind(("127.0.0.1", base + i)).ok())
            .collect();
        if held.len() == n as usize {
            return base;
        }
    }
    panic!("no free port range");
}

/// Prints the localnet's output if the test fails.
struct LogOnPanic(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl Drop for LogOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Ok(v) = self.0.lock() {
                eprintln!("localnet output:\n{}", v.join("\n"));
            }
        }
    }
}

/// SIGTERM first (localnet then stops its nodes), SIGKILL if it lingers.
struct Localnet(Child);

impl Drop for Localnet {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn localnet_starts_connected_nodes_and_routes_lines() {
    let (base, http) = (free_range(2), free_range(2));
    let mut child = Command::new(BIN)
        .args([
            "localnet",
            "--nodes",
            "2",
            "--pow-bits",
            "10",
            "--relay",
            "compact",
        ])
        .args([
            "--base-port",
            &base.to_string(),
            "--http-base-port",
            &http.to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn localnet");
    let stderr = child.stderr.take().expect("stderr");
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(mut v) = sink.lock() {
                v.push(l);
            }
        }
    });
    let mut stdin = child.stdin.take().expect("stdin");
    let net = Localnet(child);
    let log_on_panic = LogOnPanic(lines.clone());
    let api = |i: u16| -> std::net::SocketAddr {
        format!("127.0.0.1:{}", http + i).parse().expect("addr")
    };
    let status = |i: u16| -> Option<rantai_node::Status> {
        let (code, body) = http_get(api(i), "/status")?;
        (code == 200)
            .then(|| serde_json::from_slice(&body).ok())
            .flatten()
    };
    wait_until(Duration::from_secs(20), "both nodes connected", || {
        (0..2).all(|i| status(i).is_some_and(|s| s.peers.iter().any(|p| p.ready)))
    });
    for i in 0..2 {
        let relay = status(i).map(|s| s.config.relay);
        assert_eq!(
            relay.as_deref(),
            Some("compact"),
            "--relay reaches node {i}"
        );
    }
    writeln!(stdin, "typed at node one").expect("type");
    writeln!(stdin, "2 typed at node two").expect("type");
    stdin.flush().expect("flush");
    wait_until(Duration::from_secs(20), "both lines on both nodes", || {
        (0..2).all(|i| {
            http_get(api(i), "/blocks?from=0&limit=100").is_some_and(|(_, b)| {
                let s = String::from_utf8_lossy(&b);
                s.contains("\"typed at node one\"") && s.contains("\"typed at node two\"")
            })
        })
    });
    // Routed, not only relayed: each line was mined by the node it was sent to, which logged
    // its block as from `local miner`, while the other node got it from its peer.
    let page: rantai_node::BlockPage = http_get(api(0), "/blocks?from=0&limit=100")
        .and_then(|(_, b)| serde_json::from_slice(&b).ok())
        .expect("node 1's blocks");
    let accepted_of = |text: &str| {
        let block = page
            .blocks
            .iter()
            .find(|b| b.items.iter().any(|i| i.text == text))
            .expect("the line's block");
        format!("accepted block {} {}", block.height, &block.hash[..8])
    };
    // The log reaches us through a pipe and a reader thread: wait for the lines, bounded.
    let wanted: Vec<String> = ["typed at node one", "typed at node two"]
        .iter()
        .map(|t| accepted_of(t))
        .collect();
    let log_text = || lines.lock().map(|v| v.join("\n")).unwrap_or_default();
    wait_until(
        Duration::from_secs(10),
        "both nodes logged both blocks",
        || {
            let log = log_text();
            wanted.iter().all(|a| {
                ["[node1]", "[node2]"]
                    .iter()
                    .all(|n| log.lines().any(|l| l.contains(n) && l.contains(a.as_str())))
            })
        },
    );
    let log = log_text();
    assert!(
        log.contains("[node1]") && log.contains("[node2]"),
        "prefixed logs:\n{log}"
    );
    for (text, miner, other) in [
        ("typed at node one", "[node1]", "[node2]"),
        ("typed at node two", "[node2]", "[node1]"),
    ] {
        let accepted = accepted_of(text);
        let line_of = |node: &str| {
            log.lines()
                .find(|l| l.contains(node) && l.contains(&accepted))
                .unwrap_or_else(|| panic!("{node} logged no {accepted:?}:\n{log}"))
                .to_string()
        };
        assert!(
            line_of(miner).contains("from local miner"),
            "{text:?} was mined by {miner}: {}",
            line_of(miner)
        );
        assert!(
            !line_of(other).contains("from local miner"),
            "{text:?} was not mined by {other}: {}",
            line_of(other)
        );
    }
    drop(net);
    drop(log_on_panic);
    // Stopping localnet stopped its nodes: their ports are free again.
    wait_until(Duration::from_secs(10), "nodes stopped", || {
        (0..2).all(|i| TcpListener::bind(("127.0.0.1", base + i)).is_ok())
    });
}

fn http_get(addr: std::net::SocketAddr, path: &str) -> Option<(u16, Vec<u8>)> {
    http(addr, "GET", path, b"").ok()
}
