//! The engine's events: what the schedulers hold until their time comes.
//!
//! [`Ev`]s belong to one peer ([`Ev::target`]) and sit in the queue of that peer's shard;
//! [`GlobalEv`]s (scheduled faults, submissions, calibration blocks) touch the whole run and
//! are handled between rounds, in one queue.

use crate::sched::Targeted;
use rantai_core::Message;

/// One scheduled event of one peer. Generations (`gen`) cancel timers, mining races and dials lazily:
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
    /// Dialer `node` dials a link.
    Dial { link: u32, gen: u32, node: u32 },
    /// `node` learns that its side of connection `(link, epoch)` closed.
    Close { link: u32, epoch: u32, node: u32 },
}

/// A scheduled event of the whole run.
#[derive(Debug, Clone, Copy)]
pub(crate) enum GlobalEv {
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
            Ev::Timer { node, .. }
            | Ev::Mine { node, .. }
            | Ev::Close { node, .. }
            | Ev::Dial { node, .. } => Some(node),
        }
    }
}
