//! Churn of links and peers: dials and re-dials, connection closes, crashes and restarts,
//! partitions and heals, and scheduled submissions. Each change is counted in the fault
//! counts, traced, and followed by the events it implies (the other side's `Close`, re-dials,
//! a restarted miner's race).

use super::Sim;
use crate::charts::record::Mark;
use crate::config::Groups;
use crate::event::Ev;
use crate::net::partition::assign_groups;
use crate::trace::TraceEv;
use crate::workload;
use rantai_core::{Direction, Input, Millis};

/// The address simulated peer `i` is dialled at.
pub(super) fn peer_addr(i: u32) -> String {
    format!("sim:{i}")
}

impl Sim {
    /// Dials `link` after `delay`, superseding any dial already pending on it.
    pub(super) fn schedule_dial(&mut self, link: u32, delay: Millis) {
        let gen = self.net.links.next_dial(link);
        let at = self.sched.now().add(delay);
        self.sched.schedule(at, Ev::Dial { link, gen });
    }

    /// Peer `n`'s core asks to dial `addr` (`sim:<peer>`): the attempt on the link from `n`
    /// to that peer is an event now, superseding any pending one. With discovery, a learned
    /// address gets a new link; an address that names no other peer fails at once.
    pub(super) fn dial_addr(&mut self, n: u32, addr: &str) {
        let peers = self.nodes.len() as u32;
        let target = addr
            .strip_prefix("sim:")
            .and_then(|b| b.parse::<u32>().ok())
            .filter(|&b| b < peers && b != n);
        let Some(b) = target else {
            if let Some(p) = self.nodes[n as usize].peer.as_mut() {
                let addr = addr.to_string();
                p.handle(self.sched.now().to_peer(), Input::DialFailed { addr });
                self.after_call(n);
            }
            return;
        };
        let existing = self.nodes[n as usize]
            .links
            .iter()
            .copied()
            .find(|&l| self.net.links.ends(l) == (n, b));
        let link = match existing {
            Some(l) => l,
            None => {
                debug_assert!(
                    self.cfg.discovery,
                    "peer {n} dials {addr}, not one of its links"
                );
                let l = self.net.links.add(n, b);
                self.nodes[n as usize].links.push(l);
                self.nodes[b as usize].links.push(l);
                l
            }
        };
        self.schedule_dial(link, Millis::ZERO);
    }

    /// A dial fired: opens the connection, or fails (a side down, or a partition between
    /// them) and tells the dialer's core, which backs off.
    pub(super) fn dial(&mut self, link: u32, gen: u32) {
        if !self.net.links.dial_due(link, gen) {
            self.metrics.cancelled_events += 1;
            return;
        }
        let now = self.sched.now();
        let (a, b) = self.net.links.ends(link);
        let up = self.nodes[a as usize].is_up() && self.nodes[b as usize].is_up();
        let p = &self.net.partitions;
        let ok = up && !p.blocked(a, b) && !p.blocked(b, a);
        self.trace.rec(now, TraceEv::Dial { link, a, b, ok });
        if !ok {
            self.metrics.faults.dials_failed += 1;
            if let Some(p) = self.nodes[a as usize].peer.as_mut() {
                p.handle(now.to_peer(), Input::DialFailed { addr: peer_addr(b) });
                self.after_call(a);
            }
            return;
        }
        self.metrics.faults.dials_ok += 1;
        let id = self.net.links.open(link, now);
        for (node, direction, other) in [(a, Direction::Outbound, b), (b, Direction::Inbound, a)] {
            if let Some(p) = self.nodes[node as usize].peer.as_mut() {
                let addr = Some(peer_addr(other));
                let input = Input::Connected {
                    peer: id,
                    direction,
                    addr,
                };
                p.handle(now.to_peer(), input);
            }
            self.after_call(node);
        }
    }

    /// Closes a link from `closer`'s side: the other side learns of it now, the dialer re-dials.
    pub(super) fn close_link(&mut self, link: u32, closer: u32, reason: &'static str) {
        let Some((epoch, other)) = self.net.links.close(link, closer) else {
            return;
        };
        let now = self.sched.now();
        let now_us = now.as_micros();
        let (a, b) = self.net.links.ends(link);
        for from in [a, b] {
            if let Some(unsent) = self.net.links.take_unsent(link, from, now_us) {
                self.nodes[from as usize].port.refund_upload(unsent, now_us);
            }
        }
        let node = closer;
        self.trace.rec(now, TraceEv::Close { link, node, reason });
        let node = other;
        self.sched.schedule(now, Ev::Close { link, epoch, node });
    }

    /// Crashes peer `i`: its connections close at once, the other sides see `Disconnected`.
    pub(super) fn do_crash(&mut self, i: u32, keep_chain: bool) {
        self.metrics.faults.crashes += 1;
        self.fault_fired("crash", i);
        self.chart_mark(Mark::Crash(i));
        let Some(tip) = self.nodes[i as usize].crash(keep_chain) else {
            return;
        };
        self.checker.peer_down(tip);
        self.online -= 1;
        self.chart_tips();
        let links = self.nodes[i as usize].links.clone();
        for l in links {
            self.close_link(l, i, "crash");
        }
    }

    /// Restarts peer `i`: its core dials the topology's links it dials at once (the other
    /// sides re-dial by their own schedule; learned addresses are learned again), and its
    /// mining race restarts.
    pub(super) fn do_restart(&mut self, i: u32) {
        self.metrics.faults.restarts += 1;
        self.fault_fired("restart", i);
        self.chart_mark(Mark::Restart(i));
        let core = super::peer_core(&self.core, self.cfg.discovery, i);
        let tip = self.nodes[i as usize].restart(&core, self.cfg.seed, i);
        self.checker.peer_up(tip);
        self.online += 1;
        self.chart_tips();
        let links = self.nodes[i as usize].links.clone();
        for l in links {
            let (a, b) = self.net.links.ends(l);
            if a == i && self.net.links.is_configured(l) {
                if let Some(p) = self.nodes[i as usize].peer.as_mut() {
                    p.add_peer(self.sched.now().to_peer(), peer_addr(b));
                }
            }
        }
        self.after_call(i);
        self.refresh_mining(i);
    }

    /// Puts partition `id` in force now.
    pub(super) fn start_partition_with_id(&mut self, id: u32, groups: Groups, oneway: bool) {
        let group = assign_groups(groups, self.nodes.len(), self.cfg.seed, id);
        self.metrics.faults.partitions += 1;
        self.fault_fired("partition", id);
        self.chart_mark(Mark::Partition(id));
        self.net.partitions.start(id, group, oneway);
    }

    /// Lifts partition `id` now, if it is in force.
    pub(super) fn end_partition(&mut self, id: u32) {
        if self.net.partitions.end(id) {
            self.metrics.faults.heals += 1;
            self.checker.healed(self.sched.now());
            self.fault_fired("heal", id);
            self.chart_mark(Mark::Heal(id));
        }
    }

    /// A partition, heal, crash or restart took effect now: the tips chart marks it.
    fn chart_mark(&mut self, what: Mark) {
        let now = self.sched.now().as_millis().0;
        self.metrics.charts.mark(now, what);
    }

    /// The online peers' distinct tips changed by a peer going down or up: the tips chart
    /// records the new count.
    fn chart_tips(&mut self) {
        let now = self.sched.now().as_millis().0;
        let tips = self.checker.tips().len() as u32;
        self.metrics.charts.tips.set(now, tips);
    }

    /// A fault took effect now: it moves the settle horizon and goes into the trace.
    pub(super) fn fault_fired(&mut self, what: &'static str, id: u32) {
        let now = self.sched.now();
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
            .cfg
            .schedule
            .as_ref()
            .and_then(|s| s.blocks.get(k as usize).copied())
        else {
            return;
        };
        let text = rantai_core::calib::block_text(k as usize, b.bytes);
        let now = self.sched.now().as_millis();
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
        let text = workload::item_text(idx, self.cfg.item_size_bytes);
        self.submissions.push((self.now(), target));
        if self.submit(target, &text).is_err() {
            self.metrics.items_refused += 1;
        }
    }
}
