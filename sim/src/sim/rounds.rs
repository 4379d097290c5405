//! Running a round: the shards' events side by side, then each shard books the messages for
//! its peers.

use super::ctx::{self, Ctx, ShardState};
use super::Sim;
use crate::event::Ev;
use crate::node::Node;
use crate::time::SimTime;
use rantai_core::hint::prefetch;

/// Rounds predicted to have fewer events than this per thread (the last round's count) run
/// their shards one after another on one thread, and flushes with fewer messages book them
/// so: handing them to the pool would cost more than it saves. Either way the result is
/// the same.
pub(super) const MIN_EVENTS_PER_THREAD: usize = 2;

/// A shard's peers and state, as a worker gets them.
type ShardMut<'a> = (&'a mut [Node], &'a mut ShardState);
/// Messages for one shard: each sending shard's list.
type Inbound = Vec<(usize, Vec<ctx::Pending>)>;

/// Books message `p` at its receiver (`nodes[to - base]`, in shard `st`): its downlink and
/// the connection's FIFO mark, then the delivery (and its duplicate's). A message whose
/// connection the receiver's side is no longer on books neither (it is dropped on arrival,
/// and must not hold back a newer connection's stream).
fn book_one(nodes: &mut [Node], base: u32, st: &mut ShardState, p: &mut ctx::Pending) {
    let Some(msg) = p.msg.take() else {
        return;
    };
    let n = &mut nodes[(p.to - base) as usize];
    let Ok(e) = n.ends.binary_search_by_key(&p.link, |e| e.link) else {
        debug_assert!(false, "peer {} has no side of link {}", p.to, p.link);
        let copies = 1 + i64::from(p.out.dup_extra_ms.is_some());
        st.counts
            .in_flight
            .sent(crate::net::is_background(&msg), -copies);
        return;
    };
    let arrival = if n.ends[e].is_current(p.epoch) {
        p.out.arrive(p.bytes, &mut n.port, &mut n.ends[e].fifo_in)
    } else {
        p.out.unbooked()
    };
    let (link, epoch, to) = (p.link, p.epoch, p.to);
    if let Some(at) = arrival.duplicate_at {
        let msg = msg.clone();
        let ev = Ev::Deliver {
            link,
            epoch,
            to,
            msg,
        };
        st.sched.schedule(at, p.dup_key, ev);
    }
    let ev = Ev::Deliver {
        link,
        epoch,
        to,
        msg,
    };
    st.sched.schedule(arrival.at, p.key, ev);
}

impl Sim {
    /// Every shard handles its events before `end`: side by side on the pool when the last
    /// round was big enough to pay for it (a prediction: the choice changes no result), else
    /// one shard after another here.
    pub(super) fn run_shards(&mut self, end: SimTime) {
        let w = &self.w;
        let chunk = self.chunk;
        let now = self.clock;
        let work = |(k, (nodes, st)): (usize, (&mut [Node], &mut ShardState))| {
            let mut ctx = Ctx {
                w,
                nodes,
                base: (k * chunk) as u32,
                st,
                now,
            };
            ctx.run_until(end);
        };
        let big = self.last_round_events >= (MIN_EVENTS_PER_THREAD * self.threads) as u64;
        let mut jobs: Vec<(usize, ShardMut<'_>)> = self
            .nodes
            .chunks_mut(chunk)
            .zip(self.shards.iter_mut())
            .enumerate()
            .collect();
        match &mut self.pool {
            Some(pool) if big => {
                use std::sync::atomic::{AtomicU64, Ordering};
                let threads = pool.threads() as u64;
                let busy = AtomicU64::new(0);
                let started = std::time::Instant::now();
                pool.each_mut(&mut jobs, |_, (k, (nodes, st))| {
                    let t = std::time::Instant::now();
                    work((*k, (&mut **nodes, &mut **st)));
                    busy.fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
                });
                let round = started.elapsed().as_nanos() as u64;
                self.pool_ns += round * threads;
                self.busy_ns += busy.into_inner();
            }
            _ => {
                for (k, (nodes, st)) in jobs {
                    work((k, (nodes, st)));
                }
            }
        }
        self.last_round_events = self.shards.iter().map(|s| s.counts.events).sum();
    }

    /// Books every message sent since the last flush at its receiver, in `(sent, key)` order:
    /// the receiver's downlink and the connection's FIFO order, then the delivery event. Each
    /// shard books its own peers' messages, side by side when there are enough of them.
    pub(super) fn flush(&mut self) {
        let n = self.shards.len();
        let mut inbound: Vec<Inbound> = (0..n).map(|_| Vec::new()).collect();
        let mut total = 0;
        for (src, s) in self.shards.iter_mut().enumerate() {
            for (d, v) in s.outbox.iter_mut().enumerate() {
                if !v.is_empty() {
                    total += v.len();
                    inbound[d].push((src, std::mem::take(v)));
                }
            }
        }
        if total == 0 {
            return;
        }
        let chunk = self.chunk;
        let book = |d: usize, nodes: &mut [Node], st: &mut ShardState, lists: &mut Inbound| {
            let base = (d * chunk) as u32;
            // One sender shard: its list is booked where it is, else the lists are merged.
            let mut inbox = std::mem::take(&mut st.inbox);
            let one = lists.len() == 1;
            if !one {
                for (_, v) in lists.iter_mut() {
                    inbox.append(v);
                }
            }
            let msgs: &mut Vec<ctx::Pending> = match lists.first_mut() {
                Some((_, v)) if one => v,
                _ => &mut inbox,
            };
            // Keys are unique, so any sort gives this order; the unstable one allocates nothing.
            msgs.sort_unstable_by_key(|p| (p.sent, p.key));
            // Each booking reads a cold receiver's node and connection end: start those
            // loads a few messages ahead.
            for i in 0..msgs.len() {
                if let Some(p) = msgs.get(i + 8) {
                    if let Some(n) = nodes.get((p.to - base) as usize) {
                        prefetch(&n.ends);
                        prefetch(n.port_ref());
                    }
                }
                if let Some(p) = msgs.get(i + 3) {
                    if let Some(n) = nodes.get((p.to - base) as usize) {
                        if let Some(e) = n.end(p.link) {
                            prefetch(e);
                        }
                    }
                }
                book_one(nodes, base, st, &mut msgs[i]);
            }
            msgs.clear();
            inbox.clear();
            st.inbox = inbox;
        };
        let mut jobs: Vec<(ShardMut<'_>, Inbound)> = self
            .nodes
            .chunks_mut(chunk)
            .zip(self.shards.iter_mut())
            .zip(inbound)
            .collect();
        match &mut self.pool {
            Some(pool) if total >= MIN_EVENTS_PER_THREAD * self.threads => {
                pool.each_mut(&mut jobs, |d, ((nodes, st), lists)| {
                    book(d, nodes, st, lists)
                });
            }
            _ => {
                for (d, ((nodes, st), lists)) in jobs.iter_mut().enumerate() {
                    book(d, nodes, st, lists);
                }
            }
        }
        let returned: Vec<Inbound> = jobs.into_iter().map(|(_, lists)| lists).collect();
        // The emptied lists go back to their senders' outboxes, keeping their capacity.
        for (d, lists) in returned.into_iter().enumerate() {
            for (src, v) in lists {
                self.shards[src].outbox[d] = v;
            }
        }
    }
}
