//! Whom to dial and when: configured addresses forever, learned ones until they fail
//! [`MAX_LEARNED_FAILURES`] times in a row, each with capped exponential backoff jittered from
//! the peer's seeded RNG; learned addresses only within the outbound budget. The driver opens
//! what [`Output::Dial`](super::Output::Dial) asks for and answers with
//! [`Input::Connected`](super::Input::Connected) (carrying the dialled address) or
//! [`Input::DialFailed`](super::Input::DialFailed).

use super::{Direction, DisconnectReason, Output, Peer};
use crate::types::Millis;
use rand::Rng;
use std::collections::BTreeMap;

/// Failed attempts in a row after which a learned (not configured) address is forgotten.
pub const MAX_LEARNED_FAILURES: u32 = 6;
/// Most addresses tracked at once; further learned addresses are ignored.
pub const MAX_DIAL_TARGETS: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    Dialing,
    Connected,
}

#[derive(Debug)]
struct Target {
    configured: bool,
    state: State,
    failures: u32,
    next_at: Millis,
    /// The node id that answered our last dial here. Only a connection to that node covers
    /// the address: any peer may claim any listen address in its `hello`.
    node_id: Option<u64>,
}

/// The dial schedule: every address this peer may dial, by address. The earliest due times
/// and the dials in flight are kept up to date on every change, because the peer reads them
/// after every call ([`Peer::poll_timeout`]).
#[derive(Debug, Default)]
pub(super) struct Dialer {
    targets: BTreeMap<String, Target>,
    next_configured: Option<Millis>,
    next_learned: Option<Millis>,
    dialing: usize,
}

impl Dialer {
    /// Adds an address to dial at `now`; false if it was already known or the table is full.
    fn add(&mut self, addr: &str, configured: bool, now: Millis) -> bool {
        if let Some(t) = self.targets.get_mut(addr) {
            if configured && !t.configured {
                // Configured now: due at once, whatever it waited for as a learned address.
                t.configured = true;
                if t.state == State::Waiting {
                    t.next_at = t.next_at.min(now);
                }
                self.refresh();
            }
            return false;
        }
        if !configured && self.targets.len() >= MAX_DIAL_TARGETS {
            return false;
        }
        let target = Target {
            configured,
            state: State::Waiting,
            failures: 0,
            next_at: now,
            node_id: None,
        };
        self.targets.insert(addr.to_string(), target);
        self.refresh();
        true
    }

    /// Changes the target at `addr`, if there is one.
    fn update(&mut self, addr: &str, f: impl FnOnce(&mut Target)) {
        if let Some(t) = self.targets.get_mut(addr) {
            f(t);
            self.refresh();
        }
    }

    fn remove(&mut self, addr: &str) {
        if self.targets.remove(addr).is_some() {
            self.refresh();
        }
    }

    /// Recomputes the due times and the dials in flight.
    fn refresh(&mut self) {
        let (mut configured, mut learned, mut dialing) = (None::<Millis>, None::<Millis>, 0);
        for t in self.targets.values() {
            match (t.state, t.configured) {
                (State::Waiting, true) => {
                    configured = Some(configured.map_or(t.next_at, |c| c.min(t.next_at)))
                }
                (State::Waiting, false) => {
                    learned = Some(learned.map_or(t.next_at, |c| c.min(t.next_at)))
                }
                (State::Dialing, _) => dialing += 1,
                (State::Connected, _) => {}
            }
        }
        self.next_configured = configured;
        self.next_learned = learned;
        self.dialing = dialing;
    }

    /// Addresses due at `now`, marked as dialling; learned ones only while `budget` lasts.
    fn due(&mut self, now: Millis, mut budget: usize) -> Vec<String> {
        let mut out = Vec::new();
        for (addr, t) in self.targets.iter_mut() {
            if t.state != State::Waiting || t.next_at > now {
                continue;
            }
            if !t.configured {
                if budget == 0 {
                    continue;
                }
                budget -= 1;
            }
            t.state = State::Dialing;
            out.push(addr.clone());
        }
        if !out.is_empty() {
            self.refresh();
        }
        out
    }

    fn dialing(&self) -> usize {
        self.dialing
    }

    /// When the next waiting address becomes due (learned ones only if `learned`).
    fn next_due(&self, learned: bool) -> Option<Millis> {
        match (self.next_configured, self.next_learned.filter(|_| learned)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

impl Peer {
    /// Adds an address this node dials for as long as it runs (a configured peer), at once.
    pub fn add_peer(&mut self, now: Millis, addr: String) {
        self.now = now;
        self.dialer.add(&addr, true, now);
        self.finish();
    }

    /// Whether `addr` is a configured peer (dialled forever) rather than a learned one: the
    /// node logs a configured peer's failed dial louder.
    pub fn is_configured_peer(&self, addr: &str) -> bool {
        self.dialer.targets.get(addr).is_some_and(|t| t.configured)
    }

    /// An address learned from a neighbour becomes a dial target, unless the table is full.
    pub(super) fn add_learned(&mut self, addr: &str) {
        self.dialer.add(addr, false, self.now);
    }

    /// When the next dial is due, for [`Peer::poll_timeout`]: a learned address waits for
    /// room in the outbound budget, which only a closing connection or a failed dial makes.
    pub(super) fn next_dial(&self) -> Option<Millis> {
        if self.dialer.next_learned.is_none() {
            // The common case, read after every call: no count of connections needed.
            return self.dialer.next_configured;
        }
        self.dialer
            .next_due(self.outbound_used() < self.config.max_outbound)
    }

    /// Outbound connections plus dials in flight.
    pub(super) fn outbound_used(&self) -> usize {
        let open = self
            .conns
            .values()
            .filter(|c| c.direction == Direction::Outbound)
            .count();
        open + self.dialer.dialing()
    }

    /// Asks the driver to dial what is due: configured addresses always, learned ones while
    /// outbound connections and dials in flight stay under [`Config::max_outbound`]. An
    /// address a ready connection already reaches (it dialled us) waits the longest backoff.
    ///
    /// [`Config::max_outbound`]: super::Config::max_outbound
    pub(super) fn dial_due(&mut self) {
        let now = self.now;
        // Nothing due, or only learned addresses with the budget spent: called after every
        // input, so this must not walk the address table.
        if self.next_dial().is_none_or(|t| t > now) {
            return;
        }
        let budget = self
            .config
            .max_outbound
            .saturating_sub(self.outbound_used());
        for addr in self.dialer.due(now, budget) {
            if self.reaches(&addr) {
                self.dial_covered(&addr);
                continue;
            }
            self.out.push_back(Output::Dial { addr });
        }
    }

    /// Whether a connection past its handshake already reaches the node listening on `addr`:
    /// the node that answered our last dial there, or, for a learned address we never
    /// reached, any node claiming it. A configured address is never given up on a claim.
    fn reaches(&self, addr: &str) -> bool {
        let Some(t) = self.dialer.targets.get(addr) else {
            return false;
        };
        self.conns.values().any(|c| {
            c.is_ready()
                && c.remote.as_ref().is_some_and(|r| match t.node_id {
                    Some(id) => r.node_id == id,
                    None => !t.configured && r.listen.as_deref() == Some(addr),
                })
        })
    }

    /// The driver opened a connection to a dialled address.
    pub(super) fn dial_connected(&mut self, addr: &str) {
        self.dialer.update(addr, |t| t.state = State::Connected);
    }

    /// The handshake with a dialled address completed with `node_id`: a good address again.
    pub(super) fn dial_ready(&mut self, addr: &str, node_id: u64) {
        self.dialer.update(addr, |t| {
            t.failures = 0;
            t.node_id = Some(node_id);
        });
    }

    /// A dial failed or its connection closed: try again after the backoff, or forget a
    /// learned address that failed too often.
    pub(super) fn dial_failed(&mut self, addr: &str) {
        let (base, max) = (self.config.dial_retry_base, self.config.dial_retry_max);
        let Some(t) = self.dialer.targets.get_mut(addr) else {
            return;
        };
        t.failures = t.failures.saturating_add(1);
        if !t.configured && t.failures >= MAX_LEARNED_FAILURES {
            self.dialer.remove(addr);
            return;
        }
        let exp = base.0.saturating_mul(1u64 << t.failures.min(16)).min(max.0);
        // At least 1 ms: a zero base must not make a failing dial repeat at the same instant.
        let delay = ((exp as f64 * self.rng.gen_range(0.5..1.0)) as u64).max(1);
        let at = self.now.add(Millis(delay));
        self.dialer.update(addr, |t| {
            t.state = State::Waiting;
            t.next_at = at;
        });
    }

    /// Another connection already reaches `addr`'s node: look again after the longest delay.
    fn dial_covered(&mut self, addr: &str) {
        let at = self.now.add(self.config.dial_retry_max.max(Millis(1)));
        self.dialer.update(addr, |t| {
            t.state = State::Waiting;
            t.next_at = at;
        });
    }

    /// A connection that had a dial target or a known listen address closed for `reason`.
    pub(super) fn dial_closed(
        &mut self,
        target: Option<&str>,
        listen: Option<&str>,
        was_ready: bool,
        reason: Option<&DisconnectReason>,
    ) {
        if let Some(t) = target {
            match reason {
                // Never dial ourselves again.
                Some(DisconnectReason::SelfConnection) => self.dialer.remove(t),
                Some(&DisconnectReason::Duplicate(id)) => {
                    // The node at `t` answered with `id`, and we already reach it.
                    self.dialer.update(t, |t| t.node_id = Some(id));
                    self.dial_covered(t)
                }
                _ => {
                    if was_ready {
                        // It worked before: one quick retry, then the usual backoff.
                        self.dialer.update(t, |t| t.failures = 0);
                    }
                    self.dial_failed(t);
                }
            }
        }
        if let Some(l) = listen.filter(|&l| Some(l) != target) {
            // The connection that covered `l` is gone: dial it again soon (not the address of
            // this very connection: that one keeps its backoff).
            let soon = self.now.add(self.config.dial_retry_base);
            self.dialer.update(l, |t| {
                if t.state == State::Waiting {
                    t.next_at = t.next_at.min(soon);
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_hands_out_configured_addresses_always_and_learned_within_the_budget() {
        let mut d = Dialer::default();
        assert!(d.add("a:1", true, Millis(0)));
        assert!(d.add("b:1", false, Millis(0)));
        assert!(d.add("c:1", false, Millis(5)));
        assert!(!d.add("a:1", false, Millis(0)), "known");
        assert_eq!(d.due(Millis(0), 0), vec!["a:1".to_string()]);
        assert_eq!(d.dialing(), 1);
        assert_eq!(d.next_due(true), Some(Millis(0)));
        assert_eq!(d.next_due(false), None, "only learned addresses wait");
        assert_eq!(d.due(Millis(4), 5), vec!["b:1".to_string()]);
        assert_eq!(d.next_due(true), Some(Millis(5)));
        assert_eq!(d.due(Millis(5), 1), vec!["c:1".to_string()]);
        assert_eq!(d.next_due(true), None);
    }

    #[test]
    fn learning_an_address_again_keeps_it_learned_and_configuring_it_makes_it_due() {
        let mut d = Dialer::default();
        assert!(d.add("b:1", false, Millis(0)));
        assert_eq!(d.due(Millis(0), 1), vec!["b:1".to_string()]);
        d.update("b:1", |t| {
            t.state = State::Waiting;
            t.next_at = Millis(1_000);
        });
        assert!(!d.add("b:1", false, Millis(5)));
        assert!(!d.targets["b:1"].configured, "still a learned address");
        assert_eq!(d.next_due(false), None);
        assert!(!d.add("b:1", true, Millis(5)));
        assert!(d.targets["b:1"].configured);
        assert_eq!(
            d.next_due(false),
            Some(Millis(5)),
            "configured: due at once"
        );
    }

    #[test]
    fn a_removed_address_leaves_the_schedule() {
        let mut d = Dialer::default();
        assert!(d.add("a:1", true, Millis(0)));
        assert!(d.add("b:1", false, Millis(3)));
        assert_eq!(d.due(Millis(0), 1), vec!["a:1".to_string()]);
        d.remove("a:1");
        d.remove("b:1");
        assert!(d.targets.is_empty());
        assert_eq!((d.dialing(), d.next_due(true)), (0, None));
    }

    #[test]
    fn the_table_holds_a_bounded_number_of_learned_addresses() {
        let mut d = Dialer::default();
        for i in 0..MAX_DIAL_TARGETS {
            assert!(d.add(&format!("l:{i}"), false, Millis(0)));
        }
        assert!(!d.add("one:more", false, Millis(0)));
        assert!(
            d.add("configured:1", true, Millis(0)),
            "configured always fit"
        );
    }
}
