//! Links and their connections. A link is an edge of the topology between a dialer `a` and
//! an acceptor `b`; each successful dial opens a new connection on it, numbered by the link's
//! epoch, and the two sides know it as `ConnId = (link << 32) | epoch`.
//!
//! Contract: a message is delivered only on the connection it was sent on (a later epoch
//! drops it); per direction, a connection is a FIFO stream (`fifo_*` is the arrival time of
//! the last in-order message); when to dial is the dialer's core's (a pending dial has a
//! generation, and a newer one supersedes it); upload time booked on a connection that closes goes back to its sender.

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

/// One link of the topology and its current connection.
pub(crate) struct Link {
    /// The dialer.
    a: u32,
    b: u32,
    epoch: u32,
    open: bool,
    fifo_to_b: SimTime,
    fifo_to_a: SimTime,
    dial_gen: u32,
}

impl Link {
    #[inline]
    fn other(&self, n: u32) -> u32 {
        if n == self.a {
            self.b
        } else {
            self.a
        }
    }
}

/// An open connection seen from its sender.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Conn {
    pub link: u32,
    pub epoch: u32,
    /// The receiving peer.
    pub to: u32,
}

/// Every link of the topology, in edge order.
pub(crate) struct Links {
    links: Vec<Link>,
    edges: Vec<(u32, u32)>,
    /// Links below this index are the topology's (configured peers); later ones were
    /// added when a peer dialled an address it learned.
    configured: usize,
    /// Upload slots `(start, end)` in µs booked per (link, sender) and not yet finished, so a
    /// closing connection can hand its unsent share of the uplink back. Indexed by
    /// `2 * link + (sender is the acceptor)`; empty (no allocation) until the first booking.
    uploads: Vec<Vec<(u64, u64)>>,
    /// With the TCP window model on: each connection's congestion window per direction,
    /// indexed like `uploads`; empty when it is off.
    windows: Vec<Window>,
}

impl Links {
    /// The links of `edges` (`(dialer, acceptor)` pairs), all closed.
    pub(crate) fn new(edges: Vec<(u32, u32)>) -> Links {
        let links: Vec<Link> = edges
            .iter()
            .map(|&(a, b)| Link {
                a,
                b,
                epoch: 0,
                open: false,
                fifo_to_b: SimTime::ZERO,
                fifo_to_a: SimTime::ZERO,
                dial_gen: 0,
            })
            .collect();
        Links {
            configured: links.len(),
            links,
            edges,
            uploads: Vec::new(),
            windows: Vec::new(),
        }
    }

    /// Turns on the TCP window model ([`Window`]) for every link.
    pub(crate) fn enable_windows(&mut self) {
        self.windows = vec![Window::default(); 2 * self.links.len()];
    }

    /// `conn`'s direction: the arrival time of its last in-order message (its FIFO mark)
    /// and, with the window model on, its congestion window.
    #[inline]
    pub(crate) fn direction_mut(&mut self, conn: &Conn) -> (&mut SimTime, Option<&mut Window>) {
        let l = &mut self.links[conn.link as usize];
        let to_a = conn.to == l.a;
        let fifo = if to_a {
            &mut l.fifo_to_a
        } else {
            &mut l.fifo_to_b
        };
        let window = self
            .windows
            .get_mut(2 * conn.link as usize + usize::from(to_a));
        (fifo, window)
    }

    /// Adds a closed link from dialer `a` to acceptor `b` (a learned address): its index.
    pub(crate) fn add(&mut self, a: u32, b: u32) -> u32 {
        let l = self.links.len() as u32;
        self.links.push(Link {
            a,
            b,
            epoch: 0,
            open: false,
            fifo_to_b: SimTime::ZERO,
            fifo_to_a: SimTime::ZERO,
            dial_gen: 0,
        });
        self.edges.push((a, b));
        if !self.windows.is_empty() {
            self.windows.extend([Window::default(); 2]);
        }
        l
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
        self.links.len()
    }

    /// The links as `(dialer, acceptor)` pairs.
    pub(crate) fn edges(&self) -> &[(u32, u32)] {
        &self.edges
    }

    /// The link's storage, for cache hints.
    #[inline]
    pub(crate) fn get(&self, link: u32) -> Option<&Link> {
        self.links.get(link as usize)
    }

    /// The link's `(dialer, acceptor)`.
    #[inline]
    pub(crate) fn ends(&self, link: u32) -> (u32, u32) {
        let l = &self.links[link as usize];
        (l.a, l.b)
    }

    /// The peer at the other end of `link` from `n`.
    #[inline]
    pub(crate) fn other(&self, link: u32, n: u32) -> u32 {
        self.links[link as usize].other(n)
    }

    /// Whether connection `(link, epoch)` is the link's current, open one.
    #[inline]
    pub(crate) fn is_current(&self, link: u32, epoch: u32) -> bool {
        self.links
            .get(link as usize)
            .is_some_and(|l| l.open && l.epoch == epoch)
    }

    /// The open connection `from` knows as `id`, if it is still current.
    #[inline]
    pub(crate) fn connection(&self, from: u32, id: ConnId) -> Option<Conn> {
        let (link, epoch) = split_conn_id(id);
        let l = self.links.get(link as usize)?;
        (l.open && l.epoch == epoch).then(|| Conn {
            link,
            epoch,
            to: l.other(from),
        })
    }

    /// Supersedes any pending dial of `link`: returns the generation of the next one.
    pub(crate) fn next_dial(&mut self, link: u32) -> u32 {
        let l = &mut self.links[link as usize];
        l.dial_gen = l.dial_gen.wrapping_add(1);
        l.dial_gen
    }

    /// Whether a dial of generation `gen` should still happen (current, link closed).
    pub(crate) fn dial_due(&self, link: u32, gen: u32) -> bool {
        let l = &self.links[link as usize];
        l.dial_gen == gen && !l.open
    }

    /// Opens a new connection on `link` now: its id.
    pub(crate) fn open(&mut self, link: u32, now: SimTime) -> ConnId {
        let l = &mut self.links[link as usize];
        l.epoch = l.epoch.wrapping_add(1);
        l.open = true;
        l.fifo_to_a = now;
        l.fifo_to_b = now;
        let epoch = l.epoch;
        // A new TCP connection starts from the initial window both ways.
        if let Some(w) = self
            .windows
            .get_mut(2 * link as usize..2 * link as usize + 2)
        {
            w.fill(Window::default());
        }
        conn_id(link, epoch)
    }

    /// Closes `link`'s connection from `closer`'s side: its epoch and the other side, or
    /// `None` if it was not open.
    pub(crate) fn close(&mut self, link: u32, closer: u32) -> Option<(u32, u32)> {
        let l = &mut self.links[link as usize];
        if !l.open {
            return None;
        }
        l.open = false;
        Some((l.epoch, l.other(closer)))
    }

    /// Number of links with an open connection.
    pub(crate) fn open_count(&self) -> usize {
        self.links.iter().filter(|l| l.open).count()
    }

    fn upload_slot(&self, link: u32, from: u32) -> usize {
        2 * link as usize + usize::from(from != self.links[link as usize].a)
    }

    /// Records that `from` booked its uplink for `(start, end)` µs on `link`.
    #[inline]
    pub(crate) fn book_upload(&mut self, link: u32, from: u32, now_us: u64, slot: (u64, u64)) {
        let i = self.upload_slot(link, from);
        if self.uploads.len() <= i {
            self.uploads.resize_with(2 * self.links.len(), Vec::new);
        }
        let q = &mut self.uploads[i];
        q.retain(|&(_, end)| end > now_us);
        q.push(slot);
    }

    /// Forgets `from`'s bookings on `link`: the µs of them still unsent at `now_us`, or `None`
    /// if nothing was ever booked on any link.
    pub(crate) fn take_unsent(&mut self, link: u32, from: u32, now_us: u64) -> Option<u64> {
        let i = self.upload_slot(link, from);
        let q = self.uploads.get_mut(i).map(std::mem::take)?;
        Some(
            q.iter()
                .map(|&(start, end)| end.saturating_sub(start.max(now_us)))
                .sum(),
        )
    }
}
