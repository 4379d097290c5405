//! Whether a connection still works: keepalive pings, loss probes that prove a request lost
//! (and re-send it), and stalls that move requests to other neighbours.

use super::config::{MAX_MISSED_PONGS, MAX_PROBE_BACKOFF_SHIFT};
use super::conn::Probe;
use super::timers::Timer;
use super::{DisconnectReason, Peer};
use crate::message::{Hashes, Message, Tip};
use crate::types::{BlockHash, ConnId, Millis};
use rand::Rng;

impl Peer {
    /// Runs connection `id`'s timers that are due at `now`.
    pub(super) fn check_timers(&mut self, id: ConnId, now: Millis) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if !c.is_ready() {
            if c.timers.is_due(Timer::Handshake, now) {
                self.disconnect(id, DisconnectReason::HandshakeTimeout);
            }
            return;
        }
        if c.timers.is_set(Timer::Pong) {
            if c.timers.is_due(Timer::Pong, now) {
                // Several unanswered pings with no other traffic in between, so one lost
                // message on a lossy path does not cost the connection.
                c.ping_ended(id, &mut self.timers);
                c.missed_pongs += 1;
                if c.missed_pongs >= MAX_MISSED_PONGS {
                    self.disconnect(id, DisconnectReason::PingTimeout);
                    return;
                }
            }
        } else if let Some(interval) = self.config.ping_interval {
            if c.timers.is_due(Timer::Ping, now) {
                let nonce = self.rng.gen();
                let pong_by = now.add(self.config.pong_timeout);
                c.ping_sent(id, &mut self.timers, nonce, pong_by);
                c.ping_seq = c.sent_seq;
                c.sent_seq += 1;
                self.timers
                    .set(id, &mut c.timers, Timer::Ping, Some(now.add(interval)));
                let tip = self.tip();
                self.send(id, Message::Ping { nonce, tip });
                self.resend_stale_items(id, interval);
            }
        }
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if c.timers.is_due(Timer::Probe, now) {
            self.timers.set(id, &mut c.timers, Timer::Probe, None);
            if c.probe.take().is_some() {
                // Unanswered: lost, or queued behind a long answer on a busy link. Back off, so
                // probes never pile up behind the very queue they wait for.
                c.probe_misses = c.probe_misses.saturating_add(1);
            }
            if !c.requests().is_empty() || c.chain_requested() {
                let nonce = self.rng.gen();
                c.probe = Some(Probe {
                    nonce,
                    seq: c.sent_seq,
                    sent_at: now,
                });
                c.sent_seq += 1;
                // At most 8 probe delays apart: on a lossy link most misses are plain loss.
                let backoff = 2u64 << c.probe_misses.min(MAX_PROBE_BACKOFF_SHIFT);
                let wait_ms = c
                    .probe_delay(self.config.probe_delay)
                    .0
                    .saturating_mul(backoff);
                let wait = Millis(wait_ms.min(self.config.request_timeout.0));
                self.timers
                    .set(id, &mut c.timers, Timer::Probe, Some(now.add(wait)));
                let tip = self.tip();
                self.send(id, Message::Ping { nonce, tip });
            }
        }
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let stalled_blocks = c.requests().first().is_some_and(|r| now >= r.deadline);
        let stalled_chain = c.timers.is_due(Timer::Chain, now);
        if stalled_blocks || stalled_chain {
            self.stall(id);
        }
    }

    /// A request from `id` went unanswered: count a strike, re-queue its blocks with other
    /// neighbours, and let catch-up ask everyone again.
    pub(super) fn stall(&mut self, id: ConnId) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        c.strikes += 1;
        self.timers.set(id, &mut c.timers, Timer::Chain, None);
        let dropped: Vec<BlockHash> = c.edit_requests(id, &mut self.timers, |reqs| {
            reqs.drain(..).map(|r| r.hash).collect()
        });
        c.to_fetch.clear();
        let strikes = c.strikes;
        self.release_requests(id, &dropped);
        if strikes >= self.config.max_strikes {
            self.disconnect(id, DisconnectReason::Stalled(strikes));
        } else {
            self.refetch(&dropped, Some(id));
        }
        self.sync_all();
    }

    /// Schedules a loss probe for a request just sent to `peer` (with keepalive pings on).
    pub(super) fn arm_probe(&mut self, peer: ConnId) {
        if self.config.ping_interval.is_none() {
            return;
        }
        let now = self.now;
        let Some(c) = self.conns.get_mut(&peer) else {
            return;
        };
        // An outstanding probe keeps its own re-probe deadline.
        if !c.timers.is_set(Timer::Probe) {
            let at = now.add(c.probe_delay(self.config.probe_delay));
            self.timers.set(peer, &mut c.timers, Timer::Probe, Some(at));
        }
    }

    pub(super) fn on_ping(&mut self, peer: ConnId, nonce: u64, tip: Tip) {
        self.set_tip(peer, tip);
        let ours = self.tip();
        self.send(peer, Message::Pong { nonce, tip: ours });
        self.maybe_sync(peer);
    }

    pub(super) fn on_pong(&mut self, peer: ConnId, nonce: u64, tip: Tip) {
        let Some(c) = self.conns.get_mut(&peer) else {
            return;
        };
        let now = self.now;
        let mut answered = None;
        if c.outstanding_ping() == Some(nonce) {
            let pong_by = c.ping_ended(peer, &mut self.timers).unwrap_or(Millis::ZERO);
            c.probe_misses = 0;
            let sent = Millis(pong_by.0.saturating_sub(self.config.pong_timeout.0));
            c.sample_rtt(now.since(sent));
            answered = Some(c.ping_seq);
        }
        if let Some(p) = c.probe.filter(|p| p.nonce == nonce) {
            c.probe = None;
            self.timers.set(peer, &mut c.timers, Timer::Probe, None);
            c.probe_misses = 0;
            c.sample_rtt(now.since(p.sent_at));
            answered = Some(p.seq);
        }
        // A pong for an older ping arrives late on slow paths: harmless.
        if let Some(seq) = answered {
            self.answered_up_to(peer, seq);
        }
        self.set_tip(peer, tip);
        self.maybe_sync(peer);
    }

    /// A pong answered our message number `seq`: every request sent before it that is still
    /// unanswered was lost (or its answer was), so it is re-sent, or, after
    /// `max_request_retries`, the peer counts as stalling.
    fn answered_up_to(&mut self, peer: ConnId, seq: u64) {
        let max = self.config.max_request_retries;
        let Some(c) = self.conns.get_mut(&peer) else {
            return;
        };
        let resend_seq = c.sent_seq;
        let mut resend = Hashes::new();
        let mut exhausted = false;
        c.edit_requests(peer, &mut self.timers, |reqs| {
            for r in reqs.iter_mut().filter(|r| r.seq < seq) {
                if r.retries >= max {
                    exhausted = true;
                } else {
                    r.retries += 1;
                    r.seq = resend_seq;
                    resend.push(r.hash);
                }
            }
        });
        let chain_lost = c.chain_requested() && c.chain_seq < seq;
        if chain_lost && c.chain_retries >= max {
            exhausted = true;
        }
        if exhausted {
            return self.stall(peer);
        }
        if !resend.is_empty() {
            c.sent_seq += 1;
            self.send(peer, Message::GetBlocks { hashes: resend });
        }
        if chain_lost {
            if let Some(c) = self.conns.get_mut(&peer) {
                c.chain_retries += 1;
                c.chain_seq = c.sent_seq;
                c.sent_seq += 1;
            }
            let locator = self.sync_locator(peer);
            self.send(peer, Message::GetChain { locator });
        }
        self.arm_probe(peer);
    }

    /// Learns that `peer` has `tip`.
    pub(super) fn set_tip(&mut self, peer: ConnId, tip: Tip) {
        if let Some(c) = self.conns.get_mut(&peer) {
            c.set_tip(tip);
        }
    }
}
