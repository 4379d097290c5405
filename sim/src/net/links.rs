//! Links and their connections. A link is an edge of the topology between a dialer `a` and
//! an acceptor `b`; each successful dial opens a new connection on it, numbered by the
//! dialer's epoch, and the two sides know it as `ConnId = (link << 32) | epoch`.
//!
//! Each side keeps its own view of the link, an [`End`], owned by its peer's node: whether
//! its side is open and on which epoch, the arrival time of the last in-order message coming
//! in (the FIFO mark), the congestion window of what it sends, its unfinished upload
//! bookings and, for the dialer, the generation of its pending dial. Nothing a peer does
//! touches the other side's `End` until the round's end, so peers of different shards run
//! side by side: a dial opens the dialer's side at once and the acceptor's at the barrier,
//! a close closes the closer's side at once and the other's at the barrier (a crash, which
//! happens between rounds, closes both at once).
//!
//! Contract: a message is delivered only if the receiver's side is open on the epoch it was
//! sent on; per direction, a connection is a FIFO stream; when to dial is the dialer's
//! core's (a newer pending dial supersedes an older one by generation); upload time booked
//! on a connection that closes goes back to its sender.

use super::model::Window;
use crate::time::SimTime;
use rantai_core::ConnId;

/// The connection id peers see for epoch `epoch` of link `link`.
#[inline]
pub(crate) fn conn_id(link: u32, epoch: u32) -> ConnId {
    ConnId((u64::from(link) << 32) | u64::from(epoch))
}

/// The `(link, epoch)` of a connection id.
#[inline]
pub(crate) fn split_conn_id(p: ConnId) -> (u32, u32) {
    ((p.0 >> 32) as u32, p.0 as u32)
}

/// One side's view of a link (see the module documentation).
#[derive(Debug, Clone)]
pub(crate) struct End {
    pub link: u32,
    /// The connection this side is (or last was) on.
    pub epoch: u32,
    pub open: bool,
    /// Arrival time of the last in-order message coming in on the current connection.
    pub fifo_in: SimTime,
    /// The congestion window of what this side sends (TCP window model only).
    pub window: Window,
    /// The dialer's pending dial generation (unused at the acceptor).
    pub dial_gen: u32,
    /// Upload slots `(start, end)` in µs booked on the current connection and not yet
    /// finished, so a close can hand the unsent share of the uplink back.
    uploads: Vec<(u64, u64)>,
}

impl End {
    /// A closed side of `link`.
    pub(crate) fn new(link: u32) -> End {
        End {
            link,
            epoch: 0,
            open: false,
            fifo_in: SimTime::ZERO,
            window: Window::default(),
            dial_gen: 0,
            uploads: Vec::new(),
        }
    }

    /// Whether this side is open on `epoch`.
    #[inline]
    pub(crate) fn is_current(&self, epoch: u32) -> bool {
        self.open && self.epoch == epoch
    }

    /// Opens this side on connection `epoch` at `now`: a new TCP connection starts with an
    /// empty stream and the initial window.
    pub(crate) fn open(&mut self, epoch: u32, now: SimTime) {
        self.epoch = epoch;
        self.open = true;
        self.fifo_in = now;
        self.window = Window::default();
        self.uploads.clear();
    }

    /// Closes this side: the µs of its upload bookings still unsent at `now_us` (`None` if it
    /// was not open).
    pub(crate) fn close(&mut self, now_us: u64) -> Option<u64> {
        if !self.open {
            return None;
        }
        self.open = false;
        Some(
            self.uploads
                .drain(..)
                .map(|(start, end)| end.saturating_sub(start.max(now_us)))
                .sum(),
        )
    }

    /// Records an upload booked for `(start, end)` µs on this side's connection.
    #[inline]
    pub(crate) fn book_upload(&mut self, now_us: u64, slot: (u64, u64)) {
        self.uploads.retain(|&(_, end)| end > now_us);
        self.uploads.push(slot);
    }
}

/// Every link of the topology, in edge order: who dials whom. The connections' state is in
/// the two sides' [`End`]s.
pub(crate) struct Links {
    edges: Vec<(u32, u32)>,
    /// Links below this index are the topology's (configured peers); later ones were
    /// added when a peer dialled an address it learned.
    configured: usize,
}

impl Links {
    /// The links of `edges` (`(dialer, acceptor)` pairs).
    pub(crate) fn new(edges: Vec<(u32, u32)>) -> Links {
        Links {
            configured: edges.len(),
            edges,
        }
    }

    /// Adds a link from dialer `a` to acceptor `b` (a learned address): its index.
    pub(crate) fn add(&mut self, a: u32, b: u32) -> u32 {
        self.edges.push((a, b));
        (self.edges.len() - 1) as u32
    }

    /// Number of links of the topology (the rest were added for learned addresses).
    pub(crate) fn configured(&self) -> usize {
        self.configured
    }

    /// Whether `link` is one of the topology's (its dialer keeps it as a configured peer).
    pub(crate) fn is_configured(&self, link: u32) -> bool {
        (link as usize) < self.configured
    }

    /// Number of links.
    pub(crate) fn len(&self) -> usize {
        self.edges.len()
    }

    /// The links as `(dialer, acceptor)` pairs.
    pub(crate) fn edges(&self) -> &[(u32, u32)] {
        &self.edges
    }

    /// The link's `(dialer, acceptor)`.
    #[inline]
    pub(crate) fn ends(&self, link: u32) -> (u32, u32) {
        self.edges[link as usize]
    }

    /// The peer at the other end of `link` from `n`.
    #[inline]
    pub(crate) fn other(&self, link: u32, n: u32) -> u32 {
        let (a, b) = self.edges[link as usize];
        if n == a {
            b
        } else {
            a
        }
    }
}
