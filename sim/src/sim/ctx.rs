//! A peer's work: everything that happens at one peer when one of its events fires or the run
//! calls into it, touching only that peer's node and its shard's queue, outbox, counters
//! and journal. What the rest of the run must see goes into the journal; messages go into
//! the outbox and reach their receivers between rounds ([`super::Sim`]).

use super::journal::{Counts, Entry, Record};
use super::lifecycle::peer_addr;
use super::World;
use crate::event::Ev;
use crate::metrics::reason_label;
use crate::net::links::{conn_id, split_conn_id};
use crate::net::model::{Outgoing, SendPath};
use crate::net::{is_background, wire_size, DropReason};
use crate::node::Node;
use crate::prefetch;
use crate::sched::Scheduler;
use crate::time::SimTime;
use crate::trace::{fold, TraceEv};
use rand::Rng;
use rantai_core::{BlockHash, ConnId, Direction, Event, Input, Message, Output, Peer};

/// A message on its way: the sender's half decided, the receiver's half (its downlink and
/// the FIFO mark) applied between rounds, in `(sent, key)` order.
pub(crate) struct Pending {
    pub sent: u64,
    pub key: u64,
    /// The duplicate's key, if the message is duplicated.
    pub dup_key: u64,
    pub to: u32,
    pub link: u32,
    pub epoch: u32,
    pub bytes: u64,
    pub out: Outgoing,
    /// The message (taken when it is booked).
    pub msg: Option<Message>,
}

/// A shard's own state: its peers' queue, and what their work leaves for the barrier.
pub(crate) struct ShardState {
    pub sched: Scheduler<Ev>,
    pub journal: Vec<Record>,
    /// Messages sent, by the receiver's shard.
    pub outbox: Vec<Vec<Pending>>,
    /// The messages to this shard's peers while they are booked (kept for its capacity).
    pub inbox: Vec<Pending>,
    pub counts: Counts,
    /// The peer whose message is being handled, while it is (the sender a block's acceptance
    /// is credited to in the metrics); read only by the metrics, never by the run.
    delivering_from: Option<u32>,
}

impl ShardState {
    /// A shard of a run with `shards` shards.
    pub(crate) fn new(shards: usize) -> ShardState {
        ShardState {
            sched: Scheduler::new(),
            journal: Vec::new(),
            outbox: (0..shards).map(|_| Vec::new()).collect(),
            inbox: Vec::new(),
            counts: Counts::default(),
            delivering_from: None,
        }
    }
}

/// The context of a peer's work: the run as every shard reads it, the nodes this context may
/// touch (`nodes[i - base]`), its shard's state and the current time.
pub(crate) struct Ctx<'a> {
    pub w: &'a World,
    pub nodes: &'a mut [Node],
    pub base: u32,
    pub st: &'a mut ShardState,
    pub now: SimTime,
}

impl Ctx<'_> {
    #[inline]
    pub(crate) fn node(&mut self, i: u32) -> &mut Node {
        &mut self.nodes[(i - self.base) as usize]
    }

    /// Handles the shard's events before `end`.
    pub(crate) fn run_until(&mut self, end: SimTime) {
        while let Some(t) = self.st.sched.next_time() {
            if t >= end {
                break;
            }
            let Some(ev) = self.st.sched.pop() else {
                break;
            };
            self.now = t;
            prefetch::upcoming_events(&self.st.sched, self.nodes, self.base);
            self.st.counts.events += 1;
            self.dispatch(ev);
        }
    }

    /// Folds a trace event into peer `n`'s hash (and journals its line while lines are
    /// written).
    #[inline]
    pub(crate) fn rec(&mut self, n: u32, ev: TraceEv) {
        let now = self.now;
        fold(&mut self.node(n).trace, now, ev);
        if self.w.trace_lines {
            self.journal(n, Entry::Trace(ev));
        }
    }

    /// Journals `entry` for peer `n` now.
    #[inline]
    pub(crate) fn journal(&mut self, n: u32, entry: Entry) {
        let key = self.node(n).next_key();
        let t = self.now.as_millis().0;
        self.st.journal.push(Record { t, key, entry });
    }

    /// Schedules `ev` for peer `n` (one of this shard's) at `at`, caused by `n`.
    #[inline]
    pub(crate) fn schedule(&mut self, n: u32, at: SimTime, ev: Ev) {
        let key = self.node(n).next_key();
        let at = at.max(self.now);
        self.st.sched.schedule(at, key, ev);
    }

    fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::Deliver {
                link,
                epoch,
                to,
                msg,
            } => self.deliver(link, epoch, to, msg),
            Ev::Timer { node, gen } => {
                let now = self.now;
                let n = self.node(node);
                if !n.fire_timer(gen) {
                    self.st.counts.cancelled_events += 1;
                    return;
                }
                if let Some(p) = n.peer.as_mut() {
                    p.handle_timeout(now.to_peer());
                }
                self.rec(node, TraceEv::Timer { node });
                self.after_call(node);
            }
            Ev::Mine { node, gen } => self.race_fired(node, gen),
            Ev::Dial { link, gen, node } => self.dial(node, link, gen),
            Ev::Close { link, epoch, node } => {
                let now = self.now;
                if let Some(p) = self.node(node).peer.as_mut() {
                    let peer = conn_id(link, epoch);
                    p.handle(now.to_peer(), Input::Disconnected { peer });
                    self.after_call(node);
                }
            }
        }
    }

    // ----- mining -----

    /// Gives peer `node` the mining policy of the run's phase and makes sure a race runs
    /// while it has a job.
    pub(crate) fn refresh_mining(&mut self, node: u32) {
        let now = self.now;
        let mining = &self.w.mining;
        let n = self.node(node);
        let policy = mining.policy(n.miner.has_power());
        let Some(peer) = n.peer.as_mut() else {
            return;
        };
        if peer.mine_policy() != policy {
            peer.set_mine_policy(now.to_peer(), policy);
            self.after_call(node);
        }
        self.arm(node);
    }

    /// Starts peer `node`'s race if it has a job out, may mine and is not racing already.
    fn arm(&mut self, node: u32) {
        if !self.w.mining.may_mine() {
            return;
        }
        let interval = self.w.mining.interval();
        let now = self.now;
        let n = self.node(node);
        if !n.peer.as_ref().is_some_and(Peer::is_mining) {
            return;
        }
        if let Some((dt, gen)) = n.miner.arm(interval) {
            self.schedule(node, now.add(dt), Ev::Mine { node, gen });
        }
    }

    fn race_fired(&mut self, node: u32, gen: u32) {
        if !self.node(node).miner.fire(gen) {
            self.st.counts.cancelled_events += 1;
            return;
        }
        if self.w.mining.may_mine() {
            self.mine_block(node, true);
        }
        // Mining a block moves the tip and core sends a new job; without a move (the cap
        // reached, say) the job in progress keeps racing.
        self.arm(node);
    }

    /// Peer `node` mines a block now (`raced`: its race fired; else on request): its hash.
    pub(crate) fn mine_block(&mut self, node: u32, raced: bool) -> Option<BlockHash> {
        let now = self.now;
        let block_size = self.w.block_size;
        let n = self.node(node);
        let peer = n.peer.as_mut()?;
        let template = if raced {
            peer.job_template(now.to_peer())?
        } else {
            peer.block_template(now.to_peer())
        };
        let nonce = n.miner.nonce();
        let block = template.into_block(nonce);
        let checked = n
            .peer
            .as_ref()
            .map(|p| p.chain().check_block(&block, now.to_peer()));
        if let Some(Err(e)) = checked {
            let what = format!("peer {node} mined an invalid block: {e}");
            self.journal(node, Entry::Violation(what));
        }
        let (hash, height) = (block.hash(), block.height());
        let size = block.size() as u64 + block_size;
        self.journal(
            node,
            Entry::Mined {
                hash,
                height,
                size,
                raced,
            },
        );
        self.rec(node, TraceEv::Mined { node, height, hash });
        if let Some(p) = self.node(node).peer.as_mut() {
            p.handle(now.to_peer(), Input::Mined(block));
        }
        self.after_call(node);
        Some(hash)
    }

    // ----- messages -----

    fn deliver(&mut self, link: u32, epoch: u32, to: u32, msg: Message) {
        let now = self.now;
        self.st.counts.in_flight.arrived(is_background(&msg));
        let from = self.w.net.links.other(link, to);
        let kind = msg.kind_index();
        let current = self.node(to).end(link).is_some_and(|e| e.is_current(epoch));
        if !current {
            self.st.counts.closed_drops += 1;
            let why = DropReason::Closed.label();
            self.rec(
                to,
                TraceEv::Drop {
                    from,
                    to,
                    kind,
                    why,
                },
            );
            return;
        }
        let bytes = wire_size(&msg, self.w.block_size);
        self.rec(
            to,
            TraceEv::Deliver {
                from,
                to,
                kind,
                bytes,
            },
        );
        let (block_size, rate) = (self.w.block_size, self.w.cfg.compact_failure);
        let n = &mut self.nodes[(to - self.base) as usize];
        let Some(peer) = n.peer.as_mut() else {
            return;
        };
        // What the message brings that the peer already has (judged before it is handled).
        match &msg {
            Message::Block { block } if peer.chain().contains(&block.hash()) => {
                self.st.counts.dup_block_deliveries += 1;
            }
            Message::Inv { hashes } => {
                let known = hashes.iter().filter(|h| peer.chain().contains(h)).count();
                self.st.counts.redundant_inv_hashes += known as u64;
            }
            _ => {}
        }
        let peer_id = conn_id(link, epoch);
        if let Message::CmpctBlock(cb) = &msg {
            // The environment, not the protocol: whether this peer's mempool holds the
            // virtual payload of a block it does not have yet. Core decides what to do.
            let block = cb.hash();
            if block_size > 0
                && rate > 0.0
                && !peer.chain().knows(&block)
                && n.payload_rng.gen_bool(rate)
            {
                self.st.counts.compact.payload_gaps += 1;
                peer.handle(now.to_peer(), Input::PayloadMissing { block });
            }
        }
        peer.handle(now.to_peer(), Input::Message { peer: peer_id, msg });
        self.st.delivering_from = Some(from);
        self.after_call(to);
        self.st.delivering_from = None;
    }

    fn send(&mut self, from: u32, to_conn: ConnId, msg: Message) {
        let (link, epoch) = split_conn_id(to_conn);
        let now = self.now;
        let w = self.w;
        let to = w.net.links.other(link, from);
        let n = &mut self.nodes[(from - self.base) as usize];
        let Ok(e) = n.ends.binary_search_by_key(&link, |e| e.link) else {
            return;
        };
        if !n.ends[e].is_current(epoch) {
            return;
        }
        let kind = msg.kind_index();
        let bytes = wire_size(&msg, w.block_size);
        let c = &mut self.st.counts;
        c.msgs[kind] += 1;
        c.bytes[kind] += bytes;
        let dropped = if !w.net.partitions.is_empty() && w.net.partitions.blocked(from, to) {
            Some(DropReason::Partition)
        } else {
            None
        };
        let out = match dropped {
            Some(why) => Err(why),
            None => {
                let end = &mut n.ends[e];
                let path = SendPath {
                    from_region: w.net.regions[from as usize],
                    to_region: w.net.regions[to as usize],
                    sender: &mut n.port,
                    receiver_down_bps: w.net.down_bps[to as usize],
                    latency_ms: w.net.link_latency(link),
                    window: w.tcp_windows.then_some(&mut end.window),
                };
                w.net.model.send(bytes, now, path).ok_or(DropReason::Loss)
            }
        };
        let out = match out {
            Ok(out) => out,
            Err(why) => {
                match why {
                    DropReason::Partition => c.partition_drops += 1,
                    DropReason::Loss => c.lost += 1,
                    DropReason::Closed => c.closed_drops += 1,
                }
                let why = why.label();
                self.rec(
                    from,
                    TraceEv::Drop {
                        from,
                        to,
                        kind,
                        why,
                    },
                );
                return;
            }
        };
        if out.delay_ms > 0 {
            c.delayed += 1;
        }
        if let Some(slot) = out.upload {
            n.ends[e].book_upload(now.as_micros(), slot);
        }
        let dup = out.dup_extra_ms.is_some();
        c.duplicated += u64::from(dup);
        c.in_flight.sent(is_background(&msg), 1 + i64::from(dup));
        let key = n.next_key();
        let dup_key = if dup { n.next_key() } else { 0 };
        self.st.outbox[to as usize / w.chunk].push(Pending {
            sent: now.as_millis().0,
            key,
            dup_key,
            to,
            link,
            epoch,
            bytes,
            out,
            msg: Some(msg),
        });
    }

    /// Drains and executes the outputs of peer `n`, then re-arms its timer if it moved.
    pub(crate) fn after_call(&mut self, n: u32) {
        let node = self.node(n);
        if let Some(p) = node.peer.as_ref() {
            prefetch::pending_sends(p, &node.ends);
        }
        // Outputs are taken and executed one at a time (no intermediate buffer). The one call
        // back into this peer, a dial of an address that names no other peer (discovery),
        // drains the rest of the queue in its own `after_call`, so the order still holds.
        while let Some(out) = self.node(n).peer.as_mut().and_then(Peer::poll) {
            self.execute(n, out);
        }
        let now = self.now;
        if let Some((at, gen)) = self.node(n).rearm_timer(now) {
            self.schedule(n, at, Ev::Timer { node: n, gen });
        }
    }

    fn execute(&mut self, n: u32, out: Output) {
        match out {
            Output::Send { to, msg } => self.send(n, to, msg),
            Output::LoadBlocks { .. } => {
                unreachable!("simulated peers keep every body (body_cache_blocks is None)")
            }
            Output::Disconnect { peer, reason } => {
                let (link, epoch) = split_conn_id(peer);
                if self.node(n).end(link).is_some_and(|e| e.is_current(epoch)) {
                    let label = reason_label(&reason);
                    self.journal(n, Entry::Disconnect(label));
                    self.close_side(link, n, label);
                }
            }
            Output::Dial { addr } => self.dial_addr(n, &addr),
            Output::Mine(Some(_)) => self.arm(n),
            Output::Mine(None) => self.node(n).miner.cancel(),
            Output::Event(ev) => self.on_event(n, ev),
        }
    }

    fn on_event(&mut self, n: u32, ev: Event) {
        match ev {
            Event::BlockAccepted { block, .. } => {
                let (hash, height) = (block.hash(), block.height());
                self.rec(
                    n,
                    TraceEv::Accepted {
                        node: n,
                        height,
                        hash,
                    },
                );
                let parent_held = self
                    .node(n)
                    .peer
                    .as_ref()
                    .is_some_and(|p| p.chain().contains(&block.prev()));
                let via = self.st.delivering_from;
                self.journal(
                    n,
                    Entry::Accepted {
                        hash,
                        via,
                        parent_held,
                    },
                );
            }
            Event::BlockRejected { reason, .. } => self.journal(n, Entry::Rejected(reason.kind())),
            Event::CompactBlock { outcome, .. } => self.st.counts.compact.count(outcome),
            Event::TipChanged { hash, height } => {
                self.rec(
                    n,
                    TraceEv::Tip {
                        node: n,
                        height,
                        hash,
                    },
                );
                let old = std::mem::replace(&mut self.node(n).tip, hash);
                self.journal(n, Entry::Tip { old, new: hash });
            }
            Event::Reorg { left, .. } => {
                let depth = left.len() as u64;
                self.rec(n, TraceEv::Reorg { node: n, depth });
                let c = &mut self.st.counts;
                c.reorgs += 1;
                c.deepest_reorg = c.deepest_reorg.max(depth);
            }
            _ => {}
        }
    }

    // ----- links -----

    /// Peer `n` (the dialer) dials `link` after `delay`, superseding any pending dial of it.
    pub(crate) fn schedule_dial(&mut self, n: u32, link: u32, delay: rantai_core::Millis) {
        let Some(end) = self.node(n).end_mut(link) else {
            return;
        };
        end.dial_gen = end.dial_gen.wrapping_add(1);
        let gen = end.dial_gen;
        let at = self.now.add(delay);
        self.schedule(n, at, Ev::Dial { link, gen, node: n });
    }

    /// Peer `n`'s core asks to dial `addr` (`sim:<peer>`): the attempt on the link from `n`
    /// to that peer is an event now, superseding any pending one. With discovery, a learned
    /// address gets a new link between rounds; an address that names no other peer fails at
    /// once.
    fn dial_addr(&mut self, n: u32, addr: &str) {
        let peers = self.w.peers;
        let target = addr
            .strip_prefix("sim:")
            .and_then(|b| b.parse::<u32>().ok())
            .filter(|&b| b < peers && b != n);
        let Some(b) = target else {
            let now = self.now;
            if let Some(p) = self.node(n).peer.as_mut() {
                let addr = addr.to_string();
                p.handle(now.to_peer(), Input::DialFailed { addr });
                self.after_call(n);
            }
            return;
        };
        let links = &self.w.net.links;
        let existing = self.nodes[(n - self.base) as usize]
            .links()
            .find(|&l| links.ends(l) == (n, b));
        match existing {
            Some(l) => self.schedule_dial(n, l, rantai_core::Millis::ZERO),
            None => {
                debug_assert!(
                    self.w.cfg.discovery,
                    "peer {n} dials {addr}, not one of its links"
                );
                self.journal(n, Entry::NewLink { to: b });
            }
        }
    }

    /// A dial fired at dialer `a`: opens its side of the connection (the acceptor's opens
    /// at the barrier), or fails (a side down, or a partition between them) and tells the
    /// dialer's core, which backs off.
    fn dial(&mut self, a: u32, link: u32, gen: u32) {
        let due = self
            .node(a)
            .end(link)
            .is_some_and(|e| e.dial_gen == gen && !e.open);
        if !due {
            self.st.counts.cancelled_events += 1;
            return;
        }
        let now = self.now;
        let (_, b) = self.w.net.links.ends(link);
        let up = self.w.up[a as usize] && self.w.up[b as usize];
        let p = &self.w.net.partitions;
        let ok = up && !p.blocked(a, b) && !p.blocked(b, a);
        self.rec(a, TraceEv::Dial { link, a, b, ok });
        if !ok {
            self.st.counts.dials_failed += 1;
            if let Some(p) = self.node(a).peer.as_mut() {
                p.handle(now.to_peer(), Input::DialFailed { addr: peer_addr(b) });
                self.after_call(a);
            }
            return;
        }
        self.st.counts.dials_ok += 1;
        let Some(end) = self.node(a).end_mut(link) else {
            return;
        };
        let epoch = end.epoch.wrapping_add(1);
        end.open(epoch, now);
        self.journal(a, Entry::Connected { link, epoch });
        self.connected(a, link, epoch, Direction::Outbound, b);
    }

    /// Peer `n`'s side of `(link, epoch)` is open: its core learns of it now.
    pub(crate) fn connected(
        &mut self,
        n: u32,
        link: u32,
        epoch: u32,
        direction: Direction,
        other: u32,
    ) {
        let now = self.now;
        if let Some(p) = self.node(n).peer.as_mut() {
            let input = Input::Connected {
                peer: conn_id(link, epoch),
                direction,
                addr: Some(peer_addr(other)),
            };
            p.handle(now.to_peer(), input);
        }
        self.after_call(n);
    }

    /// Closes `n`'s side of its current connection on `link` now (its unsent uploads go
    /// back to its uplink); the other side follows at the barrier. Returns the epoch closed.
    pub(crate) fn close_side(&mut self, link: u32, n: u32, reason: &'static str) -> Option<u32> {
        let now_us = self.now.as_micros();
        let node = self.node(n);
        let end = node.end_mut(link)?;
        let epoch = end.epoch;
        let unsent = end.close(now_us)?;
        node.port.refund_upload(unsent, now_us);
        self.rec(
            n,
            TraceEv::Close {
                link,
                node: n,
                reason,
            },
        );
        self.journal(n, Entry::Closed { link, epoch });
        Some(epoch)
    }
}
