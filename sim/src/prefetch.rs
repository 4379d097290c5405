//! Cache hints for the hot loop, kept in one place. They only start memory loads early and
//! have no effect on results.
//!
//! Why: an event's slot, its peer's state and its link are cold by the time it comes up, in
//! state of tens to hundreds of MB, so each would stall the event that reads it. Fetching
//! them an event or two ahead overlaps those loads with the current event's work.

use crate::event::Ev;
use crate::net::links::{split_conn_id, Links};
use crate::node::Node;
use crate::sched::Scheduler;
use rantai_core::hint::prefetch;
use rantai_core::{Output, Peer};

/// Before an event is handled: the event after next gets its slot and peer fetched; the next
/// one (whose slot and peer were fetched a step ago) gets its link and the receiving
/// connection fetched.
#[inline]
pub(crate) fn upcoming_events(sched: &Scheduler<Ev>, nodes: &[Node], links: &Links) {
    if let Some(up) = sched.upcoming(1) {
        prefetch(up.cell);
        if let Some(n) = up.target.and_then(|t| nodes.get(t as usize)) {
            prefetch(n);
        }
    }
    if let Some(up) = sched.upcoming(0) {
        if let Some(Ev::Deliver {
            link, epoch, to, ..
        }) = up.cell
        {
            if let Some(l) = links.get(*link) {
                prefetch(l);
            }
            if let Some(p) = nodes.get(*to as usize).and_then(|n| n.peer.as_ref()) {
                p.prefetch(crate::net::links::conn_id(*link, *epoch));
            }
        }
    }
}

/// Before a peer's outputs are executed: each send reads its link, so all of those loads
/// start first instead of one send stalling after another.
#[inline]
pub(crate) fn pending_sends(peer: &Peer, links: &Links) {
    if peer.pending_outputs().len() > 1 {
        for out in peer.pending_outputs() {
            if let Output::Send { to, .. } = out {
                if let Some(l) = links.get(split_conn_id(*to).0) {
                    prefetch(l);
                }
            }
        }
    }
}
