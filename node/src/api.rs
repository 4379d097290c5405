//! Requests to the driver task and the views it answers with. HTTP handlers, stdin and tests
//! all go through [`NodeClient`]: a bounded channel plus a oneshot reply, never a lock.

use crate::metrics::{Gauges, Metrics};
use crate::store::StoreLoader;
use rantai_core::{
    Block, BlockHash, ChainBlock, Direction, ItemId, MinePolicy, SubmitError, TipStatus, Work,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Most blocks one `GET /blocks` (or [`NodeClient::blocks`]) answers with.
pub const MAX_BLOCKS_PER_PAGE: usize = 1000;
/// Most block bytes (canonical size) in one page, so a page of large blocks stays small.
pub const MAX_PAGE_BYTES: usize = 8 << 20;
/// Fewest hex digits `GET /blocks/{prefix}` accepts: the logs print 8.
pub const MIN_HASH_PREFIX: usize = 8;
/// Most candidates an ambiguous hash prefix is answered with.
pub const MAX_PREFIX_MATCHES: usize = 8;
/// Most tips one `GET /tips` lists (side branches are cheap to make at the minimum difficulty).
pub const MAX_TIPS: usize = 1000;

/// u64 fields that may exceed 2^53 (nonces) travel as decimal strings, like `work`, so that
/// JavaScript clients, whose numbers are doubles, read them exactly.
pub mod u64_string {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `v` as a decimal string.
    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    /// Reads a decimal string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// [`u64_string`] for an optional value (`null` stays `null`).
pub mod opt_u64_string {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `Some(v)` as a decimal string, `None` as `null`.
    pub fn serialize<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.collect_str(v),
            None => s.serialize_none(),
        }
    }

    /// Reads a decimal string or `null`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        Option::<std::borrow::Cow<'de, str>>::deserialize(d)?
            .map(|s| s.parse().map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// A question for the driver.
#[derive(Debug)]
pub enum Request {
    Submit {
        text: String,
        reply: oneshot::Sender<Result<ItemId, SubmitError>>,
    },
    Status {
        reply: oneshot::Sender<Status>,
    },
    /// Best-chain blocks from `from`: at most `limit`, and at most [`MAX_PAGE_BYTES`] of block
    /// data (always at least one block). Answered with shared blocks and the tip height; the
    /// JSON views are built by the caller, off the driver task.
    Blocks {
        from: u64,
        limit: usize,
        reply: oneshot::Sender<(u64, Vec<ChainBlock>)>,
    },
    /// A block of the tree and whether it is on the best chain.
    Block {
        hash: BlockHash,
        reply: oneshot::Sender<Option<(ChainBlock, bool)>>,
    },
    /// Valid blocks of the tree whose hash starts with `prefix` (hex), at most `limit`.
    BlocksWithPrefix {
        prefix: String,
        limit: usize,
        reply: oneshot::Sender<Vec<BlockHash>>,
    },
    /// The tips of the block tree.
    Tips {
        reply: oneshot::Sender<Tips>,
    },
    /// Where an item is: pending or in a best-chain block.
    Item {
        id: ItemId,
        reply: oneshot::Sender<Option<ItemStatus>>,
    },
    Gauges {
        reply: oneshot::Sender<Gauges>,
    },
    BestChain {
        reply: oneshot::Sender<Vec<ChainBlock>>,
    },
    /// The accepted-block log, oldest first.
    Accepted {
        reply: oneshot::Sender<Vec<Accepted>>,
    },
    /// Switches the mining policy; answered with the previous one.
    SetMining {
        policy: MinePolicy,
        reply: oneshot::Sender<MinePolicy>,
    },
}

/// Most entries of the accepted-block log; older ones are dropped first.
pub const MAX_ACCEPTED_LOG: usize = 10_000;

/// One entry of `GET /accepted`: a block that joined this node's block tree, and when.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Accepted {
    pub hash: String,
    pub height: u64,
    /// Wall-clock microseconds since the Unix epoch at acceptance.
    pub at_unix_us: u64,
    /// Mined by this node's own miner.
    pub mined_here: bool,
}

/// Wall-clock microseconds since the Unix epoch (0 for a clock set before 1970).
pub(crate) fn unix_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The node is shutting down or gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the node has stopped")]
pub struct Stopped;

/// `GET /status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    /// Random per-process id (16 hex digits), as sent in the handshake.
    pub node_id: String,
    pub network: String,
    /// Address this node listens on (and advertises).
    pub listen: Option<String>,
    pub height: u64,
    pub tip: String,
    /// Whether blocks are kept in a data directory.
    pub persistent: bool,
    /// Blocks durably written (with a data directory).
    pub stored_blocks: Option<u64>,
    pub pending_items: usize,
    pub uptime_secs: u64,
    /// Cumulative work of the best chain (decimal string: it outgrows JSON numbers).
    pub work: Work,
    /// Whether a ready peer claims a tip with more work than ours (we are behind it and
    /// fetching, or about to).
    pub catching_up: bool,
    pub peers: Vec<PeerStatus>,
    /// Every setting of the peer protocol this node runs, with the same keys as a simulated
    /// run's `scenario.peer_config`.
    pub config: rantai_core::ConfigSummary,
}

/// One connection in [`Status`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerStatus {
    /// Connection id (local to this process).
    pub id: u64,
    /// Remote socket address (or the dialled address for outbound connections).
    pub addr: Option<String>,
    pub direction: Direction,
    /// Handshake complete.
    pub ready: bool,
    pub node_id: Option<String>,
    /// The address the remote says it listens on.
    pub listen: Option<String>,
    /// The higher of the tip height the remote last claimed and the blocks it sent us. A
    /// decimal string: the claim is the remote's to make, up to 2^64 - 1.
    #[serde(with = "opt_u64_string")]
    pub best_height: Option<u64>,
    /// The tip hash the remote last claimed (handshake or ping).
    pub best_hash: Option<String>,
    /// Cumulative work of the tip the remote last claimed (decimal string).
    pub best_work: Option<Work>,
    /// Wall-clock milliseconds since the Unix epoch when the connection opened.
    pub connected_at_unix_ms: u64,
    /// Seconds since the connection opened.
    pub connected_secs: u64,
    /// Bytes read from this connection's socket.
    pub bytes_in: u64,
    /// Bytes written to this connection's socket.
    pub bytes_out: u64,
    /// Messages decoded from this connection.
    pub messages_in: u64,
    /// Messages written to this connection.
    pub messages_out: u64,
    /// Round trip of the last answered keepalive ping, in milliseconds (`null` before one).
    pub ping_rtt_ms: Option<u64>,
    /// Smoothed keepalive round trip in milliseconds (what the core's loss probes wait for).
    pub smoothed_rtt_ms: Option<u64>,
}

/// `GET /tips`: the ends of the block tree, like bitcoind's `getchaintips`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tips {
    /// Tips in the tree (the list holds at most [`MAX_TIPS`] of them).
    pub count: usize,
    /// The best tip first, then the others by height, highest first.
    pub tips: Vec<TipView>,
}

/// One tip of the block tree.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TipView {
    /// The tip block's hash (64 hex digits).
    pub hash: String,
    /// The tip block's height.
    pub height: u64,
    /// Cumulative work up to this block (decimal string).
    pub work: Work,
    /// Blocks from the fork with the best chain up to this tip (0 for the best tip).
    pub branch_len: u64,
    /// `active`, `valid-fork` or `invalid`.
    pub status: TipStatus,
}

/// `GET /items/{id}`: where an item is.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ItemStatus {
    /// Waiting in the pending pool to be mined.
    Pending {
        /// The item's id (64 hex digits).
        id: String,
    },
    /// In a block of the best chain.
    InBlock {
        /// The item's id (64 hex digits).
        id: String,
        /// Hash of the best-chain block holding it.
        block: String,
        /// That block's height.
        height: u64,
        /// Best-chain blocks from that one to the tip, both counted (1 in the tip).
        confirmations: u64,
    },
}

/// `GET /blocks`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BlockPage {
    /// Height of the best chain when answered.
    pub height: u64,
    pub blocks: Vec<BlockView>,
}

/// A block as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BlockView {
    pub height: u64,
    pub hash: String,
    pub prev: String,
    pub timestamp_ms: u64,
    pub difficulty: u32,
    /// Decimal string ([`u64_string`]).
    #[serde(with = "u64_string")]
    pub nonce: u64,
    pub data_hash: String,
    pub in_best_chain: bool,
    pub items: Vec<ItemView>,
}

/// One data item of a block.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ItemView {
    pub id: String,
    /// Decimal string ([`u64_string`]).
    #[serde(with = "u64_string")]
    pub nonce: u64,
    pub text: String,
}

impl BlockView {
    /// The API view of `b`; `in_best_chain` as the caller's chain says.
    pub fn new(b: &Block, in_best_chain: bool) -> BlockView {
        let h = b.header();
        BlockView {
            height: h.height,
            hash: b.hash().to_string(),
            prev: h.prev.to_string(),
            timestamp_ms: h.timestamp_ms,
            difficulty: h.difficulty,
            nonce: h.nonce,
            data_hash: h.data_hash.to_string(),
            in_best_chain,
            items: b
                .items()
                .iter()
                .map(|it| ItemView {
                    id: it.id().to_string(),
                    nonce: it.nonce,
                    text: it.text.clone(),
                })
                .collect(),
        }
    }
}

/// Cheap, cloneable access to a running node.
#[derive(Clone, Debug)]
pub struct NodeClient {
    pub(crate) tx: mpsc::Sender<Request>,
    pub(crate) metrics: Arc<Metrics>,
    /// Reads bodies the chain evicted (only with a data directory).
    pub(crate) store: Option<StoreLoader>,
}

/// The answer to a [`NodeClient::submit_queued`]; an error if the node stopped first.
pub type Submitted = oneshot::Receiver<Result<ItemId, SubmitError>>;

impl NodeClient {
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Request) -> Result<T, Stopped> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(make(reply)).await.map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }

    /// Whole blocks for `blocks`, in order: evicted bodies are read from the store (never on
    /// the driver task). A body the store lacks (a failed write, logged then) is left out.
    async fn bodies(&self, blocks: Vec<ChainBlock>) -> Result<Vec<Arc<Block>>, Stopped> {
        let evicted: Vec<BlockHash> = blocks
            .iter()
            .filter(|b| b.is_evicted())
            .map(|b| b.hash())
            .collect();
        let mut loaded = std::collections::BTreeMap::new();
        if !evicted.is_empty() {
            let store = self.store.as_ref().ok_or(Stopped)?;
            let found = store.load(evicted).await.map_err(|_| Stopped)?;
            for h in &found.missing {
                tracing::warn!(
                    "block {} is evicted from memory and not in the store",
                    h.short()
                );
            }
            loaded.extend(found.blocks.into_iter().map(|b| (b.hash(), b)));
        }
        Ok(blocks
            .into_iter()
            .filter_map(|b| match b {
                ChainBlock::Full(b) => Some(b),
                evicted => loaded.remove(&evicted.hash()),
            })
            .collect())
    }

    /// Submits a data item (a typed line); answers with its id once queued for mining (with a
    /// data directory, once stored).
    pub async fn submit(&self, text: String) -> Result<Result<ItemId, SubmitError>, Stopped> {
        self.ask(|reply| Request::Submit { text, reply }).await
    }

    /// [`NodeClient::submit`] without waiting for the answer: returns once the request is
    /// queued, with where the answer will come. Lines submitted this way one after another
    /// share the store's commits instead of waiting for one each.
    pub async fn submit_queued(&self, text: String) -> Result<Submitted, Stopped> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request::Submit { text, reply })
            .await
            .map_err(|_| Stopped)?;
        Ok(rx)
    }

    /// What `GET /status` shows.
    pub async fn status(&self) -> Result<Status, Stopped> {
        self.ask(|reply| Request::Status { reply }).await
    }

    /// Best-chain blocks from height `from`, at most `limit` (capped at [`MAX_BLOCKS_PER_PAGE`]).
    pub async fn blocks(&self, from: u64, limit: usize) -> Result<BlockPage, Stopped> {
        let limit = limit.min(MAX_BLOCKS_PER_PAGE);
        let (height, blocks) = self
            .ask(|reply| Request::Blocks { from, limit, reply })
            .await?;
        let blocks = self.bodies(blocks).await?;
        Ok(BlockPage {
            height,
            blocks: blocks.iter().map(|b| BlockView::new(b, true)).collect(),
        })
    }

    /// One block of the tree (best chain or side branch), if known.
    pub async fn block(&self, hash: BlockHash) -> Result<Option<BlockView>, Stopped> {
        let Some((b, best)) = self.ask(|reply| Request::Block { hash, reply }).await? else {
            return Ok(None);
        };
        let found = self.bodies(vec![b]).await?;
        Ok(found.first().map(|b| BlockView::new(b, best)))
    }

    /// Hashes of valid blocks starting with `prefix` (hex digits), at most `limit`.
    pub async fn blocks_with_prefix(
        &self,
        prefix: String,
        limit: usize,
    ) -> Result<Vec<BlockHash>, Stopped> {
        self.ask(|reply| Request::BlocksWithPrefix {
            prefix,
            limit,
            reply,
        })
        .await
    }

    /// The tips of the block tree (best tip, side branches, invalid branches).
    pub async fn tips(&self) -> Result<Tips, Stopped> {
        self.ask(|reply| Request::Tips { reply }).await
    }

    /// Where item `id` is: pending, in a best-chain block, or unknown (`None`).
    pub async fn item(&self, id: ItemId) -> Result<Option<ItemStatus>, Stopped> {
        self.ask(|reply| Request::Item { id, reply }).await
    }

    /// Prometheus text of all counters and gauges.
    pub async fn metrics_text(&self) -> Result<String, Stopped> {
        let g = self.ask(|reply| Request::Gauges { reply }).await?;
        Ok(self.metrics.render(&g))
    }

    /// The whole best chain, genesis first (shared blocks; for tests and tools).
    pub async fn best_chain(&self) -> Result<Vec<Arc<Block>>, Stopped> {
        let chain = self.ask(|reply| Request::BestChain { reply }).await?;
        self.bodies(chain).await
    }

    /// Switches when this node mines ([`MinePolicy`]) from now on and returns the previous
    /// policy. With `Off`, then `OwnItems` once items are submitted, one block carries them
    /// all (up to the block limit): how a test or a testbed mines a block of a chosen size
    /// at a chosen moment.
    pub async fn set_mine_policy(&self, policy: MinePolicy) -> Result<MinePolicy, Stopped> {
        self.ask(|reply| Request::SetMining { policy, reply }).await
    }

    /// The last [`MAX_ACCEPTED_LOG`] blocks accepted, oldest first, each with
    /// the wall-clock time of its acceptance: processes on one host share that clock, so a
    /// testbed compares these times across nodes.
    pub async fn accepted(&self) -> Result<Vec<Accepted>, Stopped> {
        self.ask(|reply| Request::Accepted { reply }).await
    }

    /// Counters, readable without asking the driver.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }
}
