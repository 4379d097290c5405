//! The simulated network: links and their connections (`links`), partitions
//! (`partition`), the per-message model of loss, duplication, reordering, latency,
//! bandwidth and FIFO order ([`model`], [`latency`]), the topology ([`topology`]) and message
//! wire sizes.
//!
//! `Network` holds the run's network state and decides each message's fate; it reads no
//! peer state and schedules nothing: the engine counts, traces and schedules what it returns.

pub mod latency;
pub(crate) mod links;
pub mod model;
pub(crate) mod partition;
pub mod topology;

pub use latency::sample_latency;
pub use model::{transfer_us, BANDWIDTH_THRESHOLD_BYTES};
pub use topology::{build_topology, connected, place, Placement};

use crate::time::SimTime;
use links::{Conn, Links};
use model::{Delivery, Fate, Model, Path, Port};
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

/// The outcome of sending one message on an open connection.
pub(crate) enum Transit {
    /// Dropped at send time.
    Dropped(DropReason),
    /// On its way; the engine schedules its delivery (and its duplicate's).
    Sent(Delivery),
}

/// Messages sent and not yet delivered or dropped.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct InFlight {
    all: u64,
    /// Of `all`, background messages (see [`is_background`]).
    background: u64,
}

impl InFlight {
    #[inline]
    fn sent(&mut self, background: bool, copies: u64) {
        self.all += copies;
        self.background += copies * u64::from(background);
    }

    /// Every message in flight.
    #[inline]
    pub(crate) fn all(&self) -> u64 {
        self.all
    }

    /// Messages in flight other than background traffic: with pings on, a network never has
    /// none of those.
    #[inline]
    pub(crate) fn sync(&self) -> u64 {
        self.all - self.background
    }
}

/// The network state of a run.
pub(crate) struct Network {
    pub links: Links,
    pub partitions: Partitions,
    /// Each peer's region, apart from the peers' nodes: every send reads the receiver's, and
    /// a node is kilobytes, so this keeps a cold node off the send path.
    pub regions: Vec<u8>,
    pub model: Model,
    in_flight: InFlight,
    /// One-way latency per configured link (a links file's), replacing the latency model.
    link_latency: Option<std::sync::Arc<rantai_core::calib::Links>>,
}

impl Network {
    pub(crate) fn new(links: Links, regions: Vec<u8>, model: Model) -> Network {
        Network {
            links,
            partitions: Partitions::default(),
            regions,
            model,
            in_flight: InFlight::default(),
            link_latency: None,
        }
    }

    /// Gives each configured link the latency its links-file line names.
    pub(crate) fn set_link_latency(&mut self, links: std::sync::Arc<rantai_core::calib::Links>) {
        self.link_latency = Some(links);
    }

    /// Messages in flight.
    #[inline]
    pub(crate) fn in_flight(&self) -> InFlight {
        self.in_flight
    }

    /// Sends a `bytes`-byte message from `from` on `conn` at `now`, through partitions and the
    /// model (`ports`: the sender's and the receiver's). A delivered message, and its
    /// duplicate, count as in flight until [`Network::arrived`].
    #[inline]
    pub(crate) fn transmit(
        &mut self,
        from: u32,
        conn: &Conn,
        bytes: u64,
        background: bool,
        now: SimTime,
        (sender, receiver): (&mut Port, &mut Port),
    ) -> Transit {
        if !self.partitions.is_empty() && self.partitions.blocked(from, conn.to) {
            return Transit::Dropped(DropReason::Partition);
        }
        let (fifo, window) = self.links.direction_mut(conn);
        let path = Path {
            from_region: self.regions[from as usize],
            to_region: self.regions[conn.to as usize],
            sender,
            receiver,
            fifo,
            window,
            latency_ms: self
                .link_latency
                .as_ref()
                .and_then(|l| l.links.get(conn.link as usize))
                .map(|l| l.latency_ms),
        };
        match self.model.transmit(bytes, now, path) {
            Fate::Lost => Transit::Dropped(DropReason::Loss),
            Fate::Deliver(d) => {
                if let Some(slot) = d.upload {
                    self.links
                        .book_upload(conn.link, from, now.as_micros(), slot);
                }
                let copies = 1 + u64::from(d.duplicate_at.is_some());
                self.in_flight.sent(background, copies);
                Transit::Sent(d)
            }
        }
    }

    /// A message of connection `(link, epoch)` reached its time: whether that connection is
    /// still the current one (else the message is dropped).
    #[inline]
    pub(crate) fn arrived(&mut self, link: u32, epoch: u32, background: bool) -> bool {
        self.in_flight.all -= 1;
        if background {
            self.in_flight.background -= 1;
        }
        self.links.is_current(link, epoch)
    }
}
