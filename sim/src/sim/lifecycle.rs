//! Churn of links and peers between rounds: the other side of dials and closes, crashes and
//! restarts, partitions and heals, and scheduled submissions and blocks. Each change is
//! counted in the fault counts, traced, and followed by the events it implies (the other
//! side's `Close`, re-dials, a restarted miner's race).

use super::Sim;
use crate::charts::record::Mark;
use crate::config::Groups;
use crate::event::Ev;
use crate::net::partition::assign_groups;
use crate::trace::TraceEv;
use crate::workload;
use rantai_core::{Direction, Millis};

/// The address simulated peer `i` is dialled at.
pub(super) fn peer_addr(i: u32) -> String {
    format!("sim:{i}")
}

impl Sim {
    /// Closes `node`'s side of `(link, epoch)` if it is still on it (the other side closed it):
    /// its unsent uploads go back, and its core learns of it by a `Close` event now, caused
    /// by `closer`.
    pub(super) fn close_remote(&mut self, link: u32, epoch: u32, node: u32, closer: u32) {
        let now = self.clock;
        let n = &mut self.nodes[node as usize];
        let Some(end) = n.end_mut(link) else {
            return;
        };
        if !end.is_current(epoch) {
            return;
        }
        if let Some(unsent) = end.close(now.as_micros()) {
            n.port.refund_upload(unsent, now.as_micros());
        }
        let key = self.nodes[closer as usize].next_key();
        let s = self.shard_of(node);
        self.shards[s]
            .sched
            .schedule(now, key, Ev::Close { link, epoch, node });
    }

    /// Dialer `a` opened `(link, epoch)`: the acceptor's side opens now (closing an older
    /// connection it still thought open) and its core learns of it.
    pub(super) fn accept(&mut self, a: u32, link: u32, epoch: u32) {
        let (_, b) = self.w.net.links.ends(link);
        if !self.w.up[b as usize] {
            return;
        }
        let old = self.nodes[b as usize].end(link).map(|e| e.epoch);
        if let Some(old) = old {
            self.close_remote(link, old, b, a);
        }
        let now = self.clock;
        let Some(end) = self.nodes[b as usize].end_mut(link) else {
            return;
        };
        end.open(epoch, now);
        self.with_ctx(b, |c| c.connected(b, link, epoch, Direction::Inbound, a));
    }

    /// Peer `n` (with discovery) dials learned peer `b`: a new link, dialled now.
    pub(super) fn new_link(&mut self, n: u32, b: u32) {
        let links = &self.w.net.links;
        let existing = self.nodes[n as usize]
            .links()
            .find(|&l| links.ends(l) == (n, b));
        let link = match existing {
            Some(l) => l,
            None => {
                let l = self.w.net.links.add(n, b);
                self.nodes[n as usize].add_end(l);
                self.nodes[b as usize].add_end(l);
                l
            }
        };
        self.with_ctx(n, |c| c.schedule_dial(n, link, Millis::ZERO));
    }

    /// Crashes peer `i`: its connections close at once, the other sides see `Disconnected`.
    pub(super) fn do_crash(&mut self, i: u32, keep_chain: bool) {
        self.metrics.faults.crashes += 1;
        self.fault_fired("crash", i);
        self.chart_mark(Mark::Crash(i));
        let open: Vec<(u32, u32)> = self.nodes[i as usize]
            .ends
            .iter()
            .filter(|e| e.open)
            .map(|e| (e.link, e.epoch))
            .collect();
        for &(link, _) in &open {
            self.with_ctx(i, |c| c.close_side(link, i, "crash"));
        }
        // The other sides close now, not at the barrier: drop the crashed peer's close entries.
        let s = self.shard_of(i);
        self.shards[s]
            .journal
            .retain(|r| !(r.entry.is_structural() && (r.key >> 40) as u32 == i));
        for (link, epoch) in open {
            let other = self.w.net.links.other(link, i);
            self.close_remote(link, epoch, other, i);
        }
        let Some(tip) = self.nodes[i as usize].crash(keep_chain) else {
            return;
        };
        self.checker.peer_down(tip);
        self.w.online -= 1;
        self.w.up[i as usize] = false;
        self.chart_tips();
    }

    /// Restarts peer `i`: its core dials the topology's links it dials at once (the other
    /// sides re-dial by their own schedule; learned addresses are learned again), and its
    /// mining race restarts.
    pub(super) fn do_restart(&mut self, i: u32) {
        self.metrics.faults.restarts += 1;
        self.fault_fired("restart", i);
        self.chart_mark(Mark::Restart(i));
        let core = super::peer_core(&self.w.core, self.w.cfg.discovery, i);
        let tip = self.nodes[i as usize].restart(&core, self.w.cfg.seed, i);
        self.checker.peer_up(tip);
        self.w.online += 1;
        self.w.up[i as usize] = true;
        self.chart_tips();
        let now = self.clock.to_peer();
        let links: Vec<u32> = self.nodes[i as usize].links().collect();
        for l in links {
            let (a, b) = self.w.net.links.ends(l);
            if a == i && self.w.net.links.is_configured(l) {
                if let Some(p) = self.nodes[i as usize].peer.as_mut() {
                    p.add_peer(now, peer_addr(b));
                }
            }
        }
        self.with_ctx(i, |c| {
            c.after_call(i);
            c.refresh_mining(i);
        });
    }

    /// Puts partition `id` in force now.
    pub(super) fn start_partition_with_id(&mut self, id: u32, groups: Groups, oneway: bool) {
        let group = assign_groups(groups, self.nodes.len(), self.w.cfg.seed, id);
        self.metrics.faults.partitions += 1;
        self.fault_fired("partition", id);
        self.chart_mark(Mark::Partition(id));
        self.w.net.partitions.start(id, group, oneway);
    }

    /// Lifts partition `id` now, if it is in force.
    pub(super) fn end_partition(&mut self, id: u32) {
        if self.w.net.partitions.end(id) {
            self.metrics.faults.heals += 1;
            self.checker.healed(self.clock);
            self.fault_fired("heal", id);
            self.chart_mark(Mark::Heal(id));
        }
    }

    /// A partition, heal, crash or restart took effect now: the tips chart marks it.
    fn chart_mark(&mut self, what: Mark) {
        let now = self.clock.as_millis().0;
        self.metrics.charts.mark(now, what);
    }

    /// The online peers' distinct tips changed by a peer going down or up: the tips chart
    /// records the new count.
    fn chart_tips(&mut self) {
        let now = self.clock.as_millis().0;
        let tips = self.checker.tips().len() as u32;
        self.metrics.charts.tips.set(now, tips);
    }

    /// A fault took effect now: it moves the settle horizon and goes into the trace.
    pub(super) fn fault_fired(&mut self, what: &'static str, id: u32) {
        let now = self.clock;
        self.faults.took_effect(now);
        let id = u64::from(id);
        self.trace.rec(now, TraceEv::Fault { what, id });
    }

    /// Scheduled block `k`: its item is submitted at its peer, which mines it at once. A peer
    /// that is down (a crash in the scenario) mines nothing: the block is skipped
    /// ([`Metrics::scheduled`] holds `None` for it). A refused item is a violation.
    ///
    /// [`Metrics::scheduled`]: crate::metrics::Metrics::scheduled
    pub(super) fn scheduled_block(&mut self, k: u32) {
        let Some(b) = self
            .w
            .cfg
            .schedule
            .as_ref()
            .and_then(|s| s.blocks.get(k as usize).copied())
        else {
            return;
        };
        let text = rantai_core::calib::block_text(k as usize, b.bytes);
        let now = self.clock.as_millis();
        let mined = if self.nodes[b.node as usize].is_up() {
            match self.submit(b.node, &text).and_then(|_| self.mine(b.node)) {
                Ok(h) => Some(h),
                Err(e) => {
                    let why = format!("scheduled block {k} at peer {}: {e}", b.node);
                    self.metrics.violation(now, why);
                    None
                }
            }
        } else {
            None
        };
        self.metrics.scheduled.push(mined);
    }

    /// A planned submission fired: item `idx` goes to `node` or the next online peer.
    pub(super) fn scheduled_submit(&mut self, idx: u32, node: u32) {
        let n = self.nodes.len() as u32;
        let Some(target) = workload::pick_online(node, n, |i| self.nodes[i as usize].is_up())
        else {
            return;
        };
        let text = workload::item_text(idx, self.w.cfg.item_size_bytes);
        self.submissions.push((self.now(), target));
        if self.submit(target, &text).is_err() {
            self.metrics.items_refused += 1;
        }
    }
}
