//! The engine's events: what the scheduler holds until their time comes.
//!
//! Every event names the peer whose state it touches, if any ([`Ev::target`]). The scheduler
//! uses it as a cache hint today; a sharded scheduler would route by it.

use crate::sched::Targeted;
use rantai_core::Message;

/// One scheduled event. Generations (`gen`) cancel timers, mining races and dials lazily:
/// an event whose generation is no longer current is dropped when it fires.
#[derive(Debug)]
pub(crate) enum Ev {
    /// A message arrives at `to` on connection `(link, epoch)`.
    Deliver {
        link: u32,
        epoch: u32,
        to: u32,
        msg: Message,
    },
    /// A peer's `poll_timeout()` deadline.
    Timer { node: u32, gen: u32 },
    /// A miner finds a block.
    Mine { node: u32, gen: u32 },
    /// A link is dialled.
    Dial { link: u32, gen: u32 },
    /// `node` learns that its side of connection `(link, epoch)` closed.
    Close { link: u32, epoch: u32, node: u32 },
    /// Configured partition `i` starts.
    Partition(u32),
    /// Configured partition `i` heals.
    Heal(u32),
    /// Configured crash `i` happens.
    Crash(u32),
    /// Configured crash `i` restarts its peer.
    Restart(u32),
    /// Workload item `idx` is submitted at `node` (or the next online peer).
    Submit { idx: u32, node: u32 },
    /// Scheduled block `k` (a calibration schedule's line) is mined.
    Scheduled(u32),
}

impl Targeted for Ev {
    #[inline]
    fn target(&self) -> Option<u32> {
        match *self {
            Ev::Deliver { to, .. } => Some(to),
            Ev::Timer { node, .. } | Ev::Mine { node, .. } | Ev::Close { node, .. } => Some(node),
            _ => None,
        }
    }
}
