//! The binary's surface: flags, stdin handling, the HTTP API and its JSON keys, SIGTERM.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn bad_flags_give_a_clear_error() {
    let long_addr = format!("{}:1", "a".repeat(63));
    for (args, expect) in [
        (vec!["--pow-bits", "3"], "pow-bits"),
        (vec!["--port", "99999"], "port"),
        (vec!["--relay", "shout"], "push"),
        (vec!["--bogus"], "--bogus"),
        (vec!["--http", "nope"], "--http"),
        (vec!["--peer", "notanaddr"], "HOST:PORT"),
        (vec!["localnet", "--pow-bits", "4"], "pow-bits"),
        (vec!["--advertise", &long_addr], "more than the 64"),
        (vec!["--advertise", "nope"], "HOST:PORT"),
        (vec!["--advertise", "example.org:0"], "port 0"),
        (vec!["--advertise", "example.org:00"], "port 0"),
        (vec!["--advertise", "example.org:70000"], "HOST:PORT"),
        (vec!["--connect", "nope"], "HOST:PORT"),
        (vec!["--listen"], "--connect"),
        (
            vec!["--connect", "127.0.0.1:1", "--max-outbound", "3"],
            "--max-outbound",
        ),
        (vec!["localnet", "--relay", "shout"], "push"),
    ] {
        let out = Command::new(BIN).args(&args).output().expect("run");
        assert_eq!(out.status.code(), Some(2), "{args:?} exits with status 2");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(expect),
            "{args:?}: error mentions {expect}: {err}"
        );
    }
}

#[test]
fn help_names_the_inbound_limit_and_its_old_name() {
    let out = Command::new(BIN).arg("--help").output().expect("run");
    let help = String::from_utf8_lossy(&out.stdout);
    for k in [
        "--max-inbound",
        "--max-peers",
        "--connect",
        "--listen",
        "--advertise",
    ] {
        assert!(help.contains(k), "--help shows {k}:\n{help}");
    }
    let out = Command::new(BIN)
        .args(["localnet", "--help"])
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&out.stdout).contains("--relay"));
}

#[test]
fn the_old_max_peers_flag_sets_the_inbound_limit() {
    let dir = TempDir::new("maxpeers");
    for flag in ["--max-peers", "--max-inbound"] {
        let n = NodeProc::start("n", &node_args(0, &[], &[flag, "7"]), dir.path());
        assert_eq!(
            n.status().map(|s| s.config.max_inbound),
            Some(Some(7)),
            "{flag}"
        );
    }
}

#[test]
fn an_advertised_address_is_what_peers_learn() {
    let dir = TempDir::new("advertise");
    let a = NodeProc::start(
        "a",
        &node_args(0, &[], &["--advertise", "127.0.0.1:9"]),
        dir.path(),
    );
    assert_eq!(
        a.status().and_then(|s| s.listen).as_deref(),
        Some("127.0.0.1:9")
    );
    let b = NodeProc::start("b", &node_args(0, &[a.addr.port()], &[]), dir.path());
    wait_until(WAIT, "b sees a's advertised address", || {
        b.status().is_some_and(|s| {
            s.peers
                .iter()
                .any(|p| p.ready && p.listen.as_deref() == Some("127.0.0.1:9"))
        })
    });
}

#[test]
fn over_long_lines_are_refused_and_input_goes_on() {
    let dir = TempDir::new("longline");
    let mut n = NodeProc::start("n", &node_args(0, &[], &[]), dir.path());
    let long = "y".repeat(1_100_000);
    n.type_line(&long);
    n.type_line("after the long line");
    wait_until(WAIT, "the next line is mined", || {
        n.best_chain()
            .is_some_and(|c| item_texts(&c).contains(&"after the long line".to_string()))
    });
    assert!(
        n.log_text().contains("line of 1100000 bytes refused"),
        "{}",
        n.log_text()
    );
    // End of input leaves the node running.
    drop(n.stdin.take());
    std::thread::sleep(Duration::from_millis(300));
    assert!(n.alive(), "node keeps running after EOF");
    assert!(n.status().is_some());
}

#[test]
fn http_api_answers_with_the_documented_keys() {
    let dir = TempDir::new("http");
    let n = NodeProc::start("n", &node_args(0, &[], &[]), dir.path());
    let (code, body) = http(n.http, "POST", "/blocks", b"hello over http").expect("post");
    assert_eq!(code, 202);
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    let id = v["id"].as_str().expect("id").to_string();
    assert_eq!(id.len(), 64);
    wait_until(WAIT, "posted data mined", || {
        n.tip().is_some_and(|t| t.0 >= 1)
    });

    let (code, body) = http(n.http, "GET", "/status", b"").expect("status");
    assert_eq!(code, 200);
    let s: serde_json::Value = serde_json::from_slice(&body).expect("json");
    for k in [
        "node_id",
        "network",
        "listen",
        "height",
        "tip",
        "persistent",
        "stored_blocks",
        "pending_items",
        "uptime_secs",
        "work",
        "catching_up",
        "peers",
        "config",
    ] {
        assert!(s.get(k).is_some(), "status has {k}: {s}");
    }
    // The protocol settings in effect: the node's own defaults, under the simulator's keys.
    let c = &s["config"];
    assert_eq!(c["network"], "rantai");
    assert_eq!(c["relay"], "announce");
    assert_eq!(c["mining"], "own-items");
    assert_eq!(c["block_data_limit_bytes"], 1 << 20);
    assert_eq!(s["listen"].as_str(), Some(n.addr.to_string().as_str()));

    let (code, body) = http(n.http, "GET", "/blocks?from=1&limit=5", b"").expect("blocks");
    assert_eq!(code, 200);
    let page: serde_json::Value = serde_json::from_slice(&body).expect("json");
    let b = &page["blocks"][0];
    for k in [
        "height",
        "hash",
        "prev",
        "timestamp_ms",
        "difficulty",
        "nonce",
        "data_hash",
        "in_best_chain",
        "items",
    ] {
        assert!(b.get(k).is_some(), "block has {k}: {b}");
    }
    assert_eq!(b["items"][0]["id"].as_str(), Some(id.as_str()));
    assert_eq!(b["items"][0]["text"].as_str(), Some("hello over http"));
    let hash = b["hash"].as_str().expect("hash");

    let (code, body) = http(n.http, "GET", &format!("/blocks/{hash}"), b"").expect("block");
    assert_eq!(code, 200);
    let one: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(one["hash"].as_str(), Some(hash));
    assert_eq!(
        http(n.http, "GET", &format!("/blocks/{}", "0".repeat(64)), b"")
            .expect("404")
            .0,
        404
    );
    assert_eq!(
        http(n.http, "GET", "/blocks/nothex", b"").expect("400").0,
        400
    );
    let (code, _) = http(n.http, "GET", "/blocks?limit=100000", b"").expect("bounded");
    assert_eq!(code, 200);

    let (code, body) = http(n.http, "GET", "/metrics", b"").expect("metrics");
    assert_eq!(code, 200);
    let text = String::from_utf8_lossy(&body);
    for k in [
        "rantai_blocks_accepted_total",
        "rantai_blocks_rejected_total",
        "rantai_peers ",
        "rantai_bytes_in_total",
        "rantai_bytes_out_total",
        "rantai_height 1",
        "rantai_peer_bytes_total{direction=\"in\",kind=\"cmpct_block\"} 0",
        "rantai_compact_blocks_total{outcome=\"rebuilt\"} 0",
    ] {
        assert!(text.contains(k), "metrics has {k}:\n{text}");
    }

    // Mining switched off, then on: the line POSTed in between waits, then is mined.
    let put = |body: &[u8]| http(n.http, "PUT", "/mining", body).expect("mining");
    assert_eq!(put(b"sometimes").0, 400);
    let (code, body) = put(b"off");
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(
        (v["mining"].as_str(), v["was"].as_str()),
        (Some("off"), Some("own-items"))
    );
    let (code, _) = http(n.http, "POST", "/blocks", b"waits for mining").expect("post");
    assert_eq!(code, 202);
    let st = n.status().expect("status");
    assert_eq!((st.height, st.pending_items), (1, 1));
    assert_eq!(st.config.mining, "off");
    assert_eq!(put(b"own-items\n").0, 200);
    wait_until(WAIT, "the waiting line mined", || {
        n.status()
            .is_some_and(|s| s.height == 2 && s.pending_items == 0)
    });
    let (code, body) = http(n.http, "GET", "/accepted", b"").expect("accepted");
    assert_eq!(code, 200);
    let log: Vec<rantai_node::Accepted> = serde_json::from_slice(&body).expect("json");
    let heights: Vec<u64> = log.iter().map(|a| a.height).collect();
    assert_eq!(heights, vec![1, 2], "both mined blocks, oldest first");
    assert!(log.iter().all(|a| a.mined_here));
    assert!(log[0].at_unix_us <= log[1].at_unix_us);
    assert!(
        log[0].at_unix_us > 1_700_000_000_000_000,
        "microseconds since 1970"
    );
}

#[test]
fn sigterm_flushes_the_store_and_restart_loads_everything() {
    let dir = TempDir::new("sigterm");
    let data = dir.path().join("data").to_string_lossy().to_string();
    let args = node_args(0, &[], &["--data-dir", &data]);
    let mut n = NodeProc::start("n", &args, dir.path());
    assert!(n.log_text().contains("chain loaded from"));
    for i in 0..50 {
        n.type_line(&format!("durable line {i}"));
    }
    wait_until(WAIT, "all lines mined", || {
        n.best_chain()
            .is_some_and(|c| item_texts(&c).contains(&"durable line 49".to_string()))
    });
    let before = n.status().expect("status");
    let st = Command::new("kill")
        .args(["-TERM", &n.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(st.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let code = loop {
        if let Ok(Some(code)) = n.child.try_wait() {
            break code;
        }
        assert!(std::time::Instant::now() < deadline, "exits after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(code.success(), "clean exit: {code:?}");
    assert!(n.log_text().contains("store flushed and closed"));
    let again = NodeProc::start("n2", &args, dir.path());
    let after = again.status().expect("status");
    assert_eq!((after.height, &after.tip), (before.height, &before.tip));
    let chain = again.best_chain().expect("chain");
    let texts = item_texts(&chain);
    assert!((0..50).all(|i| texts.contains(&format!("durable line {i}"))));
}

#[test]
fn without_data_dir_the_node_says_the_chain_is_in_memory() {
    let dir = TempDir::new("mem");
    let n = NodeProc::start("n", &node_args(0, &[], &[]), dir.path());
    assert!(n.log_text().contains("chain in memory"));
    assert_eq!(n.status().map(|s| s.persistent), Some(false));
}
