//! The simulated network: links and their connections (`links`), partitions
//! (`partition`), the per-message model of loss, duplication, reordering, latency,
//! bandwidth and FIFO order ([`model`], [`latency`]), the topology ([`topology`]) and message
//! wire sizes.
//!
//! `Network` holds what every shard reads about the network during a round; the state a
//! message changes (ports, connection ends) belongs to its sender or its receiver.

pub mod latency;
pub(crate) mod links;
pub mod model;
pub(crate) mod partition;
pub mod topology;

pub use latency::sample_latency;
pub use model::{transfer_us, BANDWIDTH_THRESHOLD_BYTES};
pub use topology::{build_topology, connected, place, Placement};

use links::Links;
use model::Model;
use partition::Partitions;
use rantai_core::message::FRAME_HEADER_LEN;
use rantai_core::Message;

pub use rantai_core::message::KIND_NAMES;

/// Bytes of the compact form of a 535 kB Bitcoin block (SimBlock's figure, via
/// `shared/data/bitcoin-network-measurements.toml`, `compact_blocks.compact_block_bytes`): a
/// compact block's virtual payload is this share of the block's.
pub const COMPACT_BYTES_PER_535KB: u64 = 18_000;
/// Share of a block's payload fetched after a failed reconstruction: 1 %, SimBlock's value
/// (every entry of its table is 0.01).
pub const COMPACT_MISSING_SHARE_PERCENT: u64 = 1;
/// Probability that a stable node's mempool lacks part of a block's payload, so a compact
/// block needs one more round trip: SimBlock's `failure_rate_control_node` (13 %; it uses
/// 27 % for nodes that joined recently).
pub const COMPACT_FAILURE_RATE: f64 = 0.13;

/// Bytes a message takes on the wire: exactly its frame (length prefix and binary payload,
/// as the node sends it), plus the virtual payload that stands for transactions the
/// simulation does not carry: all of `block_size_bytes` for a whole block, its short ids
/// for a compact block ([`COMPACT_BYTES_PER_535KB`] per 535 kB), and the missing share
/// ([`COMPACT_MISSING_SHARE_PERCENT`]) for the `block_items` of a rebuild.
#[inline]
pub fn wire_size(msg: &Message, block_size_bytes: u64) -> u64 {
    let frame = (FRAME_HEADER_LEN + msg.encoded_len()) as u64;
    match msg {
        Message::Block { .. } => frame + block_size_bytes,
        Message::CmpctBlock(_) => frame + block_size_bytes * COMPACT_BYTES_PER_535KB / 535_000,
        Message::BlockItems { .. } => {
            frame + block_size_bytes * COMPACT_MISSING_SHARE_PERCENT / 100
        }
        _ => frame,
    }
}

/// Background traffic that never ends while peers run: keepalives (and loss probes) and the
/// periodic re-sending of pending items. "Quiet" ignores it.
#[inline]
pub fn is_background(msg: &Message) -> bool {
    matches!(
        msg,
        Message::Ping { .. } | Message::Pong { .. } | Message::Items { .. }
    )
}

/// Why a message was dropped; the label goes into the trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DropReason {
    /// Sender and receiver are on different sides of a partition.
    Partition,
    /// Lost by the loss fault.
    Loss,
    /// Its connection closed before it arrived.
    Closed,
}

impl DropReason {
    /// The trace label.
    #[inline]
    pub(crate) fn label(self) -> &'static str {
        match self {
            DropReason::Partition => "partition",
            DropReason::Loss => "loss",
            DropReason::Closed => "closed",
        }
    }
}

/// Messages sent and not yet delivered or dropped. Counted per shard as signed changes
/// (sent at one shard, arrived at another) and summed between rounds.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct InFlight {
    all: i64,
    /// Of `all`, background messages (see [`is_background`]).
    background: i64,
}

impl InFlight {
    /// `copies` of a message went on their way.
    #[inline]
    pub(crate) fn sent(&mut self, background: bool, copies: i64) {
        self.all += copies;
        self.background += copies * i64::from(background);
    }

    /// One copy arrived (delivered or dropped).
    #[inline]
    pub(crate) fn arrived(&mut self, background: bool) {
        self.sent(background, -1);
    }

    /// Adds another shard's changes and clears them there.
    pub(crate) fn absorb(&mut self, other: &mut InFlight) {
        self.all += std::mem::take(&mut other.all);
        self.background += std::mem::take(&mut other.background);
    }

    /// Every message in flight.
    #[inline]
    pub(crate) fn all(&self) -> u64 {
        self.all.max(0) as u64
    }

    /// Messages in flight other than background traffic: with pings on, a network never has
    /// none of those.
    #[inline]
    pub(crate) fn sync(&self) -> u64 {
        (self.all - self.background).max(0) as u64
    }
}

/// The network of a run as every shard reads it during a round: who links whom, the
/// partitions in force, the peers' regions and the model. Changed only between rounds.
pub(crate) struct Network {
    pub links: Links,
    pub partitions: Partitions,
    /// Each peer's region, apart from the peers' nodes: every send reads the receiver's, and
    /// a node is kilobytes, so this keeps a cold node off the send path.
    pub regions: Vec<u8>,
    /// Each peer's download rate (a send's congestion window reads the receiver's).
    pub down_bps: Vec<Option<u64>>,
    pub model: Model,
    /// One-way latency per configured link (a links file's), replacing the latency model.
    link_latency: Option<std::sync::Arc<rantai_core::calib::Links>>,
}

impl Network {
    pub(crate) fn new(
        links: Links,
        regions: Vec<u8>,
        down_bps: Vec<Option<u64>>,
        model: Model,
    ) -> Network {
        Network {
            links,
            partitions: Partitions::default(),
            regions,
            down_bps,
            model,
            link_latency: None,
        }
    }

    /// Gives each configured link the latency its links-file line names.
    pub(crate) fn set_link_latency(&mut self, links: std::sync::Arc<rantai_core::calib::Links>) {
        self.link_latency = Some(links);
    }

    /// The fixed latency of `link`, if a links file gives it one.
    #[inline]
    pub(crate) fn link_latency(&self, link: u32) -> Option<u64> {
        self.link_latency
            .as_ref()
            .and_then(|l| l.links.get(link as usize))
            .map(|l| l.latency_ms)
    }
}
