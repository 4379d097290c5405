//! The API a user queries like bitcoind's RPC: blocks by a short hash, chain tips, where an
//! item is, the node's work and catch-up state, per-peer traffic and ping times, and u64s that
//! JavaScript reads exactly. Real processes on 127.0.0.1, every wait bounded.

mod common;

use common::*;
use rantai_core::{Block, Item, Message, Params, Template, Tip, Work};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

const WAIT: Duration = Duration::from_secs(30);

fn get(n: &NodeProc, path: &str) -> (u16, Value) {
    let (code, body) = http(n.http, "GET", path, b"").expect("GET");
    let v = serde_json::from_slice(&body).unwrap_or(Value::Null);
    (code, v)
}

/// A block on `parent` at the network's minimum difficulty carrying one item.
fn block_on(parent: &Block, nonce: u64, text: &str) -> Arc<Block> {
    let params = Params::main();
    let item = Item {
        nonce,
        text: text.to_string(),
    };
    let b = Template::new(
        parent.header(),
        parent.hash(),
        params.min_difficulty,
        rantai_node::unix_now(),
        vec![item],
    )
    .solve(&std::sync::atomic::AtomicBool::new(false))
    .expect("an uncancelled search finds a nonce");
    Arc::new(b)
}

#[test]
fn a_block_is_found_by_a_unique_prefix_of_eight_hex_digits() {
    let dir = TempDir::new("prefix");
    let mut n = NodeProc::start("n", &node_args(0, &[], &[]), dir.path());
    n.type_line("a line to make a block");
    wait_until(WAIT, "a block mined", || n.tip().is_some_and(|t| t.0 >= 1));
    let (_, tip) = n.tip().expect("tip");
    for len in [8, 9, 63, 64] {
        let (code, b) = get(&n, &format!("/blocks/{}", &tip[..len]));
        assert_eq!(code, 200, "prefix of {len}: {b}");
        assert_eq!(b["hash"].as_str(), Some(tip.as_str()));
    }
    let (code, b) = get(&n, &format!("/blocks/{}", tip[..8].to_uppercase()));
    assert_eq!((code, b["hash"].as_str()), (200, Some(tip.as_str())));
    let (code, b) = get(&n, &format!("/blocks/{}", &tip[..7]));
    assert_eq!(code, 400, "7 digits are too few: {b}");
    assert!(b["error"]
        .as_str()
        .is_some_and(|e| e.contains("at least 8")));
    // A prefix that no block starts with (the tip's first digits with the 8th changed).
    let mut other = tip[..8].to_string();
    let last = if other.ends_with('f') { "e" } else { "f" };
    other.replace_range(7..8, last);
    let genesis = Params::main().genesis_hash().to_string();
    if !genesis.starts_with(&other) {
        assert_eq!(get(&n, &format!("/blocks/{other}")).0, 404);
    }
    assert_eq!(get(&n, "/blocks/0000000g").0, 400);
    assert_eq!(get(&n, &format!("/blocks/{}0", tip)).0, 400, "65 digits");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tips_list_the_active_chain_a_valid_fork_and_an_invalid_branch() {
    let dir = TempDir::new("tips");
    let n = NodeProc::start("n", &node_args(0, &[], &["--mine", "off"]), dir.path());
    let g = Params::main().genesis().clone();
    // Best chain x1-x2; a fork y1 from genesis; z2-z3 on x1 where z2 repeats x1's item:
    // structurally valid, found invalid when z3's extra work makes the node try the branch.
    let x1 = block_on(&g, 1, "x1");
    let x2 = block_on(&x1, 2, "x2");
    let y1 = block_on(&g, 3, "y1");
    let z2 = block_on(&x1, 1, "x1");
    let z3 = block_on(&z2, 5, "z3");
    let mut s = handshake(n.addr).await;
    for b in [&x1, &x2, &y1, &z2, &z3] {
        let frame = Message::Block { block: b.clone() }.to_frame();
        // The node drops us after the invalid branch; what came before counts.
        if s.write_all(&frame).await.is_err() {
            break;
        }
    }
    let http = n.http;
    let tips = move || -> Option<Value> {
        let (code, body) = common::http(http, "GET", "/tips", b"").ok()?;
        (code == 200).then(|| serde_json::from_slice(&body).ok())?
    };
    // Three tips already exist while z2 waits for z3 (x2, z2 as a valid fork, y1): wait for
    // the final state, z3 listed, not just the count.
    let z3_hash = z3.hash().to_string();
    wait_async(WAIT, "three tips with z3's branch", || {
        let t = tips();
        let z3_hash = z3_hash.clone();
        async move {
            t.is_some_and(|t| {
                t["count"] == 3
                    && t["tips"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|r| r["hash"] == z3_hash.as_str()))
            })
        }
    })
    .await;
    let t = tips().expect("tips");
    let rows: Vec<(String, u64, u64, String)> = t["tips"]
        .as_array()
        .expect("list")
        .iter()
        .map(|t| {
            (
                t["hash"].as_str().unwrap_or("").to_string(),
                t["height"].as_u64().unwrap_or(0),
                t["branch_len"].as_u64().unwrap_or(99),
                t["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let row = |b: &Block, h, len, st: &str| (b.hash().to_string(), h, len, st.to_string());
    assert_eq!(
        rows,
        vec![
            row(&x2, 2, 0, "active"),
            row(&z3, 3, 2, "invalid"),
            row(&y1, 1, 1, "valid-fork"),
        ],
        "{t}"
    );
    // Work is a decimal string, the active tip's equal to the status's.
    let status = n.status().expect("status");
    assert_eq!(
        t["tips"][0]["work"].as_str(),
        Some(status.work.0.to_string().as_str())
    );
    assert!(t["tips"][0]["work"]
        .as_str()
        .is_some_and(|w| w.parse::<u128>().is_ok()));
    drop(s);
}

#[test]
fn an_item_is_found_pending_then_in_its_block() {
    let dir = TempDir::new("items");
    let n = NodeProc::start("n", &node_args(0, &[], &["--mine", "off"]), dir.path());
    let (code, body) = http(n.http, "POST", "/blocks", b"where am I").expect("post");
    assert_eq!(code, 202);
    let v: Value = serde_json::from_slice(&body).expect("json");
    let id = v["id"].as_str().expect("id").to_string();
    let (code, it) = get(&n, &format!("/items/{id}"));
    assert_eq!(code, 200);
    assert_eq!(it, serde_json::json!({"status": "pending", "id": id}));
    assert_eq!(
        http(n.http, "PUT", "/mining", b"own-items").expect("put").0,
        200
    );
    wait_until(WAIT, "the item mined", || {
        get(&n, &format!("/items/{id}")).1["status"] == "in_block"
    });
    let (code, it) = get(&n, &format!("/items/{id}"));
    assert_eq!(code, 200);
    let (height, tip) = n.tip().expect("tip");
    assert_eq!(it["height"].as_u64(), Some(height));
    assert_eq!(it["block"].as_str(), Some(tip.as_str()));
    assert_eq!(it["confirmations"].as_u64(), Some(1));
    assert_eq!(it["id"].as_str(), Some(id.as_str()));
    assert_eq!(get(&n, &format!("/items/{}", "ab".repeat(32))).0, 404);
    assert_eq!(get(&n, "/items/nothex").0, 400);
    assert_eq!(get(&n, &format!("/items/{}", &id[..8])).0, 400);
}

#[test]
fn nonces_are_json_strings_so_javascript_reads_them_exactly() {
    let dir = TempDir::new("nonces");
    let mut n = NodeProc::start("n", &node_args(0, &[], &[]), dir.path());
    n.type_line("a nonce is 64 random bits");
    wait_until(WAIT, "a block mined", || n.tip().is_some_and(|t| t.0 >= 1));
    let (_, page) = get(&n, "/blocks?from=1&limit=1");
    let b = &page["blocks"][0];
    let (_, one) = get(
        &n,
        &format!("/blocks/{}", b["hash"].as_str().expect("hash")),
    );
    for v in [b, &one] {
        assert!(
            v["nonce"]
                .as_str()
                .is_some_and(|s| s.parse::<u64>().is_ok()),
            "{v}"
        );
        let item_nonce = &v["items"][0]["nonce"];
        assert!(
            item_nonce
                .as_str()
                .is_some_and(|s| s.parse::<u64>().is_ok()),
            "{v}"
        );
    }
    // The typed views read them back.
    let chain = n.best_chain().expect("chain");
    assert_eq!(
        chain[1].nonce.to_string(),
        b["nonce"].as_str().expect("nonce")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_claiming_more_work_makes_the_node_catch_up() {
    let dir = TempDir::new("catchup");
    let n = NodeProc::start("n", &node_args(0, &[], &[]), dir.path());
    let st = n.status().expect("status");
    assert!(!st.catching_up);
    assert!(st.work.0 > 0, "genesis has work");
    let (code, v) = get(&n, "/status");
    assert_eq!(code, 200);
    assert!(v["work"].as_str().is_some(), "work is a string: {v}");
    // A raw peer claims a tip far ahead and never serves it.
    let genesis = Params::main().genesis_hash();
    let mut s = tokio::net::TcpStream::connect(n.addr)
        .await
        .expect("connect");
    let mut hello = hello(genesis);
    if let Message::Hello(h) = &mut hello {
        h.tip = Tip {
            height: u64::MAX,
            hash: rantai_core::Hash32([7; 32]),
            work: Work(u128::MAX / 2),
        };
    }
    s.write_all(&hello.to_frame()).await.expect("hello");
    let http = n.http;
    wait_async(WAIT, "catching up", || async move {
        http_status(http).is_some_and(|s| s.catching_up)
    })
    .await;
    let st = n.status().expect("status");
    let p = &st.peers[0];
    assert_eq!(p.best_work, Some(Work(u128::MAX / 2)));
    assert_eq!(p.best_height, Some(u64::MAX));
    // A claimed height is the remote's to make: a string, read exactly.
    let (_, v) = get(&n, "/status");
    assert_eq!(v["peers"][0]["best_height"], "18446744073709551615");
    assert_eq!(v["peers"][0]["best_work"], (u128::MAX / 2).to_string());
    drop(s);
    wait_async(WAIT, "no longer catching up once it left", || async move {
        http_status(http).is_some_and(|s| !s.catching_up && s.peers.is_empty())
    })
    .await;
}

#[test]
fn each_peer_shows_its_connection_time_traffic_and_ping_round_trip() {
    let dir = TempDir::new("peerinfo");
    let a = NodeProc::start("a", &node_args(0, &[], &[]), dir.path());
    let b = NodeProc::start("b", &node_args(0, &[a.addr.port()], &[]), dir.path());
    let before_ms = rantai_node::unix_now().0;
    // Pings go every second (FAST); wait for one answered on each side.
    wait_until(WAIT, "a ping round trip on both sides", || {
        [&a, &b].iter().all(|n| {
            n.status().is_some_and(|s| {
                s.peers.len() == 1 && s.peers[0].ready && s.peers[0].ping_rtt_ms.is_some()
            })
        })
    });
    wait_until(WAIT, "a second of connection", || {
        b.status().is_some_and(|s| s.peers[0].connected_secs >= 1)
    });
    let now_ms = rantai_node::unix_now().0;
    for n in [&a, &b] {
        let s = n.status().expect("status");
        let p = &s.peers[0];
        assert!(p.bytes_in > 0 && p.bytes_out > 0, "{p:?}");
        // hello and at least one ping and one pong each way.
        assert!(p.messages_in >= 3 && p.messages_out >= 3, "{p:?}");
        assert!(p.ping_rtt_ms.is_some_and(|t| t < 5_000), "{p:?}");
        assert!(p.smoothed_rtt_ms.is_some(), "{p:?}");
        // Connected before the wait started (give the two clocks a second of slack).
        assert!(p.connected_at_unix_ms <= now_ms + 1000, "{p:?}");
        assert!(p.connected_at_unix_ms + 60_000 > before_ms, "{p:?}");
    }
    // Bytes one side wrote, the other read (give traffic in flight since a moment).
    let (sa, sb) = (a.status().expect("a"), b.status().expect("b"));
    let (pa, pb) = (&sa.peers[0], &sb.peers[0]);
    let close = |x: u64, y: u64| x.abs_diff(y) < 2_000;
    assert!(close(pa.bytes_out, pb.bytes_in), "{pa:?} {pb:?}");
    assert!(close(pb.bytes_out, pa.bytes_in), "{pa:?} {pb:?}");
    let (_, v) = get(&b, "/status");
    for k in [
        "connected_at_unix_ms",
        "connected_secs",
        "bytes_in",
        "bytes_out",
        "messages_in",
        "messages_out",
        "ping_rtt_ms",
        "smoothed_rtt_ms",
        "best_work",
    ] {
        assert!(v["peers"][0].get(k).is_some(), "peer has {k}: {v}");
    }
}
