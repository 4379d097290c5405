//! The scheduler: the simulated clock and the events waiting for their time.
//!
//! Contract: events pop in `(time, key)` order, where the key names the event's origin (the
//! peer that caused it and that peer's own counter, see [`origin_key`]): ties never depend on
//! hashes, addresses or on which queue the event sat in, so one queue per shard of peers
//! orders each peer's events exactly as a single queue does. Nothing can be scheduled before
//! the current time (an earlier request is moved up to now); the clock only moves forward.
//!
//! The queue is a radix heap over event times: a discrete-event simulation only schedules at
//! or after the current time, which is what a radix heap needs. An event sits in the bucket
//! named by the highest bit in which its time differs from the last popped time, a push is
//! O(1), and a pop only redistributes the lowest non-empty bucket. Events at the current time
//! wait in a deque sorted by key. Events themselves sit in a slot table, so the queue moves
//! 24-byte entries, never messages.

use crate::time::SimTime;
use std::collections::VecDeque;

/// An event that may concern one peer: the scheduler's routing key and cache hint.
pub(crate) trait Targeted {
    /// The peer whose state handling this event touches, if one.
    fn target(&self) -> Option<u32>;
}

/// Queue hint of events that concern no single peer.
const NO_TARGET: u32 = u32::MAX;

/// The ordering key of an event caused by peer `origin` as its `seq`-th scheduling: unique,
/// and computed from that peer's own history alone.
#[inline]
pub(crate) fn origin_key(origin: u32, seq: u64) -> u64 {
    (u64::from(origin) << ORIGIN_SHIFT) | (seq & ((1 << ORIGIN_SHIFT) - 1))
}

/// Bits of an [`origin_key`] for the peer's counter (a trillion events per peer); the peer
/// index takes the other 24 (the configuration allows fewer peers).
const ORIGIN_SHIFT: u32 = 40;

/// An event due soon, for cache hints: where it is stored and the peer it is for.
pub(crate) struct Upcoming<'a, E> {
    /// The event's storage (prefetching it costs no load).
    pub cell: &'a Option<E>,
    /// The peer it is for.
    pub target: Option<u32>,
}

/// The simulated clock and the pending events.
pub(crate) struct Scheduler<E> {
    now: SimTime,
    queue: EventQueue,
    slots: Vec<Option<E>>,
    free: Vec<u32>,
}

impl<E: Targeted> Scheduler<E> {
    pub(crate) fn new() -> Self {
        Scheduler {
            now: SimTime::ZERO,
            queue: EventQueue::new(),
            slots: Vec::new(),
            free: Vec::new(),
        }
    }

    /// Schedules `ev` at `at` (or now if `at` has passed) with ordering key `key`.
    pub(crate) fn schedule(&mut self, at: SimTime, key: u64, ev: E) {
        let at = at.max(self.now);
        let target = ev.target().unwrap_or(NO_TARGET);
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = Some(ev);
                s
            }
            None => {
                self.slots.push(Some(ev));
                (self.slots.len() - 1) as u32
            }
        };
        self.queue.push(at.as_millis().0, key, slot, target);
    }

    /// Time of the next event, if any.
    #[inline]
    pub(crate) fn next_time(&mut self) -> Option<SimTime> {
        self.queue
            .peek_time()
            .map(|t| SimTime::from_millis(rantai_core::Millis(t)))
    }

    /// Removes the next event and moves the clock to its time.
    #[inline]
    pub(crate) fn pop(&mut self) -> Option<E> {
        let (time, slot) = self.queue.pop()?;
        self.now = SimTime::from_millis(rantai_core::Millis(time));
        let ev = self.slots[slot as usize].take();
        self.free.push(slot);
        ev
    }

    /// The `k`-th next event, if it is already known to be due at the current time (finding
    /// out costs no queue work).
    #[inline]
    pub(crate) fn upcoming(&self, k: usize) -> Option<Upcoming<'_, E>> {
        let (slot, target) = self.queue.ahead(k)?;
        Some(Upcoming {
            cell: self.slots.get(slot as usize)?,
            target: (target != NO_TARGET).then_some(target),
        })
    }
}

/// Bucket count for 64-bit times: bucket `b` holds times whose highest bit differing from
/// the last popped time is `b - 1`; times equal to it wait in `current`.
const BUCKETS: usize = 65;

/// A queued event: time, sequence, slot, and the caller's hint (the simulator stores the
/// peer the event is for, so it can fetch that peer's memory before the event comes up).
#[derive(Clone, Copy)]
struct Item {
    time: u64,
    seq: u64,
    slot: u32,
    hint: u32,
}

/// A monotone priority queue of event slots keyed by `(time, seq)`.
struct EventQueue {
    /// Time of the last popped event: nothing earlier can be pushed.
    floor: u64,
    /// Reference time of the buckets: the time of the events in `current`, once a pop or a
    /// peek found them; never below `floor`.
    last: u64,
    /// Events at `last`, in key order: (key, slot, hint).
    current: VecDeque<(u64, u32, u32)>,
    buckets: Vec<Vec<Item>>,
    /// Bit `b - 1` set when bucket `b` is non-empty.
    nonempty: u64,
    len: usize,
}

impl EventQueue {
    fn new() -> EventQueue {
        EventQueue {
            floor: 0,
            last: 0,
            current: VecDeque::new(),
            buckets: (0..BUCKETS).map(|_| Vec::new()).collect(),
            nonempty: 0,
            len: 0,
        }
    }

    /// Schedules `slot` at `(time, key)`: `time` must not precede the last popped time; keys
    /// are unique.
    fn push(&mut self, time: u64, seq: u64, slot: u32, hint: u32) {
        assert!(
            time >= self.floor,
            "event scheduled before the last popped one"
        );
        if time < self.last {
            self.rebase(time);
        }
        self.len += 1;
        if time == self.last {
            // Usually the largest key at this time: then appending keeps the order.
            match self.current.back() {
                Some(&(k, _, _)) if k > seq => {
                    let at = self.current.partition_point(|&(k, _, _)| k < seq);
                    self.current.insert(at, (seq, slot, hint));
                }
                _ => self.current.push_back((seq, slot, hint)),
            }
            return;
        }
        let b = (64 - (time ^ self.last).leading_zeros()) as usize;
        self.buckets[b].push(Item {
            time,
            seq,
            slot,
            hint,
        });
        self.nonempty |= 1 << (b - 1);
    }

    /// Makes `current` hold the earliest events; false when the queue is empty.
    fn settle(&mut self) -> bool {
        if !self.current.is_empty() {
            return true;
        }
        if self.nonempty == 0 {
            return false;
        }
        let b = self.nonempty.trailing_zeros() as usize + 1;
        self.nonempty &= !(1 << (b - 1));
        let mut items = std::mem::take(&mut self.buckets[b]);
        self.last = items.iter().map(|it| it.time).fold(u64::MAX, u64::min);
        // Every other item differs from the new minimum below bit `b - 1`: it moves down.
        for &it in &items {
            if it.time == self.last {
                self.current.push_back((it.seq, it.slot, it.hint));
            } else {
                let nb = (64 - (it.time ^ self.last).leading_zeros()) as usize;
                self.buckets[nb].push(it);
                self.nonempty |= 1 << (nb - 1);
            }
        }
        self.current
            .make_contiguous()
            .sort_unstable_by_key(|&(seq, _, _)| seq);
        items.clear();
        self.buckets[b] = items;
        true
    }

    /// Time of the earliest event.
    #[inline]
    fn peek_time(&mut self) -> Option<u64> {
        self.settle().then_some(self.last)
    }

    /// Removes the earliest event: its time and slot.
    #[inline]
    fn pop(&mut self) -> Option<(u64, u32)> {
        if !self.settle() {
            return None;
        }
        let (_, slot, _) = self.current.pop_front()?;
        self.len -= 1;
        self.floor = self.last;
        Some((self.last, slot))
    }

    /// A peek moved `last` up to the next event, and then a driver that stopped at a deadline
    /// in between scheduled something earlier (a scripted crash, say): re-bucket everything
    /// around the earlier time. Rare, so a full pass is fine.
    fn rebase(&mut self, time: u64) {
        let old = self.last;
        let mut all: Vec<Item> = self
            .current
            .drain(..)
            .map(|(seq, slot, hint)| Item {
                time: old,
                seq,
                slot,
                hint,
            })
            .collect();
        for b in &mut self.buckets {
            all.append(b);
        }
        self.nonempty = 0;
        self.last = time;
        for it in all {
            let b = (64 - (it.time ^ time).leading_zeros()) as usize;
            self.buckets[b].push(it);
            self.nonempty |= 1 << (b - 1);
        }
    }

    /// Slot and hint of the `k`-th next event, if it is already known to be due at the
    /// current time (no reordering work is done to find out).
    #[inline]
    fn ahead(&self, k: usize) -> Option<(u32, u32)> {
        self.current.get(k).map(|&(_, slot, hint)| (slot, hint))
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Against a sorted reference, with pushes interleaved with pops as a simulation does.
    #[test]
    fn pops_in_time_then_insertion_order() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut q = EventQueue::new();
        let mut reference = std::collections::BTreeSet::new();
        let (mut now, mut seq) = (0u64, 0u64);
        for round in 0..20_000u32 {
            for _ in 0..rng.gen_range(0..3) {
                seq += 1;
                let t = now + [0, 1, 5, 100, 60_000][rng.gen_range(0..5)];
                q.push(t, seq, round, 0);
                reference.insert((t, seq, round));
            }
            if rng.gen_bool(0.6) {
                let want = reference.pop_first();
                assert_eq!(q.peek_time(), want.map(|w| w.0));
                let got = q.pop();
                assert_eq!(got, want.map(|(t, _, s)| (t, s)));
                if let Some((t, _)) = got {
                    now = t;
                }
            }
            assert_eq!(q.len(), reference.len());
        }
        while let Some((t, _, s)) = reference.pop_first() {
            assert_eq!(q.pop(), Some((t, s)));
        }
        assert_eq!(q.pop(), None);
        assert_eq!(q.peek_time(), None);
    }

    /// Keys name the origin, not the order of pushes: an event pushed later at the current
    /// time may still come first.
    #[test]
    fn same_time_events_pop_in_key_order_whatever_the_push_order() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let mut q = EventQueue::new();
        let mut reference = std::collections::BTreeSet::new();
        let mut now = 0u64;
        for i in 0..20_000u32 {
            let key = rng.gen::<u64>();
            let t = now + [0, 0, 1, 7][rng.gen_range(0..4)];
            q.push(t, key, i, 0);
            reference.insert((t, key, i));
            if rng.gen_bool(0.5) {
                let (t, _, s) = reference.pop_first().expect("pushed");
                assert_eq!(q.pop(), Some((t, s)));
                now = t;
            }
        }
        while let Some((t, _, s)) = reference.pop_first() {
            assert_eq!(q.pop(), Some((t, s)));
        }
    }

    /// A driver that stops at a deadline short of the next event (after peeking at it) may
    /// then schedule something earlier than that event.
    #[test]
    fn push_between_last_pop_and_a_peeked_time() {
        let mut q = EventQueue::new();
        q.push(100, 1, 1, 0);
        q.push(100, 2, 2, 0);
        q.push(300, 3, 3, 0);
        assert_eq!(q.pop(), Some((100, 1)));
        assert_eq!(q.pop(), Some((100, 2)));
        assert_eq!(q.peek_time(), Some(300));
        q.push(150, 4, 4, 0);
        q.push(150, 5, 5, 0);
        q.push(1000, 6, 6, 0);
        q.push(100, 7, 7, 0);
        assert_eq!(q.peek_time(), Some(100));
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(
            order,
            vec![(100, 7), (150, 4), (150, 5), (300, 3), (1000, 6)]
        );
    }
}
