//! Counters shared by the driver, the connection tasks and the store thread, rendered as
//! Prometheus text by `GET /metrics`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

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
}

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
