//! Catch-up with the remote end played by the test: batch after batch until the claimed tip,
//! a batch of blocks we already have ends it (until that peer's tip changes), and a batch
//! longer than the fetch queue is cut at `max_fetch_queue`.

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
    net.partition(0, 1);
    net.connect(0, 1);
    let conn = net.conn_of(0, 1).expect("node 0's link");
    let hello = Message::Hello(Box::new(Hello {
        version: PROTOCOL_VERSION,
        genesis: net.peers[0].chain().genesis().hash(),
        node_id: 0x5eed,
        tip: net.peers[1].tip(),
        listen: None,
    }));
    net.inject(0, conn, hello);
    assert_eq!(net.ready(0), 1);
    (net, conn, blocks)
}

/// Node 0's catch-up messages from outbox index `from` on, block hashes as heights in `blocks`.
fn asked(net: &Net, from: usize, blocks: &[Block]) -> Vec<String> {
    let height = |h: &BlockHash| {
        blocks
            .iter()
            .position(|b| b.hash() == *h)
            .map_or(0, |i| i + 1)
    };
    net.outbox[from..]
        .iter()
        .filter(|(_, node, _, _)| *node == 0)
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
