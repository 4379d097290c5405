//! Counters shared by the driver, the connection tasks and the store thread, rendered as
//! Prometheus text by `GET /metrics`.

use rantai_core::message::KIND_NAMES;
use rantai_core::CompactOutcome;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Frames and bytes of one message kind, each way; bytes are whole frames (length prefix
/// included) as they crossed the socket.
#[derive(Debug, Default)]
pub struct KindTraffic {
    pub messages_in: AtomicU64,
    pub bytes_in: AtomicU64,
    pub messages_out: AtomicU64,
    pub bytes_out: AtomicU64,
}

/// Monotonic counters; relaxed atomics, since they are only read for reporting.
#[derive(Debug, Default)]
pub struct Metrics {
    pub blocks_accepted: AtomicU64,
    pub blocks_rejected: AtomicU64,
    pub blocks_mined: AtomicU64,
    pub blocks_stored: AtomicU64,
    pub store_commits: AtomicU64,
    pub store_errors: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub messages_in: AtomicU64,
    pub messages_out: AtomicU64,
    pub malformed_in: AtomicU64,
    pub connections_accepted: AtomicU64,
    pub connections_refused: AtomicU64,
    pub connections_evicted: AtomicU64,
    pub peers_dropped_slow: AtomicU64,
    pub disconnects_misbehaviour: AtomicU64,
    pub items_submitted: AtomicU64,
    /// Traffic per message kind, indexed like [`KIND_NAMES`].
    pub by_kind: [KindTraffic; KIND_NAMES.len()],
    /// Compact blocks received, by how they ended, indexed like [`COMPACT_OUTCOMES`].
    pub compact: [AtomicU64; COMPACT_OUTCOMES.len()],
    /// Disconnects the protocol decided, by [`rantai_core::DisconnectReason::label`].
    pub disconnects: Mutex<BTreeMap<&'static str, u64>>,
    /// Blocks refused, by [`rantai_core::BlockError::kind`].
    pub rejected: Mutex<BTreeMap<String, u64>>,
}

/// Labels of [`Metrics::compact`]: rebuilt from the pool alone, after one `get_block_items`
/// round trip, or given up for the whole block.
pub const COMPACT_OUTCOMES: [&str; 3] = ["rebuilt", "round_trip", "whole_block"];

/// Gauges read from the driver at the moment of the request.
#[derive(Debug, Clone, Default)]
pub struct Gauges {
    pub height: u64,
    pub peers: usize,
    pub peers_ready: usize,
    pub pending_items: usize,
    pub blocks_in_tree: usize,
    pub orphans: usize,
}

impl Metrics {
    /// Counts one frame of kind `kind` (see [`rantai_core::Message::kind_index`]) read from a peer.
    pub fn count_in(&self, kind: usize, frame_bytes: usize) {
        if let Some(k) = self.by_kind.get(kind) {
            k.messages_in.fetch_add(1, Ordering::Relaxed);
            k.bytes_in.fetch_add(frame_bytes as u64, Ordering::Relaxed);
        }
    }

    /// Counts one frame of kind `kind` written to a peer.
    pub fn count_out(&self, kind: usize, frame_bytes: usize) {
        if let Some(k) = self.by_kind.get(kind) {
            k.messages_out.fetch_add(1, Ordering::Relaxed);
            k.bytes_out.fetch_add(frame_bytes as u64, Ordering::Relaxed);
        }
    }

    /// Counts a disconnect by its reason's label.
    pub fn count_disconnect(&self, label: &'static str) {
        if let Ok(mut m) = self.disconnects.lock() {
            *m.entry(label).or_default() += 1;
        }
    }

    /// Counts a refused block by its error's kind.
    pub fn count_rejected(&self, kind: String) {
        if let Ok(mut m) = self.rejected.lock() {
            *m.entry(kind).or_default() += 1;
        }
    }

    /// Counts a compact block that ended with `outcome`.
    pub fn count_compact(&self, outcome: CompactOutcome) {
        let i = match outcome {
            CompactOutcome::Rebuilt => 0,
            CompactOutcome::RoundTrip => 1,
            CompactOutcome::WholeBlock => 2,
        };
        self.compact[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Frames of `kind` (a [`KIND_NAMES`] entry) read and their bytes; `(0, 0)` for an unknown name.
    pub fn kind_in(&self, kind: &str) -> (u64, u64) {
        self.kind_index(kind).map_or((0, 0), |k| {
            (
                k.messages_in.load(Ordering::Relaxed),
                k.bytes_in.load(Ordering::Relaxed),
            )
        })
    }

    /// Frames of `kind` written and their bytes; `(0, 0)` for an unknown name.
    pub fn kind_out(&self, kind: &str) -> (u64, u64) {
        self.kind_index(kind).map_or((0, 0), |k| {
            (
                k.messages_out.load(Ordering::Relaxed),
                k.bytes_out.load(Ordering::Relaxed),
            )
        })
    }

    fn kind_index(&self, kind: &str) -> Option<&KindTraffic> {
        let i = KIND_NAMES.iter().position(|n| *n == kind)?;
        self.by_kind.get(i)
    }

    /// Prometheus text exposition (version 0.0.4).
    pub fn render(&self, g: &Gauges) -> String {
        let mut s = String::with_capacity(2048);
        let mut counter = |name: &str, help: &str, v: &AtomicU64| {
            let _ = writeln!(
                s,
                "# HELP rantai_{name} {help}\n# TYPE rantai_{name} counter"
            );
            let _ = writeln!(s, "rantai_{name} {}", v.load(Ordering::Relaxed));
        };
        counter(
            "blocks_accepted_total",
            "Valid blocks that joined the block tree.",
            &self.blocks_accepted,
        );
        counter(
            "blocks_rejected_total",
            "Invalid blocks refused.",
            &self.blocks_rejected,
        );
        counter(
            "blocks_mined_total",
            "Blocks mined by this node.",
            &self.blocks_mined,
        );
        counter(
            "blocks_stored_total",
            "Blocks durably written to the data directory.",
            &self.blocks_stored,
        );
        counter(
            "store_commits_total",
            "Store transactions committed (group commits).",
            &self.store_commits,
        );
        counter(
            "store_errors_total",
            "Failed store transactions.",
            &self.store_errors,
        );
        counter(
            "bytes_in_total",
            "Bytes received from peers.",
            &self.bytes_in,
        );
        counter("bytes_out_total", "Bytes sent to peers.", &self.bytes_out);
        counter(
            "messages_in_total",
            "Messages received from peers.",
            &self.messages_in,
        );
        counter(
            "messages_out_total",
            "Messages queued to peers.",
            &self.messages_out,
        );
        counter(
            "malformed_in_total",
            "Undecodable frames received.",
            &self.malformed_in,
        );
        counter(
            "connections_accepted_total",
            "Inbound connections accepted.",
            &self.connections_accepted,
        );
        counter(
            "connections_refused_total",
            "Inbound connections refused at the limit.",
            &self.connections_refused,
        );
        counter(
            "connections_evicted_total",
            "Inbound connections still in their handshake closed at the limit for a newcomer.",
            &self.connections_evicted,
        );
        counter(
            "peers_dropped_slow_total",
            "Peers dropped because their send queue was full.",
            &self.peers_dropped_slow,
        );
        counter(
            "disconnects_misbehaviour_total",
            "Peers disconnected for misbehaviour.",
            &self.disconnects_misbehaviour,
        );
        counter(
            "items_submitted_total",
            "Data items submitted locally (stdin or POST).",
            &self.items_submitted,
        );
        let family = |s: &mut String, name: &str, help: &str| {
            let _ = writeln!(
                s,
                "# HELP rantai_{name} {help}\n# TYPE rantai_{name} counter"
            );
        };
        type Pick = fn(&KindTraffic) -> [&AtomicU64; 2];
        let per_kind: [(&str, &str, Pick); 2] = [
            (
                "peer_messages_total",
                "Frames read from (in) and written to (out) peers, by message kind.",
                |k| [&k.messages_in, &k.messages_out],
            ),
            (
                "peer_bytes_total",
                "Bytes of whole frames read from (in) and written to (out) peers, by message kind.",
                |k| [&k.bytes_in, &k.bytes_out],
            ),
        ];
        for (metric, help, pick) in per_kind {
            family(&mut s, metric, help);
            for (d, dir) in ["in", "out"].into_iter().enumerate() {
                for (name, k) in KIND_NAMES.iter().zip(&self.by_kind) {
                    let _ = writeln!(
                        s,
                        "rantai_{metric}{{direction=\"{dir}\",kind=\"{name}\"}} {}",
                        pick(k)[d].load(Ordering::Relaxed)
                    );
                }
            }
        }
        family(
            &mut s,
            "compact_blocks_total",
            "Compact blocks received, by outcome: rebuilt from the pending pool, after one \
             round trip for missing items, or replaced by the whole block.",
        );
        for (name, v) in COMPACT_OUTCOMES.iter().zip(&self.compact) {
            let _ = writeln!(
                s,
                "rantai_compact_blocks_total{{outcome=\"{name}\"}} {}",
                v.load(Ordering::Relaxed)
            );
        }
        family(
            &mut s,
            "disconnects_total",
            "Peers disconnected by the protocol, by reason (timeouts and duplicates included).",
        );
        if let Ok(m) = self.disconnects.lock() {
            for (reason, v) in m.iter() {
                let _ = writeln!(s, "rantai_disconnects_total{{reason=\"{reason}\"}} {v}");
            }
        }
        family(
            &mut s,
            "blocks_rejected_by_kind_total",
            "Invalid blocks refused, by the rule they broke.",
        );
        if let Ok(m) = self.rejected.lock() {
            for (kind, v) in m.iter() {
                let _ = writeln!(
                    s,
                    "rantai_blocks_rejected_by_kind_total{{kind=\"{kind}\"}} {v}"
                );
            }
        }
        let mut gauge = |name: &str, help: &str, v: u64| {
            let _ = writeln!(
                s,
                "# HELP rantai_{name} {help}\n# TYPE rantai_{name} gauge\nrantai_{name} {v}"
            );
        };
        gauge("height", "Height of the best chain.", g.height);
        gauge(
            "peers",
            "Open peer connections (handshaking or ready).",
            g.peers as u64,
        );
        gauge(
            "peers_ready",
            "Peers that completed the handshake.",
            g.peers_ready as u64,
        );
        gauge(
            "pending_items",
            "Items waiting to be mined.",
            g.pending_items as u64,
        );
        gauge(
            "blocks_in_tree",
            "Blocks in the block tree, side branches included.",
            g.blocks_in_tree as u64,
        );
        gauge(
            "orphans",
            "Blocks waiting for their parent.",
            g.orphans as u64,
        );
        s
    }
}
