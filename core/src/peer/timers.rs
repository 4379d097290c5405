//! Per-connection timers and the peer-wide index of their deadlines.
//!
//! Each connection owns a [`TimerTable`]: one slot per [`Timer`] kind. A slot can only be
//! written through [`TimerIndex::set`], which queues the connection for re-indexing, so the
//! index can never miss a change. [`TimerIndex::reindex`] (run once per handled input) brings
//! every queued connection's entry up to date; then [`TimerIndex::next`] is the earliest
//! deadline of all connections in O(1), and [`TimerIndex::due`] visits only due connections.

use super::table::ConnTable;
use crate::types::{ConnId, Millis};
use std::collections::BTreeSet;

/// The kinds of timer a connection runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Timer {
    /// The handshake must complete by then.
    Handshake,
    /// When to send the next keepalive ping.
    Ping,
    /// When an outstanding keepalive ping counts as missed. While it runs, `Ping` is masked:
    /// a new ping is never sent while one is outstanding.
    Pong,
    /// Hard deadline of the oldest block request (the first one in request order).
    Requests,
    /// Hard deadline of an outstanding `get_chain`.
    Chain,
    /// When to send the next loss probe.
    Probe,
}

impl Timer {
    const COUNT: usize = 6;
}

/// One connection's timers.
#[derive(Debug, Default)]
pub(super) struct TimerTable {
    slots: [Option<Millis>; Timer::COUNT],
    /// This connection's entry in [`TimerIndex`].
    indexed: Option<Millis>,
    /// Queued in [`TimerIndex`] for re-indexing.
    queued: bool,
}

impl TimerTable {
    /// The deadline of one timer, if it runs.
    #[inline]
    pub(super) fn get(&self, timer: Timer) -> Option<Millis> {
        self.slots[timer as usize]
    }

    /// Whether one timer runs.
    #[inline]
    pub(super) fn is_set(&self, timer: Timer) -> bool {
        self.get(timer).is_some()
    }

    /// Whether one timer runs and is due at `now`.
    #[inline]
    pub(super) fn is_due(&self, timer: Timer, now: Millis) -> bool {
        self.get(timer).is_some_and(|t| now >= t)
    }

    /// The earliest running timer.
    fn next(&self) -> Option<Millis> {
        let pong = self.is_set(Timer::Pong);
        let mut next: Option<Millis> = None;
        for (i, slot) in self.slots.iter().enumerate() {
            if pong && i == Timer::Ping as usize {
                continue;
            }
            if let Some(t) = *slot {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        }
        next
    }
}

/// Every connection's earliest deadline, ordered by time.
#[derive(Debug, Default)]
pub(super) struct TimerIndex {
    by_deadline: BTreeSet<(Millis, ConnId)>,
    /// `by_deadline.first()`, refreshed by `reindex` when the set changed.
    next: Option<Millis>,
    moved: bool,
    /// Connections whose tables changed since the last `reindex`.
    queued: Vec<ConnId>,
}

impl TimerIndex {
    /// Starts (`Some`) or stops (`None`) one of connection `id`'s timers.
    #[inline]
    pub(super) fn set(
        &mut self,
        id: ConnId,
        table: &mut TimerTable,
        timer: Timer,
        at: Option<Millis>,
    ) {
        table.slots[timer as usize] = at;
        if !table.queued {
            table.queued = true;
            self.queued.push(id);
        }
    }

    /// Drops a closed connection's entry.
    pub(super) fn remove(&mut self, id: ConnId, table: &TimerTable) {
        if let Some(t) = table.indexed {
            self.by_deadline.remove(&(t, id));
            self.moved = true;
        }
    }

    /// Connections with a deadline at or before `now`, earliest first.
    pub(super) fn due(&self, now: Millis) -> Vec<ConnId> {
        self.by_deadline
            .iter()
            .take_while(|&&(t, _)| t <= now)
            .map(|&(_, id)| id)
            .collect()
    }

    /// The earliest deadline of any connection, as of the last `reindex`.
    #[inline]
    pub(super) fn next(&self) -> Option<Millis> {
        self.next
    }

    /// Re-indexes every connection queued by `set`; `table` finds a connection's timers.
    pub(super) fn reindex<C>(
        &mut self,
        conns: &mut ConnTable<C>,
        table: fn(&mut C) -> &mut TimerTable,
    ) {
        // Taken and handed back empty, so the buffer is reused.
        let mut queued = std::mem::take(&mut self.queued);
        for &id in &queued {
            let Some(c) = conns.get_mut(&id) else {
                continue;
            };
            let t = table(c);
            t.queued = false;
            let d = t.next();
            if d != t.indexed {
                if let Some(old) = t.indexed {
                    self.by_deadline.remove(&(old, id));
                }
                if let Some(new) = d {
                    self.by_deadline.insert((new, id));
                }
                t.indexed = d;
                self.moved = true;
            }
        }
        queued.clear();
        self.queued = queued;
        if std::mem::take(&mut self.moved) {
            self.next = self.by_deadline.first().map(|&(t, _)| t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_follows_every_set_and_masks_ping_while_pong_runs() {
        let mut conns: ConnTable<TimerTable> = ConnTable::default();
        let mut index = TimerIndex::default();
        let (a, b) = (ConnId(1), ConnId(2));
        conns.insert(a, TimerTable::default());
        conns.insert(b, TimerTable::default());
        let set = |index: &mut TimerIndex,
                   conns: &mut ConnTable<TimerTable>,
                   id: ConnId,
                   timer: Timer,
                   at: Option<u64>| {
            index.set(id, conns.get_mut(&id).unwrap(), timer, at.map(Millis));
            index.reindex(conns, |t| t);
        };
        set(&mut index, &mut conns, a, Timer::Ping, Some(30));
        set(&mut index, &mut conns, b, Timer::Chain, Some(20));
        assert_eq!(index.next(), Some(Millis(20)));
        set(&mut index, &mut conns, a, Timer::Pong, Some(50));
        set(&mut index, &mut conns, b, Timer::Chain, None);
        assert_eq!(
            index.next(),
            Some(Millis(50)),
            "ping masked by the outstanding pong"
        );
        assert_eq!(index.due(Millis(49)), Vec::<ConnId>::new());
        assert_eq!(index.due(Millis(50)), vec![a]);
        let table = conns.remove(&a).unwrap();
        index.remove(a, &table);
        index.reindex(&mut conns, |t| t);
        assert_eq!(index.next(), None);
    }
}
