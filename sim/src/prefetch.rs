//! Cache hints for the hot loop, kept in one place. They only start memory loads early and
//! have no effect on results.
//!
//! Why: an event's slot and its peer's state are cold by the time it comes up, in state of
//! tens to hundreds of MB, so each would stall the event that reads it. Fetching them an
//! event or two ahead overlaps those loads with the current event's work.

use crate::event::Ev;
use crate::node::Node;
use crate::sched::Scheduler;
use rantai_core::hint::prefetch;
use rantai_core::{Output, Peer};

/// Before an event is handled: the event after next gets its slot and peer fetched; the next
/// one (whose slot and peer were fetched a step ago) gets the receiving connection fetched.
/// `nodes[i - base]` is peer `i`.
#[inline]
pub(crate) fn upcoming_events(sched: &Scheduler<Ev>, nodes: &[Node], base: u32) {
    let node = |t: u32| nodes.get(t.wrapping_sub(base) as usize);
    if let Some(up) = sched.upcoming(1) {
        prefetch(up.cell);
        if let Some(n) = up.target.and_then(node) {
            prefetch(n);
        }
    }
    if let Some(up) = sched.upcoming(0) {
        if let Some(Ev::Deliver {
            link, epoch, to, ..
        }) = up.cell
        {
            if let Some(n) = node(*to) {
                if let Some(e) = n.ends.first() {
                    prefetch(e);
                }
                if let Some(p) = n.peer.as_ref() {
                    p.prefetch(crate::net::links::conn_id(*link, *epoch));
                }
            }
        }
    }
}

/// Before a peer's outputs are executed: its connection ends, which each send reads.
#[inline]
pub(crate) fn pending_sends(peer: &Peer, ends: &[crate::net::links::End]) {
    let sends = peer.pending_outputs();
    if let Some(e) = ends.first() {
        if sends
            .filter(|o| matches!(o, Output::Send { .. }))
            .nth(1)
            .is_some()
        {
            prefetch(e);
        }
    }
}
