//! Compact block relay between real in-process nodes over TCP: a 1 MB block whose items the
//! other nodes' pools already hold crosses each link as a few kilobytes of short ids; with
//! empty pools it crosses once, its items prefilled, and is never sent twice. Bytes are read
//! from each node's `/metrics` counters.

mod common;

use common::*;
use rantai_core::{MinePolicy, RelayPolicy};
use rantai_node::NodeHandle;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);
/// 250 items of 4,000 bytes: a block of about 1 MB (the limit is 1 MiB).
const ITEMS: usize = 250;
const ITEM_BYTES: usize = 4_000;

/// `n` nodes in a line (node i dials node i-1), relaying compactly, none mining yet.
async fn line(n: usize, relay_items: bool) -> Vec<NodeHandle> {
    let mut nodes: Vec<NodeHandle> = Vec::new();
    for i in 0..n {
        let mut o = fast_options();
        o.config.relay = RelayPolicy::Compact;
        o.config.relay_items = relay_items;
        o.config.mining = MinePolicy::Off;
        // A line stays a line: no dialling of addresses learned from neighbours.
        o.config.max_outbound = 0;
        if i > 0 {
            o.peers = vec![nodes[i - 1].local_addr().to_string()];
        }
        nodes.push(spawn_node(o).await);
    }
    for (i, node) in nodes.iter().enumerate() {
        let want = if i == 0 || i == n - 1 { 1 } else { 2 };
        let c = node.client().clone();
        wait_async(WAIT, "handshakes", || {
            let c = c.clone();
            async move {
                c.status()
                    .await
                    .is_ok_and(|s| s.peers.iter().filter(|p| p.ready).count() == want)
            }
        })
        .await;
    }
    nodes
}

/// The value of one sample line of a node's Prometheus text, such as
/// `rantai_peer_bytes_total{direction="in",kind="cmpct_block"}`.
async fn sample(node: &NodeHandle, name: &str) -> u64 {
    let text = node.client().metrics_text().await.expect("metrics");
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no sample {name} in /metrics"))
}

async fn bytes(node: &NodeHandle, dir: &str, kind: &str) -> u64 {
    sample(
        node,
        &format!("rantai_peer_bytes_total{{direction=\"{dir}\",kind=\"{kind}\"}}"),
    )
    .await
}

async fn compact(node: &NodeHandle, outcome: &str) -> u64 {
    sample(
        node,
        &format!("rantai_compact_blocks_total{{outcome=\"{outcome}\"}}"),
    )
    .await
}

/// Submits the block's items at node 0, waits until `holders` nodes' pools hold them all,
/// then lets node 0 mine one block with every item, and waits until all nodes have it.
async fn mine_one_big_block(nodes: &[NodeHandle], holders: usize) {
    let miner = nodes[0].client();
    for i in 0..ITEMS {
        let text = format!("{i:04}{}", "x".repeat(ITEM_BYTES - 4));
        miner
            .submit(text)
            .await
            .expect("running")
            .expect("accepted");
    }
    for node in &nodes[..holders] {
        let c = node.client().clone();
        wait_async(WAIT, "items to reach every pool", || {
            let c = c.clone();
            async move { c.status().await.is_ok_and(|s| s.pending_items == ITEMS) }
        })
        .await;
    }
    for node in &nodes[holders..] {
        let s = node.client().status().await.expect("status");
        assert_eq!(
            s.pending_items, 0,
            "without item gossip no other pool holds them"
        );
    }
    let was = miner
        .set_mine_policy(MinePolicy::OwnItems)
        .await
        .expect("running");
    assert_eq!(was, MinePolicy::Off);
    for node in nodes {
        let c = node.client().clone();
        wait_async(WAIT, "the block to reach every node", || {
            let c = c.clone();
            async move {
                c.status()
                    .await
                    .is_ok_and(|s| s.height == 1 && s.pending_items == 0)
            }
        })
        .await;
    }
    let chain = miner.best_chain().await.expect("chain");
    assert_eq!(
        chain[1].items().len(),
        ITEMS,
        "one block carries every item"
    );
    assert!(chain[1].encode().len() > 1_000_000);
    for node in &nodes[1..] {
        let other = node.client().best_chain().await.expect("chain");
        assert_eq!(other[1].hash(), chain[1].hash());
    }
}

/// `n` nodes relay a 1 MB block once, as a compact block, never whole and with no round
/// trip: with item gossip (`pools_hold_items`) as short ids (250 of 6 bytes, a header and
/// framing: under 4 kB), without it with every item prefilled (about the block's size).
async fn story(n: usize, pools_hold_items: bool) {
    let nodes = line(n, pools_hold_items).await;
    mine_one_big_block(&nodes, if pools_hold_items { n } else { 1 }).await;
    let (what, range) = if pools_hold_items {
        ("full pools", 1_500..4_000)
    } else {
        ("empty pools", 1_000_000..1_100_000)
    };
    for (i, node) in nodes.iter().enumerate() {
        for (dir, kind) in [("in", "block"), ("out", "block"), ("in", "block_items")] {
            assert_eq!(bytes(node, dir, kind).await, 0, "node {i}: {kind} {dir}");
        }
        if i > 0 {
            assert_eq!(
                compact(node, "rebuilt").await,
                1,
                "node {i} rebuilt the block"
            );
            assert_eq!(compact(node, "round_trip").await, 0);
            assert_eq!(compact(node, "whole_block").await, 0);
            let got = bytes(node, "in", "cmpct_block").await;
            eprintln!("{n} nodes, {what}: node {i} took the block in {got} bytes");
            assert!(
                range.contains(&got),
                "node {i}: compact block took {got} bytes"
            );
        }
    }
    for node in nodes {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_relay_a_1mb_block_as_short_ids_when_pools_hold_its_items() {
    story(2, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_relay_a_1mb_block_as_short_ids_when_pools_hold_its_items() {
    story(3, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_relay_a_1mb_block_once_when_pools_are_empty() {
    story(2, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_relay_a_1mb_block_once_when_pools_are_empty() {
    story(3, false).await;
}
