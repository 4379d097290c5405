//! The driver's answers to [`crate::api::Request`]s that only read: status, block pages, single
//! blocks, gauges. Each is built from the peer and the connection registry without changing
//! either; bodies the chain evicted stay evicted here and are read by the client, off the
//! driver task.

use crate::api::{PeerStatus, Status, MAX_PAGE_BYTES};
use crate::conns::Conns;
use crate::metrics::Gauges;
use rantai_core::{BlockHash, Chain, ChainBlock, Peer};
use std::time::Duration;

/// What the status shows of the node itself, beyond the peer and its connections.
pub(crate) struct Local<'a> {
    pub(crate) listen: Option<&'a String>,
    pub(crate) persistent: bool,
    /// Blocks durably written (with a data directory).
    pub(crate) stored_blocks: Option<u64>,
    pub(crate) uptime: Duration,
}

/// `GET /status`.
pub(crate) fn status(peer: &Peer, conns: &Conns, local: Local<'_>) -> Status {
    let chain = peer.chain();
    let peers = peer
        .peers()
        .into_iter()
        .map(|p| PeerStatus {
            best_height: {
                let seen = conns.get(p.peer).map_or(0, |c| c.best_seen);
                p.tip.map(|t| t.height.max(seen))
            },
            id: p.peer.0,
            addr: p.addr,
            direction: p.direction,
            ready: p.ready,
            node_id: p.node_id.map(|n| format!("{n:016x}")),
            listen: p.listen,
            best_hash: p.tip.map(|t| t.hash.to_string()),
        })
        .collect();
    Status {
        node_id: format!("{:016x}", peer.node_id()),
        network: peer.config().params.network.clone(),
        listen: local.listen.cloned(),
        height: chain.height(),
        tip: chain.tip().hash().to_string(),
        persistent: local.persistent,
        stored_blocks: local.stored_blocks,
        pending_items: peer.pending_len(),
        uptime_secs: local.uptime.as_secs(),
        peers,
        config: peer.config().summary(),
    }
}

/// Best-chain blocks from height `from`: at most `limit`, and at most [`MAX_PAGE_BYTES`] of
/// block data (at least one block); with the tip height.
pub(crate) fn page(chain: &Chain, from: u64, limit: usize) -> (u64, Vec<ChainBlock>) {
    let mut bytes = 0;
    let mut blocks = Vec::new();
    for b in (from..chain.height().saturating_add(1))
        .take(limit)
        .filter_map(|h| chain.at_height(h))
    {
        bytes += b.size();
        if bytes > MAX_PAGE_BYTES && !blocks.is_empty() {
            break;
        }
        blocks.push(b.clone());
    }
    (chain.height(), blocks)
}

/// A block of the tree and whether it is on the best chain.
pub(crate) fn block(chain: &Chain, hash: &BlockHash) -> Option<(ChainBlock, bool)> {
    chain
        .get(hash)
        .map(|b| (b.clone(), chain.in_best_chain(hash)))
}

/// The gauges of `GET /metrics`.
pub(crate) fn gauges(peer: &Peer, conns: &Conns) -> Gauges {
    let chain = peer.chain();
    Gauges {
        height: chain.height(),
        peers: conns.len(),
        peers_ready: conns.ready_count(),
        pending_items: peer.pending_len(),
        blocks_in_tree: chain.tree_len(),
        orphans: chain.orphan_count(),
    }
}
