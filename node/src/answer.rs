//! The driver's answers to [`crate::api::Request`]s that only read: status, block pages, single
//! blocks, gauges. Each is built from the peer and the connection registry without changing
//! either; bodies the chain evicted stay evicted here and are read by the client, off the
//! driver task.

use crate::api::{ItemStatus, PeerStatus, Status, TipView, Tips, MAX_PAGE_BYTES, MAX_TIPS};
use crate::conns::Conns;
use crate::metrics::Gauges;
use rantai_core::{BlockHash, Chain, ChainBlock, ItemId, Millis, Peer};
use std::time::Duration;

/// What the status shows of the node itself, beyond the peer and its connections.
pub(crate) struct Local<'a> {
    pub(crate) listen: Option<&'a String>,
    pub(crate) persistent: bool,
    /// Blocks durably written (with a data directory).
    pub(crate) stored_blocks: Option<u64>,
    pub(crate) uptime: Duration,
    /// Protocol time now (on the Unix scale, like a connection's start).
    pub(crate) now: Millis,
}

/// `GET /status`. `catching_up`: a ready peer claims a tip with more work than ours.
pub(crate) fn status(peer: &Peer, conns: &Conns, local: Local<'_>) -> Status {
    let chain = peer.chain();
    let our_work = chain.tip_work();
    let summaries = peer.peers();
    let catching_up = summaries
        .iter()
        .any(|p| p.ready && p.tip.is_some_and(|t| t.work > our_work));
    let peers = summaries
        .into_iter()
        .map(|p| {
            let conn = conns.get(p.peer);
            let [bytes_in, bytes_out, messages_in, messages_out] =
                conn.map_or([0; 4], |c| c.traffic.read());
            PeerStatus {
                best_height: {
                    let seen = conn.map_or(0, |c| c.best_seen);
                    p.tip.map(|t| t.height.max(seen))
                },
                id: p.peer.0,
                addr: p.addr,
                direction: p.direction,
                ready: p.ready,
                node_id: p.node_id.map(|n| format!("{n:016x}")),
                listen: p.listen,
                best_hash: p.tip.map(|t| t.hash.to_string()),
                best_work: p.tip.map(|t| t.work),
                connected_at_unix_ms: p.since.0,
                connected_secs: local.now.since(p.since).0 / 1000,
                bytes_in,
                bytes_out,
                messages_in,
                messages_out,
                ping_rtt_ms: p.ping_rtt.map(|t| t.0),
                smoothed_rtt_ms: p.smoothed_rtt.map(|t| t.0),
            }
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
        work: our_work,
        catching_up,
        peers,
        config: peer.config().summary(),
    }
}

/// `GET /tips`: at most [`MAX_TIPS`], the best tip first.
pub(crate) fn tips(chain: &Chain) -> Tips {
    let all = chain.tips();
    Tips {
        count: all.len(),
        tips: all
            .into_iter()
            .take(MAX_TIPS)
            .map(|t| TipView {
                hash: t.hash.to_string(),
                height: t.height,
                work: t.work,
                branch_len: t.branch_len,
                status: t.status,
            })
            .collect(),
    }
}

/// `GET /items/{id}`: pending, in a best-chain block, or unknown.
pub(crate) fn item(peer: &Peer, id: &ItemId) -> Option<ItemStatus> {
    let chain = peer.chain();
    if let Some(height) = chain.item_height(id) {
        let block = chain.at_height(height)?;
        return Some(ItemStatus::InBlock {
            id: id.to_string(),
            block: block.hash().to_string(),
            height,
            confirmations: chain.height() - height + 1,
        });
    }
    peer.pending_item(id)
        .map(|_| ItemStatus::Pending { id: id.to_string() })
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
