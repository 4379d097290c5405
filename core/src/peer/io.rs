//! What crosses the boundary between a [`Peer`](super::Peer) and its driver: [`Input`]s in,
//! [`Output`]s out (with [`Event`]s for logs and metrics), and the typed reasons for closing a
//! connection or refusing a local submission.

use super::config::MAX_MISSED_PONGS;
use crate::block::{Block, Template};
use crate::chain::BlockError;
use crate::message::{DecodeError, Message, Tip};
use crate::types::{BlockHash, ConnId, Millis};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Which side opened a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// The remote dialled us.
    Inbound,
    /// We dialled the remote.
    Outbound,
}

/// Something the driver tells the peer.
#[derive(Debug)]
pub enum Input {
    /// A connection is open; the peer sends its `Hello`. For an outbound connection opened for
    /// an [`Output::Dial`], `addr` must be the dialled address (it drives the dial schedule);
    /// otherwise it is for logs and status only.
    Connected {
        /// The driver's id for the connection.
        peer: ConnId,
        /// Who dialled.
        direction: Direction,
        /// The remote's address, if the driver knows it.
        addr: Option<String>,
    },
    /// An [`Output::Dial`] did not open a connection.
    DialFailed {
        /// The address that was dialled.
        addr: String,
    },
    /// The connection is gone (closed by the remote, the driver, or after our own `Disconnect`).
    Disconnected {
        /// The connection that closed.
        peer: ConnId,
    },
    /// A decoded message from a connection.
    Message {
        /// The connection it arrived on.
        peer: ConnId,
        /// The message.
        msg: Message,
    },
    /// Bytes from `peer` that are not a message.
    Malformed {
        /// The connection they arrived on.
        peer: ConnId,
        /// What was wrong with them.
        error: DecodeError,
    },
    /// A block the driver mined from a [`Template`].
    Mined(Block),
    /// The answer to an [`Output::LoadBlocks`]: the blocks found in the store, and the hashes
    /// that were not (a block that does not match a hash asked for counts as not found).
    BlocksLoaded {
        /// The purpose the request carried.
        purpose: LoadPurpose,
        /// Blocks read from the store.
        blocks: Vec<Arc<Block>>,
        /// Hashes the store did not have.
        missing: Vec<BlockHash>,
    },
    /// Simulation only: the driver's model of which transactions reached which mempool says
    /// this node lacks part of `block`'s payload (the bytes a simulated block stands for but
    /// does not carry). Rebuilding that block from a compact block then takes one
    /// `get_block_items` round trip. A real node never receives this.
    PayloadMissing {
        /// The block whose payload is partly missing here.
        block: BlockHash,
    },
}

/// Why the peer wants evicted bodies back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadPurpose {
    /// To answer this connection's `get_blocks`.
    Serve(ConnId),
    /// Their items may need to go back to the pending pool (they left the best chain, or sit
    /// on a side branch at start).
    Requeue,
}

/// Something the peer asks the driver to do.
#[derive(Debug, Clone)]
pub enum Output {
    /// Write a message to a connection.
    Send {
        /// The connection.
        to: ConnId,
        /// The message.
        msg: Message,
    },
    /// Close the connection; the peer has already forgotten it.
    Disconnect {
        /// The connection to close.
        peer: ConnId,
        /// Why, for logs and metrics.
        reason: DisconnectReason,
    },
    /// Start mining this template, replacing any current job; `None` stops mining.
    Mine(Option<Template>),
    /// Open a connection to `addr`; answer with [`Input::Connected`] (outbound, carrying
    /// `addr`) or [`Input::DialFailed`].
    Dial {
        /// The address to dial, as configured ([`Peer::add_peer`](super::Peer::add_peer)) or
        /// learned from a neighbour.
        addr: String,
    },
    /// Read these blocks (evicted from memory, see
    /// [`Config::body_cache_blocks`](super::Config::body_cache_blocks)) from the store and
    /// answer with [`Input::BlocksLoaded`] carrying `purpose`. Only a peer with a body cache
    /// asks; at most [`MAX_GET_BLOCKS`](super::MAX_GET_BLOCKS) hashes for `Serve`.
    LoadBlocks {
        /// The blocks to read.
        hashes: Vec<BlockHash>,
        /// To be handed back with the answer.
        purpose: LoadPurpose,
    },
    /// Something happened that the driver may log, store or count.
    Event(Event),
}

/// Things that happened, for logs, storage and metrics.
#[derive(Debug, Clone)]
pub enum Event {
    /// Handshake complete.
    PeerReady {
        /// The connection.
        peer: ConnId,
        /// The remote's random node id.
        node_id: u64,
        /// The remote's best tip as of its `Hello`.
        tip: Tip,
        /// The address the remote can be dialled at, if it gave one.
        listen: Option<String>,
    },
    /// A valid block joined the tree (best chain or side branch). `from` is `None` for our own.
    BlockAccepted {
        /// The block.
        block: Arc<Block>,
        /// The connection that delivered it.
        from: Option<ConnId>,
    },
    /// A block failed validation.
    BlockRejected {
        /// The block's hash.
        hash: BlockHash,
        /// The connection that delivered it (`None` for our own or for its descendants).
        from: Option<ConnId>,
        /// The rule it broke.
        reason: BlockError,
    },
    /// The best tip moved.
    TipChanged {
        /// The new tip's hash.
        hash: BlockHash,
        /// The new tip's height.
        height: u64,
    },
    /// The best chain switched branches: `left` lost its place (old tip first), `joined` won.
    Reorg {
        /// Blocks that left the best chain, old tip first.
        left: Vec<BlockHash>,
        /// Blocks that joined it.
        joined: Vec<BlockHash>,
    },
    /// Items from abandoned blocks that went back to the pending pool.
    ItemsRequeued {
        /// How many items.
        count: usize,
    },
    /// A compact block ended: rebuilt at once, after one `get_block_items` round trip, or
    /// replaced by a request for the whole block.
    CompactBlock {
        /// The block.
        hash: BlockHash,
        /// The connection it came from.
        from: ConnId,
        /// How it ended.
        outcome: CompactOutcome,
    },
    /// A new dialable address from a peer.
    AddrLearned {
        /// The address.
        addr: String,
    },
}

/// How a compact block was turned into a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompactOutcome {
    /// Every item was in the pending pool (or prefilled).
    Rebuilt,
    /// Missing items came with one `get_block_items` round trip.
    RoundTrip,
    /// The whole block was asked for instead: equal short ids, a collision, an answer that
    /// did not fit, or too many rebuilds at once.
    WholeBlock,
}

/// Why the peer closed a connection. Variants for which [`is_misbehaviour`] holds are the
/// remote's fault.
///
/// [`is_misbehaviour`]: DisconnectReason::is_misbehaviour
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DisconnectReason {
    /// The remote's genesis differs from ours.
    #[error("peer is on another network (genesis {theirs}, ours {ours})")]
    WrongNetwork {
        /// Our genesis hash.
        ours: BlockHash,
        /// The remote's genesis hash.
        theirs: BlockHash,
    },
    /// The remote speaks another protocol version.
    #[error("unsupported protocol version {0}")]
    Version(u32),
    /// The remote is this very peer.
    #[error("connected to ourselves")]
    SelfConnection,
    /// Another connection to the same node (by node id) is kept instead.
    #[error("duplicate connection to node {0:016x}")]
    Duplicate(u64),
    /// The remote did not complete the handshake in time.
    #[error("no handshake within the timeout")]
    HandshakeTimeout,
    /// Keepalive pings went unanswered.
    #[error("no answer to {MAX_MISSED_PONGS} pings in a row")]
    PingTimeout,
    /// Requests timed out too often in a row.
    #[error("stalled: {0} requests timed out in a row")]
    Stalled(u32),
    /// The remote sent a block that breaks a consensus rule.
    #[error("sent an invalid block: {0}")]
    InvalidBlock(BlockError),
    /// The remote sent bytes that are not a valid message.
    #[error("malformed message: {0}")]
    Malformed(DecodeError),
    /// The remote broke the message sequence of the protocol.
    #[error("protocol violation: {0}")]
    Protocol(Violation),
    /// The remote's misbehaviour score reached the ban score.
    #[error("misbehaviour score {0} reached the limit")]
    Misbehaving(u32),
    /// An inbound connection arrived at the inbound limit while every inbound peer was past its
    /// handshake: the newcomer is refused.
    #[error("inbound connection limit reached")]
    InboundFull,
    /// The oldest inbound connection still in its handshake, closed for a newcomer at the
    /// inbound limit, so idle sockets cannot lock honest peers out.
    #[error("evicted for a newcomer at the inbound limit (no handshake yet)")]
    Evicted,
}

impl DisconnectReason {
    /// A stable short label (no numbers or hashes), for per-reason counters in the node's
    /// metrics and the simulator's report.
    pub fn label(&self) -> &'static str {
        match self {
            DisconnectReason::WrongNetwork { .. } => "wrong_network",
            DisconnectReason::Version(_) => "version",
            DisconnectReason::SelfConnection => "self_connection",
            DisconnectReason::Duplicate(_) => "duplicate",
            DisconnectReason::HandshakeTimeout => "handshake_timeout",
            DisconnectReason::PingTimeout => "ping_timeout",
            DisconnectReason::Stalled(_) => "stalled",
            DisconnectReason::InvalidBlock(_) => "invalid_block",
            DisconnectReason::Malformed(_) => "malformed",
            DisconnectReason::Protocol(_) => "protocol",
            DisconnectReason::Misbehaving(_) => "misbehaving",
            DisconnectReason::InboundFull => "inbound_full",
            DisconnectReason::Evicted => "evicted",
        }
    }

    /// Whether the remote did something wrong (as opposed to a timeout or a benign duplicate).
    pub fn is_misbehaviour(&self) -> bool {
        matches!(
            self,
            DisconnectReason::WrongNetwork { .. }
                | DisconnectReason::InvalidBlock(_)
                | DisconnectReason::Malformed(_)
                | DisconnectReason::Protocol(_)
                | DisconnectReason::Misbehaving(_)
        )
    }
}

/// A break of the protocol's message rules that closes the connection at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    /// `hello` on a connection whose handshake is complete.
    #[error("second hello")]
    SecondHello,
    /// Any message but `hello` before the handshake.
    #[error("message before hello")]
    MessageBeforeHello,
    /// `get_blocks` asking for more than [`MAX_GET_BLOCKS`](super::MAX_GET_BLOCKS) hashes.
    #[error("get_blocks over the limit")]
    GetBlocksOverLimit,
}

/// Why a local submission was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// The item alone exceeds the block data limit.
    #[error("item of {size} bytes exceeds the {max}-byte block data limit")]
    TooLarge {
        /// The item's text length in bytes.
        size: usize,
        /// The largest text that fits.
        max: usize,
    },
    /// The pending pool is at its item or byte limit.
    #[error("pending pool is full ({0} items)")]
    PoolFull(usize),
}

/// A connection as shown to drivers (status pages, reports).
#[derive(Debug, Clone, Serialize)]
pub struct PeerSummary {
    /// The driver's id for the connection.
    pub peer: ConnId,
    /// Who dialled.
    pub direction: Direction,
    /// The remote's address as the driver gave it.
    pub addr: Option<String>,
    /// Whether the handshake is complete.
    pub ready: bool,
    /// The remote's node id, once known.
    pub node_id: Option<u64>,
    /// The address the remote can be dialled at, if it gave one.
    pub listen: Option<String>,
    /// The remote's best tip as last reported.
    pub tip: Option<Tip>,
    /// Protocol time the connection opened.
    pub since: Millis,
    /// Round trip of the last answered keepalive ping.
    pub ping_rtt: Option<Millis>,
    /// Smoothed keepalive round trip (7/8 old + 1/8 new), what loss probes wait for.
    pub smoothed_rtt: Option<Millis>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violations_print_the_protocol_reasons_drivers_log() {
        let text = |v| DisconnectReason::Protocol(v).to_string();
        assert_eq!(
            text(Violation::SecondHello),
            "protocol violation: second hello"
        );
        assert_eq!(
            text(Violation::MessageBeforeHello),
            "protocol violation: message before hello"
        );
        assert_eq!(
            text(Violation::GetBlocksOverLimit),
            "protocol violation: get_blocks over the limit"
        );
    }

    /// Only what the remote did wrong counts as misbehaviour (the node logs and counts those
    /// apart): a timeout, a stall, a duplicate or a full inbound table is nobody's fault.
    #[test]
    fn misbehaviour_is_the_remotes_fault_only() {
        use crate::types::Hash32;
        let faults = [
            DisconnectReason::WrongNetwork {
                ours: Hash32::ZERO,
                theirs: Hash32::ZERO,
            },
            DisconnectReason::InvalidBlock(BlockError::DataHash),
            DisconnectReason::Malformed(DecodeError::Truncated("x")),
            DisconnectReason::Protocol(Violation::SecondHello),
            DisconnectReason::Misbehaving(100),
        ];
        let not = [
            DisconnectReason::Version(1),
            DisconnectReason::SelfConnection,
            DisconnectReason::Duplicate(1),
            DisconnectReason::HandshakeTimeout,
            DisconnectReason::PingTimeout,
            DisconnectReason::Stalled(3),
            DisconnectReason::InboundFull,
            DisconnectReason::Evicted,
        ];
        assert!(faults.iter().all(DisconnectReason::is_misbehaviour));
        assert!(!not.iter().any(DisconnectReason::is_misbehaviour));
    }
}
