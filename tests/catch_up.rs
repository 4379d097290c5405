//! Catch-up with the remote end played by the test: batch after batch until the claimed tip,
//! a batch of blocks we already have ends it (until that peer's tip changes), a batch longer
//! than the fetch queue is cut at `max_fetch_queue`, and losing a neighbour lets every other
//! one be asked again.

mod harness;

use harness::{config, Net};
use rantai_core::message::{Hello, PROTOCOL_VERSION};
use rantai_core::{Block, BlockHash, Config, ConnId, Message, Tip};
use std::sync::Arc;

/// Node 1 mines `n` blocks alone; then node 0 dials it, but node 1 never speaks (the test
/// speaks for it, claiming its tip). Returns node 1's blocks.
fn behind(n: usize, cfg: Config) -> (Net, ConnId, Vec<Block>) {
    let mut net = Net::new(2, |_| cfg.clone());
    net.record = true;
    let blocks: Vec<Block> = (0..n).map(|_| net.mine(1)).collect();
    let conn = dial_mute(&mut net, 1);
    (net, conn, blocks)
}

/// Node 0 dials `node`, which never speaks; the test says its hello, claiming node 1's tip.
fn dial_mute(net: &mut Net, node: usize) -> ConnId {
    net.partition(0, node);
    net.connect(0, node);
    let conn = net.conn_of(0, node).expect("node 0's link");
    let hello = Message::Hello(Box::new(Hello {
        version: PROTOCOL_VERSION,
        genesis: net.peers[0].chain().genesis().hash(),
        node_id: 0x5eed + node as u64,
        tip: net.peers[1].tip(),
        listen: None,
    }));
    let ready = net.ready(0);
    net.inject(0, conn, hello);
    assert_eq!(net.ready(0), ready + 1);
    conn
}

/// Node 0's catch-up messages from outbox index `from` on, block hashes as heights in `blocks`.
fn asked(net: &Net, from: usize, blocks: &[Block]) -> Vec<String> {
    asked_on(net, None, from, blocks)
}

/// The same, on connection `conn` only if given.
fn asked_on(net: &Net, conn: Option<ConnId>, from: usize, blocks: &[Block]) -> Vec<String> {
    let height = |h: &BlockHash| {
        blocks
            .iter()
            .position(|b| b.hash() == *h)
            .map_or(0, |i| i + 1)
    };
    net.outbox[from..]
        .iter()
        .filter(|(_, node, to, _)| *node == 0 && conn.is_none_or(|c| c == *to))
        .filter_map(|(_, _, _, m)| match m {
            Message::GetChain { .. } => Some("get_chain".to_string()),
            Message::GetBlocks { hashes } => Some(format!(
                "get_blocks {:?}",
                hashes.iter().map(height).collect::<Vec<_>>()
            )),
            _ => None,
        })
        .collect()
}

fn hashes(blocks: &[Block]) -> Vec<BlockHash> {
    blocks.iter().map(Block::hash).collect()
}

#[test]
fn catch_up_continues_batch_after_batch_and_a_batch_of_known_blocks_ends_it() {
    let (mut net, conn, blocks) = behind(4, config());
    let tip: Tip = net.peers[1].tip();
    assert_eq!(asked(&net, 0, &blocks), vec!["get_chain"]);
    // A first batch of two: fetched, then catch-up goes on toward the claimed tip.
    let from = net.outbox.len();
    let batch = Message::ChainHashes {
        hashes: hashes(&blocks[..2]),
        tip,
    };
    net.inject(0, conn, batch);
    for b in &blocks[..2] {
        let block = Arc::new(b.clone());
        net.inject(0, conn, Message::Block { block });
    }
    assert_eq!(net.tip_height(0), 2);
    assert_eq!(
        asked(&net, from, &blocks),
        vec!["get_blocks [1, 2]", "get_chain"]
    );
    // A batch naming only a block node 0 has: nothing new from this peer, so catch-up with it
    // ends until its tip changes (asking again would return the same batch in a loop).
    let from = net.outbox.len();
    let stale = Message::ChainHashes {
        hashes: hashes(&blocks[1..2]),
        tip,
    };
    net.inject(0, conn, stale);
    assert_eq!(asked(&net, from, &blocks), Vec::<String>::new());
    net.run_for(500);
    assert_eq!(asked(&net, from, &blocks), Vec::<String>::new());
}

#[test]
fn a_batch_longer_than_the_fetch_queue_is_cut_at_max_fetch_queue() {
    let mut cfg = config();
    cfg.max_fetch_queue = 2;
    let (mut net, conn, blocks) = behind(3, cfg);
    let tip = net.peers[1].tip();
    let from = net.outbox.len();
    let batch = Message::ChainHashes {
        hashes: hashes(&blocks),
        tip,
    };
    net.inject(0, conn, batch);
    assert_eq!(asked(&net, from, &blocks), vec!["get_blocks [1, 2]"]);
}

#[test]
fn a_neighbour_whose_batch_was_all_requested_elsewhere_is_asked_again_when_that_one_goes() {
    // Nodes 1 and 2 both claim node 1's tip (three blocks on); both answer catch-up with the
    // same first batch of two.
    let mut net = Net::new(3, |_| config());
    net.record = true;
    let blocks: Vec<Block> = (0..3).map(|_| net.mine(1)).collect();
    let tip = net.peers[1].tip();
    let a = dial_mute(&mut net, 1);
    let b = dial_mute(&mut net, 2);
    let batch = || Message::ChainHashes {
        hashes: hashes(&blocks[..2]),
        tip,
    };
    let from = net.outbox.len();
    net.inject(0, a, batch());
    net.inject(0, b, batch());
    assert_eq!(
        asked_on(&net, Some(a), from, &blocks),
        vec!["get_blocks [1, 2]"]
    );
    // Everything node 2 offered is already requested from node 1: node 2 is not asked again.
    assert_eq!(asked_on(&net, Some(b), from, &blocks), Vec::<String>::new());
    // Node 1 goes before delivering: catch-up with node 2 starts over.
    let from = net.outbox.len();
    net.disconnect(0, 1);
    assert_eq!(asked_on(&net, Some(b), from, &blocks), vec!["get_chain"]);
}
